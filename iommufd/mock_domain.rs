// SPDX-License-Identifier: GPL-2.0

//! The mock IOMMU domain of the test ABI (`IOMMUFD_TEST`).
//!
//! It behaves like a hardware page table without hardware: it has its own page sizes and
//! aperture (those of upstream's default mock: 2 KiB pages, smaller than the CPU's, and the
//! aperture `[MOCK_APERTURE_START, MOCK_APERTURE_LAST]`) and a page table that tests read back through `IOMMU_TEST_OP_MD_CHECK_MAP`, so
//! they can check that the engine mapped exactly the memory it should, where it should.
//!
//! The table is sparse, in three levels of leaves of 512 entries: entries of the smallest page
//! size, of 512 times that (1 MiB) and of 512² times that (512 MiB). A page goes in the highest
//! level whose entries are no larger than it and takes as many entries there as it covers,
//! each recording the page's size: a 2 MiB page is two entries, not 1024, so mapping huge
//! pages costs what it costs a hardware page table.
//!
//! A domain made for dirty tracking keeps a dirty bit in each entry. The test ABI plays the
//! device writing (`IOMMU_TEST_OP_DIRTY`): every entry of the page written is marked, so that
//! a page is reported dirty whole, at the size it was mapped with, as a hardware IOMMU reports
//! its entries.

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
    iova_bitmap::IovaBitmap,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::RBTree,
    sync::{
        atomic::{
            ordering::Relaxed,
            Atomic, //
        },
        Arc,
        Mutex, //
    },
};

const LEAF_ENTRIES: usize = 512;
/// log2 of [`LEAF_ENTRIES`]: an entry of one level maps 512 times what one of the level below
/// maps.
const LEVEL_BITS: u32 = 9;
/// Levels of the table: entries of the smallest page size (2 KiB), of 1 MiB, of 512 MiB.
const LEVELS: usize = 3;
const VALID: u64 = 1;
const READ: u64 = 2;
const WRITE: u64 = 4;
/// Bits 3..9 hold log2 of the size of the page an entry belongs to.
const SIZE_SHIFT: u32 = 3;
const SIZE_MASK: u64 = 0x3f << SIZE_SHIFT;
/// A device wrote to the page since the bit was last cleared. Every entry of a page gets it
/// at once, so that a page is dirty or clean as a whole, as a hardware page table's entry is.
/// (Below the smallest page size, like the bits above: no address uses it.)
const DIRTY: u64 = 1 << 9;

/// A leaf of the table: its entries, and how many of them are set, so that emptying one is
/// seen without a look at every entry.
#[derive(pin_init::Zeroable)]
struct Leaf {
    entries: [u64; LEAF_ENTRIES],
    used: usize,
}

/// One level of the table: its leaves, by index.
type Level = RBTree<u64, KBox<Leaf>>;

/// A mock IOMMU domain.
#[pin_data]
pub(crate) struct MockDomain {
    pgsize_bitmap: u64,
    /// log2 of the smallest page size: the size of an entry of level 0.
    shift: u32,
    aperture: Range,
    /// Made to track dirty pages (`IOMMU_HWPT_ALLOC_DIRTY_TRACKING`).
    dirty_capable: bool,
    /// Tracking is on (upstream's `MOCK_DIRTY_TRACK`): only then may the test ABI mark pages
    /// dirty.
    tracking: Atomic<bool>,
    #[pin]
    table: Mutex<[Level; LEVELS]>,
}

impl MockDomain {
    /// A domain like upstream's default mock: 2 KiB pages and every larger power of two up to
    /// 1 GiB, within the mock aperture.
    pub(crate) fn new_default() -> Result<Arc<Self>> {
        Self::new_paging(false, false)
    }

    /// A domain of the kind `IOMMU_HWPT_ALLOC` asks for: the default one, or with `huge`
    /// (`MOCK_IOMMUPT_HUGE`) one that maps only `MOCK_HUGE_PAGE_SIZE` pages and CPU pages, over
    /// the whole address space of upstream's mock page table (2^56 bytes), as upstream. With
    /// `dirty` it can track dirty pages.
    pub(crate) fn new_paging(huge: bool, dirty: bool) -> Result<Arc<Self>> {
        let page = u64::from(bindings::MOCK_PAGE_SIZE);
        let (pgsize_bitmap, aperture) = if huge {
            (
                u64::from(bindings::MOCK_HUGE_PAGE_SIZE) | PAGE_SIZE as u64,
                Range {
                    start: 0,
                    last: (1 << 56) - 1,
                },
            )
        } else {
            (
                ((1u64 << 31) - 1) & !(page - 1),
                Range {
                    start: u64::from(bindings::MOCK_APERTURE_START),
                    last: u64::from(bindings::MOCK_APERTURE_LAST),
                },
            )
        };
        Arc::pin_init(
            pin_init!(Self {
                pgsize_bitmap,
                // Entries of level 0 are of the mock's page size even where the smallest page
                // is larger, so that a huge page takes one entry of level 1.
                shift: page.trailing_zeros(),
                aperture,
                dirty_capable: dirty,
                tracking: Atomic::new(false),
                table <- new_mutex!([RBTree::new(), RBTree::new(), RBTree::new()]),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Whether dirty tracking is on.
    pub(crate) fn tracking(&self) -> bool {
        self.tracking.load(Relaxed)
    }

    /// The first IOVA and the size of the page mapping `iova`, if any.
    fn page_at(&self, table: &[Level; LEVELS], iova: u64) -> Option<(u64, u64)> {
        let (_, _, entry) = self.lookup(table, iova)?;
        let size = 1u64 << ((entry & SIZE_MASK) >> SIZE_SHIFT);
        Some((iova & !(size - 1), size))
    }

    /// The level and the mask of the entry size of the valid entry mapping `iova`, and the
    /// entry.
    fn lookup(&self, table: &[Level; LEVELS], iova: u64) -> Option<(usize, u64, u64)> {
        for (level, t) in table.iter().enumerate().rev() {
            let (key, index) = self.locate(level, iova);
            let Some(&entry) = t.get(&key).and_then(|leaf| leaf.entries.get(index)) else {
                continue;
            };
            if entry & VALID != 0 {
                return Some((level, (1u64 << self.entry_shift(level)) - 1, entry));
            }
        }
        None
    }

    /// Marks the pages that map any part of `[iova, iova + length)` dirty, each as a whole
    /// (upstream's mock `set_dirty`, for `IOMMU_TEST_OP_DIRTY`).
    pub(crate) fn mark_dirty(&self, iova: u64, length: u64) {
        let Some(last) = length.checked_sub(1).and_then(|l| iova.checked_add(l)) else {
            return;
        };
        let mut table = self.table.lock();
        let first = self.page_at(&table, iova).map_or(iova, |(start, _)| start);
        let last = self
            .page_at(&table, last)
            .map_or(last, |(start, size)| start + (size - 1));
        for (level, t) in table.iter_mut().enumerate() {
            self.for_each_leaf(t, level, first, last, false, |_, entries| {
                for entry in entries.iter_mut().filter(|e| **e & VALID != 0) {
                    *entry |= DIRTY;
                }
                0
            });
        }
    }

    /// log2 of the size an entry of `level` maps.
    #[inline]
    fn entry_shift(&self, level: usize) -> u32 {
        self.shift + LEVEL_BITS * level as u32
    }

    /// The level a page of `size` bytes goes in: the highest whose entries are no larger. The
    /// page takes as many entries there as it needs, like the contiguous entries of hardware
    /// page tables.
    #[inline]
    fn level_for(&self, size: u64) -> usize {
        let above = size.trailing_zeros().saturating_sub(self.shift) / LEVEL_BITS;
        (above as usize).min(LEVELS - 1)
    }

    /// The leaf of `level` holding the entry for `iova`, and the entry's index in it.
    #[inline]
    fn locate(&self, level: usize, iova: u64) -> (u64, usize) {
        let entry = iova >> self.entry_shift(level);
        (
            entry >> LEVEL_BITS,
            (entry & (LEAF_ENTRIES as u64 - 1)) as usize,
        )
    }

    /// Calls `f` with the entries of each existing leaf of `level` for `first..=last` (the
    /// entries that map any part of it) and the IOVA the first of them maps. With `prune`, a
    /// leaf that `f` leaves with no entry set is freed, so that later walks do not go through
    /// leaves of mappings long gone; the leaf's count of set entries follows what `f` did to
    /// the entries it was given: `f` returns how many of them it emptied (set before, zero
    /// after). Without it, `f` must not set or clear entries, and returns 0.
    fn for_each_leaf(
        &self,
        table: &mut Level,
        level: usize,
        first: u64,
        last: u64,
        prune: bool,
        mut f: impl FnMut(u64, &mut [u64]) -> usize,
    ) {
        let (k0, i0) = self.locate(level, first);
        let (k1, i1) = self.locate(level, last);
        let mut cursor = table.cursor_lower_bound_mut(&k0);
        while let Some(mut c) = cursor {
            let (&key, leaf) = c.current_mut();
            if key > k1 {
                break;
            }
            let lo = if key == k0 { i0 } else { 0 };
            let hi = if key == k1 { i1 + 1 } else { LEAF_ENTRIES };
            let first_entry = (key << LEVEL_BITS) + lo as u64;
            let entries = &mut leaf.entries[lo..hi];
            if !prune {
                f(first_entry << self.entry_shift(level), entries);
                cursor = c.move_next();
                continue;
            }
            let emptied = f(first_entry << self.entry_shift(level), entries);
            leaf.used = leaf.used.saturating_sub(emptied);
            if leaf.used == 0 {
                // The cursor moves to the next leaf, or back to the previous one if this was
                // the last: that one is done with.
                cursor = c.remove_current().0.filter(|n| *n.current().0 > key);
            } else {
                cursor = c.move_next();
            }
        }
    }

    /// Sets the entries for `runs`, which follow each other in IOVA from `iova` for `length`
    /// bytes in all, each with the largest page sizes that fit it, under one lock. Leaves are
    /// allocated as needed. `EADDRINUSE` if an entry is already set, `EINVAL` for a run no page
    /// size fits; nothing changes on failure.
    fn set_runs(&self, runs: &[Run], iova: u64, length: u64, perm: u64) -> Result {
        let last = iova + (length - 1);
        let mut table = self.table.lock();
        let mut used = false;
        for (level, t) in table.iter_mut().enumerate() {
            self.for_each_leaf(t, level, iova, last, false, |_, entries| {
                used |= entries.iter().any(|e| e & VALID != 0);
                0
            });
        }
        if used {
            return Err(EADDRINUSE);
        }
        let res = self.write(&mut table, runs, perm);
        if res.is_err() {
            // Every entry of the range was clear before (checked above): clear them all again.
            self.clear_locked(&mut table, iova, last);
        }
        res
    }

    /// Writes the entries of the pages `runs` are cut into (each the largest page size that
    /// fits where it starts). The leaf written last is kept at hand, so that the pages that
    /// fall in one leaf cost one lookup of it: a run of 4 KiB pages writes its entries with
    /// little more than the stores. `EINVAL` at a run no page size fits.
    fn write(&self, table: &mut [Level; LEVELS], runs: &[Run], perm: u64) -> Result {
        // The leaf at hand, and its level and key.
        let mut leaf: Option<&mut Leaf> = None;
        let mut leaf_id = (LEVELS, 0);
        for run in runs {
            let mut done = 0;
            while done < run.length {
                let (iova, phys) = (run.iova + done, run.phys + done);
                let size = page_size_for(self.pgsize_bitmap, iova, phys, run.length - done)
                    .ok_or(EINVAL)?;
                let level = self.level_for(size);
                let shift = self.entry_shift(level);
                let mut value = phys | perm | (u64::from(size.trailing_zeros()) << SIZE_SHIFT);
                let (mut at, end) = (iova, iova + size);
                while at < end {
                    let (key, index) = self.locate(level, at);
                    if leaf_id != (level, key) {
                        leaf = Some(leaf_mut(&mut table[level], key)?);
                        leaf_id = (level, key);
                    }
                    let Some(entries) = leaf.as_deref_mut() else {
                        return Err(EINVAL);
                    };
                    let n = (((end - at) >> shift) as usize).min(LEAF_ENTRIES - index);
                    // All clear before (checked by the caller).
                    entries.used += n;
                    for entry in &mut entries.entries[index..index + n] {
                        *entry = value;
                        value += 1 << shift;
                    }
                    at += (n as u64) << shift;
                }
                done += size;
            }
        }
        Ok(())
    }

    /// Clears the entries of `[iova, iova + length)`; returns how many bytes were mapped.
    fn clear(&self, iova: u64, length: u64) -> u64 {
        let Some(last) = length.checked_sub(1).and_then(|l| iova.checked_add(l)) else {
            return 0;
        };
        self.clear_locked(&mut self.table.lock(), iova, last)
    }

    /// Clears the entries for `first..=last` (all of a large page that any part of it holds).
    fn clear_locked(&self, table: &mut [Level; LEVELS], first: u64, last: u64) -> u64 {
        let mut cleared = 0;
        for (level, t) in table.iter_mut().enumerate() {
            let size = 1u64 << self.entry_shift(level);
            self.for_each_leaf(t, level, first, last, true, |_, entries| {
                let mut emptied = 0;
                for entry in entries {
                    if *entry & VALID != 0 {
                        cleared += size;
                    }
                    if *entry != 0 {
                        emptied += 1;
                    }
                    *entry = 0;
                }
                emptied
            });
        }
        cleared
    }

    /// The physical address `iova` translates to, and the size of the page holding it.
    pub(crate) fn translate(&self, iova: u64) -> Option<(u64, u64)> {
        let table = self.table.lock();
        let (_, mask, entry) = self.lookup(&table, iova)?;
        let size = 1u64 << ((entry & SIZE_MASK) >> SIZE_SHIFT);
        Some(((entry & !mask) + (iova & mask), size))
    }
}

/// Leaf `key` of `level`, allocated (empty) if it was not there.
fn leaf_mut(level: &mut Level, key: u64) -> Result<&mut Leaf> {
    if level.get(&key).is_none() {
        // Made in place: 16 KiB is too much for the stack.
        let leaf = KBox::init(pin_init::zeroed::<Leaf>(), GFP_KERNEL_ACCOUNT)?;
        level.try_create_and_insert(key, leaf, GFP_KERNEL_ACCOUNT)?;
    }
    level.get_mut(&key).map(|leaf| &mut **leaf).ok_or(ENOMEM)
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

    fn dirty_capable(&self) -> bool {
        self.dirty_capable
    }

    /// `EINVAL` to turn tracking on in a domain not made for it, as upstream's mock.
    fn set_dirty_tracking(&self, enable: bool) -> Result {
        if enable && !self.dirty_capable {
            return Err(EINVAL);
        }
        self.tracking.store(enable, Relaxed);
        Ok(())
    }

    fn read_and_clear_dirty(
        &self,
        iova: u64,
        length: u64,
        no_clear: bool,
        bitmap: Option<&mut IovaBitmap>,
    ) -> Result {
        if !self.dirty_capable {
            return Err(EOPNOTSUPP);
        }
        let last = length
            .checked_sub(1)
            .and_then(|l| iova.checked_add(l))
            .ok_or(EINVAL)?;
        let mut table = self.table.lock();
        let mut runs = DirtyRuns { bitmap, run: None };
        for (level, t) in table.iter_mut().enumerate() {
            let size = 1u64 << self.entry_shift(level);
            self.for_each_leaf(t, level, iova, last, false, |mut at, entries| {
                for entry in entries {
                    if *entry & (VALID | DIRTY) == VALID | DIRTY {
                        runs.add(at, size);
                        if !no_clear {
                            *entry &= !DIRTY;
                        }
                    }
                    at = at.wrapping_add(size);
                }
                0
            });
        }
        runs.flush();
        Ok(())
    }
}

/// Dirty entries reported to a bitmap a run of neighbours at a time: a bitmap sets a run of
/// bits for about what it costs to set one.
struct DirtyRuns<'a> {
    bitmap: Option<&'a mut IovaBitmap>,
    /// The run being gathered: its first IOVA and length.
    run: Option<(u64, u64)>,
}

impl DirtyRuns<'_> {
    /// Adds the dirty entry of `size` bytes at `iova`.
    fn add(&mut self, iova: u64, size: u64) {
        if let Some((start, length)) = &mut self.run {
            if start.wrapping_add(*length) == iova {
                *length += size;
                return;
            }
        }
        self.flush();
        self.run = Some((iova, size));
    }

    /// Reports the run gathered.
    fn flush(&mut self) {
        if let (Some((start, length)), Some(b)) = (self.run.take(), self.bitmap.as_deref_mut()) {
            b.set(start, length);
        }
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

    /// How many leaves each level of `d` has.
    fn leaves(d: &MockDomain) -> [usize; LEVELS] {
        let t = d.table.lock();
        [
            t[0].iter().count(),
            t[1].iter().count(),
            t[2].iter().count(),
        ]
    }

    #[test]
    fn large_pages_go_in_upper_levels() {
        let d = MockDomain::new_default().expect("memory");
        let gib = 1u64 << 30;
        let base = START.next_multiple_of(gib);
        // A 1 GiB page: two entries of level 2, nothing below.
        assert_eq!(d.map(base, 4 * gib, gib, RW), Ok(()));
        assert_eq!(leaves(&d), [0, 0, 1]);
        assert_eq!(d.translate(base + gib - 1), Some((5 * gib - 1, gib)));
        // 4 MiB of 2 MiB pages, scattered: level 1 only.
        let small = START.next_multiple_of(64 << 20);
        let runs = [
            Run {
                iova: small,
                phys: 0x4060_0000,
                length: 2 << 20,
            },
            Run {
                iova: small + (2 << 20),
                phys: 0x0020_0000,
                length: 2 << 20,
            },
        ];
        assert_eq!(d.map_runs(&runs, RW), Ok(()));
        assert_eq!(leaves(&d), [0, 1, 1]);
        assert_eq!(
            d.translate(small + (3 << 20) + 5),
            Some((0x0030_0005, 2 << 20))
        );
        // A small page inside a large one is refused, whatever its level.
        assert_eq!(d.map(base + 0x800, 0, 0x800, RW), Err(EADDRINUSE));
        assert_eq!(d.map(small + (1 << 20), 0, 0x1000, RW), Err(EADDRINUSE));
        // Unmapping counts the bytes of every level.
        assert_eq!(d.clear(small, 4 << 20), 4 << 20);
        assert_eq!(d.clear(base, gib), gib);
        assert_eq!(d.translate(base), None);
        assert_eq!(d.translate(small), None);
    }

    #[test]
    fn unmapping_frees_the_leaves_it_empties() {
        let d = MockDomain::new_default().expect("memory");
        // Two 4 KiB pages in one leaf of level 0, one in the next leaf.
        let leaf = LEAF_ENTRIES as u64 * u64::from(bindings::MOCK_PAGE_SIZE);
        let base = START.next_multiple_of(leaf);
        assert_eq!(d.map(base, 0x10_0000, 0x1000, RW), Ok(()));
        assert_eq!(d.map(base + 0x4000, 0x20_0000, 0x1000, RW), Ok(()));
        assert_eq!(d.map(base + leaf, 0x30_0000, 0x1000, RW), Ok(()));
        assert_eq!(leaves(&d), [2, 0, 0]);
        // A leaf with an entry left stays.
        assert_eq!(d.clear(base, 0x1000), 0x1000);
        assert_eq!(leaves(&d), [2, 0, 0]);
        assert_eq!(d.translate(base + 0x4000), Some((0x20_0000, 0x1000)));
        // The last leaf of the level goes, then the only one left.
        assert_eq!(d.clear(base + leaf, 0x1000), 0x1000);
        assert_eq!(leaves(&d), [1, 0, 0]);
        assert_eq!(d.clear(base, 2 * leaf), 0x1000);
        assert_eq!(leaves(&d), [0, 0, 0]);
        // And mapping there again starts afresh.
        assert_eq!(d.map(base, 0x10_0000, 0x1000, RW), Ok(()));
        assert_eq!(d.translate(base), Some((0x10_0000, 0x1000)));
    }

    #[test]
    fn a_run_across_a_leaf_boundary_takes_both_leaves() {
        let d = MockDomain::new_default().expect("memory");
        // Two 1 MiB pages (the IOVA is only 1 MiB aligned), 1 MiB below a level-1 leaf
        // boundary (512 MiB): two leaves.
        let boundary = (START >> 29 << 29) + (1 << 29);
        assert_eq!(d.map(boundary - (1 << 20), 1 << 30, 2 << 20, RW), Ok(()));
        assert_eq!(leaves(&d), [0, 2, 0]);
        assert_eq!(
            d.translate(boundary - 1),
            Some(((1 << 30) + (1 << 20) - 1, 1 << 20))
        );
        assert_eq!(
            d.translate(boundary),
            Some(((1 << 30) + (1 << 20), 1 << 20))
        );
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

    /// Which of the first `bits` bits (of `page` bytes from `iova`) a read of the dirty state
    /// reports; cleans what it read unless `no_clear`.
    fn read_dirty(d: &MockDomain, iova: u64, bits: u64, page: u64, no_clear: bool) -> KVec<u64> {
        let mut b = IovaBitmap::new_in_kernel(iova, bits * page, page).expect("memory");
        b.for_each(|b, at, len| d.read_and_clear_dirty(at, len, no_clear, Some(b)))
            .expect("read");
        let mut set = KVec::new();
        for n in (0..bits).filter(|&n| b.kernel_bit(n)) {
            set.push(n, GFP_KERNEL).expect("memory");
        }
        set
    }

    #[test]
    fn dirty_pages_are_whole_pages_and_reads_clean_them() {
        let d = MockDomain::new_paging(false, true).expect("memory");
        // A 4 KiB page (two 2 KiB entries) and, after a gap, a 2 KiB page.
        assert_eq!(d.map(START, 0x10_0000, 0x1000, RW), Ok(()));
        assert_eq!(d.map(START + 0x2000, 0x20_0800, 0x800, RW), Ok(()));
        assert_eq!(read_dirty(&d, START, 8, 0x800, false), []);
        // Marking either half of the 4 KiB page marks all of it; unmapped IOVA marks nothing.
        d.mark_dirty(START + 0x800, 0x800);
        d.mark_dirty(START + 0x1000, 0x1000);
        assert_eq!(read_dirty(&d, START, 8, 0x800, true), [0, 1]);
        // Not cleaned by the read with `no_clear`, cleaned by the next.
        assert_eq!(read_dirty(&d, START, 8, 0x800, false), [0, 1]);
        assert_eq!(read_dirty(&d, START, 8, 0x800, false), []);
        // Bits of 4 KiB: the 2 KiB page sets the bit holding it.
        d.mark_dirty(START, 0x3000);
        assert_eq!(read_dirty(&d, START, 4, 0x1000, false), [0, 2]);
        // Unmapping drops the dirty state with the entries.
        d.mark_dirty(START, 0x1000);
        d.clear(START, 0x1000);
        assert_eq!(d.map(START, 0x10_0000, 0x1000, RW), Ok(()));
        assert_eq!(read_dirty(&d, START, 8, 0x800, false), []);
    }

    #[test]
    fn a_huge_entry_is_dirty_as_a_whole() {
        let d = MockDomain::new_paging(true, true).expect("memory");
        let base = 1u64 << 32;
        // 2 MiB of memory: two 1 MiB entries of level 1 in the huge page table.
        assert_eq!(d.map(base, 0x4000_0000, 2 << 20, RW), Ok(()));
        assert_eq!(d.translate(base + (1 << 20)), Some((0x4010_0000, 1 << 20)));
        d.mark_dirty(base + (1 << 20) + 0x800, 0x800);
        let dirty = read_dirty(&d, base, 512, 0x1000, false);
        assert_eq!(dirty.len(), 256);
        assert_eq!((dirty[0], dirty[255]), (256, 511));
        // A read of part of the entry reports what the bitmap covers, and cleans the entry.
        d.mark_dirty(base, 1);
        assert_eq!(read_dirty(&d, base + 0x8_0000, 2, 0x1000, false), [0, 1]);
        assert_eq!(read_dirty(&d, base, 512, 0x1000, false), []);
    }

    #[test]
    fn dirty_tracking_needs_a_domain_made_for_it() {
        let d = MockDomain::new_default().expect("memory");
        assert!(!d.dirty_capable());
        assert_eq!(d.set_dirty_tracking(true), Err(EINVAL));
        assert_eq!(
            d.read_and_clear_dirty(START, 0x800, false, None),
            Err(EOPNOTSUPP)
        );
        let d = MockDomain::new_paging(false, true).expect("memory");
        assert!(!d.tracking());
        assert_eq!(d.set_dirty_tracking(true), Ok(()));
        assert!(d.tracking());
        assert_eq!(d.set_dirty_tracking(false), Ok(()));
        assert!(!d.tracking());
    }
}
