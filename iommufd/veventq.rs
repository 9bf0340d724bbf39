// SPDX-License-Identifier: GPL-2.0

//! vIOMMU event queues (`IOMMU_VEVENTQ_ALLOC`): events of a vIOMMU that userspace forwards to
//! its guest.
//!
//! An IOMMU reports events about the devices behind a vIOMMU (faults its guest must see, in the
//! hardware's own format) to the vIOMMU's event queue of their type. Userspace reads them from
//! the queue's file: each is a `struct iommufd_vevent_header` (flags and a sequence number)
//! followed by the driver's data.
//!
//! A queue holds at most `depth` events. An event that does not fit (or for which there is no
//! memory) is lost, and userspace learns it from a header alone with
//! `IOMMU_VEVENTQ_FLAG_LOST_EVENTS` at the end of the queue. There is at most one such header: it
//! stays last, taking the sequence number of the latest lost event, and the next event that does
//! fit replaces it (the gap in sequence numbers still tells of the loss). Sequence numbers count
//! every event, lost or not, and wrap from `i32::MAX` to 0, as upstream.
//!
//! While the queue's file is open the queue object is in use and cannot be destroyed.
//!
//! Locking: `queue` is a leaf lock, taken under the vIOMMU's list of queues when an event is
//! reported. No lock is held across a copy to userspace: a read takes one event at a time and
//! puts it back at the front if it could not hand it over.

use crate::{
    context::Iommufd,
    object::{
        Object,
        ObjectTable, //
    },
    ucmd::UserCmd,
    viommu::Viommu,
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
    uaccess::UserSliceWriter,
    uapi, //
};

/// The deepest queue, as upstream (enough for every IOMMU's hardware queue).
const MAX_DEPTH: u32 = 1 << 19;

/// The size of an event's header.
const HEADER: usize = size_of::<uapi::iommufd_vevent_header>();

/// An event waiting to be read.
struct Vevent {
    sequence: u32,
    data: KVec<u8>,
}

/// What a read takes from the queue.
enum Taken {
    /// An event, its key, and a node to put it back in.
    Event(u64, Vevent, RBTreeNodeReservation<u64, Vevent>),
    /// The lost-events header, with its sequence number.
    Lost(u32),
}

/// The events of a queue.
struct Queue {
    /// Events not read yet, by order of arrival.
    deliver: RBTree<u64, Vevent>,
    /// The key the next event gets in `deliver`.
    next_key: u64,
    /// The lost-events header, after every event of `deliver`, if events were lost since the
    /// last one queued: its sequence number.
    lost: Option<u32>,
    /// The sequence number of the next event.
    sequence: u32,
    /// How many events `deliver` holds.
    num_events: u32,
    depth: u32,
}

impl Queue {
    fn new(depth: u32) -> Self {
        Self {
            deliver: RBTree::new(),
            next_key: 0,
            lost: None,
            sequence: 0,
            num_events: 0,
            depth,
        }
    }

    /// The next sequence number, counting this one as used.
    fn next_sequence(&mut self) -> u32 {
        let sequence = self.sequence;
        self.sequence = sequence.wrapping_add(1) & i32::MAX as u32;
        sequence
    }

    /// Queues an event of `data` in `node`, or counts it lost if the queue is full or there was
    /// no memory for it (`node` is `None`).
    fn push(&mut self, node: Option<(RBTreeNodeReservation<u64, Vevent>, KVec<u8>)>) {
        let sequence = self.next_sequence();
        match node {
            Some((node, data)) if self.num_events < self.depth => {
                // An event that fits replaces the lost-events header.
                self.lost = None;
                let key = self.next_key;
                self.next_key = key.wrapping_add(1);
                self.deliver
                    .insert(node.into_node(key, Vevent { sequence, data }));
                self.num_events += 1;
            }
            _ => self.lost = Some(sequence),
        }
    }

    /// Takes the oldest event, with `spare` to put it back in, or else the lost-events header.
    fn take(&mut self, spare: RBTreeNodeReservation<u64, Vevent>) -> Option<Taken> {
        if let Some(front) = self.deliver.cursor_front() {
            let key = *front.current().0;
            let (key, event) = self.deliver.remove_node(&key)?.to_key_value();
            return Some(Taken::Event(key, event, spare));
        }
        self.lost.take().map(Taken::Lost)
    }

    /// Puts back what a read took and could not hand over: an event at the front; the
    /// lost-events header only if the queue is empty (an event that came meanwhile replaced it).
    fn restore(&mut self, taken: Taken) {
        match taken {
            Taken::Event(key, event, spare) => {
                self.deliver.insert(spare.into_node(key, event));
            }
            Taken::Lost(sequence) => {
                if self.deliver.is_empty() && self.lost.is_none() {
                    self.lost = Some(sequence);
                }
            }
        }
    }

    /// Whether there is something to read.
    fn readable(&self) -> bool {
        !self.deliver.is_empty() || self.lost.is_some()
    }
}

/// A vIOMMU event queue object.
#[pin_data]
pub(crate) struct Veventq {
    /// `IOMMU_VEVENTQ_TYPE_*`.
    pub(crate) event_type: u32,
    /// The vIOMMU, by id: it holds this queue, and cannot be destroyed while it exists.
    viommu_id: u32,
    #[pin]
    queue: Mutex<Queue>,
    /// Wakes pollers when an event arrives.
    #[pin]
    arrived: PollCondVar,
}

impl Veventq {
    /// Queues an event with the driver's `data`; one that does not fit, or for which there is
    /// no memory, is lost (`ENOMEM` in that last case, as upstream).
    pub(crate) fn report(&self, data: &[u8]) -> Result {
        let made = RBTreeNodeReservation::new(GFP_NOWAIT).and_then(|node| {
            let mut bytes = KVec::with_capacity(data.len(), GFP_NOWAIT)?;
            bytes.extend_from_slice(data, GFP_NOWAIT)?;
            Ok((node, bytes))
        });
        let res = made.as_ref().map(|_| ()).map_err(|_| ENOMEM);
        self.queue.lock().push(made.ok());
        self.arrived.notify_all();
        res
    }

    /// What destroying the queue (out of the table) releases: its place in its vIOMMU and its
    /// hold on it.
    pub(crate) fn release(self: &Arc<Self>, ictx: &Iommufd) {
        if let Ok(Object::Viommu(viommu)) = ictx.objects.get(self.viommu_id) {
            viommu.veventqs.lock().retain(|q| !Arc::ptr_eq(q, self));
        }
        ictx.objects.remove_user(self.viommu_id);
    }
}

/// The file of an event queue: holds the queue object in use while open.
struct VeventqFile {
    veventq: Arc<Veventq>,
    objects: Arc<ObjectTable>,
    id: u32,
    /// Whether the object was published, so that the hold is this file's to drop.
    published: Atomic<bool>,
}

impl Drop for VeventqFile {
    fn drop(&mut self) {
        if self.published.load(Acquire) {
            self.objects.remove_user(self.id);
        }
    }
}

impl VeventqFile {
    /// Copies out what a read took; `Ok(false)` if it does not fit in what is left.
    fn hand_over(&self, taken: &Taken, writer: &mut UserSliceWriter) -> Result<bool> {
        let (flags, sequence, data) = match taken {
            Taken::Event(_, event, _) => (0, event.sequence, &event.data[..]),
            Taken::Lost(sequence) => (
                uapi::iommu_veventq_flag_IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
                *sequence,
                &[][..],
            ),
        };
        if writer.len() < HEADER + data.len() {
            return Ok(false);
        }
        writer.write(&uapi::iommufd_vevent_header { flags, sequence })?;
        writer.write_slice(data)?;
        Ok(true)
    }
}

impl AnonFileOps for VeventqFile {
    /// Reads whole events, oldest first, as many as fit: `ESPIPE` at an offset, `EINVAL` for
    /// less than a header or if not even the first event fits.
    fn read(&self, writer: &mut UserSliceWriter, pos: i64) -> Result<usize> {
        if pos != 0 {
            return Err(ESPIPE);
        }
        let count = writer.len();
        if count < HEADER {
            return Err(EINVAL);
        }
        let queue = &self.veventq.queue;
        loop {
            // A node to put the event back in if it cannot be handed over.
            let spare = match RBTreeNodeReservation::new(GFP_KERNEL) {
                Ok(spare) => spare,
                Err(e) if writer.len() == count => return Err(e),
                Err(_) => break,
            };
            let Some(taken) = queue.lock().take(spare) else {
                break;
            };
            let before = writer.len();
            match self.hand_over(&taken, writer) {
                Ok(true) => {
                    if matches!(taken, Taken::Event(..)) {
                        let mut q = queue.lock();
                        q.num_events = q.num_events.saturating_sub(1);
                    }
                }
                res => {
                    queue.lock().restore(taken);
                    let done = count - before;
                    return match res {
                        Err(e) if done == 0 => Err(e),
                        // Not even the first event fits.
                        Ok(false) if done == 0 => Err(EINVAL),
                        _ => Ok(done),
                    };
                }
            }
        }
        Ok(count - writer.len())
    }

    /// Readable while an event (or the lost-events header) waits to be read.
    fn poll(&self, file: &File, table: PollTable<'_>) -> u32 {
        table.register_wait(file, &self.veventq.arrived);
        if self.veventq.queue.lock().readable() {
            bindings::POLLIN | bindings::POLLRDNORM
        } else {
            0
        }
    }
}

/// `IOMMU_VEVENTQ_ALLOC`: the event queue of `type` of vIOMMU `viommu_id`, and its file
/// descriptor, which the caller reads events from. Upstream's checks in upstream's order:
/// flags, the reserved field or the default type are `EOPNOTSUPP`, a depth of 0 or above
/// `1 << 19` `EINVAL`, then the vIOMMU (`ENOENT`), and a type it has a queue of already
/// (`EEXIST`).
pub(crate) fn alloc_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_veventq_alloc>,
) -> Result<isize> {
    let cmd = &ucmd.cmd;
    if cmd.flags != 0
        || cmd.__reserved != 0
        || cmd.type_ == uapi::iommu_veventq_type_IOMMU_VEVENTQ_TYPE_DEFAULT
    {
        return Err(EOPNOTSUPP);
    }
    let depth = cmd.veventq_depth;
    if depth == 0 || depth > MAX_DEPTH {
        return Err(EINVAL);
    }
    let (viommu_id, event_type) = (cmd.viommu_id, cmd.type_);
    let viommu: Arc<Viommu> = ictx.objects.add_user_if(viommu_id, |object| match object {
        Object::Viommu(v) => Some(v.clone()),
        _ => None,
    })?;
    let made = (|| {
        let mut queues = viommu.veventqs.lock();
        if queues.iter().any(|q| q.event_type == event_type) {
            return Err(EEXIST);
        }
        queues.reserve(1, GFP_KERNEL_ACCOUNT)?;
        let new = ictx.objects.reserve()?;
        let veventq = Arc::pin_init(
            pin_init!(Veventq {
                event_type,
                viommu_id,
                queue <- new_mutex!(Queue::new(depth)),
                arrived <- new_poll_condvar!("iommufd_veventq"),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        let file_data = Arc::new(
            VeventqFile {
                veventq: veventq.clone(),
                objects: ictx.objects.clone(),
                id: new.id(),
                published: Atomic::new(false),
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        let file = AnonFile::create_with_ops(
            c"[iommufd-viommu-event]",
            file_data.clone(),
            bindings::O_RDONLY,
        )?;
        let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
        ucmd.cmd.out_veventq_id = new.id();
        ucmd.cmd.out_veventq_fd = fd.reserved_fd();
        // On failure the id, the descriptor and the file go, and with them the queue.
        ucmd.respond()?;
        queues
            .push_within_capacity(veventq.clone())
            .map_err(|_| ENOMEM)?;
        drop(queues);
        // In use by its file from the start.
        new.publish_in_use(Object::Veventq(veventq));
        file_data.published.store(true, Release);
        fd.fd_install(file);
        Ok(0)
    })();
    if made.is_err() {
        ictx.objects.remove_user(viommu_id);
    }
    made
}

#[kunit_tests(rust_iommufd_veventq)]
mod tests {
    use super::*;

    fn spare() -> RBTreeNodeReservation<u64, Vevent> {
        RBTreeNodeReservation::new(GFP_KERNEL).expect("node")
    }

    fn event(q: &mut Queue, byte: u8) {
        let node = RBTreeNodeReservation::new(GFP_KERNEL).expect("node");
        let mut data = KVec::new();
        data.push(byte, GFP_KERNEL).expect("push");
        q.push(Some((node, data)));
    }

    /// What `take` gives: the sequence number, and the event's byte or `None` for the
    /// lost-events header.
    fn take(q: &mut Queue) -> Option<(u32, Option<u8>)> {
        match q.take(spare())? {
            Taken::Event(_, e, _) => {
                let byte = e.data.first().copied();
                q.num_events -= 1;
                Some((e.sequence, byte))
            }
            Taken::Lost(seq) => Some((seq, None)),
        }
    }

    #[test]
    fn overflow_leaves_one_lost_header_last() {
        let mut q = Queue::new(2);
        for b in 1..=4 {
            event(&mut q, b);
        }
        assert_eq!(take(&mut q), Some((0, Some(1))));
        assert_eq!(take(&mut q), Some((1, Some(2))));
        // Events 2 and 3 were lost: one header, with the last lost one's number.
        assert_eq!(take(&mut q), Some((3, None)));
        assert_eq!(take(&mut q), None);
        event(&mut q, 5);
        assert_eq!(take(&mut q), Some((4, Some(5))));
    }

    #[test]
    fn an_event_that_fits_replaces_the_lost_header() {
        let mut q = Queue::new(1);
        event(&mut q, 1);
        event(&mut q, 2);
        assert_eq!(take(&mut q), Some((0, Some(1))));
        // Room again: the lost header goes, the gap in numbers stays.
        event(&mut q, 3);
        assert_eq!(take(&mut q), Some((2, Some(3))));
        assert_eq!(take(&mut q), None);
    }

    #[test]
    fn restore_puts_events_first_and_the_header_back_only_alone() {
        let mut q = Queue::new(1);
        event(&mut q, 1);
        event(&mut q, 2);
        let first = q.take(spare()).expect("event");
        q.restore(first);
        assert_eq!(take(&mut q), Some((0, Some(1))));
        let lost = q.take(spare()).expect("lost header");
        assert!(matches!(lost, Taken::Lost(1)));
        event(&mut q, 3);
        q.restore(lost);
        assert_eq!(take(&mut q), Some((2, Some(3))));
        assert_eq!(take(&mut q), None);
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut q = Queue::new(4);
        q.sequence = i32::MAX as u32;
        event(&mut q, 1);
        event(&mut q, 2);
        assert_eq!(take(&mut q), Some((i32::MAX as u32, Some(1))));
        assert_eq!(take(&mut q), Some((0, Some(2))));
    }
}
