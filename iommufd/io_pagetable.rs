// SPDX-License-Identifier: GPL-2.0

//! The io_pagetable of an IOAS: which IOVA ranges may be used, and how.
//!
//! - *Reserved* ranges can never hold a mapping. They come from the devices and domains
//!   attached to the IOAS (MSI windows, addresses outside an IOMMU's aperture), several owners
//!   can reserve overlapping ranges, and what they leave free is what `IOMMU_IOAS_IOVA_RANGES`
//!   reports.
//! - *Allowed* ranges, set by userspace with `IOMMU_IOAS_ALLOW_IOVAS`, restrict where the kernel
//!   may pick an IOVA for a mapping that does not fix its own. They may not intersect reserved
//!   ranges, and reserving a range that intersects them fails, so userspace can rely on them.
//! - *Areas*: what is mapped. An area maps `[start, last]` of IOVA to the same number of bytes
//!   of user memory. Areas never overlap and are unmapped only whole.
//! - The IOVA alignment every mapping must honour: 1 while no IOMMU domain is attached.
//!
//! - The IOMMU domains attached to the IOAS. Every area is mapped into all of them, with its
//!   pages pinned; with no domain attached nothing needs the memory behind an area yet, so
//!   mapping only records it (as upstream). Every change (map, unmap, attaching or detaching
//!   a domain) either completes in every domain or is undone in all of them. Areas over a
//!   dma-buf are the exception to pinning: they map the exporter's memory as it is, and its
//!   revocation can empty them at any time (see [`crate::pages`]). So are areas over device
//!   memory that VFIO's type1 container maps, by physical address too.
//!
//! Locking: `tables` is taken for every query and update; it is never held across a copy to
//! or from userspace (callers copy the answer out after the lock is dropped).

use crate::{
    domain::{
        self,
        Domain, //
    },
    pages::{
        Charger,
        Pages, //
    },
    range_map::{
        Range,
        RangeMap,
        RangeReservation, //
    }, //
};
use kernel::{
    fs::File,
    iova_bitmap::IovaBitmap,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex,
        MutexGuard, //
    },
    user_pin::PinOwner,
};

/// A reserved range and who reserved it.
#[derive(Copy, Clone)]
struct Reserved {
    range: Range,
    owner: usize,
}

/// How a mapping may be accessed by devices.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Prot {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

/// A slice of [`Pages`]: `length` bytes from byte `start` of them.
pub(crate) struct PagesSlice {
    pages: Arc<Pages>,
    start: u64,
    length: u64,
}

/// A mapped range of IOVA: a slice of [`Pages`] as wide as the range.
pub(crate) struct Area {
    pages: Arc<Pages>,
    /// Offset of the area's first byte in `pages`.
    start: u64,
    prot: Prot,
    /// Pins emulated devices hold in the area; it cannot be unmapped while there are any.
    accesses: u32,
    /// Pins of objects that userspace must destroy before unmapping (hardware queues): unmap
    /// fails with `EBUSY` instead of asking them to let go.
    locks: u32,
    /// Set while the area is being unmapped: emulated devices may not pin or access it.
    prevent_access: bool,
}

/// An emulated device's user of an IOAS (see [`crate::access`]), told when ranges it may
/// have pinned are about to be unmapped.
pub(crate) trait AccessUser: Send + Sync {
    /// `[iova, iova + length)` of `iopt` is being unmapped: every pin inside it must be dropped
    /// (with [`IoPagetable::access_unpin`]) before this returns.
    fn unmap(&self, iopt: &IoPagetable, iova: u64, length: u64);
}

struct Tables {
    areas: RangeMap<Area>,
    allowed: RangeMap<()>,
    /// Sorted by start; may overlap.
    reserved: KVec<Reserved>,
    large_pages: bool,
    domains: KVec<Arc<dyn Domain>>,
    /// How many attached emulated devices pin pages; while there are any, mappings must be
    /// page aligned.
    pinning_accesses: u32,
    /// Every IOVA below this one is in the first page (never picked), an area or a reserved
    /// range, so the search for a free IOVA starts here: mapping one range after another at
    /// kernel-chosen IOVAs does not walk every area mapped before. Raised by an area or a
    /// reserved range that starts at or below it, lowered to the start of whatever is
    /// unmapped or unreserved.
    used_below: u64,
}

/// The largest alignment automatic IOVA allocation aims for: what the CPU can map with one
/// huge page.
#[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
const MAX_IOVA_ALIGN: u64 = kernel::page::HPAGE_PMD_SIZE as u64;
#[cfg(not(CONFIG_TRANSPARENT_HUGEPAGE))]
const MAX_IOVA_ALIGN: u64 = PAGE_SIZE as u64;

/// Rounds `start` up to `align` (a power of two), keeps `page_offset` in the low bits, and
/// says whether `length` bytes from there end at or before `last` (upstream's
/// `__alloc_iova_check_range`, quirks included).
fn fit(start: u64, last: u64, length: u64, align: u64, page_offset: u64) -> Option<u64> {
    let aligned = (start.checked_add(align - 1)? & !(align - 1)) | page_offset;
    (aligned < last && last - aligned >= length - 1).then_some(aligned)
}

/// Raises `used_below` past `range`, now used, if it starts at or below it.
fn raise_used_below(used_below: &mut u64, range: Range) {
    if range.start <= *used_below {
        *used_below = (*used_below).max(range.last.saturating_add(1));
    }
}

impl Tables {
    /// Notes that `range` was just mapped (see `used_below`).
    fn note_used(&mut self, range: Range) {
        raise_used_below(&mut self.used_below, range);
    }

    /// Notes that IOVAs from `start` on may have become free (see `used_below`).
    fn note_freed(&mut self, start: u64) {
        self.used_below = self.used_below.min(start.max(PAGE_SIZE as u64));
    }

    /// Notes the reserved ranges, after some were added (see `used_below`).
    fn note_reserved(&mut self) {
        // Sorted by start, so that touching ranges raise it one after the other.
        for r in self.reserved.iter() {
            raise_used_below(&mut self.used_below, r.range);
        }
    }

    /// Whether `start` bytes into `pages` can be mapped with `prot` at IOVA alignment `align`:
    /// `EPERM` for a writable mapping of read-only pages, `EINVAL` for a misaligned start.
    fn check_slice(pages: &Pages, start: u64, prot: Prot, align: u64) -> Result {
        if prot.write && !pages.writable() {
            return Err(EPERM);
        }
        if (start % PAGE_SIZE as u64) & (align - 1) != 0 {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Adds an area mapping `length` bytes from byte `start` of `pages` at `iova`, free and
    /// aligned (and the slice checked with [`Tables::check_slice`]), and fills it into every
    /// domain; nothing changes on failure.
    fn add_area(
        &mut self,
        iova: u64,
        pages: Arc<Pages>,
        start: u64,
        length: u64,
        prot: Prot,
    ) -> Result {
        // Allocated under the lock: one allocation per area, and none kept around.
        let mem = RangeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let range = Range {
            start: iova,
            last: iova + (length - 1),
        };
        let area = Area {
            pages,
            start,
            prot,
            accesses: 0,
            locks: 0,
            prevent_access: false,
        };
        // Filled before it goes into the tree, so that nothing looks it up again; with no
        // domain there is nothing to fill, not even a call. A failed fill undid itself.
        if !self.domains.is_empty() {
            self.fill_area(range, &area, None)?;
        }
        // Cannot overlap: the whole range was checked free, under the same lock.
        if let Err((e, area)) = self.areas.insert(range, area, mem) {
            self.empty_area(range, &area, None);
            return Err(e);
        }
        self.note_used(range);
        Ok(())
    }

    /// Checks a fixed IOVA for a new mapping at IOVA alignment `align` (upstream's
    /// `iopt_check_iova`).
    fn check_fixed_iova(&self, iova: u64, length: u64, align: u64) -> Result {
        if iova & (align - 1) != 0 {
            return Err(EINVAL);
        }
        let range = Range {
            start: iova,
            last: iova.checked_add(length - 1).ok_or(EOVERFLOW)?,
        };
        if self.reserved.iter().any(|r| r.range.overlaps(&range)) {
            return Err(EINVAL);
        }
        if self.areas.first_overlap(range).is_some() {
            return Err(EEXIST);
        }
        Ok(())
    }

    /// Picks the lowest free IOVA for `length` bytes of memory at user address `uptr`: inside
    /// the allowed ranges if there are any, never in the first or last page, and aligned like
    /// the memory (up to a huge page) so that large pages can map it (upstream's
    /// `iopt_alloc_iova`).
    fn alloc_iova(&self, uptr: u64, length: u64) -> Result<u64> {
        let page = PAGE_SIZE as u64;
        if length == 0 || length >= u64::MAX / 2 {
            return Err(EOVERFLOW);
        }
        let page_offset = uptr % page;
        let mut align = length.next_power_of_two();
        if uptr != 0 {
            align = align.min(1 << uptr.trailing_zeros());
        }
        align = align.min(MAX_IOVA_ALIGN);
        if align < self.iova_alignment() {
            return Err(EINVAL);
        }

        // The lowest fitting IOVA in one allowed span: the holes between the used ranges
        // (reserved ranges and areas, walked together in order of their start, no copy)
        // from the span's aligned start on, or from `used_below` when that is higher.
        let try_span = |span: Range| -> Option<u64> {
            let start = fit(
                span.start.max(self.used_below),
                span.last,
                length,
                align,
                page_offset,
            )?;
            let mut hole_start = start;
            let mut reserved = self.reserved.iter().map(|r| r.range).peekable();
            let mut areas = self.areas.iter_from(start).map(|(r, _)| r).peekable();
            loop {
                let next = match (reserved.peek(), areas.peek()) {
                    (Some(r), Some(a)) if a.start < r.start => areas.next(),
                    (Some(_), _) => reserved.next(),
                    (None, _) => areas.next(),
                };
                let Some(used) = next else { break };
                if used.last < start {
                    continue;
                }
                if used.start > span.last {
                    break;
                }
                if used.start > hole_start {
                    if let Some(iova) = fit(hole_start, used.start - 1, length, align, page_offset)
                    {
                        return Some(iova);
                    }
                }
                hole_start = hole_start.max(used.last.checked_add(1)?);
            }
            if hole_start > span.last {
                return None;
            }
            fit(hole_start, span.last, length, align, page_offset)
        };

        // Never the first or the last page; within the allowed spans (touching allowed ranges
        // form one span) if there are any.
        let window = Range {
            start: page,
            last: u64::MAX - page,
        };
        if self.allowed.iter().next().is_none() {
            return try_span(window).ok_or(ENOSPC);
        }
        let mut span: Option<Range> = None;
        for (r, ()) in self.allowed.iter() {
            let clipped = Range {
                start: r.start.max(window.start),
                last: r.last.min(window.last),
            };
            if clipped.start > clipped.last {
                continue;
            }
            match span {
                Some(s) if clipped.start <= s.last + 1 => {
                    span = Some(Range {
                        start: s.start,
                        last: s.last.max(clipped.last),
                    });
                }
                _ => {
                    if let Some(iova) = span.and_then(try_span) {
                        return Ok(iova);
                    }
                    span = Some(clipped);
                }
            }
        }
        span.and_then(try_span).ok_or(ENOSPC)
    }

    /// The alignment every mapped IOVA must have: 1 for a table no domain is attached to,
    /// `PAGE_SIZE` when large pages are disabled (so every mapping can be split into pages).
    fn iova_alignment(&self) -> u64 {
        let base = if self.large_pages && self.pinning_accesses == 0 {
            1
        } else {
            PAGE_SIZE as u64
        };
        self.domains
            .iter()
            .map(|d| d.min_page_size())
            .fold(base, u64::max)
    }

    /// `EADDRINUSE` unless every area's IOVA, length and offset in its pages are multiples of
    /// `align` (a power of two): what raising the IOVA alignment to `align` needs.
    fn check_areas_aligned(&self, align: u64) -> Result {
        let mask = align - 1;
        let misaligned = self.areas.iter().any(|(r, area)| {
            r.start & mask != 0 || (r.last - r.start + 1) & mask != 0 || area.start & mask != 0
        });
        if misaligned {
            return Err(EADDRINUSE);
        }
        Ok(())
    }

    /// Pins the pages of the area at `range` and maps it into every domain, or into
    /// `domains[only]` alone (whose pages are already pinned when others exist). On failure
    /// nothing of the area is left mapped or pinned by this call.
    fn fill_area(&self, range: Range, area: &Area, only: Option<usize>) -> Result {
        if self.domains.is_empty() {
            return Ok(());
        }
        let (first, last) = area.page_span(range);
        let pin = !area.pages.is_phys() && (only.is_none() || self.domains.len() == 1);
        if pin {
            area.pages.pin(first, last)?;
        }
        let length = range.last - range.start + 1;
        let targets = match only {
            Some(i) => &self.domains[i..=i],
            None => &self.domains[..],
        };
        for (n, d) in targets.iter().enumerate() {
            let res = if area.pages.is_dmabuf() {
                area.pages
                    .map_dmabuf(d, area.start, length, range.start, area.prot)
            } else {
                domain::map_pages(
                    &**d,
                    &area.pages,
                    area.start,
                    length,
                    range.start,
                    area.prot,
                    self.large_pages,
                )
            };
            if let Err(e) = res {
                for done in &targets[..n] {
                    Self::unmap_from(done, range, area);
                }
                if pin {
                    area.pages.unpin(first, last);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Undoes [`Tables::fill_area`] for the area at `range`.
    fn empty_area(&self, range: Range, area: &Area, only: Option<usize>) {
        if self.domains.is_empty() {
            return;
        }
        match only {
            Some(i) => Self::unmap_from(&self.domains[i], range, area),
            None => self
                .domains
                .iter()
                .for_each(|d| Self::unmap_from(d, range, area)),
        }
        if !area.pages.is_phys() && (only.is_none() || self.domains.len() == 1) {
            let (first, last) = area.page_span(range);
            area.pages.unpin(first, last);
        }
    }
}

impl Tables {
    /// Unmaps the area at `range` from `domain`; a dma-buf's pages also forget the mapping.
    fn unmap_from(domain: &Arc<dyn Domain>, range: Range, area: &Area) {
        if area.pages.is_dmabuf() {
            area.pages.unmap_dmabuf(domain, range.start);
        } else {
            domain.unmap(range.start, range.last - range.start + 1);
        }
    }
}

impl Area {
    /// The first and last index of the pages the area at `range` uses.
    fn page_span(&self, range: Range) -> (usize, usize) {
        (
            Pages::index(self.start),
            Pages::index(self.start + (range.last - range.start)),
        )
    }
}

/// The owner id a domain's reservations carry: its address.
fn domain_owner(domain: &Arc<dyn Domain>) -> usize {
    (&raw const **domain).cast::<u8>() as usize
}

/// Allowed IOVA ranges loaded from userspace, not yet in force.
pub(crate) struct AllowedRanges(RangeMap<()>);

impl AllowedRanges {
    pub(crate) fn new() -> Self {
        Self(RangeMap::new())
    }

    /// Adds `[start, last]`; `EINVAL` unless `start < last` and the range misses the ones
    /// added before.
    pub(crate) fn add(&mut self, start: u64, last: u64) -> Result {
        if start >= last {
            return Err(EINVAL);
        }
        let mem = RangeReservation::new(GFP_KERNEL_ACCOUNT)?;
        self.0
            .insert(Range { start, last }, (), mem)
            .map_err(|(e, ())| e)
    }
}

#[pin_data]
pub(crate) struct IoPagetable {
    #[pin]
    tables: Mutex<Tables>,
    /// The emulated devices attached, and whether each pins pages.
    #[pin]
    access_users: Mutex<KVec<(Arc<dyn AccessUser>, bool)>>,
}

impl IoPagetable {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            tables <- new_mutex!(Tables {
                areas: RangeMap::new(),
                allowed: RangeMap::new(),
                reserved: KVec::new(),
                large_pages: true,
                domains: KVec::new(),
                pinning_accesses: 0,
                used_below: PAGE_SIZE as u64,
            }),
            access_users <- new_mutex!(KVec::new()),
        })
    }

    /// The IOVA ranges no reservation covers, lowest first, and the IOVA alignment.
    pub(crate) fn usable_ranges(&self) -> Result<(KVec<Range>, u64)> {
        let t = self.tables.lock();
        let mut holes = KVec::with_capacity(t.reserved.len() + 1, GFP_KERNEL)?;
        // The first address not yet known to be reserved or reported.
        let mut next = 0u64;
        for r in t.reserved.iter() {
            if r.range.start > next {
                holes.push(
                    Range {
                        start: next,
                        last: r.range.start - 1,
                    },
                    GFP_KERNEL,
                )?;
            }
            if r.range.last == u64::MAX {
                return Ok((holes, t.iova_alignment()));
            }
            next = next.max(r.range.last + 1);
        }
        holes.push(
            Range {
                start: next,
                last: u64::MAX,
            },
            GFP_KERNEL,
        )?;
        Ok((holes, t.iova_alignment()))
    }

    /// Replaces the allowed ranges; `EADDRINUSE`, with nothing changed, if one of them
    /// intersects a reserved range.
    pub(crate) fn set_allowed(&self, new: AllowedRanges) -> Result {
        let mut t = self.tables.lock();
        for (range, ()) in new.0.iter() {
            if t.reserved.iter().any(|r| r.range.overlaps(&range)) {
                return Err(EADDRINUSE);
            }
        }
        // The old set is dropped after the lock is released.
        let old = core::mem::replace(&mut t.allowed, new.0);
        drop(t);
        drop(old);
        Ok(())
    }

    /// Reserves `range` for `owner`; `EADDRINUSE` if a mapping or an allowed range intersects
    /// it.
    #[cfg_attr(
        not(any(CONFIG_KUNIT = "y", CONFIG_IOMMUFD_TEST)),
        expect(dead_code, reason = "devices with reserved regions come with VFIO")
    )]
    pub(crate) fn reserve(&self, range: Range, owner: usize) -> Result {
        let mut t = self.tables.lock();
        if t.allowed.first_overlap(range).is_some() || t.areas.first_overlap(range).is_some() {
            return Err(EADDRINUSE);
        }
        t.reserved
            .push(Reserved { range, owner }, GFP_KERNEL_ACCOUNT)?;
        t.reserved.sort_unstable_by_key(|r| r.range.start);
        t.note_reserved();
        Ok(())
    }

    /// Drops every reservation `owner` made.
    #[cfg_attr(
        not(CONFIG_KUNIT = "y"),
        expect(
            dead_code,
            reason = "devices and domains, which reserve ranges, come next"
        )
    )]
    pub(crate) fn unreserve(&self, owner: usize) {
        let mut t = self.tables.lock();
        t.reserved.retain(|r| r.owner != owner);
        t.note_freed(0);
    }

    /// Maps `length` bytes of user memory at `uptr` to `iova`, or to an IOVA the table picks
    /// when `iova` is `None`; returns the IOVA.
    pub(crate) fn map_user(
        &self,
        iova: Option<u64>,
        uptr: u64,
        length: u64,
        prot: Prot,
        charger: Charger,
    ) -> Result<u64> {
        let (pages, start) = Pages::user(uptr, length, prot.write, charger)?;
        self.map_one(iova, pages, start, length, prot)
    }

    /// Maps `length` bytes of device memory at `uptr` of `owner`'s process, a `VM_PFNMAP`
    /// mapping, to `iova`; returns the IOVA. Only VFIO's own type1 container does this; see
    /// [`Pages::pfnmap`].
    pub(crate) fn map_pfnmap(
        &self,
        iova: u64,
        uptr: u64,
        length: u64,
        prot: Prot,
        owner: &PinOwner,
    ) -> Result<u64> {
        let (pages, start) = Pages::pfnmap(owner, uptr, length, prot.write)?;
        self.map_one(Some(iova), pages, start, length, prot)
    }

    /// Maps `length` bytes of memfd `file` from byte `start` to `iova`, or to an IOVA the table
    /// picks; returns the IOVA.
    pub(crate) fn map_file(
        &self,
        iova: Option<u64>,
        file: ARef<File>,
        start: u64,
        length: u64,
        prot: Prot,
        charger: Charger,
    ) -> Result<u64> {
        start
            .checked_add(length.checked_sub(1).ok_or(EINVAL)?)
            .ok_or(EOVERFLOW)?;
        let (pages, offset) = Pages::file(file, start, length, prot.write, charger)?;
        self.map_one(iova, pages, offset, length, prot)
    }

    /// Maps `length` bytes of dma-buf `buf` from byte `start` to `iova`, or to an IOVA the
    /// table picks; returns the IOVA. The buffer is attached as `dev`. Errors as
    /// [`Pages::dmabuf`] and [`IoPagetable::map_pages`].
    #[cfg(CONFIG_DMA_SHARED_BUFFER)]
    pub(crate) fn map_dmabuf(
        &self,
        iova: Option<u64>,
        buf: ARef<kernel::dma_buf::DmaBuf>,
        dev: &kernel::device::Device,
        start: u64,
        length: u64,
        prot: Prot,
    ) -> Result<u64> {
        let (pages, offset) = Pages::dmabuf(buf, dev, start, length, prot.write)?;
        self.map_one(iova, pages, offset, length, prot)
    }

    /// Maps one slice of `pages`, taking over the reference: [`IoPagetable::map_pages`] for a
    /// single slice, without taking a reference of its own and dropping the caller's.
    fn map_one(
        &self,
        iova: Option<u64>,
        pages: Arc<Pages>,
        start: u64,
        length: u64,
        prot: Prot,
    ) -> Result<u64> {
        let (mut t, iova, align) = self.lock_for_map(iova, pages.address(start), length)?;
        Tables::check_slice(&pages, start, prot, align)?;
        t.add_area(iova, pages, start, length, prot)?;
        Ok(iova)
    }

    /// Maps `slices`, `length` bytes in all, one after the other from `iova` (or from an IOVA
    /// the table picks, aligned like the first slice's memory); returns the IOVA.
    ///
    /// Errors as upstream: `EINVAL` for a length or IOVA that breaks the alignment, or a fixed
    /// IOVA in a reserved range; `EEXIST` if a fixed IOVA overlaps a mapping; `EOVERFLOW` if the
    /// range wraps; `ENOSPC` if no free IOVA range fits; `EPERM` for a writable mapping of
    /// read-only pages. Nothing is mapped on failure.
    pub(crate) fn map_pages(
        &self,
        iova: Option<u64>,
        slices: &[PagesSlice],
        length: u64,
        prot: Prot,
    ) -> Result<u64> {
        let first = slices.first().ok_or(EINVAL)?;
        let (mut t, iova, align) =
            self.lock_for_map(iova, first.pages.address(first.start), length)?;
        // Check every slice before inserting any, so that failure leaves nothing behind.
        for s in slices.iter() {
            Tables::check_slice(&s.pages, s.start, prot, align)?;
        }
        let mut at = iova;
        for (inserted, s) in slices.iter().enumerate() {
            let res = t.add_area(at, s.pages.clone(), s.start, s.length, prot);
            if let Err(e) = res {
                // Take back the slices mapped before the failure.
                let mut at = iova;
                for _ in 0..inserted {
                    if let Some((range, area)) = t.areas.remove(at) {
                        t.note_freed(range.start);
                        t.empty_area(range, &area, None);
                        at = range.last.wrapping_add(1);
                    }
                }
                return Err(e);
            }
            // Wraps only past the last slice of a mapping that ends at the top of the
            // address space, where the value is not used again.
            at = at.wrapping_add(s.length);
        }
        Ok(iova)
    }

    /// Locks the tables for a new mapping of `length` bytes and picks its IOVA: `iova` if
    /// given and free, else one aligned like `address` (see [`IoPagetable::map_pages`]).
    /// Returns the locked tables, the IOVA and the IOVA alignment.
    fn lock_for_map(
        &self,
        iova: Option<u64>,
        address: u64,
        length: u64,
    ) -> Result<(MutexGuard<'_, Tables>, u64, u64)> {
        let t = self.tables.lock();
        let align = t.iova_alignment();
        if length == 0 || length & (align - 1) != 0 {
            return Err(EINVAL);
        }
        let iova = match iova {
            Some(iova) => {
                t.check_fixed_iova(iova, length, align)?;
                iova
            }
            None => t.alloc_iova(address, length)?,
        };
        Ok((t, iova, align))
    }

    /// The slices of pages behind `[iova, iova + length)`, which areas must cover without a
    /// gap (`ENOENT` otherwise).
    pub(crate) fn get_pages(&self, iova: u64, length: u64) -> Result<KVec<PagesSlice>> {
        let mut slices = KVec::new();
        self.for_each_area_in(iova, length, |area, r, offset| {
            let slice = PagesSlice {
                pages: area.pages.clone(),
                start: offset,
                length: r.last - r.start + 1,
            };
            Ok(slices.push(slice, GFP_KERNEL)?)
        })?;
        Ok(slices)
    }

    /// Unmaps every area inside `[start, last]` and returns how many bytes that was.
    ///
    /// An area that crosses either end of the range is not split: the unmap stops there with
    /// `ENOENT`, keeping the areas before it unmapped, as upstream.
    pub(crate) fn unmap(&self, start: u64, last: u64) -> Result<u64> {
        let mut unmapped = 0;
        self.unmap_counting(start, last, &mut unmapped)?;
        Ok(unmapped)
    }

    /// [`IoPagetable::unmap`], adding the bytes unmapped to `unmapped` even when it fails part
    /// way (VFIO reports that count).
    pub(crate) fn unmap_counting(&self, start: u64, last: u64, unmapped: &mut u64) -> Result {
        let mut tries = 0;
        'again: loop {
            let mut t = self.tables.lock();
            let mut from = start;
            while let Some(mut found) = t.areas.first_overlap_mut(Range { start: from, last }) {
                let area = found.range();
                let value = found.value_mut();
                if value.locks != 0 {
                    return Err(EBUSY);
                }
                if area.start < start || area.last > last {
                    return Err(ENOENT);
                }
                if value.accesses != 0 {
                    // Emulated devices hold pins here: stop new ones, ask them to let go
                    // (without our lock, as they call back to unpin), then look again.
                    value.prevent_access = true;
                    drop(t);
                    self.notify_unmap(area.start, area.last - area.start + 1);
                    tries += 1;
                    if tries > 100 {
                        kernel::pr_warn_once!("iommufd: an emulated device does not unpin\n");
                        return Err(EDEADLK);
                    }
                    continue 'again;
                }
                let (range, removed) = found.remove();
                t.note_freed(range.start);
                t.empty_area(range, &removed, None);
                // Areas covering all 2^64 bytes sum to 0, as upstream's unsigned long does.
                *unmapped = unmapped.wrapping_add(area.last - area.start + 1);
                match area.last.checked_add(1) {
                    Some(next) if next <= last => from = next,
                    _ => break,
                }
            }
            return Ok(());
        }
    }

    /// Tells every attached emulated device that `[iova, iova + length)` is being unmapped.
    fn notify_unmap(&self, iova: u64, length: u64) {
        let mut users = KVec::new();
        for (user, _) in self.access_users.lock().iter() {
            if users.push(user.clone(), GFP_KERNEL).is_err() {
                break;
            }
        }
        for user in users {
            user.unmap(self, iova, length);
        }
    }

    /// Attaches an emulated device's `user`. One that `pins` pages raises the IOVA alignment to
    /// `PAGE_SIZE`: `EADDRINUSE` if an existing mapping breaks it.
    pub(crate) fn add_access(&self, user: Arc<dyn AccessUser>, pins: bool) -> Result {
        let mut users = self.access_users.lock();
        users.reserve(1, GFP_KERNEL_ACCOUNT)?;
        let mut t = self.tables.lock();
        if pins {
            t.check_areas_aligned(PAGE_SIZE as u64)?;
            t.pinning_accesses += 1;
        }
        drop(t);
        users.push((user, pins), GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }

    /// Detaches `user`, which must hold no pins.
    pub(crate) fn remove_access(&self, user: &Arc<dyn AccessUser>) {
        let mut users = self.access_users.lock();
        let Some(i) = users.iter().position(|(u, _)| Arc::ptr_eq(u, user)) else {
            return;
        };
        if let Ok((_, true)) = users.remove(i) {
            let mut t = self.tables.lock();
            t.pinning_accesses = t.pinning_accesses.saturating_sub(1);
        }
    }

    /// Calls `f` on each area over `[iova, iova + length)` with the part of it inside the
    /// range: its IOVA range and the byte offset in the area's pages where that starts.
    /// `ENOENT` at the first gap; `EINVAL` for an area being unmapped; `EOVERFLOW` for a range
    /// that wraps.
    fn for_each_area_in(
        &self,
        iova: u64,
        length: u64,
        mut f: impl FnMut(&mut Area, Range, u64) -> Result,
    ) -> Result {
        if length == 0 {
            return Err(EINVAL);
        }
        let last = iova.checked_add(length - 1).ok_or(EOVERFLOW)?;
        let mut t = self.tables.lock();
        let mut cur = iova;
        loop {
            let range = t
                .areas
                .first_overlap(Range {
                    start: cur,
                    last: cur,
                })
                .ok_or(ENOENT)?;
            let area = t.areas.get_mut(range.start).ok_or(ENOENT)?;
            if area.prevent_access {
                return Err(EINVAL);
            }
            let end = last.min(range.last);
            let offset = area.start + (cur - range.start);
            f(
                area,
                Range {
                    start: cur,
                    last: end,
                },
                offset,
            )?;
            if end == last {
                return Ok(());
            }
            cur = end + 1;
        }
    }

    /// Pins the pages behind `[iova, iova + length)` for an emulated device and returns
    /// their physical addresses, one per page touched. `EPERM` if an area does not allow the
    /// access (`write` or read); on failure nothing stays pinned. With `lock`, the areas
    /// cannot be unmapped (`EBUSY`) until the pins go.
    pub(crate) fn access_pin(
        &self,
        iova: u64,
        length: u64,
        write: bool,
        lock: bool,
    ) -> Result<KVec<u64>> {
        let mut phys = KVec::new();
        let mut done = 0u64;
        let res = self.for_each_area_in(iova, length, |area, r, offset| {
            if (write && !area.prot.write) || (!write && !area.prot.read) {
                return Err(EPERM);
            }
            let (first, last) = (
                Pages::index(offset),
                Pages::index(offset + (r.last - r.start)),
            );
            area.pages.pin(first, last)?;
            area.accesses += 1;
            area.locks += u32::from(lock);
            done += r.last - r.start + 1;
            area.pages.for_each_run(first, last, |_, p, npages| {
                for i in 0..npages {
                    phys.push(p + (i * PAGE_SIZE) as u64, GFP_KERNEL)?;
                }
                Ok(())
            })
        });
        if let Err(e) = res {
            if done != 0 {
                self.access_unpin(iova, done, lock);
            }
            return Err(e);
        }
        Ok(phys)
    }

    /// Drops the pins [`IoPagetable::access_pin`] took for `[iova, iova + length)`, with the
    /// same `lock`.
    pub(crate) fn access_unpin(&self, iova: u64, length: u64, lock: bool) {
        let Some(last) = length.checked_sub(1).and_then(|l| iova.checked_add(l)) else {
            return;
        };
        let mut t = self.tables.lock();
        let mut cur = iova;
        while let Some(range) = t.areas.first_overlap(Range { start: cur, last }) {
            let Some(area) = t.areas.get_mut(range.start) else {
                break;
            };
            let from = cur.max(range.start);
            let end = last.min(range.last);
            let offset = area.start + (from - range.start);
            area.pages
                .unpin(Pages::index(offset), Pages::index(offset + (end - from)));
            area.accesses = area.accesses.saturating_sub(1);
            area.locks = area.locks.saturating_sub(u32::from(lock));
            match end.checked_add(1) {
                Some(next) if end < last => cur = next,
                _ => break,
            }
        }
    }

    /// Copies between `buf` and the memory behind `[iova, iova + buf.len())`: into the memory
    /// when `write`. Memory of the current process is copied as user memory, like upstream's
    /// fast path, unless `slow`; otherwise pages not pinned already are pinned for the copy.
    pub(crate) fn access_rw(&self, iova: u64, buf: &mut [u8], write: bool, slow: bool) -> Result {
        let page = PAGE_SIZE as u64;
        let mut pos = 0usize;
        self.for_each_area_in(iova, buf.len() as u64, |area, r, offset| {
            if (write && !area.prot.write) || (!write && !area.prot.read) {
                return Err(EPERM);
            }
            let len = (r.last - r.start + 1) as usize;
            if !slow {
                if let Some(res) = area
                    .pages
                    .copy_user(offset, &mut buf[pos..pos + len], write)
                {
                    pos += len;
                    return res;
                }
            }
            let mut at = offset;
            let end = offset + (r.last - r.start) + 1;
            while at < end {
                let index = Pages::index(at);
                let in_page = (at % page) as usize;
                let n = ((page - at % page).min(end - at)) as usize;
                let chunk = &mut buf[pos..pos + n];
                area.pages.copy(index, in_page, chunk, write)?;
                pos += n;
                at += n as u64;
            }
            Ok(())
        })
    }

    /// Splits the areas containing each of `iovas` so that the IOVA ends an area, as VFIO type1
    /// needs to unmap part of a mapping. Both halves keep sharing the pages. `EINVAL` if the
    /// second half would break the alignment.
    pub(crate) fn cut(&self, iovas: &[u64]) -> Result {
        let mut mem = KVec::with_capacity(iovas.len(), GFP_KERNEL)?;
        for _ in iovas {
            mem.push(RangeReservation::new(GFP_KERNEL_ACCOUNT)?, GFP_KERNEL)?;
        }
        let mut t = self.tables.lock();
        let align_mask = t.iova_alignment() - 1;
        for (&iova, mem) in iovas.iter().zip(mem) {
            let Some(range) = t.areas.first_overlap(Range {
                start: iova,
                last: iova,
            }) else {
                continue;
            };
            if iova == range.start || iova == range.last {
                continue;
            }
            let Some(area) = t.areas.get(range.start) else {
                continue;
            };
            if area.pages.is_dmabuf() {
                return Err(EOPNOTSUPP);
            }
            let new_start = iova + 1;
            let rhs_start = area.start + (new_start - range.start);
            if new_start & align_mask != 0 || rhs_start & align_mask != 0 {
                return Err(EINVAL);
            }
            // A domain may map the area with a page that crosses the cut.
            if !t.domains.is_empty() && t.large_pages {
                return Err(EINVAL);
            }
            // Both halves keep their own use of the pages; a page both touch needs one more.
            let shared = Pages::index(rhs_start - 1) == Pages::index(rhs_start);
            if shared && !t.domains.is_empty() && !area.pages.is_phys() {
                let i = Pages::index(rhs_start);
                area.pages.pin(i, i)?;
            }
            // Pins of emulated devices cannot be split with the area.
            if area.accesses != 0 {
                return Err(EINVAL);
            }
            let rhs = Area {
                pages: area.pages.clone(),
                start: rhs_start,
                prot: area.prot,
                accesses: 0,
                locks: 0,
                prevent_access: false,
            };
            t.areas.shrink(range.start, iova);
            t.areas
                .insert(
                    Range {
                        start: new_start,
                        last: range.last,
                    },
                    rhs,
                    mem,
                )
                .map_err(|(e, _)| e)?;
        }
        Ok(())
    }

    /// Attaches `domain`: its aperture's outside becomes reserved and every area is mapped into
    /// it. `EINVAL` if its smallest page is larger than a CPU page, `EADDRINUSE` if an area
    /// breaks its alignment or lies outside its aperture; on failure nothing changes.
    pub(crate) fn add_domain(&self, domain: Arc<dyn Domain>) -> Result {
        let owner = domain_owner(&domain);
        let mut t = self.tables.lock();
        let align = t.iova_alignment().max(domain.min_page_size());
        if align > PAGE_SIZE as u64 {
            return Err(EINVAL);
        }
        t.check_areas_aligned(align)?;
        t.domains.reserve(1, GFP_KERNEL_ACCOUNT)?;
        t.reserved.reserve(2, GFP_KERNEL_ACCOUNT)?;
        let aperture = domain.aperture();
        let mut outside = KVec::new();
        if aperture.start != 0 {
            outside.push(
                Range {
                    start: 0,
                    last: aperture.start - 1,
                },
                GFP_KERNEL,
            )?;
        }
        if aperture.last != u64::MAX {
            outside.push(
                Range {
                    start: aperture.last + 1,
                    last: u64::MAX,
                },
                GFP_KERNEL,
            )?;
        }
        for range in outside.iter() {
            if t.allowed.first_overlap(*range).is_some() || t.areas.first_overlap(*range).is_some()
            {
                return Err(EADDRINUSE);
            }
        }
        t.domains.push(domain, GFP_KERNEL_ACCOUNT)?;
        let new = t.domains.len() - 1;
        let only = if new == 0 { None } else { Some(new) };
        let mut filled = KVec::new();
        let mut res = Ok(());
        for (range, area) in t.areas.iter() {
            res = filled.push(range, GFP_KERNEL).map_err(Error::from);
            if res.is_ok() {
                res = t.fill_area(range, area, only);
            }
            if res.is_err() {
                filled.pop();
                break;
            }
        }
        if let Err(e) = res {
            for range in filled.iter() {
                if let Some(area) = t.areas.get(range.start) {
                    t.empty_area(*range, area, only);
                }
            }
            t.domains.pop();
            return Err(e);
        }
        for range in outside {
            t.reserved
                .push(Reserved { range, owner }, GFP_KERNEL_ACCOUNT)?;
        }
        t.reserved.sort_unstable_by_key(|r| r.range.start);
        t.note_reserved();
        Ok(())
    }

    /// Detaches `domain`: every area is unmapped from it, and unpinned if it was the last one.
    pub(crate) fn remove_domain(&self, domain: &Arc<dyn Domain>) {
        let owner = domain_owner(domain);
        let mut t = self.tables.lock();
        let Some(index) = t.domains.iter().position(|d| domain_owner(d) == owner) else {
            return;
        };
        let only = if t.domains.len() == 1 {
            None
        } else {
            Some(index)
        };
        for (range, area) in t.areas.iter() {
            t.empty_area(range, area, only);
        }
        let _ = t.domains.remove(index);
        t.reserved.retain(|r| r.owner != owner);
        t.note_freed(0);
    }

    /// Calls `f` with the part inside `first..=last` of each area that has it, lowest first.
    fn for_each_area_part(
        t: &Tables,
        first: u64,
        last: u64,
        mut f: impl FnMut(Range) -> Result,
    ) -> Result {
        let mut cur = first;
        while let Some(r) = t.areas.first_overlap(Range { start: cur, last }) {
            f(Range {
                start: r.start.max(cur),
                last: r.last.min(last),
            })?;
            if r.last >= last {
                break;
            }
            cur = r.last + 1;
        }
        Ok(())
    }

    /// Turns dirty tracking of `domain` (attached here) on or off. Turning it on first cleans
    /// every mapped page, so that what is read next was written after this call (upstream's
    /// `iopt_set_dirty_tracking()`). `EOPNOTSUPP` for a domain that cannot track dirty pages.
    pub(crate) fn set_dirty_tracking(&self, domain: &Arc<dyn Domain>, enable: bool) -> Result {
        if !domain.dirty_capable() {
            return Err(EOPNOTSUPP);
        }
        let t = self.tables.lock();
        if enable {
            Self::for_each_area_part(&t, 0, u64::MAX, |r| {
                domain.read_and_clear_dirty(r.start, r.last - r.start + 1, false, None)
            })?;
        }
        domain.set_dirty_tracking(enable)
    }

    /// `IOMMU_HWPT_GET_DIRTY_BITMAP` on `domain` (attached here): sets in the user's bitmap at
    /// `data` a bit of each `page_size` bytes from `iova` that a device wrote to, and marks
    /// them clean unless `no_clear`.
    ///
    /// Errors as upstream's `iommufd_check_iova_range()`: `EINVAL` for an empty range or one
    /// whose ends break the IOVA alignment or the page size (also for a page size that is
    /// not a power of two), `EOVERFLOW` for one that wraps; then `EOPNOTSUPP` for a domain that
    /// cannot track dirty pages. Holes between areas read as clean (upstream stops at the
    /// first, and also answers 0). `EFAULT` if the bitmap cannot be written.
    ///
    /// The bitmap is filled a window at a time (see [`IovaBitmap`]): the table lock is held
    /// while the domain reports a window, and dropped before the window is copied out.
    pub(crate) fn read_and_clear_dirty(
        &self,
        domain: &Arc<dyn Domain>,
        iova: u64,
        length: u64,
        page_size: u64,
        data: u64,
        no_clear: bool,
    ) -> Result {
        let last = iova
            .checked_add(length.checked_sub(1).ok_or(EINVAL)?)
            .ok_or(EOVERFLOW)?;
        let end = last.wrapping_add(1);
        let align = self.iova_alignment();
        if (iova | end) & (align - 1) != 0 || !page_size.is_power_of_two() {
            return Err(EINVAL);
        }
        if (iova | end) & (page_size - 1) != 0 {
            return Err(EINVAL);
        }
        if !domain.dirty_capable() {
            return Err(EOPNOTSUPP);
        }
        let mut bitmap = IovaBitmap::new(iova, length, page_size, data as usize)?;
        bitmap.for_each(|bitmap, win_iova, win_length| {
            let t = self.tables.lock();
            Self::for_each_area_part(&t, win_iova, win_iova + (win_length - 1), |r| {
                domain.read_and_clear_dirty(
                    r.start,
                    r.last - r.start + 1,
                    no_clear,
                    Some(&mut *bitmap),
                )
            })
        })
    }

    /// Adds the pages of every area to `out`, once each; `EINVAL` if one is not a file's.
    pub(crate) fn file_pages(&self, out: &mut KVec<Arc<Pages>>) -> Result {
        let t = self.tables.lock();
        for (_, area) in t.areas.iter() {
            if !area.pages.is_file() {
                return Err(EINVAL);
            }
            if !out.iter().any(|p| Arc::ptr_eq(p, &area.pages)) {
                out.push(area.pages.clone(), GFP_KERNEL)?;
            }
        }
        Ok(())
    }

    /// The user address mapped at `iova`, if any.
    #[cfg_attr(
        not(CONFIG_KUNIT = "y"),
        expect(dead_code, reason = "emulated-device access and domains read areas")
    )]
    pub(crate) fn user_address(&self, iova: u64) -> Option<u64> {
        let t = self.tables.lock();
        let area = t.areas.first_overlap(Range {
            start: iova,
            last: iova,
        })?;
        t.areas
            .get(area.start)
            .map(|a| a.pages.address(a.start + (iova - area.start)))
    }

    /// The alignment every mapped IOVA must have.
    pub(crate) fn iova_alignment(&self) -> u64 {
        self.tables.lock().iova_alignment()
    }

    /// Whether a domain is attached, so that mapping pins the memory.
    pub(crate) fn has_domains(&self) -> bool {
        !self.tables.lock().domains.is_empty()
    }

    /// Whether mappings may use pages larger than `PAGE_SIZE` in IOMMU domains.
    pub(crate) fn large_pages(&self) -> bool {
        self.tables.lock().large_pages
    }

    /// Enables or disables large pages, which sets the IOVA alignment. With no domain attached
    /// nothing is mapped in one, so the change always takes effect.
    ///
    /// Disabling them raises the alignment to `PAGE_SIZE`, which every existing mapping must
    /// then meet in its IOVA, its length and the offset of its memory (`EADDRINUSE` otherwise,
    /// with nothing changed).
    pub(crate) fn set_large_pages(&self, enable: bool) -> Result {
        let mut t = self.tables.lock();
        if !enable && t.large_pages && !t.domains.is_empty() && t.areas.iter().next().is_some() {
            // Domains may already hold large pages for the areas.
            return Err(EINVAL);
        }
        if !enable {
            t.check_areas_aligned(PAGE_SIZE as u64)?;
        }
        t.large_pages = enable;
        Ok(())
    }
}

#[kunit_tests(rust_iommufd_io_pagetable)]
mod tests {
    use super::*;
    use crate::context::AccountMode;
    use kernel::alloc::KBox;

    fn iopt() -> Pin<KBox<IoPagetable>> {
        KBox::pin_init(IoPagetable::new(), GFP_KERNEL).expect("memory")
    }

    /// Maps user memory (never pinned here: KUnit has no user memory) as the current user.
    fn map(t: &IoPagetable, iova: Option<u64>, uptr: u64, length: u64, prot: Prot) -> Result<u64> {
        let charger = Charger {
            mode: AccountMode::User,
            owner: None,
        };
        t.map_user(iova, uptr, length, prot, charger)
    }

    fn r(start: u64, last: u64) -> Range {
        Range { start, last }
    }

    fn usable(iopt: &IoPagetable) -> KVec<Range> {
        iopt.usable_ranges().expect("memory").0
    }

    fn allowed(ranges: &[(u64, u64)]) -> AllowedRanges {
        let mut a = AllowedRanges::new();
        for &(s, l) in ranges {
            a.add(s, l).expect("valid ranges");
        }
        a
    }

    #[test]
    fn fresh_table_offers_everything() {
        let t = iopt();
        assert_eq!(&usable(&t)[..], &[r(0, u64::MAX)]);
        assert_eq!(t.usable_ranges().expect("memory").1, 1);
    }

    #[test]
    fn reserved_ranges_punch_holes_even_when_overlapping() {
        let t = iopt();
        assert_eq!(t.reserve(r(0xfee0_0000, 0xfeef_ffff), 1), Ok(()));
        assert_eq!(t.reserve(r(0, 0xfff), 2), Ok(()));
        assert_eq!(t.reserve(r(0xfee8_0000, 0xffff_ffff), 3), Ok(()));
        assert_eq!(t.reserve(r(1 << 48, u64::MAX), 3), Ok(()));
        assert_eq!(
            &usable(&t)[..],
            &[r(0x1000, 0xfedf_ffff), r(0x1_0000_0000, (1 << 48) - 1)]
        );
    }

    #[test]
    fn allowed_ranges_and_reservations_exclude_each_other() {
        let t = iopt();
        assert_eq!(t.reserve(r(0x10000, 0x1ffff), 1), Ok(()));
        assert_eq!(
            t.set_allowed(allowed(&[(0, 0xffff), (0x1ffff, 0x2ffff)])),
            Err(EADDRINUSE)
        );
        assert_eq!(
            t.set_allowed(allowed(&[(0, 0xffff), (0x20000, 0x2ffff)])),
            Ok(())
        );
        assert_eq!(t.reserve(r(0x2f000, 0x30fff), 2), Err(EADDRINUSE));
        assert_eq!(t.reserve(r(0x30000, 0x30fff), 2), Ok(()));
        // Clearing the allowed set lifts the restriction.
        assert_eq!(t.set_allowed(AllowedRanges::new()), Ok(()));
        assert_eq!(t.reserve(r(0x2f000, 0x2ffff), 2), Ok(()));
    }

    #[test]
    fn loading_allowed_ranges_checks_each_range() {
        let mut a = AllowedRanges::new();
        assert_eq!(a.add(0x1000, 0x1000), Err(EINVAL));
        assert_eq!(a.add(0x2000, 0x1000), Err(EINVAL));
        assert_eq!(a.add(0x1000, 0x1fff), Ok(()));
        assert_eq!(a.add(0x1fff, 0x2fff), Err(EINVAL));
        assert_eq!(a.add(0x2000, 0x2fff), Ok(()));
    }

    const RW: Prot = Prot {
        read: true,
        write: true,
    };

    #[test]
    fn fixed_maps_refuse_overlaps_and_reserved_ranges() {
        let t = iopt();
        assert_eq!(map(&t, Some(0x10000), 0x7000_0000, 0x2000, RW), Ok(0x10000));
        assert_eq!(map(&t, Some(0x11000), 0x7000_0000, 0x2000, RW), Err(EEXIST));
        assert_eq!(map(&t, Some(0xf000), 0x7000_0000, 0x1001, RW), Err(EEXIST));
        assert_eq!(map(&t, Some(0x12000), 0x7000_0000, 0x1000, RW), Ok(0x12000));
        assert_eq!(t.reserve(r(0x100000, 0x1fffff), 1), Ok(()));
        assert_eq!(map(&t, Some(0xff000), 0x7000_0000, 0x2000, RW), Err(EINVAL));
        assert_eq!(map(&t, Some(u64::MAX), 0, 2, RW), Err(EOVERFLOW));
        assert_eq!(map(&t, Some(0), u64::MAX, 2, RW), Err(EOVERFLOW));
        assert_eq!(map(&t, Some(0), 0, 0, RW), Err(EINVAL));
        assert_eq!(t.user_address(0x10fff), Some(0x7000_0fff));
        assert_eq!(t.user_address(0x12000), Some(0x7000_0000));
        assert_eq!(t.user_address(0x14000), None);
    }

    #[test]
    fn unmap_takes_whole_areas_only() {
        let t = iopt();
        for iova in [0x1000, 0x3000, 0x5000] {
            assert_eq!(map(&t, Some(iova), 0x7000_0000, 0x2000, RW), Ok(iova));
        }
        assert_eq!(t.unmap(0x8000, 0x9fff), Ok(0));
        assert_eq!(t.unmap(0x1000, 0x1fff), Err(ENOENT));
        assert_eq!(t.unmap(0x1000, 0x4fff), Ok(0x4000));
        // Stops at an area that crosses the end, after unmapping nothing more.
        assert_eq!(t.unmap(0x5000, 0x5fff), Err(ENOENT));
        assert_eq!(t.unmap(0, u64::MAX), Ok(0x2000));
        assert_eq!(t.unmap(0, u64::MAX), Ok(0));
    }

    #[test]
    fn allocated_iovas_follow_upstream_placement() {
        let t = iopt();
        // Never the first page; aligned like the user address.
        assert_eq!(map(&t, None, 0x7f00_0000_1000, 0x1000, RW), Ok(0x1000));
        assert_eq!(map(&t, None, 0x7f00_0000_1000, 0x1000, RW), Ok(0x2000));
        // The page offset of the user address is kept.
        assert_eq!(map(&t, None, 0x1000_0234, 0x100, RW), Ok(0x3234));
        // A 2 MiB-aligned buffer gets a 2 MiB-aligned IOVA.
        assert_eq!(map(&t, None, 0x4000_0000, 0x20_0000, RW), Ok(0x20_0000));
        // Allowed ranges are honoured, and ENOSPC when nothing fits.
        let t = iopt();
        assert_eq!(t.set_allowed(allowed(&[(0x10_0000, 0x10_1fff)])), Ok(()));
        assert_eq!(map(&t, None, 0x7000_0000, 0x1000, RW), Ok(0x10_0000));
        assert_eq!(map(&t, None, 0x7000_0000, 0x1000, RW), Ok(0x10_1000));
        assert_eq!(map(&t, None, 0x7000_0000, 0x1000, RW), Err(ENOSPC));
        assert_eq!(map(&t, None, 0x7000_0000, u64::MAX / 2, RW), Err(EOVERFLOW));
    }

    #[test]
    fn allocation_finds_holes_that_unmaps_and_unreserves_leave() {
        let t = iopt();
        let page = 0x7f00_0000_1000;
        for i in 1..=4 {
            assert_eq!(map(&t, None, page, 0x1000, RW), Ok(i * 0x1000));
        }
        // Unmapping the second makes its IOVA the lowest free one again.
        assert_eq!(t.unmap(0x2000, 0x2fff), Ok(0x1000));
        assert_eq!(map(&t, None, page, 0x1000, RW), Ok(0x2000));
        assert_eq!(map(&t, None, page, 0x1000, RW), Ok(0x5000));
        // A fixed mapping right after the used ones is skipped like them.
        assert_eq!(map(&t, Some(0x6000), page, 0x2000, RW), Ok(0x6000));
        assert_eq!(map(&t, None, page, 0x1000, RW), Ok(0x8000));
        // A range reserved in the middle and given back frees its IOVAs too.
        assert_eq!(t.unmap(0x3000, 0x4fff), Ok(0x2000));
        assert_eq!(t.reserve(r(0x3000, 0x4fff), 7), Ok(()));
        assert_eq!(map(&t, None, page, 0x1000, RW), Ok(0x9000));
        t.unreserve(7);
        assert_eq!(map(&t, None, page, 0x1000, RW), Ok(0x3000));
        // A hole too small for a mapping is passed over, and stays for a smaller one.
        assert_eq!(map(&t, None, page, 0x2000, RW), Ok(0xa000));
        assert_eq!(map(&t, None, page, 0x1000, RW), Ok(0x4000));
    }

    #[test]
    fn copies_share_pages_and_need_contiguous_areas() {
        let src = iopt();
        let dst = iopt();
        let ro = Prot {
            read: true,
            write: false,
        };
        assert_eq!(map(&src, Some(0x1000), 0x7000_0000, 0x2000, RW), Ok(0x1000));
        assert_eq!(map(&src, Some(0x3000), 0x9000_0000, 0x1000, ro), Ok(0x3000));
        assert_eq!(map(&src, Some(0x5000), 0xa000_0000, 0x1000, RW), Ok(0x5000));
        // Two areas, starting inside the first: two slices, one per area.
        let slices = src.get_pages(0x1800, 0x2000).expect("contiguous");
        assert_eq!(slices.len(), 2);
        assert_eq!(
            dst.map_pages(Some(0x10000), &slices, 0x2000, ro),
            Ok(0x10000)
        );
        assert_eq!(dst.user_address(0x10000), Some(0x7000_0800));
        assert_eq!(dst.user_address(0x11800), Some(0x9000_0000));
        // A gap, or nothing at all, is ENOENT; read-only pages cannot be mapped writable.
        assert_eq!(src.get_pages(0x3000, 0x2001).err(), Some(ENOENT));
        assert_eq!(src.get_pages(0x7000, 1).err(), Some(ENOENT));
        assert_eq!(src.get_pages(0x1000, 0).err(), Some(EINVAL));
        let slices = src.get_pages(0x3000, 0x1000).expect("mapped");
        assert_eq!(dst.map_pages(None, &slices, 0x1000, RW), Err(EPERM));
        // The source can go away; the copy keeps the pages.
        assert_eq!(src.unmap(0, u64::MAX), Ok(0x4000));
        assert_eq!(dst.user_address(0x10fff), Some(0x7000_17ff));
    }

    #[test]
    fn mappings_reach_the_top_of_the_address_space() {
        let t = iopt();
        let half = 1u64 << 63;
        assert_eq!(map(&t, Some(0), 0, half, RW), Ok(0));
        assert_eq!(map(&t, Some(half), 0, half, RW), Ok(half));
        assert_eq!(map(&t, Some(u64::MAX), 0, 1, RW), Err(EEXIST));
        assert_eq!(t.user_address(u64::MAX), Some(half - 1));
        assert_eq!(t.unmap(half, u64::MAX), Ok(half));
        assert_eq!(t.unmap(0, u64::MAX), Ok(half));
    }

    #[test]
    fn disabling_large_pages_needs_aligned_mappings() {
        let t = iopt();
        assert_eq!(map(&t, Some(0x1000), 0x7000_0010, 0x1000, RW), Ok(0x1000));
        assert_eq!(t.set_large_pages(false), Err(EADDRINUSE));
        assert!(t.large_pages());
        assert_eq!(t.unmap(0, u64::MAX), Ok(0x1000));
        assert_eq!(map(&t, Some(0x1000), 0x7000_0000, 0x1000, RW), Ok(0x1000));
        assert_eq!(t.set_large_pages(false), Ok(()));
    }

    #[test]
    fn cut_splits_areas_that_keep_sharing_pages() {
        let t = iopt();
        assert_eq!(map(&t, Some(0x10000), 0x7000_0000, 0x4000, RW), Ok(0x10000));
        assert_eq!(t.set_large_pages(false), Ok(()));
        assert_eq!(t.cut(&[0x10800]), Err(EINVAL));
        // Ends of areas and unmapped IOVAs need no cut.
        assert_eq!(t.cut(&[0x10000, 0x13fff, 0x20000]), Ok(()));
        assert_eq!(t.unmap(0x11000, 0x11fff), Err(ENOENT));
        assert_eq!(t.cut(&[0x11fff, 0x10fff]), Ok(()));
        assert_eq!(t.unmap(0x11000, 0x11fff), Ok(0x1000));
        assert_eq!(t.user_address(0x12000), Some(0x7000_2000));
        assert_eq!(t.user_address(0x10fff), Some(0x7000_0fff));
        assert_eq!(t.unmap(0, u64::MAX), Ok(0x3000));
    }

    #[test]
    fn disabled_large_pages_demand_page_alignment() {
        let t = iopt();
        assert_eq!(t.set_large_pages(false), Ok(()));
        assert_eq!(map(&t, Some(0x1000), 0x7000_0000, 0x800, RW), Err(EINVAL));
        assert_eq!(map(&t, Some(0x1800), 0x7000_0000, 0x1000, RW), Err(EINVAL));
        assert_eq!(map(&t, Some(0x1000), 0x7000_0800, 0x1000, RW), Err(EINVAL));
        assert_eq!(map(&t, Some(0x1000), 0x7000_0000, 0x1000, RW), Ok(0x1000));
    }

    #[test]
    fn unreserve_drops_only_that_owners_ranges() {
        let t = iopt();
        assert_eq!(t.reserve(r(0x1000, 0x1fff), 1), Ok(()));
        assert_eq!(t.reserve(r(0x1000, 0x2fff), 2), Ok(()));
        t.unreserve(2);
        assert_eq!(&usable(&t)[..], &[r(0, 0xfff), r(0x2000, u64::MAX)]);
        t.unreserve(1);
        assert_eq!(&usable(&t)[..], &[r(0, u64::MAX)]);
    }

    #[test]
    fn large_pages_toggle() {
        let t = iopt();
        assert!(t.large_pages());
        assert_eq!(t.set_large_pages(false), Ok(()));
        assert!(!t.large_pages());
        assert_eq!(t.usable_ranges().expect("memory").1, PAGE_SIZE as u64);
        assert_eq!(t.set_large_pages(true), Ok(()));
        assert!(t.large_pages());
    }
}
