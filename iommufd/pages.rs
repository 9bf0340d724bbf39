// SPDX-License-Identifier: GPL-2.0

//! The user memory behind mapped areas, and its pins.
//!
//! `IOMMU_IOAS_MAP` makes one [`Pages`] for the user range it maps; `IOMMU_IOAS_COPY` makes new
//! areas, possibly in another IOAS, that share the `Pages` of existing ones instead of
//! looking the memory up again. So a `Pages` lives as long as any area uses it.
//!
//! Nothing is pinned while nothing needs the memory itself: an IOAS with no IOMMU domain and
//! no emulated device only records ranges, as upstream. Each thing that needs a range of the
//! pages (an area mapped into domains, an emulated device's pin) takes a *use* of that range
//! with [`Pages::pin`]; a page is pinned once however many uses it has, and unpinned when its
//! last use goes ([`Pages::unpin`]). So the same memory mapped into two domains, or mapped and
//! pinned by an emulated device, holds one pin, and tests that count pins see exactly one.
//! The pins are kept, mapped and given back in runs of physically contiguous pages, a huge
//! page or more at a time, never a 4 KiB page at a time unless the memory is in 4 KiB pieces.
//!
//! Charging: a page is charged to the memory's owner when it is pinned and refunded when it is
//! unpinned; the charge is taken before pinning, so going over `RLIMIT_MEMLOCK` fails with
//! `ENOMEM` with nothing pinned. Who is charged is fixed when the `Pages` is made: nobody if
//! the mapping process has `CAP_IPC_LOCK`, else its user or its process as the context's
//! `IOMMU_OPTION_RLIMIT_MODE` says.
//!
//! A dma-buf (`IOMMU_IOAS_MAP_FILE` given a dma-buf fd) is different memory: it is never
//! pinned or charged. Its exporter hands over one physical range when the pages are made
//! ([`Pages::dmabuf`]), areas over it are mapped straight from that range
//! ([`Pages::map_dmabuf`]), and every such mapping is recorded so that when the exporter
//! revokes the buffer all of them are unmapped from their domains at once. A revoked buffer
//! stays revoked for these pages: areas over it map nothing until unmapped, and emulated
//! devices can never pin or read it (`EINVAL`), as upstream.
//!
//! Device memory a process maps with `VM_PFNMAP` (a PCI BAR's `mmap()`) has no pages to pin
//! either. Only VFIO's own type1 container maps it, for peer-to-peer DMA, as upstream's type1
//! does: its physical addresses are looked up once, when the pages are made
//! ([`Pages::pfnmap`]), and areas over it are mapped from them like pinned runs. It is never
//! pinned or charged, and nothing revokes it: as upstream, the process answers for keeping the
//! mapping while the device may use it.
//!
//! Locking: `pins` is taken inside the io_pagetable's lock and never calls out to it. A
//! dma-buf's `maps` lock is taken inside the buffer's reservation lock (revocation) and inside
//! the io_pagetable's lock, and only calls out to domains; pages over a dma-buf are released
//! (which takes the reservation lock) under the io_pagetable's lock, never under `maps`.

#[cfg(CONFIG_DMA_SHARED_BUFFER)]
use crate::domain::Run;
use crate::{
    context::AccountMode,
    domain::Domain,
    io_pagetable::Prot,
    one_or_vec::OneOrVec, //
};
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
use kernel::dma_buf::{
    DmaBuf,
    Importer,
    PhysAttachment,
    PhysRange, //
};
use kernel::{
    alloc::{
        flags::__GFP_NOFAIL,
        Flags,
        KVVec, //
    },
    capability::{
        capable,
        Capability, //
    },
    fs::File,
    new_mutex,
    page::PAGE_SIZE,
    pfnmap::{
        pfnmap_runs,
        PfnRun, //
    },
    prelude::*,
    sync::aref::ARef,
    sync::{
        Arc,
        Mutex,
        SetOnce, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    user_pin::{
        pin_file_runs,
        PinOwner,
        PinnedRun, //
    },
};

/// Who pinned pages are charged to.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Charge {
    /// Nobody: the owner has `CAP_IPC_LOCK`.
    Nobody,
    User,
    Process,
}

/// Who pages a process maps are charged to once pinned: the context's accounting mode, and
/// the mapping process (`None` for a kernel thread, whose pages can never be pinned).
pub(crate) struct Charger {
    pub(crate) mode: AccountMode,
    pub(crate) owner: Option<Arc<PinOwner>>,
}

/// The [`PinOwner`] of the process that maps first in a context, kept for the context's life.
///
/// One process (the VMM) usually does every map of a context, so its maps share one owner
/// instead of taking three references (memory map, process, user) each. Pages mapped by any
/// other process get an owner of their own.
pub(crate) struct OwnerCache {
    first: SetOnce<Arc<PinOwner>>,
}

impl OwnerCache {
    pub(crate) fn new() -> Self {
        Self {
            first: SetOnce::new(),
        }
    }

    /// The owner for pages the current process maps; `None` from a kernel thread.
    pub(crate) fn current(&self) -> Result<Option<Arc<PinOwner>>> {
        if let Some(first) = self.first.as_ref().filter(|o| o.is_current()) {
            return Ok(Some(first.clone()));
        }
        let Ok(owner) = PinOwner::current() else {
            return Ok(None);
        };
        let owner = Arc::new(owner, GFP_KERNEL_ACCOUNT)?;
        // Only the first process to get here is kept; losing the race changes nothing.
        self.first.populate(owner.clone());
        Ok(Some(owner))
    }
}

/// Pages `first..first + run.len()` of a [`Pages`], pinned, with `uses` uses each.
struct Seg {
    first: usize,
    run: PinnedRun,
    uses: u32,
}

impl Seg {
    /// The index after the last page.
    fn end(&self) -> usize {
        self.first + self.run.len()
    }
}

/// The pinned state of a [`Pages`].
///
/// Pinned memory is kept in segments of physically contiguous pages that have the same
/// number of uses: 1 GiB of huge pages mapped into a domain is 512 segments, not 262144
/// pages, and is pinned, mapped and unpinned as such. A use of part of a segment splits it;
/// neighbours that end up alike join again.
struct Pins {
    /// The segments, in page order; no two overlap, and a page is pinned exactly when one
    /// holds it. Usually just one.
    segs: OneOrVec<Seg>,
    /// How many pages are pinned (and charged).
    npinned: usize,
    /// The process whose memory this is. `None` for memory mapped by a kernel thread (KUnit),
    /// which can be recorded but never pinned.
    owner: Option<Arc<PinOwner>>,
    charge: Charge,
}

/// Where the memory is.
enum Source {
    /// Process memory: the user address of the first page.
    User(u64),
    /// A memfd (`IOMMU_IOAS_MAP_FILE`): the file, and the offset of the first page in it.
    File(ARef<File>, u64),
    /// A dma-buf (`IOMMU_IOAS_MAP_FILE` too).
    #[cfg(CONFIG_DMA_SHARED_BUFFER)]
    DmaBuf(DmaBufSource),
    /// Device memory of a `VM_PFNMAP` mapping (VFIO type1 only): the user address of the first
    /// page, and the physical memory of all the pages, in order.
    Pfnmap { uptr: u64, runs: KVVec<PfnRun> },
}

/// The dma-buf behind [`Pages`]: attached, pinned, and its physical range known.
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
struct DmaBufSource {
    /// The offset of the first page in the buffer.
    start: u64,
    /// Dropped first: detaching stops revocations from reaching `maps`.
    attach: PhysAttachment<DmaBufMaps>,
}

/// Where a dma-buf is mapped: `length` bytes from byte `offset` of the [`Pages`], at `iova` of
/// `domain`.
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
struct DmaBufMap {
    domain: Arc<dyn Domain>,
    iova: u64,
    length: u64,
}

#[cfg(CONFIG_DMA_SHARED_BUFFER)]
struct DmaBufMapsInner {
    /// The buffer's memory; `None` once the exporter revoked it.
    phys: Option<PhysRange>,
    /// Every mapping of the buffer into a domain, revoked or not.
    maps: KVec<DmaBufMap>,
}

/// The mappings of a dma-buf, which revocation takes back.
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
#[pin_data]
pub(crate) struct DmaBufMaps {
    #[pin]
    inner: Mutex<DmaBufMapsInner>,
}

#[cfg(CONFIG_DMA_SHARED_BUFFER)]
impl Importer for DmaBufMaps {
    fn invalidate(&self) {
        let mut m = self.inner.lock();
        if m.phys.take().is_none() {
            return;
        }
        for map in m.maps.iter() {
            map.domain.unmap(map.iova, map.length);
        }
    }
}

/// The identity of a domain: its address.
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
fn same_domain(a: &Arc<dyn Domain>, b: &Arc<dyn Domain>) -> bool {
    core::ptr::eq(Arc::as_ptr(a).cast::<u8>(), Arc::as_ptr(b).cast::<u8>())
}

/// A page-aligned range of user memory.
#[pin_data]
pub(crate) struct Pages {
    /// First, so that the pins go before the source (a file, a dma-buf attachment) they are of.
    #[pin]
    pins: Mutex<Pins>,
    source: Source,
    /// Number of pages.
    npages: usize,
    /// Whether devices may write to the memory.
    writable: bool,
}

impl Pages {
    /// The pages holding `length` bytes at user address `uptr` of the current process, and the
    /// offset of `uptr` in the first of them.
    pub(crate) fn user(
        uptr: u64,
        length: u64,
        writable: bool,
        charger: Charger,
    ) -> Result<(Arc<Self>, u64)> {
        uptr.checked_add(length).ok_or(EOVERFLOW)?;
        let offset = uptr % PAGE_SIZE as u64;
        Self::new(
            Source::User(uptr - offset),
            offset,
            length,
            writable,
            Some(charger),
        )
    }

    /// The pages holding `length` bytes from byte `start` of memfd `file`, and the offset of
    /// `start` in the first of them.
    pub(crate) fn file(
        file: ARef<File>,
        start: u64,
        length: u64,
        writable: bool,
        charger: Charger,
    ) -> Result<(Arc<Self>, u64)> {
        let offset = start % PAGE_SIZE as u64;
        Self::new(
            Source::File(file, start - offset),
            offset,
            length,
            writable,
            Some(charger),
        )
    }

    /// The pages holding `length` bytes from byte `start` of dma-buf `buf`, attached as `dev`,
    /// and the offset of `start` in the first of them. `EINVAL` unless the range is inside the
    /// buffer; `ENODEV` if the exporter revoked it; `EOPNOTSUPP` for a buffer that cannot be
    /// mapped by physical address.
    #[cfg(CONFIG_DMA_SHARED_BUFFER)]
    pub(crate) fn dmabuf(
        buf: ARef<DmaBuf>,
        dev: &kernel::device::Device,
        start: u64,
        length: u64,
        writable: bool,
    ) -> Result<(Arc<Self>, u64)> {
        let last = length
            .checked_sub(1)
            .and_then(|l| start.checked_add(l))
            .ok_or(EINVAL)?;
        if buf.size() <= last || length / PAGE_SIZE as u64 >= u64::from(u32::MAX) {
            return Err(EINVAL);
        }
        let offset = start % PAGE_SIZE as u64;
        let maps = Arc::pin_init(
            pin_init!(DmaBufMaps {
                inner <- new_mutex!(DmaBufMapsInner {
                    phys: None,
                    maps: KVec::new(),
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        let attach = PhysAttachment::new(buf, dev, maps, |maps, phys| {
            maps.inner.lock().phys = Some(phys);
        })?;
        // The exporter's range must hold what is mapped.
        if attach.phys().len <= last {
            return Err(EINVAL);
        }
        let source = Source::DmaBuf(DmaBufSource {
            start: start - offset,
            attach,
        });
        // A dma-buf is not pinned memory: nobody is charged.
        Self::new(source, offset, length, writable, None)
    }

    /// The device memory, mapped with `VM_PFNMAP` (a BAR's `mmap()`), holding `length` bytes at
    /// user address `uptr` of `owner`, and the offset of `uptr` in the first page. The physical
    /// addresses are looked up now, once; nothing is pinned or charged. `EFAULT` unless every
    /// page is such memory (writable if `writable`), as [`pfnmap_runs`] says.
    pub(crate) fn pfnmap(
        owner: &PinOwner,
        uptr: u64,
        length: u64,
        writable: bool,
    ) -> Result<(Arc<Self>, u64)> {
        let end = uptr.checked_add(length).ok_or(EOVERFLOW)?;
        if length == 0 {
            return Err(EINVAL);
        }
        let offset = uptr % PAGE_SIZE as u64;
        let first = uptr - offset;
        let npages =
            usize::try_from((end - first).div_ceil(PAGE_SIZE as u64)).map_err(|_| EINVAL)?;
        let start = usize::try_from(first).map_err(|_| EFAULT)?;
        let runs = pfnmap_runs(owner.mm(), start, npages, writable)?;
        let source = Source::Pfnmap { uptr: first, runs };
        Self::new(source, offset, length, writable, None)
    }

    /// Makes the pages; `charger` says who pinned pages are charged to, `None` for memory
    /// that is never pinned.
    fn new(
        source: Source,
        offset: u64,
        length: u64,
        writable: bool,
        charger: Option<Charger>,
    ) -> Result<(Arc<Self>, u64)> {
        let page = PAGE_SIZE as u64;
        if length == 0 || length > u64::MAX - page {
            return Err(EINVAL);
        }
        let npages = usize::try_from((offset + length).div_ceil(page)).map_err(|_| EINVAL)?;
        let (charge, owner) = match charger {
            None => (Charge::Nobody, None),
            Some(c) if capable(Capability::IPC_LOCK) => (Charge::Nobody, c.owner),
            Some(c) if c.mode == AccountMode::User => (Charge::User, c.owner),
            Some(c) => (Charge::Process, c.owner),
        };
        let pages = Arc::pin_init(
            pin_init!(Self {
                source,
                npages,
                writable,
                pins <- new_mutex!(Pins {
                    segs: OneOrVec::new(),
                    npinned: 0,
                    owner,
                    charge,
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok((pages, offset))
    }

    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// The address `offset` bytes into these pages: a user address, or an offset in the file.
    /// Automatic IOVAs are aligned like it, so that large pages can map the memory.
    pub(crate) fn address(&self, offset: u64) -> u64 {
        match &self.source {
            Source::User(uptr) => uptr + offset,
            Source::File(_, start) => start + offset,
            #[cfg(CONFIG_DMA_SHARED_BUFFER)]
            Source::DmaBuf(d) => d.start + offset,
            Source::Pfnmap { uptr, .. } => uptr + offset,
        }
    }

    /// The page index holding byte `offset` of these pages.
    pub(crate) fn index(offset: u64) -> usize {
        (offset / PAGE_SIZE as u64) as usize
    }

    /// Takes a use of pages `first..=last`, pinning (and charging) those that had none.
    ///
    /// On failure nothing changes: `ENOMEM` past the owner's limit, or the error pinning gave
    /// (`EFAULT` for unmapped memory, ...).
    pub(crate) fn pin(&self, first: usize, last: usize) -> Result {
        if first > last || last >= self.npages || self.is_phys() {
            return Err(EINVAL);
        }
        let mut p = self.pins.lock();
        if p.segs.is_empty() {
            // Nothing pinned yet, the usual case (a new mapping): pinned straight into the
            // list, whose runs are already as long as they can be, with one use each.
            let wanted = last - first + 1;
            p.charge(wanted)?;
            let Pins { segs, owner, .. } = &mut *p;
            if let Err(e) = self.pin_new(owner.as_deref(), first, last, self.writable, segs) {
                segs.clear();
                p.refund(wanted);
                return Err(e);
            }
            p.segs.iter_mut().for_each(|s| s.uses = 1);
            p.npinned += wanted;
            return Ok(());
        }
        let wanted = p.unpinned(first, last)?;
        if wanted != 0 {
            p.charge(wanted)?;
        }
        match self.add_use(&mut p, first, last) {
            Ok(()) => {
                p.npinned += wanted;
                Ok(())
            }
            Err(e) => {
                p.refund(wanted);
                Err(e)
            }
        }
    }

    /// Pins the pages of `first..=last` that no segment holds and adds a use to every page of
    /// the range. On failure nothing changes (what this call pinned is unpinned).
    fn add_use(&self, p: &mut Pins, first: usize, last: usize) -> Result {
        let old_len = p.segs.len();
        let mut fresh = OneOrVec::new();
        for (from, to) in p.gaps(first, last) {
            self.pin_new(p.owner.as_deref(), from, to, self.writable, &mut fresh)?;
        }
        if !fresh.is_empty() {
            // Room for the new segments and for splitting the two at the ends of the range.
            p.segs.reserve(fresh.len() + 2, GFP_KERNEL_ACCOUNT)?;
            let in_order = p.segs.last().map(Seg::end) <= fresh.first().map(|s| s.first);
            for seg in fresh.drain_all() {
                if p.segs.push_within_capacity(seg).is_err() {
                    p.segs.truncate(old_len);
                    return Err(ENOMEM);
                }
            }
            if !in_order {
                p.segs.sort_unstable_by_key(|s| s.first);
            }
        }
        let split = p.split_at(first, GFP_KERNEL_ACCOUNT);
        if let Err(e) = split.and_then(|()| p.split_at(last + 1, GFP_KERNEL_ACCOUNT)) {
            // Only the new segments have no use yet.
            p.segs.retain(|s| s.uses != 0);
            return Err(e);
        }
        let (lo, hi) = p.inside(first, last);
        for seg in &mut p.segs[lo..hi] {
            seg.uses += 1;
        }
        p.tidy(lo, hi);
        Ok(())
    }

    /// Pins pages `from..=to`, none of them pinned, for writing if `write`, into new segments
    /// with no use yet, appended to `out` in order.
    fn pin_new(
        &self,
        owner: Option<&PinOwner>,
        from: usize,
        to: usize,
        write: bool,
        out: &mut OneOrVec<Seg>,
    ) -> Result {
        let mut next = from;
        self.pin_runs(owner, from, to, write, |run| {
            let len = run.len();
            out.push(
                Seg {
                    first: next,
                    run,
                    uses: 0,
                },
                GFP_KERNEL_ACCOUNT,
            )?;
            next += len;
            Ok(())
        })
    }

    /// Pins pages `from..=to` once more, for writing if `write`, and hands them to `f` in runs,
    /// in order. Whatever `f` does not keep is unpinned when it drops it.
    fn pin_runs(
        &self,
        owner: Option<&PinOwner>,
        from: usize,
        to: usize,
        write: bool,
        f: impl FnMut(PinnedRun) -> Result,
    ) -> Result {
        let owner = owner.ok_or(EFAULT)?;
        let npages = to - from + 1;
        let at = from * PAGE_SIZE;
        match &self.source {
            Source::User(uptr) => owner.pin_runs(*uptr as usize + at, npages, write, f),
            Source::File(file, start) => pin_file_runs(file, start + at as u64, npages, write, f),
            // Never pinned.
            #[cfg(CONFIG_DMA_SHARED_BUFFER)]
            Source::DmaBuf(_) => Err(EINVAL),
            Source::Pfnmap { .. } => Err(EINVAL),
        }
    }

    /// Drops a use of pages `first..=last` taken with [`Pages::pin`], unpinning (and refunding)
    /// those left with none.
    pub(crate) fn unpin(&self, first: usize, last: usize) {
        if first > last || last >= self.npages {
            return;
        }
        let mut p = self.pins.lock();
        // The usual case, the last use of every pinned page going (an unmap): nothing to split
        // or join.
        let all_inside = p.segs.first().is_some_and(|s| s.first >= first)
            && p.segs.last().is_some_and(|s| s.end() <= last + 1);
        if all_inside && p.segs.iter().all(|s| s.uses == 1) {
            let freed = p.segs.iter().map(|s| s.run.len()).sum();
            // Dropping the runs unpins them.
            p.segs.clear();
            p.npinned -= freed;
            p.refund(freed);
            return;
        }
        // Splitting needs room for two more segments at most; giving back cannot fail for
        // want of it. (Were it to fail all the same, a segment crossing an end of the range
        // keeps its use until the pages go: wrong by a use, never unsafe.)
        let _ = p.split_at(first, GFP_KERNEL_ACCOUNT | __GFP_NOFAIL);
        let _ = p.split_at(last + 1, GFP_KERNEL_ACCOUNT | __GFP_NOFAIL);
        let (lo, hi) = p.inside(first, last);
        let mut freed = 0;
        for seg in &mut p.segs[lo..hi] {
            seg.uses = seg.uses.saturating_sub(1);
            if seg.uses == 0 {
                freed += seg.run.len();
                // Dropping the run unpins it.
                seg.run = PinnedRun::empty();
            }
        }
        p.tidy(lo, hi);
        p.npinned -= freed;
        p.refund(freed);
    }

    /// Calls `f(index, phys, npages)` for each run of pinned pages of `first..=last`, in
    /// order: `npages` physically contiguous pages from page `index` at `phys`. The pages must
    /// have a use (taken with [`Pages::pin`]), or be device memory; `EFAULT` if one has none.
    pub(crate) fn for_each_run(
        &self,
        first: usize,
        last: usize,
        mut f: impl FnMut(usize, u64, usize) -> Result,
    ) -> Result {
        if let Source::Pfnmap { runs, .. } = &self.source {
            let mut index = 0;
            for run in runs.iter() {
                let end = index + run.npages;
                if end > first {
                    let from = first.max(index);
                    let to = end.min(last + 1);
                    f(
                        from,
                        run.phys + ((from - index) * PAGE_SIZE) as u64,
                        to - from,
                    )?;
                }
                if end > last {
                    return Ok(());
                }
                index = end;
            }
            return Err(EFAULT);
        }
        let p = self.pins.lock();
        let mut next = first;
        for seg in p.segs.iter().skip(p.seek(first)) {
            if seg.first > last {
                break;
            }
            if seg.first > next {
                return Err(EFAULT);
            }
            let skip = next - seg.first;
            let npages = seg.end().min(last + 1) - next;
            f(next, seg.run.phys() + (skip * PAGE_SIZE) as u64, npages)?;
            next += npages;
        }
        if next <= last {
            return Err(EFAULT);
        }
        Ok(())
    }

    /// Copies between `buf` and bytes from `offset` of the memory, into the memory when `write`,
    /// through the current process's view of it: no pin, as for any copy to or from user
    /// memory. `None` if the memory is not the current process's (a file, another process).
    pub(crate) fn copy_user(&self, offset: u64, buf: &mut [u8], write: bool) -> Option<Result> {
        let Source::User(uptr) = self.source else {
            return None;
        };
        let p = self.pins.lock();
        if !p.owner.as_deref().is_some_and(PinOwner::is_current_mm) {
            return None;
        }
        let user = UserSlice::new(UserPtr::from_addr((uptr + offset) as usize), buf.len());
        Some(if write {
            user.writer().write_slice(buf)
        } else {
            user.reader().read_slice(buf)
        })
    }

    /// Copies between `buf` and `offset` in page `index`, into the page when `write`. A page
    /// not pinned already is pinned just for the copy, as a CPU access: neither used nor
    /// charged. `EINVAL` if `buf` does not fit in the page.
    pub(crate) fn copy(&self, index: usize, offset: usize, buf: &mut [u8], write: bool) -> Result {
        if self.is_phys() {
            return Err(EINVAL);
        }
        let mut copy = |run: &PinnedRun, i: usize| {
            if write {
                run.write(i, offset, buf)
            } else {
                run.read(i, offset, buf)
            }
        };
        let p = self.pins.lock();
        if let Some(seg) = p.segs.get(p.seek(index)).filter(|s| s.first <= index) {
            return copy(&seg.run, index - seg.first);
        }
        let mut res = Err(EFAULT);
        self.pin_runs(p.owner.as_deref(), index, index, write, |run| {
            res = copy(&run, 0);
            Ok(())
        })?;
        res
    }
}

impl Pages {
    /// Whether the memory is a file's, which does not depend on the process that mapped it.
    pub(crate) fn is_file(&self) -> bool {
        matches!(self.source, Source::File(..))
    }

    /// Whether the memory is a dma-buf's: never pinned, mapped with [`Pages::map_dmabuf`].
    pub(crate) fn is_dmabuf(&self) -> bool {
        #[cfg(CONFIG_DMA_SHARED_BUFFER)]
        if matches!(self.source, Source::DmaBuf(..)) {
            return true;
        }
        false
    }

    /// Whether the memory is mapped by physical address and never pinned: a dma-buf's, or
    /// device memory's ([`Pages::pfnmap`]). Emulated devices can neither pin nor copy it.
    pub(crate) fn is_phys(&self) -> bool {
        self.is_dmabuf() || matches!(self.source, Source::Pfnmap { .. })
    }

    /// Maps `length` bytes from byte `start` of these dma-buf pages to `iova` in `domain`, and
    /// records it for revocation. A revoked buffer maps nothing but is recorded all the same,
    /// as [`Pages::unmap_dmabuf`] expects. `EINVAL` for pages that are not a dma-buf's.
    pub(crate) fn map_dmabuf(
        &self,
        domain: &Arc<dyn Domain>,
        start: u64,
        length: u64,
        iova: u64,
        prot: Prot,
    ) -> Result {
        #[cfg(CONFIG_DMA_SHARED_BUFFER)]
        if let Source::DmaBuf(d) = &self.source {
            let mut m = d.attach.importer().inner.lock();
            m.maps.reserve(1, GFP_KERNEL_ACCOUNT)?;
            if let Some(phys) = m.phys {
                let run = Run {
                    iova,
                    phys: phys.addr + d.start + start,
                    length,
                };
                domain.map_runs(&[run], prot)?;
            }
            let map = DmaBufMap {
                domain: domain.clone(),
                iova,
                length,
            };
            // Cannot fail: room was made above.
            if m.maps.push_within_capacity(map).is_err() {
                return Err(ENOMEM);
            }
            return Ok(());
        }
        let _ = (domain, start, length, iova, prot);
        Err(EINVAL)
    }

    /// Undoes [`Pages::map_dmabuf`] of `iova` in `domain`: unmaps it unless the buffer was
    /// revoked (which unmapped it already).
    pub(crate) fn unmap_dmabuf(&self, domain: &Arc<dyn Domain>, iova: u64) {
        #[cfg(CONFIG_DMA_SHARED_BUFFER)]
        if let Source::DmaBuf(d) = &self.source {
            let mut m = d.attach.importer().inner.lock();
            let Some(i) = m
                .maps
                .iter()
                .position(|map| map.iova == iova && same_domain(&map.domain, domain))
            else {
                return;
            };
            if let Ok(map) = m.maps.remove(i) {
                if m.phys.is_some() {
                    map.domain.unmap(map.iova, map.length);
                }
            }
        }
        let _ = (domain, iova);
    }

    /// Makes the current process the owner of these pages (`IOMMU_IOAS_CHANGE_PROCESS`): it
    /// is charged for what is pinned and the old owner refunded. Returns the old owner, to
    /// give back with [`Pages::restore_owner`] if the caller must undo; `None` if the current
    /// process owned them already. `ENOMEM` if it cannot take the charge: nothing changes.
    pub(crate) fn move_to_current(&self) -> Result<Option<Arc<PinOwner>>> {
        let mut p = self.pins.lock();
        if p.owner.as_deref().is_some_and(PinOwner::is_current) {
            return Ok(None);
        }
        let new = Arc::new(PinOwner::current()?, GFP_KERNEL_ACCOUNT)?;
        p.switch_owner(Some(new))
    }

    /// Gives the pages back to `old`, undoing [`Pages::move_to_current`].
    pub(crate) fn restore_owner(&self, old: Arc<PinOwner>) {
        let _ = self.pins.lock().switch_owner(Some(old));
    }
}

impl Pins {
    /// The index of the first segment that ends after page `index`.
    fn seek(&self, index: usize) -> usize {
        self.segs.partition_point(|s| s.end() <= index)
    }

    /// The indices `lo..hi` of the segments inside pages `first..=last`.
    fn inside(&self, first: usize, last: usize) -> (usize, usize) {
        let lo = self.segs.partition_point(|s| s.first < first);
        (
            lo,
            self.segs.partition_point(|s| s.end() <= last + 1).max(lo),
        )
    }

    /// The ranges of pages of `first..=last` that no segment holds, in order. `EOVERFLOW` if
    /// a page of the range cannot take one more use.
    fn gaps(&self, first: usize, last: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut next = first;
        let mut segs = self.segs[self.seek(first)..].iter();
        core::iter::from_fn(move || {
            while next <= last {
                match segs.next() {
                    Some(seg) if seg.first <= next => next = seg.end(),
                    Some(seg) if seg.first <= last => {
                        let gap = (next, seg.first - 1);
                        next = seg.end();
                        return Some(gap);
                    }
                    _ => {
                        let gap = (next, last);
                        next = last + 1;
                        return Some(gap);
                    }
                }
            }
            None
        })
    }

    /// How many pages of `first..=last` are not pinned; `EOVERFLOW` if one that is cannot take
    /// another use.
    fn unpinned(&self, first: usize, last: usize) -> Result<usize> {
        let (lo, hi) = (self.seek(first), self.seek(last + 1));
        if self.segs[lo..hi].iter().any(|s| s.uses == u32::MAX) {
            return Err(EOVERFLOW);
        }
        Ok(self.gaps(first, last).map(|(from, to)| to - from + 1).sum())
    }

    /// Makes a segment start at page `index`, splitting the one holding it.
    fn split_at(&mut self, index: usize, flags: Flags) -> Result {
        let i = self.seek(index);
        match self.segs.get(i) {
            Some(seg) if seg.first < index => {}
            _ => return Ok(()),
        }
        self.segs.reserve(1, flags)?;
        let Some(seg) = self.segs.get_mut(i) else {
            return Ok(());
        };
        let Some(rest) = seg.run.split_off(index - seg.first) else {
            return Ok(());
        };
        let rest = Seg {
            first: index,
            run: rest,
            uses: seg.uses,
        };
        if let Err(mut rest) = self.segs.insert_within_capacity(i + 1, rest) {
            // Cannot happen (room was made above); join the halves again if it does.
            if let Some(seg) = self.segs.get_mut(i) {
                seg.run.absorb(&mut rest.run);
            }
        }
        Ok(())
    }

    /// After the segments `lo..hi` changed their uses: joins each with its neighbour when
    /// they continue each other with the same uses, and drops the emptied ones.
    fn tidy(&mut self, lo: usize, hi: usize) {
        let lo = lo.saturating_sub(1);
        let hi = (hi + 1).min(self.segs.len());
        let mut emptied = self.segs[lo..hi].iter().any(|s| s.run.is_empty());
        let mut k = lo;
        for i in lo + 1..hi {
            let (head, tail) = self.segs.split_at_mut(i);
            let (acc, seg) = (&mut head[k], &mut tail[0]);
            if acc.run.is_empty() || seg.run.is_empty() {
                k = i;
                continue;
            }
            if acc.uses == seg.uses && acc.end() == seg.first && acc.run.absorb(&mut seg.run) {
                emptied = true;
            } else {
                k = i;
            }
        }
        if emptied {
            self.segs.retain(|s| !s.run.is_empty());
        }
    }
}

impl Pins {
    /// Moves the pinned pages' charge to `new` and returns the previous owner; `ENOMEM`,
    /// with nothing changed, if `new` cannot take it.
    fn switch_owner(&mut self, new: Option<Arc<PinOwner>>) -> Result<Option<Arc<PinOwner>>> {
        let n = self.npinned;
        let old = core::mem::replace(&mut self.owner, new);
        if n == 0 {
            return Ok(old);
        }
        if let Err(e) = self.charge(n) {
            self.owner = old;
            return Err(e);
        }
        let new = core::mem::replace(&mut self.owner, old);
        self.refund(n);
        Ok(core::mem::replace(&mut self.owner, new))
    }
}

impl Pins {
    fn charge(&self, npages: usize) -> Result {
        let owner = self.owner.as_ref().ok_or(EFAULT)?;
        match self.charge {
            Charge::Nobody => {}
            Charge::User => owner.charge_user(npages)?,
            Charge::Process => owner.charge_mm(npages, true)?,
        }
        owner.add_pinned_vm(npages as i64);
        Ok(())
    }

    fn refund(&self, npages: usize) {
        let Some(owner) = self.owner.as_ref() else {
            return;
        };
        if npages == 0 {
            return;
        }
        match self.charge {
            Charge::Nobody => {}
            Charge::User => owner.uncharge_user(npages),
            // Fails only if the process is gone, and its locked_vm with it.
            Charge::Process => {
                let _ = owner.charge_mm(npages, false);
            }
        }
        owner.add_pinned_vm(-(npages as i64));
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        // Every use is given back before the last area or pin goes; this only guards against
        // a leak if one was not. Dropping the segments unpins them. (Here, with the pages
        // going, rather than in a drop of `Pages`, which would have to take the lock.)
        let n = self.npinned;
        self.segs.clear();
        self.npinned = 0;
        self.refund(n);
    }
}

// The exporter is the test ABI's.
#[cfg(all(CONFIG_DMA_SHARED_BUFFER, CONFIG_IOMMUFD_TEST))]
#[kunit_tests(rust_iommufd_pages_dmabuf)]
mod dmabuf_tests {
    use super::pfnmap_tests::{
        Recorder,
        RW, //
    };
    use super::*;
    use crate::selftest::TestDmaBuf;
    use kernel::{
        dma_buf,
        faux, //
    };

    #[test]
    fn revocation_unmaps_every_mapping_and_blocks_new_pages() {
        let page = PAGE_SIZE as u64;
        let reg = faux::Registration::new(c"iommufd-kunit-dmabuf", None).expect("device");
        let fdev: &faux::Device<kernel::device::Bound> = reg.as_ref();
        let bound: &kernel::device::Device<kernel::device::Bound> = fdev.as_ref();
        let dev: &kernel::device::Device = bound;
        let exporter = TestDmaBuf::new(4 * PAGE_SIZE).expect("memory");
        let buf = dma_buf::export(exporter, 4 * PAGE_SIZE, 0).expect("export");
        let base = buf
            .exporter::<TestDmaBuf>()
            .expect("ours")
            .memory
            .phys()
            .addr;
        let (r1, r2) = (Recorder::new(None), Recorder::new(None));
        let (d1, d2): (Arc<dyn Domain>, Arc<dyn Domain>) = (r1.clone(), r2.clone());

        // Out of the buffer, or empty: EINVAL.
        assert_eq!(
            Pages::dmabuf(buf.clone(), dev, 4 * page, page, true).err(),
            Some(EINVAL)
        );
        assert_eq!(
            Pages::dmabuf(buf.clone(), dev, 0, 4 * page + 1, true).err(),
            Some(EINVAL)
        );
        assert_eq!(
            Pages::dmabuf(buf.clone(), dev, 0, 0, true).err(),
            Some(EINVAL)
        );

        let (pages, offset) = Pages::dmabuf(buf.clone(), dev, page, 2 * page, true).expect("pages");
        assert_eq!(offset, 0);
        assert!(pages.is_dmabuf() && !pages.is_file());
        assert_eq!(pages.address(0), page);
        // Never pinned, never copied.
        assert_eq!(pages.pin(0, 0), Err(EINVAL));
        assert_eq!(pages.copy(0, 0, &mut [0u8; 4], false), Err(EINVAL));

        assert_eq!(pages.map_dmabuf(&d1, 0, 2 * page, 0x10000, RW), Ok(()));
        TestDmaBuf::set_revoked(&buf, true).expect("ours");
        // A revoked buffer maps nothing, but the mapping is still recorded.
        assert_eq!(pages.map_dmabuf(&d2, 0, page, 0x20000, RW), Ok(()));
        assert_eq!(
            Pages::dmabuf(buf.clone(), dev, 0, page, true).err(),
            Some(ENODEV)
        );
        TestDmaBuf::set_revoked(&buf, false).expect("ours");
        // Restoring the buffer does not bring the old pages back.
        pages.unmap_dmabuf(&d1, 0x10000);
        pages.unmap_dmabuf(&d2, 0x20000);
        let (again, _) = Pages::dmabuf(buf.clone(), dev, 0, page, true).expect("restored");
        assert_eq!(again.map_dmabuf(&d2, 0, page, 0x30000, RW), Ok(()));
        again.unmap_dmabuf(&d2, 0x30000);

        assert_eq!(
            &r1.log()[..],
            &[
                (true, 0x10000, base + page, 2 * page),
                (false, 0x10000, 0, 2 * page)
            ]
        );
        assert_eq!(
            &r2.log()[..],
            &[(true, 0x30000, base, page), (false, 0x30000, 0, page)]
        );
    }
}

#[kunit_tests(rust_iommufd_pages_pfnmap)]
mod pfnmap_tests {
    use super::*;

    use crate::{
        domain::map_pages,
        range_map::Range, //
    };

    /// A domain that records what it is asked, `(map?, iova, phys, length)`, and refuses
    /// (`ENOMEM`) every [`Domain::map`] once `fail_at` of them have succeeded.
    #[pin_data]
    pub(super) struct Recorder {
        fail_at: Option<usize>,
        #[pin]
        log: Mutex<KVec<(bool, u64, u64, u64)>>,
    }

    impl Recorder {
        pub(super) fn new(fail_at: Option<usize>) -> Arc<Self> {
            Arc::pin_init(
                pin_init!(Recorder {
                    fail_at,
                    log <- new_mutex!(KVec::new()),
                }),
                GFP_KERNEL,
            )
            .expect("memory")
        }

        /// What it was asked so far.
        pub(super) fn log(&self) -> KVec<(bool, u64, u64, u64)> {
            let mut out = KVec::new();
            for e in self.log.lock().iter() {
                out.push(*e, GFP_KERNEL).expect("memory");
            }
            out
        }
    }

    impl Domain for Recorder {
        fn pgsize_bitmap(&self) -> u64 {
            PAGE_SIZE as u64
        }
        fn aperture(&self) -> Range {
            Range {
                start: 0,
                last: u64::MAX,
            }
        }
        fn map(&self, iova: u64, phys: u64, length: u64, _prot: Prot) -> Result {
            let mut log = self.log.lock();
            if Some(log.iter().filter(|e| e.0).count()) == self.fail_at {
                return Err(ENOMEM);
            }
            log.push((true, iova, phys, length), GFP_KERNEL)?;
            Ok(())
        }
        fn unmap(&self, iova: u64, length: u64) {
            let _ = self.log.lock().push((false, iova, 0, length), GFP_KERNEL);
        }
    }

    pub(super) const RW: Prot = Prot {
        read: true,
        write: true,
    };

    /// Pages over device memory in three runs: 2 pages at 1 MiB, 1 at 4 MiB, 3 at 8 MiB, from
    /// 16 bytes into the first page.
    fn device_pages() -> Arc<Pages> {
        let runs = [(0x10_0000, 2), (0x40_0000, 1), (0x80_0000, 3)];
        pages_over(runs.into_iter(), 0x10, 6 * PAGE_SIZE as u64 - 0x10)
    }

    /// Pages over device memory in `runs` of `(phys, npages)`: `length` bytes from `offset`.
    fn pages_over(
        runs: impl Iterator<Item = (u64, usize)>,
        offset: u64,
        length: u64,
    ) -> Arc<Pages> {
        let mut all = KVVec::new();
        for (phys, npages) in runs {
            all.push(PfnRun { phys, npages }, GFP_KERNEL)
                .expect("memory");
        }
        let source = Source::Pfnmap {
            uptr: 0x7000_0000,
            runs: all,
        };
        let (pages, _) = Pages::new(source, offset, length, true, None).expect("memory");
        pages
    }

    /// What [`Pages::for_each_run`] hands over for `first..=last`.
    fn runs_of(pages: &Pages, first: usize, last: usize) -> Result<KVec<(usize, u64, usize)>> {
        let mut out = KVec::new();
        pages.for_each_run(first, last, |i, phys, n| {
            out.push((i, phys, n), GFP_KERNEL)?;
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn runs_are_the_device_memory_and_nothing_pins() {
        let page = PAGE_SIZE as u64;
        let pages = device_pages();
        assert!(pages.is_phys() && !pages.is_dmabuf() && !pages.is_file());
        assert_eq!(pages.address(0x10), 0x7000_0010);
        assert_eq!(pages.pin(0, 0), Err(EINVAL));
        assert_eq!(pages.copy(0, 0, &mut [0u8; 4], false), Err(EINVAL));
        assert_eq!(
            runs_of(&pages, 0, 5).as_deref(),
            Ok(&[(0, 0x10_0000, 2), (2, 0x40_0000, 1), (3, 0x80_0000, 3)][..])
        );
        assert_eq!(
            runs_of(&pages, 1, 4).as_deref(),
            Ok(&[
                (1, 0x10_0000 + page, 1),
                (2, 0x40_0000, 1),
                (3, 0x80_0000, 2)
            ][..])
        );
        assert_eq!(
            runs_of(&pages, 4, 4).as_deref(),
            Ok(&[(4, 0x80_0000 + page, 1)][..])
        );
        // Past the last page: EFAULT, as for pages that are not pinned.
        assert_eq!(runs_of(&pages, 5, 6).err(), Some(EFAULT));
    }

    /// [`map_pages`] over 70 pages, none next to another in memory: 70 runs, handed over 32 at
    /// a time in IOVA order; a refused map leaves nothing mapped, however far it got.
    #[test]
    fn map_pages_in_batches_and_nothing_left_on_failure() {
        let page = PAGE_SIZE as u64;
        let phys = |i: usize| 0x100_0000 + 2 * i as u64 * page;
        let pages = pages_over((0..70).map(|i| (phys(i), 1)), 0, 70 * page);
        let iova = 0x4000_0000;
        let r = Recorder::new(None);
        assert_eq!(map_pages(&*r, &pages, 0, 70 * page, iova, RW, true), Ok(()));
        let log = r.log();
        assert_eq!(log.len(), 70);
        for (i, e) in log.iter().enumerate() {
            assert_eq!(*e, (true, iova + i as u64 * page, phys(i), page));
        }
        // Refused at the first run, in the second batch, at the very last run.
        for fail_at in [0, 40, 69] {
            let r = Recorder::new(Some(fail_at));
            assert_eq!(
                map_pages(&*r, &pages, 0, 70 * page, iova, RW, true),
                Err(ENOMEM)
            );
            let log = r.log();
            let mapped: u64 = log.iter().filter(|e| e.0).map(|e| e.3).sum();
            let unmapped: u64 = log.iter().filter(|e| !e.0).map(|e| e.3).sum();
            assert_eq!(mapped, fail_at as u64 * page);
            assert_eq!(unmapped, mapped);
        }
    }

    /// One run of contiguous memory is one map with large pages, a map a page without.
    #[test]
    fn map_pages_one_run() {
        let page = PAGE_SIZE as u64;
        let pages = pages_over([(0x20_0000, 3)].into_iter(), 0, 3 * page);
        let r = Recorder::new(None);
        assert_eq!(
            map_pages(&*r, &pages, 0, 3 * page, 0x1000_0000, RW, true),
            Ok(())
        );
        assert_eq!(&r.log()[..], &[(true, 0x1000_0000, 0x20_0000, 3 * page)]);
        let r = Recorder::new(None);
        assert_eq!(
            map_pages(&*r, &pages, page, 2 * page, 0x1000_0000, RW, false),
            Ok(())
        );
        assert_eq!(
            &r.log()[..],
            &[
                (true, 0x1000_0000, 0x20_0000 + page, page),
                (true, 0x1000_0000 + page, 0x20_0000 + 2 * page, page)
            ]
        );
    }
}
