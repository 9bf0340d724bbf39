// SPDX-License-Identifier: GPL-2.0

//! IOMMU domains as the mapping engine sees them.
//!
//! The io_pagetable keeps every domain attached to its IOAS in step with its areas: a new area
//! is pinned and mapped into all of them, an unmapped area leaves all of them, and a domain
//! attached later is filled with every existing area. The engine does not care what kind of
//! domain it drives: a hardware IOMMU's `struct iommu_domain`, or the mock domain the test
//! ABI makes. Both implement [`Domain`].
//!
//! Mapping an area walks its pinned pages and hands the domain runs of physically contiguous
//! memory, as long as possible, so that a domain can use its largest page sizes and take one
//! call per run instead of one per page.

use crate::{
    io_pagetable::Prot,
    pages::Pages,
    range_map::Range, //
};
use kernel::{
    iommu::domain::PagingDomain,
    iova_bitmap::IovaBitmap,
    page::PAGE_SIZE,
    prelude::*,
    sync::Arc, //
};

/// Physically contiguous memory to map: `length` bytes at `phys` to `iova`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) iova: u64,
    pub(crate) phys: u64,
    pub(crate) length: u64,
}

/// How many runs the engine hands a domain at once.
const RUN_BATCH: usize = 32;

/// What the engine needs of an IOMMU domain.
pub(crate) trait Domain: Send + Sync {
    /// The page sizes the domain can map, as a bitmap of powers of two.
    fn pgsize_bitmap(&self) -> u64;

    /// The IOVA range the domain can translate.
    fn aperture(&self) -> Range;

    /// Maps `length` bytes of physically contiguous memory at `phys` to `iova`. All three are
    /// multiples of the domain's smallest page size. On failure nothing of the range is left
    /// mapped.
    fn map(&self, iova: u64, phys: u64, length: u64, prot: Prot) -> Result;

    /// Maps `runs`, each following the one before in IOVA. On failure nothing of them is left
    /// mapped. A domain whose every call has a fixed cost (a lock, a walk to the right table)
    /// can take them in one go; by default each is one [`Domain::map`].
    fn map_runs(&self, runs: &[Run], prot: Prot) -> Result {
        for (n, r) in runs.iter().enumerate() {
            if let Err(e) = self.map(r.iova, r.phys, r.length, prot) {
                for done in &runs[..n] {
                    self.unmap(done.iova, done.length);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Unmaps `[iova, iova + length)`, which was mapped by earlier calls to [`Domain::map`].
    fn unmap(&self, iova: u64, length: u64);

    /// Whether the domain was made to track dirty pages (`IOMMU_HWPT_ALLOC_DIRTY_TRACKING`):
    /// upstream's `dirty_ops`. Only such a domain takes the two calls below.
    fn dirty_capable(&self) -> bool {
        false
    }

    /// Starts or stops recording which pages devices write to. `EOPNOTSUPP` for a domain that
    /// cannot track them.
    fn set_dirty_tracking(&self, _enable: bool) -> Result {
        Err(EOPNOTSUPP)
    }

    /// Reports the dirty pages of `[iova, iova + length)` into `bitmap` (each dirty entry of
    /// the page table as a whole, whatever its page size), and marks them clean unless
    /// `no_clear`. With no `bitmap` it only cleans them. `EOPNOTSUPP` for a domain that cannot
    /// track dirty pages.
    fn read_and_clear_dirty(
        &self,
        _iova: u64,
        _length: u64,
        _no_clear: bool,
        _bitmap: Option<&mut IovaBitmap>,
    ) -> Result {
        Err(EOPNOTSUPP)
    }

    /// The hardware IOMMU's domain behind this one, which real devices attach to; `None` for
    /// a domain no hardware walks (the mock domain).
    fn iommu_domain(&self) -> Option<&Arc<PagingDomain>> {
        None
    }

    /// The smallest page size: the alignment every mapping must have.
    fn min_page_size(&self) -> u64 {
        let bitmap = self.pgsize_bitmap();
        if bitmap == 0 {
            return PAGE_SIZE as u64;
        }
        1 << bitmap.trailing_zeros()
    }
}

/// The largest page size of `bitmap` that fits `length` bytes from `iova` and `phys`, both of
/// which it must divide; `None` if even the smallest does not.
#[inline]
pub(crate) fn page_size_for(bitmap: u64, iova: u64, phys: u64, length: u64) -> Option<u64> {
    if length == 0 {
        return None;
    }
    let align = (iova | phys).trailing_zeros().min(63);
    let fits = bitmap & (u64::MAX >> (63 - align)) & (u64::MAX >> length.leading_zeros());
    (fits != 0).then(|| 1 << (63 - fits.leading_zeros()))
}

/// The runs [`map_pages`] hands a domain at once, and how many bytes of those handed over so
/// far it has mapped.
struct Batch<'a> {
    domain: &'a dyn Domain,
    prot: Prot,
    /// Made only for a second run: most mappings are one (a page, a huge page).
    runs: Option<[Run; RUN_BATCH]>,
    n: usize,
    mapped: u64,
}

impl Batch<'_> {
    /// Queues `run`, handing the batch over first if it is full.
    fn push(&mut self, run: Run) -> Result {
        let runs = self.runs.get_or_insert([run; RUN_BATCH]);
        if self.n == RUN_BATCH {
            self.domain.map_runs(runs, self.prot)?;
            self.mapped += runs.iter().map(|r| r.length).sum::<u64>();
            self.n = 0;
        }
        runs[self.n] = run;
        self.n += 1;
        Ok(())
    }

    /// Hands over `last` with the runs queued before it; a lone run goes without a batch.
    fn finish(&mut self, last: Run) -> Result {
        if self.runs.is_none() {
            return self
                .domain
                .map_runs(core::slice::from_ref(&last), self.prot);
        }
        self.push(last)?;
        match &self.runs {
            Some(runs) => self.domain.map_runs(&runs[..self.n], self.prot),
            None => Ok(()),
        }
    }
}

/// Maps bytes `start..start + length` of `pages` (which must be pinned) to `iova` in `domain`,
/// in runs of physically contiguous memory, handed over [`RUN_BATCH`] at a time. Without
/// `large_pages` (`IOMMU_OPTION_HUGE_PAGES` off) every CPU page is a run of its own, so that
/// the domain maps no page larger than that, as upstream. On failure what this call mapped is
/// unmapped.
pub(crate) fn map_pages(
    domain: &dyn Domain,
    pages: &Pages,
    start: u64,
    length: u64,
    iova: u64,
    prot: Prot,
    large_pages: bool,
) -> Result {
    let page = PAGE_SIZE as u64;
    let end = start + length;
    // The run that may still grow, and the ones before it not yet mapped.
    let mut last: Option<Run> = None;
    let mut batch = Batch {
        domain,
        prot,
        runs: None,
        n: 0,
        mapped: 0,
    };
    let res = pages.for_each_run(
        Pages::index(start),
        Pages::index(end - 1),
        |i, phys, npages| {
            let run_start = i as u64 * page;
            let from = start.max(run_start);
            let to = end.min(run_start + npages as u64 * page);
            let mut from = from;
            while from < to {
                // Without large pages, up to the next CPU page boundary of the IOVA.
                let cut = if large_pages {
                    to
                } else {
                    to.min((iova + (from - start)) / page * page + page - iova + start)
                };
                let chunk = Run {
                    iova: iova + (from - start),
                    phys: phys + (from - run_start),
                    length: cut - from,
                };
                from = cut;
                if let Some(run) = &mut last {
                    if large_pages
                        && run.phys + run.length == chunk.phys
                        && run.iova + run.length == chunk.iova
                    {
                        run.length += chunk.length;
                        continue;
                    }
                    batch.push(*run)?;
                }
                last = Some(chunk);
            }
            Ok(())
        },
    );
    let res = res.and_then(|()| last.map_or(Ok(()), |run| batch.finish(run)));
    if res.is_err() && batch.mapped != 0 {
        domain.unmap(iova, batch.mapped);
    }
    res
}

#[kunit_tests(rust_iommufd_domain)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        let sizes = (1 << 12) | (1 << 21) | (1 << 30);
        assert_eq!(page_size_for(sizes, 0, 0, 1 << 30), Some(1 << 30));
        assert_eq!(page_size_for(sizes, 1 << 21, 0, 1 << 30), Some(1 << 21));
        assert_eq!(page_size_for(sizes, 0, 0, (1 << 21) - 1), Some(1 << 12));
        assert_eq!(page_size_for(sizes, 0x800, 0, 1 << 21), None);
        assert_eq!(page_size_for(sizes, 0, 0x1000, 1 << 21), Some(1 << 12));
        assert_eq!(page_size_for(sizes, 0, 0, 0x800), None);
        assert_eq!(page_size_for(1 << 11, 0x800, 0x1800, 0x1000), Some(1 << 11));
    }
}
