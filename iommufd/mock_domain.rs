// SPDX-License-Identifier: GPL-2.0

//! The mock IOMMU domain of the test ABI (`IOMMUFD_TEST`).
//!
//! It behaves like a hardware page table without hardware: it has its own page sizes and
//! aperture (those of upstream's default mock: 2 KiB pages, smaller than the CPU's, and the
//! aperture `[MOCK_APERTURE_START, MOCK_APERTURE_LAST]`) and a page table that tests read back through `IOMMU_TEST_OP_MD_CHECK_MAP`, so
//! they can check that the engine mapped exactly the memory it should, where it should.
//!
//! The table is a sparse radix of leaves, each holding 512 entries of the smallest page size;
//! a larger page fills the entries it covers and records its size in each.

use crate::{
    domain::{
        page_size_for,
        Domain,
        Run, //
    },
    io_pagetable::Prot,
    range_map::Range, //
};
use kernel::{
    bindings, //
    new_mutex,
    prelude::*,
    rbtree::RBTree,
    sync::{
        Arc,
        Mutex, //
    },
};

const LEAF_ENTRIES: usize = 512;
const VALID: u64 = 1;
const READ: u64 = 2;
const WRITE: u64 = 4;
/// Bits 3..9 hold log2 of the size of the page an entry belongs to.
const SIZE_SHIFT: u32 = 3;
const SIZE_MASK: u64 = 0x3f << SIZE_SHIFT;

type Leaf = [u64; LEAF_ENTRIES];

/// A mock IOMMU domain.
#[pin_data]
pub(crate) struct MockDomain {
    pgsize_bitmap: u64,
    /// log2 of the smallest page size: the size of one entry.
    shift: u32,
    aperture: Range,
    #[pin]
    table: Mutex<RBTree<u64, KBox<Leaf>>>,
}

impl MockDomain {
    /// A domain like upstream's default mock: 2 KiB pages and every larger power of two up to
    /// 1 GiB, within the mock aperture.
    pub(crate) fn new_default() -> Result<Arc<Self>> {
        let page = u64::from(bindings::MOCK_PAGE_SIZE);
        Self::new(
            ((1u64 << 31) - 1) & !(page - 1),
            Range {
                start: u64::from(bindings::MOCK_APERTURE_START),
                last: u64::from(bindings::MOCK_APERTURE_LAST),
            },
        )
    }

    fn new(pgsize_bitmap: u64, aperture: Range) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                pgsize_bitmap,
                shift: pgsize_bitmap.trailing_zeros(),
                aperture,
                table <- new_mutex!(RBTree::new()),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    fn locate(&self, iova: u64) -> (u64, usize) {
        let entry = iova >> self.shift;
        (
            entry / LEAF_ENTRIES as u64,
            (entry % LEAF_ENTRIES as u64) as usize,
        )
    }

    /// Sets the entries for `runs`, which follow each other in IOVA from `iova` for `length`
    /// bytes in all, each with the largest page sizes that fit it, under one lock. Leaves are
    /// allocated as needed. `EADDRINUSE` if an entry is already set, `EINVAL` for a run no page
    /// size fits; nothing changes on failure.
    fn set_runs(&self, runs: &[Run], iova: u64, length: u64, perm: u64) -> Result {
        let step = 1u64 << self.shift;
        let end = iova + length;
        let mut table = self.table.lock();
        let mut at = iova;
        while at < end {
            let (key, index) = self.locate(at);
            let Some(leaf) = table.get(&key) else {
                at = ((key + 1) * LEAF_ENTRIES as u64) << self.shift;
                continue;
            };
            for entry in &leaf[index..] {
                if at >= end {
                    break;
                }
                if *entry & VALID != 0 {
                    return Err(EADDRINUSE);
                }
                at += step;
            }
        }
        let mut values = Entries::new(self, runs, perm);
        let mut at = iova;
        let mut res = Ok(());
        while at < end {
            let (key, index) = self.locate(at);
            if table.get(&key).is_none() {
                let added = KBox::new([0u64; LEAF_ENTRIES], GFP_KERNEL_ACCOUNT)
                    .map_err(Error::from)
                    .and_then(|leaf| {
                        table
                            .try_create_and_insert(key, leaf, GFP_KERNEL_ACCOUNT)
                            .map(|_| ())
                    });
                if let Err(e) = added {
                    res = Err(e);
                    break;
                }
            }
            let Some(leaf) = table.get_mut(&key) else {
                res = Err(ENOMEM);
                break;
            };
            let n = (LEAF_ENTRIES - index).min(((end - at) >> self.shift) as usize);
            if let Err(e) = values.fill(&mut leaf[index..index + n]) {
                res = Err(e);
                break;
            }
            at += (n as u64) << self.shift;
        }
        if res.is_err() {
            // Every entry of the range was clear before (checked above): clear them all again.
            drop(table);
            self.clear(iova, length);
        }
        res
    }

    /// Clears the entries of `[iova, iova + length)`; returns how many bytes were mapped.
    fn clear(&self, iova: u64, length: u64) -> u64 {
        let step = 1u64 << self.shift;
        let mut table = self.table.lock();
        let mut cleared = 0;
        let mut at = iova;
        while at < iova + length {
            let (key, index) = self.locate(at);
            let Some(leaf) = table.get_mut(&key) else {
                at = ((key + 1) * LEAF_ENTRIES as u64) << self.shift;
                continue;
            };
            for entry in &mut leaf[index..] {
                if at >= iova + length {
                    break;
                }
                if *entry & VALID != 0 {
                    cleared += step;
                }
                *entry = 0;
                at += step;
            }
        }
        cleared
    }

    /// The physical address `iova` translates to, and the size of the page holding it.
    pub(crate) fn translate(&self, iova: u64) -> Option<(u64, u64)> {
        let (key, index) = self.locate(iova);
        let table = self.table.lock();
        let entry = table.get(&key)?[index];
        if entry & VALID == 0 {
            return None;
        }
        let base = entry & !((1u64 << self.shift) - 1);
        let size = 1u64 << ((entry & SIZE_MASK) >> SIZE_SHIFT);
        Some((base + (iova & ((1u64 << self.shift) - 1)), size))
    }
}

/// The page-table entries for runs of memory, one per smallest page, in IOVA order: each run
/// is cut into the largest pages that fit it, and each entry records its page's size.
struct Entries<'a> {
    domain: &'a MockDomain,
    runs: &'a [Run],
    perm: u64,
    /// Bytes of `runs[0]` already produced.
    done: u64,
    /// The page being produced: its IOVA, physical address, size and entry bits.
    page: Option<(u64, u64, u64, u64)>,
    /// Bytes of that page already produced.
    in_page: u64,
}

impl<'a> Entries<'a> {
    fn new(domain: &'a MockDomain, runs: &'a [Run], perm: u64) -> Self {
        Self {
            domain,
            runs,
            perm,
            done: 0,
            page: None,
            in_page: 0,
        }
    }
}

impl Entries<'_> {
    /// Fills `out` with the next entries, a page at a time; `EINVAL` if a run fits no page
    /// size or the runs end first.
    fn fill(&mut self, out: &mut [u64]) -> Result {
        let shift = self.domain.shift;
        let mut i = 0;
        while i < out.len() {
            if self.page.is_none() {
                let run = self.runs.first().ok_or(EINVAL)?;
                let (at, pa) = (run.iova + self.done, run.phys + self.done);
                let size = page_size_for(self.domain.pgsize_bitmap, at, pa, run.length - self.done)
                    .ok_or(EINVAL)?;
                let bits = self.perm | (u64::from(size.trailing_zeros()) << SIZE_SHIFT);
                self.page = Some((at, pa, size, bits));
                self.in_page = 0;
            }
            let (_, pa, size, bits) = self.page.ok_or(EINVAL)?;
            let n = (((size - self.in_page) >> shift) as usize).min(out.len() - i);
            let mut value = (pa + self.in_page) | bits;
            for entry in &mut out[i..i + n] {
                *entry = value;
                value += 1 << shift;
            }
            i += n;
            self.in_page += (n as u64) << shift;
            if self.in_page == size {
                self.page = None;
                self.done += size;
                if self.runs.first().is_some_and(|r| self.done == r.length) {
                    self.runs = &self.runs[1..];
                    self.done = 0;
                }
            }
        }
        Ok(())
    }
}

impl Domain for MockDomain {
    fn pgsize_bitmap(&self) -> u64 {
        self.pgsize_bitmap
    }

    fn aperture(&self) -> Range {
        self.aperture
    }

    fn map(&self, iova: u64, phys: u64, length: u64, prot: Prot) -> Result {
        self.map_runs(&[Run { iova, phys, length }], prot)
    }

    fn map_runs(&self, runs: &[Run], prot: Prot) -> Result {
        let Some(first) = runs.first() else {
            return Ok(());
        };
        let mut length = 0u64;
        for r in runs {
            if r.length == 0 || r.iova != first.iova.wrapping_add(length) {
                return Err(EINVAL);
            }
            length = length.checked_add(r.length).ok_or(EINVAL)?;
        }
        let in_aperture = first.iova >= self.aperture.start
            && first
                .iova
                .checked_add(length - 1)
                .is_some_and(|last| last <= self.aperture.last);
        if !in_aperture {
            return Err(EINVAL);
        }
        let perm = VALID | if prot.read { READ } else { 0 } | if prot.write { WRITE } else { 0 };
        self.set_runs(runs, first.iova, length, perm)
    }

    fn unmap(&self, iova: u64, length: u64) {
        self.clear(iova, length);
    }
}

#[kunit_tests(rust_iommufd_mock_domain)]
mod tests {
    use super::*;

    const RW: Prot = Prot {
        read: true,
        write: true,
    };
    const START: u64 = bindings::MOCK_APERTURE_START as u64;

    #[test]
    fn maps_with_the_largest_pages_that_fit() {
        let d = MockDomain::new_default().expect("memory");
        // 1 MiB + 2 KiB, aligned to 1 MiB: one 1 MiB page and one 2 KiB page.
        let len = (1 << 20) + 0x800;
        assert_eq!(d.map(START, 0x4000_0000, len, RW), Ok(()));
        assert_eq!(d.translate(START), Some((0x4000_0000, 1 << 20)));
        assert_eq!(d.translate(START + 0x1234), Some((0x4000_1234, 1 << 20)));
        assert_eq!(
            d.translate(START + (1 << 20) + 0x10),
            Some((0x4010_0010, 0x800))
        );
        assert_eq!(d.translate(START + len), None);
        // Misaligned physical memory: small pages only.
        assert_eq!(d.map(START + (4 << 20), 0x800, 0x2000, RW), Ok(()));
        assert_eq!(
            d.translate(START + (4 << 20) + 0x1000),
            Some((0x1800, 0x800))
        );
    }

    #[test]
    fn a_failed_map_changes_nothing() {
        let d = MockDomain::new_default().expect("memory");
        assert_eq!(d.map(START + 0x1000, 0x10_0000, 0x800, RW), Ok(()));
        // Overlaps the page at START + 0x1000: refused, and the pages before it stay unmapped.
        assert_eq!(d.map(START, 0x20_0000, 0x2000, RW), Err(EADDRINUSE));
        assert_eq!(d.translate(START), None);
        assert_eq!(d.translate(START + 0x1000), Some((0x10_0000, 0x800)));
        // Outside the aperture, or empty.
        assert_eq!(d.map(START - 0x800, 0, 0x800, RW), Err(EINVAL));
        assert_eq!(d.map(START, 0, 0, RW), Err(EINVAL));
        let last = u64::from(bindings::MOCK_APERTURE_LAST);
        assert_eq!(d.map(last - 0x7ff, 0, 0x1000, RW), Err(EINVAL));
    }

    #[test]
    fn runs_map_in_one_go_or_not_at_all() {
        let d = MockDomain::new_default().expect("memory");
        // Three runs back to back in IOVA, scattered in memory, across a leaf boundary (a leaf
        // covers 1 MiB of 2 KiB entries).
        let base = START + (1 << 20) - 0x1000;
        let runs = [
            Run {
                iova: base,
                phys: 0x70_0000,
                length: 0x1000,
            },
            Run {
                iova: base + 0x1000,
                phys: 0x30_0000,
                length: 0x2000,
            },
            Run {
                iova: base + 0x3000,
                phys: 0x90_0800,
                length: 0x800,
            },
        ];
        assert_eq!(d.map_runs(&runs, RW), Ok(()));
        assert_eq!(d.translate(base + 0x800), Some((0x70_0800, 0x1000)));
        assert_eq!(d.translate(base + 0x1800), Some((0x30_0800, 0x2000)));
        assert_eq!(d.translate(base + 0x3000), Some((0x90_0800, 0x800)));
        // Runs that are not back to back in IOVA are refused.
        let gap = [runs[0], runs[2]];
        assert_eq!(d.map_runs(&gap, RW), Err(EINVAL));
        // A batch that runs into a mapped entry changes nothing.
        let d2 = MockDomain::new_default().expect("memory");
        assert_eq!(d2.map(base + 0x3000, 0x1000, 0x800, RW), Ok(()));
        assert_eq!(d2.map_runs(&runs, RW), Err(EADDRINUSE));
        assert_eq!(d2.translate(base), None);
        assert_eq!(d2.translate(base + 0x1000), None);
        assert_eq!(d2.translate(base + 0x3000), Some((0x1000, 0x800)));
    }

    #[test]
    fn unmap_clears_only_its_range() {
        let d = MockDomain::new_default().expect("memory");
        // One 16 KiB page; clearing part of it leaves the rest translating.
        assert_eq!(d.map(START, 0x10_0000, 0x4000, RW), Ok(()));
        assert_eq!(d.clear(START + 0x1000, 0x1000), 0x1000);
        assert_eq!(d.translate(START + 0x800), Some((0x10_0800, 0x4000)));
        assert_eq!(d.translate(START + 0x1000), None);
        assert_eq!(d.translate(START + 0x2000), Some((0x10_2000, 0x4000)));
        // Clearing what is not mapped counts nothing, across missing leaves too.
        assert_eq!(d.clear(START + (64 << 20), 4 << 20), 0);
    }
}
