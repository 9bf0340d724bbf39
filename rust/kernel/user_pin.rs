// SPDX-License-Identifier: GPL-2.0

//! Pinning user memory for DMA, and charging it to whoever owns it.
//!
//! A device that reads or writes memory by DMA needs the memory to stay where it is for as
//! long as the mapping lives. Such memory is pinned with `FOLL_LONGTERM` (which first moves it
//! out of movable zones) and unpinned once no device can reach it any more.
//!
//! Long-term pins count against a limit. [`PinOwner`] records who pinned (the process's memory
//! map, its thread-group leader and its user) so that pages pinned by one ioctl and released by
//! another, possibly from another process, are charged and refunded to the same owner:
//! - per user, the way io_uring and iommufd charge by default: the user's `locked_vm` against
//!   the owner's `RLIMIT_MEMLOCK`;
//! - per process, the way VFIO type1 charges: the memory map's `locked_vm`, under its lock;
//! - and in both cases the memory map's `pinned_vm`, which only reports.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`include/linux/sched/user.h`](srctree/include/linux/sched/user.h).

use crate::{
    alloc::KVVec,
    bindings,
    error::to_result,
    mm::Mm,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            ordering::Relaxed,
            Atomic, //
        },
    },
    task::Task, //
};
use core::ptr::NonNull;

/// One page of user memory pinned for DMA. Dropping it unpins the page.
///
/// `Option<PinnedPage>` has the layout of a `struct page *` that may be NULL, so slices of it
/// are handed to the C functions that pin and unpin arrays of pages.
#[repr(transparent)]
pub struct PinnedPage(NonNull<bindings::page>);

// SAFETY: a pin is a reference count on the page; it may be dropped from any thread.
unsafe impl Send for PinnedPage {}
// SAFETY: the shared methods only read the page's frame number or its contents.
unsafe impl Sync for PinnedPage {}

impl PinnedPage {
    /// The physical address of the page.
    pub fn phys(&self) -> u64 {
        // SAFETY: the page is pinned, so it is a valid page for as long as `self` lives.
        unsafe { bindings::page_to_phys(self.0.as_ptr()) }
    }

    /// Copies `buf.len()` bytes from `offset` in the page into `buf`; `EINVAL` if that reaches
    /// past the page.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result {
        Self::check(offset, buf.len())?;
        // SAFETY: the page is pinned and the range is inside it (checked above); `buf` is
        // valid for writing `buf.len()` bytes. Devices may write the page at the same time;
        // the copy then sees some of their bytes, as a CPU access to DMA memory does.
        unsafe {
            let base = bindings::kmap_local_page(self.0.as_ptr()).cast::<u8>();
            core::ptr::copy_nonoverlapping(base.add(offset), buf.as_mut_ptr(), buf.len());
            bindings::kunmap_local(base.cast());
        }
        Ok(())
    }

    /// Copies `data` to `offset` in the page; `EINVAL` if that reaches past the page.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result {
        Self::check(offset, data.len())?;
        // SAFETY: as in `read`; the page was pinned writable by the caller's choice, and
        // writing it is what the pin is for.
        unsafe {
            let base = bindings::kmap_local_page(self.0.as_ptr()).cast::<u8>();
            core::ptr::copy_nonoverlapping(data.as_ptr(), base.add(offset), data.len());
            bindings::kunmap_local(base.cast());
        }
        Ok(())
    }

    fn check(offset: usize, len: usize) -> Result {
        match offset.checked_add(len) {
            Some(end) if end <= PAGE_SIZE => Ok(()),
            _ => Err(EINVAL),
        }
    }
}

impl Drop for PinnedPage {
    fn drop(&mut self) {
        // SAFETY: `self` holds one pin on the page, given back here exactly once.
        unsafe { bindings::unpin_user_page(self.0.as_ptr()) }
    }
}

/// `n` empty slots for pinned pages, allocated zeroed in one go rather than filled one by one
/// (an all-zero `Option<PinnedPage>` is `None`).
pub fn empty_slots(n: usize, flags: crate::alloc::Flags) -> Result<KVVec<Option<PinnedPage>>> {
    let mut slots = KVVec::with_capacity(n, flags | crate::alloc::flags::__GFP_ZERO)?;
    // SAFETY: the capacity is at least `n` and the memory is zeroed: `n` valid `None`s.
    unsafe { slots.inc_len(n) };
    Ok(slots)
}

/// Unpins every page in `pages`, leaving `None` behind, and marks the pages dirty first when
/// `dirty` (a device may have written them). Runs of pinned pages go to the C side in one call.
pub fn unpin_pages(pages: &mut [Option<PinnedPage>], dirty: bool) {
    let mut i = 0;
    while i < pages.len() {
        if pages[i].is_none() {
            i += 1;
            continue;
        }
        let start = i;
        while i < pages.len() && pages[i].is_some() {
            i += 1;
        }
        let run = &mut pages[start..i];
        // SAFETY: `Option<PinnedPage>` is a nullable `struct page *` (see `PinnedPage`), and
        // every element of `run` holds a pin. The C function consumes the pins; the elements
        // are then overwritten with `None` without running `PinnedPage`'s destructor.
        unsafe {
            let ptr = run.as_mut_ptr().cast::<*mut bindings::page>();
            bindings::unpin_user_pages_dirty_lock(ptr, run.len(), dirty);
            for j in 0..run.len() {
                ptr.add(j).write(core::ptr::null_mut());
            }
        }
    }
}

/// The memory map, process and user that pinned memory belongs to and is charged to.
pub struct PinOwner {
    mm: ARef<Mm>,
    task: ARef<Task>,
    user: NonNull<bindings::user_struct>,
}

// SAFETY: the user is reference counted and its counters are atomic; `Mm` and `Task` are
// thread safe.
unsafe impl Send for PinOwner {}
// SAFETY: as above; shared methods only use atomic counters and locks.
unsafe impl Sync for PinOwner {}

impl PinOwner {
    /// The current process: its memory map, thread-group leader and user. `EFAULT` from a
    /// kernel thread, which has no user memory.
    pub fn current() -> Result<Self> {
        let current = kernel_task_current();
        let mm: ARef<Mm> = ARef::from(&**current.mm().ok_or(EFAULT)?);
        let task: ARef<Task> = ARef::from(current.group_leader());
        // SAFETY: returns a counted reference to the current task's user, never NULL.
        let user = unsafe { bindings::get_current_user() };
        Ok(Self {
            mm,
            task,
            user: NonNull::new(user).ok_or(EFAULT)?,
        })
    }

    /// Whether the current process is this owner: same memory map, thread group and user.
    pub fn is_current(&self) -> bool {
        let current = kernel_task_current();
        // SAFETY: as in `current`: a counted reference to the current task's user, dropped below.
        let user = unsafe { bindings::get_current_user() };
        let same_user = user == self.user.as_ptr();
        // SAFETY: drops the reference taken above.
        unsafe { bindings::free_uid(user) };
        same_user
            && self.is_current_mm()
            && core::ptr::eq(current.group_leader().as_ptr(), self.task.as_ptr())
    }

    /// Whether the current task runs in this owner's memory map.
    pub fn is_current_mm(&self) -> bool {
        kernel_task_current()
            .mm()
            .is_some_and(|mm| core::ptr::eq(mm.as_raw(), self.mm.as_raw()))
    }

    /// The owner's memory map.
    pub fn mm(&self) -> &Mm {
        &self.mm
    }

    /// Whether both owners are the same user.
    pub fn same_user(&self, other: &PinOwner) -> bool {
        self.user == other.user
    }

    fn user_locked_vm(&self) -> &Atomic<i64> {
        // SAFETY: `self.user` is a counted reference, so `locked_vm` is valid while `self`
        // lives; `atomic_long_t` on 64-bit kernels is an aligned `s64` only accessed
        // atomically.
        unsafe { Atomic::from_ptr((&raw mut (*self.user.as_ptr()).locked_vm.counter).cast()) }
    }

    fn mm_pinned_vm(&self) -> &Atomic<i64> {
        // SAFETY: `self.mm` holds a count on the `mm_struct`, so `pinned_vm` is valid while
        // `self` lives; `atomic64_t` is an aligned `s64` only accessed atomically.
        unsafe { Atomic::from_ptr(&raw mut (*self.mm.as_raw()).__bindgen_anon_1.pinned_vm.counter) }
    }

    /// Charges `npages` to the user's `locked_vm`; `ENOMEM`, with nothing charged, if that
    /// would pass the owner's `RLIMIT_MEMLOCK`.
    pub fn charge_user(&self, npages: usize) -> Result {
        // SAFETY: `self.task` is a counted task reference.
        let limit = unsafe { bindings::task_rlimit(self.task.as_ptr(), bindings::RLIMIT_MEMLOCK) }
            as u64
            >> crate::page::PAGE_SHIFT;
        let locked = self.user_locked_vm();
        let mut cur = locked.load(Relaxed);
        loop {
            let new = (cur as u64).checked_add(npages as u64).ok_or(ENOMEM)?;
            if new > limit {
                return Err(ENOMEM);
            }
            match locked.cmpxchg(cur, new as i64, Relaxed) {
                Ok(_) => return Ok(()),
                Err(seen) => cur = seen,
            }
        }
    }

    /// Gives back `npages` charged with [`PinOwner::charge_user`].
    pub fn uncharge_user(&self, npages: usize) {
        self.user_locked_vm().add(-(npages as i64), Relaxed);
    }

    /// Charges (`inc`) or refunds `npages` to the memory map's `locked_vm`, which is limited
    /// by `RLIMIT_MEMLOCK` unless the owner has `CAP_IPC_LOCK`; `ENOMEM` past the limit.
    /// `EINVAL` if the memory map is gone (its process has exited).
    pub fn charge_mm(&self, npages: usize, inc: bool) -> Result {
        let mm = self.mm.mmget_not_zero().ok_or(EINVAL)?;
        // SAFETY: `mm` holds a user count, so the map and its lock are alive; the lock is
        // released before returning, and `__account_locked_vm` requires it held for writing.
        to_result(unsafe {
            bindings::mmap_write_lock(mm.as_raw());
            let rc =
                bindings::__account_locked_vm(mm.as_raw(), npages, inc, self.task.as_ptr(), false);
            bindings::mmap_write_unlock(mm.as_raw());
            rc
        })
    }

    /// Adds `delta` pages to the memory map's `pinned_vm`.
    pub fn add_pinned_vm(&self, delta: i64) {
        self.mm_pinned_vm().add(delta, Relaxed);
    }

    /// Pins the pages holding `out.len()` pages of user memory from `uaddr` (page aligned) in
    /// the owner's memory map into `out`, whose elements must be `None`. Stops early at the
    /// first page that cannot be pinned and returns how many were; an error only if none was.
    /// `write` asks for pages a device may write (copy-on-write is broken first).
    pub fn pin(&self, uaddr: usize, write: bool, out: &mut [Option<PinnedPage>]) -> Result<usize> {
        if out.iter().any(Option::is_some) {
            return Err(EINVAL);
        }
        let mut flags = bindings::FOLL_LONGTERM;
        if write {
            flags |= bindings::FOLL_WRITE;
        }
        let n = out.len().min(i32::MAX as usize);
        let ptr = out.as_mut_ptr().cast::<*mut bindings::page>();
        let rc = if self.is_current_mm() {
            // SAFETY: `ptr` has room for `n` page pointers (`Option<PinnedPage>` is a nullable
            // page pointer), each written only with a pinned page; the pins become the
            // `PinnedPage`s.
            unsafe { bindings::pin_user_pages_fast(uaddr, n as i32, flags, ptr) as isize }
        } else {
            let mm = self.mm.mmget_not_zero().ok_or(EFAULT)?;
            let mut locked: crate::ffi::c_int = 1;
            // SAFETY: as above; `mm` holds a user count, its lock is taken for reading as
            // `pin_user_pages_remote` requires, and released unless the call dropped it
            // (which it reports by clearing `locked`).
            unsafe {
                bindings::mmap_read_lock(mm.as_raw());
                let rc =
                    bindings::pin_user_pages_remote(mm.as_raw(), uaddr, n, flags, ptr, &mut locked);
                if locked != 0 {
                    bindings::mmap_read_unlock(mm.as_raw());
                }
                rc
            }
        };
        if rc < 0 {
            return Err(Error::from_errno(rc as i32));
        }
        if rc == 0 {
            return Err(EFAULT);
        }
        Ok(rc as usize)
    }
}

impl Drop for PinOwner {
    fn drop(&mut self) {
        // SAFETY: `self.user` holds the count taken in `current`.
        unsafe { bindings::free_uid(self.user.as_ptr()) }
    }
}

/// The current task.
fn kernel_task_current() -> impl core::ops::Deref<Target = crate::task::CurrentTask> {
    // SAFETY: the reference does not outlive this function's caller's frame: callers use it
    // immediately and do not return it.
    unsafe { Task::current() }
}

/// Looks up the page holding `uaddr` in the current process without pinning it, and returns
/// its physical address and how many long-term pins it has (`None` for a page of a large
/// folio, whose count is not per page). `EFAULT` if the address is not mapped.
pub fn inspect_user_page(uaddr: usize) -> Result<(u64, Option<u32>)> {
    let mut page: *mut bindings::page = core::ptr::null_mut();
    // SAFETY: room for one page pointer; a returned page holds a reference dropped below.
    let rc = unsafe { bindings::get_user_pages_fast(uaddr & !(PAGE_SIZE - 1), 1, 0, &mut page) };
    if rc < 0 {
        return Err(Error::from_errno(rc));
    }
    if rc != 1 || page.is_null() {
        return Err(EFAULT);
    }
    // SAFETY: `page` is valid while we hold the reference taken above, dropped last.
    let (phys, pins) = unsafe {
        let phys = bindings::page_to_phys(page);
        let pins = (!bindings::PageCompound(page))
            .then(|| bindings::page_ref_count(page) as u32 / bindings::GUP_PIN_COUNTING_BIAS);
        bindings::put_page(page);
        (phys, pins)
    };
    Ok((phys, pins))
}

/// The file behind descriptor `fd` of the current process, to pin its memory with
/// [`pin_file_pages`]. `EBADF` if `fd` is not open.
///
/// Only for ioctl handlers (on another file), which is where a file descriptor naming memory
/// arrives; those run with no `fdget_pos` of this thread active.
pub fn fget_for_pin(fd: u32) -> Result<ARef<crate::fs::File>> {
    let file = crate::fs::file::LocalFile::fget(fd).map_err(|_| EBADF)?;
    // SAFETY: called from an ioctl handler (see above): the ioctl path takes no file position
    // lock, so no `fdget_pos` is active on this thread.
    Ok(unsafe { crate::fs::file::LocalFile::assume_no_fdget_pos(file) })
}

/// Pins `out.len()` pages of memfd `file` (shmem or hugetlbfs) from byte `offset`, a multiple
/// of `PAGE_SIZE`, into `out`, whose elements must be `None`; returns how many were pinned
/// (at least one). Each page holds its own pin on its folio, so pages unpin one by one like
/// pages of process memory. `EINVAL` for a file that is not a memfd.
pub fn pin_file_pages(
    file: &crate::fs::File,
    offset: u64,
    out: &mut [Option<PinnedPage>],
) -> Result<usize> {
    /// Folios asked for per call.
    const BATCH: usize = 64;
    if out.iter().any(Option::is_some) || out.is_empty() || offset % PAGE_SIZE as u64 != 0 {
        return Err(EINVAL);
    }
    let end = (out.len() as u64)
        .checked_mul(PAGE_SIZE as u64)
        .and_then(|len| offset.checked_add(len - 1))
        .and_then(|end| i64::try_from(end).ok())
        .ok_or(EOVERFLOW)?;
    let start = i64::try_from(offset).map_err(|_| EOVERFLOW)?;
    let mut folios = [core::ptr::null_mut::<bindings::folio>(); BATCH];
    let mut first_offset: crate::ffi::c_ulong = 0;
    // SAFETY: `folios` has room for `BATCH` folio pointers; `file` is a counted reference.
    let n = unsafe {
        bindings::memfd_pin_folios(
            file.as_ptr(),
            start,
            end,
            folios.as_mut_ptr(),
            BATCH as u32,
            &mut first_offset,
        )
    };
    if n < 0 {
        return Err(Error::from_errno(n as i32));
    }
    let n = (n as usize).min(BATCH);
    if n == 0 {
        return Err(EFAULT);
    }
    let mut filled = 0;
    let mut used = 0;
    let mut page_in_folio = first_offset as usize / PAGE_SIZE;
    for (i, &folio) in folios[..n].iter().enumerate() {
        used = i + 1;
        // SAFETY: `folio` is pinned, so valid.
        let nr = unsafe { bindings::folio_nr_pages(folio) } as usize;
        let take = nr.saturating_sub(page_in_folio).min(out.len() - filled);
        let first = core::mem::replace(&mut page_in_folio, 0);
        if take == 0 {
            // SAFETY: the pin `memfd_pin_folios` took, unused.
            unsafe { bindings::unpin_folio(folio) };
            continue;
        }
        // SAFETY: one pin per page taken from this folio: `memfd_pin_folios` took the first.
        if unsafe { bindings::folio_add_pins(folio, (take - 1) as u32) } != 0 {
            // SAFETY: give back the pin we could not share out.
            unsafe { bindings::unpin_folio(folio) };
            break;
        }
        for j in 0..take {
            // SAFETY: `first + j < nr`: a page of the pinned folio.
            let page = unsafe { bindings::folio_page(folio, first + j) };
            out[filled + j] = NonNull::new(page).map(PinnedPage);
        }
        filled += take;
    }
    for &folio in &folios[used..n] {
        // SAFETY: pins `memfd_pin_folios` took that were not used.
        unsafe { bindings::unpin_folio(folio) };
    }
    if filled == 0 {
        return Err(ENOMEM);
    }
    Ok(filled)
}
