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
    alloc::KVec,
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

/// Physically contiguous pages of user memory, each pinned for DMA. Dropping it unpins them,
/// marking them dirty first if they were pinned for writing (a device may have written them).
///
/// Memory is pinned a page or a folio at a time, but kept and mapped in runs: a huge page is
/// one run of 512 pages, not 512 entries, and neighbouring pages that happen to be physically
/// contiguous join into one run too.
pub struct PinnedRun {
    /// The first page; the others follow it in the memory map.
    first: NonNull<bindings::page>,
    npages: u32,
    dirty: bool,
}

// SAFETY: a pin is a reference count on the pages; it may be dropped from any thread.
unsafe impl Send for PinnedRun {}
// SAFETY: the shared methods only read frame numbers or page contents.
unsafe impl Sync for PinnedRun {}

/// Whether `npages` pages from `a` are followed by `b`, both in the memory map (so `a + i`
/// names the `i`-th page) and in physical memory (so the run maps as one range).
fn continues(a: *mut bindings::page, npages: usize, b: *mut bindings::page) -> bool {
    if a.wrapping_add(npages) != b {
        return false;
    }
    // With a virtually contiguous memory map, neighbouring page structs are neighbouring
    // frames; otherwise the memory map has holes and the frames must be checked.
    // SAFETY: both are pinned pages.
    cfg!(CONFIG_SPARSEMEM_VMEMMAP)
        || unsafe { bindings::page_to_pfn(a) + npages == bindings::page_to_pfn(b) }
}

impl PinnedRun {
    /// A run of no pages, holding nothing.
    pub const fn empty() -> Self {
        Self {
            first: NonNull::dangling(),
            npages: 0,
            dirty: false,
        }
    }

    /// Takes over the pins of `npages` pages from `first`.
    ///
    /// # Safety
    ///
    /// The caller holds one long-term pin on each of the pages and gives them up; the pages
    /// are contiguous as [`continues`] defines it.
    unsafe fn from_raw(first: NonNull<bindings::page>, npages: u32, dirty: bool) -> Self {
        Self {
            first,
            npages,
            dirty,
        }
    }

    /// How many pages the run holds.
    pub fn len(&self) -> usize {
        self.npages as usize
    }

    /// Whether the run holds no page.
    pub fn is_empty(&self) -> bool {
        self.npages == 0
    }

    /// The physical address of the first page; the others follow it.
    pub fn phys(&self) -> u64 {
        if self.is_empty() {
            return 0;
        }
        // SAFETY: the page is pinned, so valid for as long as `self` lives.
        unsafe { bindings::page_to_phys(self.first.as_ptr()) }
    }

    /// Splits the run after its first `at` pages and returns the rest; `None` (and nothing
    /// changes) unless `0 < at < self.len()`.
    pub fn split_off(&mut self, at: usize) -> Option<Self> {
        let at = u32::try_from(at)
            .ok()
            .filter(|&at| at != 0 && at < self.npages)?;
        let rest = Self {
            // SAFETY: `at` is inside the run, whose pages follow each other in the memory map.
            first: unsafe { self.first.add(at as usize) },
            npages: self.npages - at,
            dirty: self.dirty,
        };
        self.npages = at;
        Some(rest)
    }

    /// Moves the pages of `next` to the end of this run and leaves `next` empty, if they
    /// continue it (and are unpinned the same way). Returns whether they did.
    pub fn absorb(&mut self, next: &mut Self) -> bool {
        let Some(total) = self.npages.checked_add(next.npages) else {
            return false;
        };
        if self.dirty != next.dirty
            || !continues(self.first.as_ptr(), self.len(), next.first.as_ptr())
        {
            return false;
        }
        self.npages = total;
        next.npages = 0;
        true
    }

    /// Copies `buf.len()` bytes from `offset` in page `index` of the run into `buf`; `EINVAL`
    /// if that reaches past the page or the run.
    pub fn read(&self, index: usize, offset: usize, buf: &mut [u8]) -> Result {
        let page = self.page(index, offset, buf.len())?;
        // SAFETY: the page is pinned and the range is inside it (checked by `page`); `buf` is
        // valid for writing `buf.len()` bytes. Devices may write the page at the same time;
        // the copy then sees some of their bytes, as a CPU access to DMA memory does.
        unsafe {
            let base = bindings::kmap_local_page(page).cast::<u8>();
            core::ptr::copy_nonoverlapping(base.add(offset), buf.as_mut_ptr(), buf.len());
            bindings::kunmap_local(base.cast());
        }
        Ok(())
    }

    /// Copies `data` to `offset` in page `index` of the run; `EINVAL` if that reaches past
    /// the page or the run.
    pub fn write(&self, index: usize, offset: usize, data: &[u8]) -> Result {
        let page = self.page(index, offset, data.len())?;
        // SAFETY: as in `read`; the page was pinned writable by the caller's choice, and
        // writing it is what the pin is for.
        unsafe {
            let base = bindings::kmap_local_page(page).cast::<u8>();
            core::ptr::copy_nonoverlapping(data.as_ptr(), base.add(offset), data.len());
            bindings::kunmap_local(base.cast());
        }
        Ok(())
    }

    /// Page `index` of the run, checking that `len` bytes from `offset` fit in it.
    fn page(&self, index: usize, offset: usize, len: usize) -> Result<*mut bindings::page> {
        match offset.checked_add(len) {
            Some(end) if end <= PAGE_SIZE && index < self.len() => {
                Ok(self.first.as_ptr().wrapping_add(index))
            }
            _ => Err(EINVAL),
        }
    }
}

impl Drop for PinnedRun {
    fn drop(&mut self) {
        if self.npages == 0 {
            return;
        }
        // SAFETY: `self` holds one pin on each of its pages, which are contiguous; the pins
        // are given back here exactly once.
        unsafe {
            bindings::unpin_user_page_range_dirty_lock(
                self.first.as_ptr(),
                self.npages as usize,
                self.dirty,
            )
        }
    }
}

/// Gathers pinned pages into runs and hands each finished run to a consumer.
struct RunBuilder<F: FnMut(PinnedRun) -> Result> {
    pending: Option<PinnedRun>,
    consumer: F,
}

impl<F: FnMut(PinnedRun) -> Result> RunBuilder<F> {
    fn new(consumer: F) -> Self {
        Self {
            pending: None,
            consumer,
        }
    }

    /// Adds `run`, which follows the runs added before it in the range being pinned.
    fn add(&mut self, mut run: PinnedRun) -> Result {
        if let Some(p) = &mut self.pending {
            if p.absorb(&mut run) {
                return Ok(());
            }
        }
        match self.pending.replace(run) {
            Some(done) => (self.consumer)(done),
            None => Ok(()),
        }
    }

    /// Hands over the last run.
    fn finish(mut self) -> Result {
        match self.pending.take() {
            Some(done) => (self.consumer)(done),
            None => Ok(()),
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
        // SAFETY: reads the current task's user without a reference: only the address is
        // compared, never dereferenced.
        let user = unsafe { bindings::current_user_ptr() };
        user == self.user.as_ptr()
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

    /// Pins `npages` pages of the owner's memory from `uaddr` (page aligned), for writing if
    /// `write`, and hands them to `f` in runs, in order. The owner's process need not be the
    /// current one. On failure the runs `f` took stay with it and nothing else stays pinned:
    /// `EFAULT` for memory that is not mapped, the error `f` gave, ...
    pub fn pin_runs(
        &self,
        uaddr: usize,
        npages: usize,
        write: bool,
        f: impl FnMut(PinnedRun) -> Result,
    ) -> Result {
        /// Pages asked for per call: each call has a fixed cost (interrupts off, lockdep's
        /// look at the mmap lock, ...), so ask for many; 128 KiB of page pointers.
        const CHUNK: usize = 16384;
        let mut flags = bindings::FOLL_LONGTERM;
        if write {
            flags |= bindings::FOLL_WRITE;
        }
        /// Up to this many pages, the page pointers fit on the stack.
        const SMALL: usize = 16;
        let mut small = [core::ptr::null_mut::<bindings::page>(); SMALL];
        let mut large = KVec::new();
        let buf = if npages <= SMALL {
            &mut small[..]
        } else {
            large.resize(CHUNK.min(npages), core::ptr::null_mut(), GFP_KERNEL)?;
            &mut large[..]
        };
        let remote = if self.is_current_mm() {
            None
        } else {
            Some(self.mm.mmget_not_zero().ok_or(EFAULT)?)
        };
        let mut runs = RunBuilder::new(f);
        let mut done = 0;
        while done < npages {
            let n = (npages - done).min(buf.len());
            let addr = uaddr + done * PAGE_SIZE;
            let ptr = buf.as_mut_ptr();
            let rc = match &remote {
                // SAFETY: `ptr` has room for `n` page pointers; the pins taken become runs.
                None => unsafe {
                    bindings::pin_user_pages_fast(addr, n as i32, flags, ptr) as isize
                },
                Some(mm) => {
                    let mut locked: crate::ffi::c_int = 1;
                    // SAFETY: as above; `mm` holds a user count, its lock is taken for reading
                    // as `pin_user_pages_remote` requires, and released unless the call
                    // dropped it (which it reports by clearing `locked`).
                    unsafe {
                        bindings::mmap_read_lock(mm.as_raw());
                        let rc = bindings::pin_user_pages_remote(
                            mm.as_raw(),
                            addr,
                            n,
                            flags,
                            ptr,
                            &mut locked,
                        );
                        if locked != 0 {
                            bindings::mmap_read_unlock(mm.as_raw());
                        }
                        rc
                    }
                }
            };
            if rc < 0 {
                return Err(Error::from_errno(rc as i32));
            }
            let got = (rc as usize).min(n);
            if got == 0 {
                return Err(EFAULT);
            }
            // Cut the pages into runs of neighbours with one tight pass over the pointers.
            let pages = &buf[..got];
            let mut i = 0;
            while let Some(&start) = pages.get(i) {
                let n = 1 + pages[i + 1..]
                    .iter()
                    .zip(1..u32::MAX as usize)
                    .take_while(|&(&page, k)| continues(start, k, page))
                    .count();
                let res = match NonNull::new(start) {
                    Some(first) => {
                        // SAFETY: the call above took one long-term pin on each of the `n`
                        // pages from `start`, which `continues` found contiguous; the pins are
                        // given up here.
                        let run = unsafe { PinnedRun::from_raw(first, n as u32, write) };
                        runs.add(run)
                    }
                    None => Err(EFAULT),
                };
                if let Err(e) = res {
                    let rest = &pages[i + n..];
                    // SAFETY: the pages after this run hold pins that no run took.
                    unsafe { bindings::unpin_user_pages(rest.as_ptr().cast_mut(), rest.len()) };
                    return Err(e);
                }
                i += n;
            }
            done += got;
        }
        runs.finish()
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
/// [`pin_file_runs`]. `EBADF` if `fd` is not open.
///
/// Only for ioctl handlers (on another file), which is where a file descriptor naming memory
/// arrives; those run with no `fdget_pos` of this thread active.
pub fn fget_for_pin(fd: u32) -> Result<ARef<crate::fs::File>> {
    let file = crate::fs::file::LocalFile::fget(fd).map_err(|_| EBADF)?;
    // SAFETY: called from an ioctl handler (see above): the ioctl path takes no file position
    // lock, so no `fdget_pos` is active on this thread.
    Ok(unsafe { crate::fs::file::LocalFile::assume_no_fdget_pos(file) })
}

/// Whether `file` is memory [`pin_file_runs`] can pin: a shmem or hugetlbfs file, as a memfd is.
#[inline]
pub fn is_memfd(file: &crate::fs::File) -> bool {
    // SAFETY: `file` is a valid file for the duration of the call.
    unsafe { bindings::file_is_memfd(file.as_ptr()) }
}

/// Pins `npages` pages of memfd `file` (shmem or hugetlbfs) from byte `offset`, a multiple of
/// `PAGE_SIZE`, for writing if `write`, and hands them to `f` in runs, in order. Each page
/// holds its own pin on its folio, so parts of a run unpin on their own like pages of process
/// memory. On failure the runs `f` took stay with it and nothing else stays pinned: `EINVAL`
/// for a file that is not a memfd, `EFAULT` past its end, the error `f` gave, ...
pub fn pin_file_runs(
    file: &crate::fs::File,
    offset: u64,
    npages: usize,
    write: bool,
    f: impl FnMut(PinnedRun) -> Result,
) -> Result {
    /// Folios asked for per call, at most: a page of pointers. `memfd_pin_folios` looks folios
    /// up a page-cache batch at a time and drops the part of the last batch past the folios
    /// asked for, so asking for few at a time would look many up twice.
    const BATCH: usize = PAGE_SIZE / core::mem::size_of::<*mut bindings::folio>();
    if npages == 0 || offset % PAGE_SIZE as u64 != 0 {
        return Err(EINVAL);
    }
    let end = (npages as u64)
        .checked_mul(PAGE_SIZE as u64)
        .and_then(|len| offset.checked_add(len - 1))
        .and_then(|end| i64::try_from(end).ok())
        .ok_or(EOVERFLOW)?;
    let batch = npages.min(BATCH);
    let mut folios = KVec::from_elem(core::ptr::null_mut::<bindings::folio>(), batch, GFP_KERNEL)?;
    let mut runs = RunBuilder::new(f);
    let mut done = 0;
    while done < npages {
        let start = i64::try_from(offset + (done * PAGE_SIZE) as u64).map_err(|_| EOVERFLOW)?;
        let mut first_offset: crate::ffi::c_ulong = 0;
        // SAFETY: `folios` has room for `batch` folio pointers; `file` is a counted reference.
        let n = unsafe {
            bindings::memfd_pin_folios(
                file.as_ptr(),
                start,
                end,
                folios.as_mut_ptr(),
                batch as u32,
                &mut first_offset,
            )
        };
        if n < 0 {
            return Err(Error::from_errno(n as i32));
        }
        let n = (n as usize).min(batch);
        if n == 0 {
            return Err(EFAULT);
        }
        let mut page_in_folio = first_offset as usize / PAGE_SIZE;
        for (i, &folio) in folios[..n].iter().enumerate() {
            // SAFETY: `folio` is pinned, so valid.
            let nr = unsafe { bindings::folio_nr_pages(folio) } as usize;
            let first = core::mem::replace(&mut page_in_folio, 0);
            let take = nr
                .saturating_sub(first)
                .min(npages - done)
                .min(u32::MAX as usize);
            // One pin per page taken from this folio: `memfd_pin_folios` took the first.
            // SAFETY: the folio is pinned.
            let added =
                take != 0 && unsafe { bindings::folio_add_pins(folio, (take - 1) as u32) } == 0;
            let res = if added {
                // SAFETY: `first < nr`: a page of the pinned folio, which holds a pin for each
                // of the `take` pages from it; the pages of a folio are contiguous.
                let page = unsafe { bindings::folio_page(folio, first) };
                match NonNull::new(page) {
                    Some(page) => {
                        // SAFETY: see above; the pins are given up here.
                        let run = unsafe { PinnedRun::from_raw(page, take as u32, write) };
                        runs.add(run)
                    }
                    None => Err(EFAULT),
                }
            } else {
                // SAFETY: the pin `memfd_pin_folios` took, unused.
                unsafe { bindings::unpin_folio(folio) };
                if take == 0 {
                    Ok(())
                } else {
                    Err(EINVAL)
                }
            };
            if let Err(e) = res {
                for &unused in &folios[i + 1..n] {
                    // SAFETY: pins `memfd_pin_folios` took that no run holds.
                    unsafe { bindings::unpin_folio(unused) };
                }
                return Err(e);
            }
            done += take;
        }
    }
    runs.finish()
}
