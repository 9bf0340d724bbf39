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
//! - The IOVA alignment every mapping must honour: 1 while no IOMMU domain is attached.
//!
//! The mapped areas and the pinned pages behind them build on this.
//!
//! Locking: `tables` is taken for every query and update; it is never held across a copy to
//! or from userspace (callers copy the answer out after the lock is dropped).

use crate::range_map::{
    Range,
    RangeMap,
    RangeReservation, //
};
use kernel::{
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::Mutex, //
};

/// A reserved range and who reserved it.
#[derive(Copy, Clone)]
struct Reserved {
    range: Range,
    owner: usize,
}

struct Tables {
    allowed: RangeMap<()>,
    /// Sorted by start; may overlap.
    reserved: KVec<Reserved>,
    large_pages: bool,
}

impl Tables {
    /// The alignment every mapped IOVA must have: 1 for a table no domain is attached to,
    /// `PAGE_SIZE` when large pages are disabled (so every mapping can be split into pages).
    fn iova_alignment(&self) -> u64 {
        if self.large_pages {
            1
        } else {
            PAGE_SIZE as u64
        }
    }
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
        self.0.insert(Range { start, last }, (), mem)
    }
}

#[pin_data]
pub(crate) struct IoPagetable {
    #[pin]
    tables: Mutex<Tables>,
}

impl IoPagetable {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            tables <- new_mutex!(Tables {
                allowed: RangeMap::new(),
                reserved: KVec::new(),
                large_pages: true,
            }),
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

    /// Reserves `range` for `owner`; `EADDRINUSE` if an allowed range intersects it.
    #[cfg_attr(
        not(CONFIG_KUNIT = "y"),
        expect(
            dead_code,
            reason = "devices and domains, which reserve ranges, come next"
        )
    )]
    pub(crate) fn reserve(&self, range: Range, owner: usize) -> Result {
        let mut t = self.tables.lock();
        if t.allowed.first_overlap(range).is_some() {
            return Err(EADDRINUSE);
        }
        t.reserved
            .push(Reserved { range, owner }, GFP_KERNEL_ACCOUNT)?;
        t.reserved.sort_unstable_by_key(|r| r.range.start);
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
        self.tables.lock().reserved.retain(|r| r.owner != owner);
    }

    /// Whether mappings may use pages larger than `PAGE_SIZE` in IOMMU domains.
    pub(crate) fn large_pages(&self) -> bool {
        self.tables.lock().large_pages
    }

    /// Enables or disables large pages, which sets the IOVA alignment. With no domain attached
    /// nothing is mapped in one, so the change always takes effect.
    pub(crate) fn set_large_pages(&self, enable: bool) -> Result {
        self.tables.lock().large_pages = enable;
        Ok(())
    }
}

#[kunit_tests(rust_iommufd_io_pagetable)]
mod tests {
    use super::*;
    use kernel::alloc::KBox;

    fn iopt() -> Pin<KBox<IoPagetable>> {
        KBox::pin_init(IoPagetable::new(), GFP_KERNEL).expect("memory")
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
