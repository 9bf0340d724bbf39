// SPDX-License-Identifier: GPL-2.0

//! Fault queues (`IOMMU_FAULT_QUEUE_ALLOC`): I/O page faults that userspace resolves.
//!
//! A HWPT made with a fault queue (`IOMMU_HWPT_FAULT_ID_VALID`) is one whose page faults are
//! handled by userspace: typically a VMM whose guest owns the stage-1 page table behind a
//! nested HWPT. When a device attached to such a HWPT faults, its IOMMU reports a page
//! request; the queue keeps it until userspace reads it from the queue's file (a
//! `struct iommu_hwpt_pgfault` carrying a cookie), fixes the mapping, and writes back a
//! `struct iommu_hwpt_page_response` naming the cookie, which goes to the device.
//!
//! A fault waits in `deliver` until read, then in `pending` under its cookie until answered.
//! When a device's attachment to the HWPT ends, its faults still in the queue are answered for
//! userspace (as invalid, as upstream) and leave it: their cookies then name nothing.
//!
//! While the queue's file is open the queue object is in use and cannot be destroyed.
//!
//! Locking: `queue` is a leaf lock; a device reports a fault with its attachment locked, so the
//! attachment lock comes first. No lock is held across a copy to or from userspace: a read
//! takes the faults that fit, copies them out, and puts back at the front those it could not.

use crate::{
    context::Iommufd,
    object::{
        Object,
        ObjectTable, //
    },
    ucmd::UserCmd, //
};
use core::mem::size_of;
use kernel::{
    anon_file::{
        AnonFile,
        AnonFileOps, //
    },
    bindings,
    fs::{
        file::FileDescriptorReservation,
        File, //
    },
    new_mutex,
    new_poll_condvar,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNode,
        RBTreeNodeReservation, //
    },
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        poll::{
            PollCondVar,
            PollTable, //
        },
        Arc,
        Mutex, //
    },
    uaccess::{
        UserSliceReader,
        UserSliceWriter, //
    },
    uapi, //
};

/// A page request a device's IOMMU reports (upstream's `struct iommu_fault_page_request`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PageRequest {
    /// `IOMMU_PGFAULT_FLAGS_*`.
    pub(crate) flags: u32,
    pub(crate) pasid: u32,
    /// The group of requests one response answers.
    pub(crate) grpid: u32,
    /// `IOMMU_PGFAULT_PERM_*`.
    pub(crate) perm: u32,
    pub(crate) addr: u64,
}

/// A fault in a queue: a group of page requests one response answers.
///
/// Each group holds one request: the devices here report only last-page requests, so no
/// group ever gathers several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Group {
    /// The device object that faulted.
    dev_id: u32,
    /// Which attachment of the device to the HWPT it faulted under (see
    /// [`Fault::attachment_ended`]).
    handle: u64,
    request: PageRequest,
}

/// A fault a read took out of `deliver`.
struct Taken {
    cookie: u32,
    group: Group,
    /// Its node in `deliver`, to put it back with (no allocation can fail then).
    node: RBTreeNode<u64, Group>,
}

/// The faults of a queue.
struct Queue {
    /// Faults not read yet, by order of arrival.
    deliver: RBTree<u64, Group>,
    /// The key the next fault gets in `deliver`.
    next_seq: u64,
    /// Faults read and not answered yet, by cookie.
    pending: RBTree<u32, Group>,
}

/// The lowest cookie not in use: cookies are positive `u32`s, lowest free first (upstream's
/// allocating xarray). `None` if every one is taken.
fn lowest_free_cookie<'a>(used: impl Iterator<Item = &'a u32>) -> Option<u32> {
    let mut candidate = 1u32;
    for &cookie in used {
        if cookie > candidate {
            break;
        }
        if cookie == candidate {
            candidate = candidate.checked_add(1)?;
        }
    }
    Some(candidate)
}

impl Queue {
    fn new() -> Self {
        Self {
            deliver: RBTree::new(),
            next_seq: 0,
            pending: RBTree::new(),
        }
    }

    /// Queues `group` behind every fault not read yet.
    fn push(&mut self, node: RBTreeNodeReservation<u64, Group>, group: Group) {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.deliver.insert(node.into_node(seq, group));
    }

    /// Moves up to `max` faults, oldest first, from `deliver` to `pending` under new cookies,
    /// and records them in `taken`. Fails (`EINVAL`) only if no fault fits (`max` is 0 and
    /// there is one) or if taking the first one failed; an empty queue gives nothing.
    fn take(&mut self, max: usize, taken: &mut KVec<Taken>) -> Result {
        loop {
            let Some(front) = self.deliver.cursor_front() else {
                return Ok(());
            };
            let seq = *front.current().0;
            let res = if taken.len() >= max {
                Err(EINVAL)
            } else {
                self.take_one(seq, taken)
            };
            if let Err(e) = res {
                return if taken.is_empty() { Err(e) } else { Ok(()) };
            }
        }
    }

    /// Moves the fault under `seq` from `deliver` to `pending`.
    fn take_one(&mut self, seq: u64, taken: &mut KVec<Taken>) -> Result {
        taken.reserve(1, GFP_KERNEL)?;
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        // As upstream's xarray when every cookie is taken.
        let cookie = lowest_free_cookie(self.pending.keys()).ok_or(EBUSY)?;
        let group = *self.deliver.get(&seq).ok_or(ENOENT)?;
        let old = self.deliver.remove_node(&seq).ok_or(ENOENT)?;
        self.pending.insert(node.into_node(cookie, group));
        let item = Taken {
            cookie,
            group,
            node: old,
        };
        if let Err(back) = taken.push_within_capacity(item) {
            // Not reached: the space was reserved above. Undo all the same.
            self.restore(core::iter::once(back.0));
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// Puts faults a read took but could not hand over back at the front of `deliver`, unless
    /// they were answered or dropped meanwhile.
    fn restore(&mut self, taken: impl Iterator<Item = Taken>) {
        for t in taken {
            if self.pending.remove(&t.cookie).is_some() {
                self.deliver.insert(t.node);
            }
        }
    }

    /// Takes the pending fault `cookie` to answer it; `None` if there is none.
    fn answer(&mut self, cookie: u32) -> Option<Group> {
        self.pending.remove(&cookie)
    }

    /// Drops every fault (read or not) of device `dev_id` under attachment `handle`; returns
    /// how many.
    fn drop_attachment(&mut self, dev_id: u32, handle: u64) -> usize {
        let of = |g: &Group| g.dev_id == dev_id && g.handle == handle;
        let mut dropped = 0;
        while let Some(seq) = self.deliver.iter().find(|(_, g)| of(g)).map(|(k, _)| *k) {
            drop(self.deliver.remove_node(&seq));
            dropped += 1;
        }
        while let Some(cookie) = self.pending.iter().find(|(_, g)| of(g)).map(|(k, _)| *k) {
            drop(self.pending.remove_node(&cookie));
            dropped += 1;
        }
        dropped
    }
}

/// A fault queue object.
#[pin_data]
pub(crate) struct Fault {
    #[pin]
    queue: Mutex<Queue>,
    /// Wakes pollers when a fault arrives.
    #[pin]
    arrived: PollCondVar,
}

/// The size of one fault record read from the queue's file.
const RECORD: usize = size_of::<uapi::iommu_hwpt_pgfault>();
/// The size of one response written to it.
const RESPONSE: usize = size_of::<uapi::iommu_hwpt_page_response>();

impl Fault {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                queue <- new_mutex!(Queue::new()),
                arrived <- new_poll_condvar!("iommufd_fault"),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Queues a page request of device `dev_id`, attached under `handle`, for userspace.
    /// Fails only for lack of memory, when the request is lost as upstream's is (the device
    /// is told it failed, which the devices here ignore).
    pub(crate) fn report(&self, dev_id: u32, handle: u64, request: PageRequest) -> Result {
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        self.queue.lock().push(
            node,
            Group {
                dev_id,
                handle,
                request,
            },
        );
        self.arrived.notify_all();
        Ok(())
    }

    /// Device `dev_id`'s attachment `handle` to a HWPT reporting to this queue ended: its
    /// faults still here are answered as invalid, and leave the queue.
    pub(crate) fn attachment_ended(&self, dev_id: u32, handle: u64) {
        // The devices here ignore responses, so answering is leaving.
        self.queue.lock().drop_attachment(dev_id, handle);
    }
}

/// The file of a fault queue: holds the queue object in use while open.
struct FaultFile {
    fault: Arc<Fault>,
    objects: Arc<ObjectTable>,
    id: u32,
    /// Whether the object was published, so that the hold is this file's to drop.
    published: Atomic<bool>,
}

impl Drop for FaultFile {
    fn drop(&mut self) {
        if self.published.load(Acquire) {
            self.objects.remove_user(self.id);
        }
    }
}

impl AnonFileOps for FaultFile {
    /// Reads whole fault records, oldest first, as many as fit; `ESPIPE` for a length that is
    /// not a multiple of a record or at an offset, `EINVAL` if not even one fits. Faults read
    /// wait for a response under the cookie of their record.
    fn read(&self, writer: &mut UserSliceWriter, pos: i64) -> Result<usize> {
        let count = writer.len();
        if pos != 0 || count % RECORD != 0 {
            return Err(ESPIPE);
        }
        let mut taken = KVec::new();
        self.fault.queue.lock().take(count / RECORD, &mut taken)?;
        let mut done = 0;
        let mut res = Ok(());
        for t in taken.iter() {
            let request = &t.group.request;
            let record = uapi::iommu_hwpt_pgfault {
                flags: request.flags,
                dev_id: t.group.dev_id,
                pasid: request.pasid,
                grpid: request.grpid,
                perm: request.perm,
                __reserved: 0,
                addr: request.addr,
                length: 0,
                cookie: t.cookie,
            };
            res = writer.write(&record);
            if res.is_err() {
                break;
            }
            done += 1;
        }
        // Those copied out wait for their response; the others go back.
        if done < taken.len() {
            self.fault
                .queue
                .lock()
                .restore(taken.drain_all().skip(done));
        }
        match (done, res) {
            (0, Err(e)) => Err(e),
            _ => Ok(done * RECORD),
        }
    }

    /// Takes responses to faults read, in order, until one fails; `ESPIPE` for a length that
    /// is not a multiple of a response or at an offset. A response naming no pending fault, or
    /// with a code other than `IOMMUFD_PAGE_RESP_{SUCCESS,INVALID}`, is `EINVAL`; what went
    /// before it counts.
    fn write(&self, reader: &mut UserSliceReader, pos: i64) -> Result<usize> {
        let count = reader.len();
        if pos != 0 || count % RESPONSE != 0 {
            return Err(ESPIPE);
        }
        let mut done = 0;
        let mut res = Ok(());
        while done < count {
            res = reader
                .read::<uapi::iommu_hwpt_page_response>()
                .and_then(|response| {
                    if response.code != uapi::iommufd_page_response_code_IOMMUFD_PAGE_RESP_SUCCESS
                        && response.code
                            != uapi::iommufd_page_response_code_IOMMUFD_PAGE_RESP_INVALID
                    {
                        return Err(EINVAL);
                    }
                    // The devices here ignore responses: answering the fault is dropping it.
                    self.fault
                        .queue
                        .lock()
                        .answer(response.cookie)
                        .map(drop)
                        .ok_or(EINVAL)
                });
            if res.is_err() {
                break;
            }
            done += RESPONSE;
        }
        match (done, res) {
            (0, Err(e)) => Err(e),
            _ => Ok(done),
        }
    }

    /// Always writable; readable while a fault waits to be read.
    fn poll(&self, file: &File, table: PollTable<'_>) -> u32 {
        table.register_wait(file, &self.fault.arrived);
        let mut mask = bindings::POLLOUT;
        if !self.fault.queue.lock().deliver.is_empty() {
            mask |= bindings::POLLIN | bindings::POLLRDNORM;
        }
        mask
    }
}

/// `IOMMU_FAULT_QUEUE_ALLOC`: a fault queue object and its file descriptor, which the caller
/// reads faults from and writes responses to.
pub(crate) fn alloc_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_fault_alloc>,
) -> Result<isize> {
    if ucmd.cmd.flags != 0 {
        return Err(EOPNOTSUPP);
    }
    let new = ictx.objects.reserve()?;
    let fault = Fault::new()?;
    let file_data = Arc::new(
        FaultFile {
            fault: fault.clone(),
            objects: ictx.objects.clone(),
            id: new.id(),
            published: Atomic::new(false),
        },
        GFP_KERNEL_ACCOUNT,
    )?;
    let file =
        AnonFile::create_with_ops(c"[iommufd-pgfault]", file_data.clone(), bindings::O_RDWR)?;
    let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    ucmd.cmd.out_fault_id = new.id();
    ucmd.cmd.out_fault_fd = fd.reserved_fd();
    // On failure the id, the descriptor and the file go, and with them the queue.
    ucmd.respond()?;
    // In use by its file from the start.
    new.publish_in_use(Object::Fault(fault));
    file_data.published.store(true, Release);
    fd.fd_install(file);
    Ok(0)
}

#[kunit_tests(rust_iommufd_fault)]
mod tests {
    use super::*;

    fn group(dev_id: u32, handle: u64, addr: u64) -> Group {
        Group {
            dev_id,
            handle,
            request: PageRequest {
                flags: uapi::iommu_hwpt_pgfault_flags_IOMMU_PGFAULT_FLAGS_LAST_PAGE,
                pasid: 0,
                grpid: 0,
                perm: 0,
                addr,
            },
        }
    }

    fn push(q: &mut Queue, g: Group) {
        q.push(RBTreeNodeReservation::new(GFP_KERNEL).expect("node"), g);
    }

    /// The addresses (and cookies) of what `take` gave.
    fn taken_of(taken: &KVec<Taken>) -> KVec<(u32, u64)> {
        let mut out = KVec::new();
        for t in taken.iter() {
            out.push((t.cookie, t.group.request.addr), GFP_KERNEL)
                .expect("push");
        }
        out
    }

    #[test]
    fn lowest_free_cookie_fills_gaps() {
        assert_eq!(lowest_free_cookie([].iter()), Some(1));
        assert_eq!(lowest_free_cookie([1, 2].iter()), Some(3));
        assert_eq!(lowest_free_cookie([2, 3].iter()), Some(1));
        assert_eq!(lowest_free_cookie([1, 3].iter()), Some(2));
        assert_eq!(lowest_free_cookie([u32::MAX].iter()), Some(1));
    }

    #[test]
    fn reads_take_oldest_first_as_many_as_fit() {
        let mut q = Queue::new();
        let mut taken = KVec::new();
        // An empty queue gives nothing, even to a read with no room.
        assert!(q.take(0, &mut taken).is_ok());
        assert!(taken.is_empty());
        for addr in [0x1000, 0x2000, 0x3000] {
            push(&mut q, group(1, 0, addr));
        }
        // No room for even one.
        assert_eq!(q.take(0, &mut taken).err(), Some(EINVAL));
        assert!(taken.is_empty());
        assert!(q.take(2, &mut taken).is_ok());
        assert_eq!(&taken_of(&taken)[..], &[(1, 0x1000), (2, 0x2000)]);
        let mut more = KVec::new();
        assert!(q.take(5, &mut more).is_ok());
        assert_eq!(&taken_of(&more)[..], &[(3, 0x3000)]);
        assert!(q.deliver.is_empty());
    }

    #[test]
    fn restored_faults_come_back_first_and_answered_ones_do_not() {
        let mut q = Queue::new();
        for addr in [0x1000, 0x2000, 0x3000] {
            push(&mut q, group(1, 0, addr));
        }
        let mut taken = KVec::new();
        assert!(q.take(2, &mut taken).is_ok());
        // The first was answered before the read put it back.
        assert!(q.answer(1).is_some());
        q.restore(taken.drain_all());
        let mut again = KVec::new();
        assert!(q.take(3, &mut again).is_ok());
        assert_eq!(&taken_of(&again)[..], &[(1, 0x2000), (2, 0x3000)]);
        // Answered once only; unknown cookies answer nothing.
        assert!(q.answer(1).is_some());
        assert!(q.answer(1).is_none());
        assert!(q.answer(7).is_none());
    }

    #[test]
    fn an_ended_attachment_takes_its_faults_along() {
        let mut q = Queue::new();
        push(&mut q, group(1, 0, 0x1000));
        push(&mut q, group(1, 1, 0x2000));
        push(&mut q, group(2, 0, 0x3000));
        push(&mut q, group(1, 0, 0x4000));
        let mut taken = KVec::new();
        assert!(q.take(1, &mut taken).is_ok());
        // One read (cookie 1) and one queued fault of device 1 under handle 0.
        assert_eq!(q.drop_attachment(1, 0), 2);
        assert!(q.answer(1).is_none());
        let mut rest = KVec::new();
        assert!(q.take(5, &mut rest).is_ok());
        assert_eq!(&taken_of(&rest)[..], &[(1, 0x2000), (2, 0x3000)]);
    }
}
