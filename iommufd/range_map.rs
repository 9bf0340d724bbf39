// SPDX-License-Identifier: GPL-2.0

//! A map from disjoint, inclusive `u64` ranges to values.
//!
//! The io_pagetable keeps several sets of IOVA ranges (the allowed ranges, and the mapped
//! areas) in which no two ranges overlap. Upstream uses interval trees for them; since these
//! ranges never overlap, an rbtree keyed by the first address answers every question (what
//! overlaps `[start, last]`, what follows an address) in `O(log n)`.

use kernel::{
    prelude::*,
    rbtree::{
        CursorMut,
        RBTree,
        RBTreeNodeReservation, //
    },
};

/// An inclusive range `[start, last]`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) start: u64,
    pub(crate) last: u64,
}

impl Range {
    pub(crate) fn overlaps(&self, other: &Range) -> bool {
        self.start <= other.last && other.start <= self.last
    }
}

/// A tree node as a range and its value.
fn entry<'a, V>((start, (last, v)): (&'a u64, &'a (u64, V))) -> (Range, &'a V) {
    (
        Range {
            start: *start,
            last: *last,
        },
        v,
    )
}

/// Disjoint ranges, each with a value.
pub(crate) struct RangeMap<V> {
    /// first address -> (last address, value)
    tree: RBTree<u64, (u64, V)>,
}

/// The lowest range of a [`RangeMap`] that overlaps some range, found with
/// [`RangeMap::first_overlap_mut`]: read, changed or removed without looking it up again.
pub(crate) struct OverlapMut<'a, V> {
    cursor: CursorMut<'a, u64, (u64, V)>,
}

impl<V> OverlapMut<'_, V> {
    pub(crate) fn range(&self) -> Range {
        entry(self.cursor.current()).0
    }

    pub(crate) fn value_mut(&mut self) -> &mut V {
        &mut self.cursor.current_mut().1 .1
    }

    /// Takes the range out of the map.
    pub(crate) fn remove(self) -> (Range, V) {
        let (start, (last, v)) = self.cursor.remove_current_node().to_key_value();
        (Range { start, last }, v)
    }
}

/// Memory for one more range, allocated before a lock is taken.
pub(crate) type RangeReservation<V> = RBTreeNodeReservation<u64, (u64, V)>;

impl<V> RangeMap<V> {
    pub(crate) fn new() -> Self {
        Self {
            tree: RBTree::new(),
        }
    }

    /// The lowest range that overlaps `r`.
    pub(crate) fn first_overlap(&self, r: Range) -> Option<Range> {
        let range = |(start, (last, _)): (&u64, &(u64, V))| Range {
            start: *start,
            last: *last,
        };
        // The range starting at or before `r.start` with the highest start, if it reaches
        // `r.start`, overlaps first; else the first range starting after `r.start` might.
        let (before, after) = match self.tree.cursor_lower_bound(&r.start) {
            Some(c) if *c.current().0 == r.start => return Some(range(c.current())),
            Some(c) => (c.peek_prev().map(range), Some(range(c.current()))),
            None => (self.tree.cursor_back().map(|c| range(c.current())), None),
        };
        before
            .filter(|b| b.last >= r.start)
            .or_else(|| after.filter(|a| a.start <= r.last))
    }

    /// The lowest range that overlaps `r`, to read, change or remove: one descent of the tree
    /// where [`RangeMap::first_overlap`] and then [`RangeMap::get_mut`] or
    /// [`RangeMap::remove`] take two.
    pub(crate) fn first_overlap_mut(&mut self, r: Range) -> Option<OverlapMut<'_, V>> {
        // The range starting at `r.start`; else, below the first range after `r.start`, the
        // one before it if it reaches `r.start`, else that first range if it starts inside
        // `r`; else (every range starts before `r.start`) the last range if it reaches it.
        let cursor = self.tree.cursor_lower_bound_or_back_mut(&r.start)?;
        let (start, last) = (*cursor.current().0, cursor.current().1 .0);
        let cursor = if start == r.start {
            cursor
        } else if start < r.start {
            if last < r.start {
                return None;
            }
            cursor
        } else if cursor
            .peek_prev()
            .is_some_and(|(_, (last, _))| *last >= r.start)
        {
            cursor.move_prev()?
        } else if start <= r.last {
            cursor
        } else {
            return None;
        };
        Some(OverlapMut { cursor })
    }

    /// The value of the range that starts at `start`.
    pub(crate) fn get(&self, start: u64) -> Option<&V> {
        self.tree.get(&start).map(|(_, v)| v)
    }

    /// The value of the range that starts at `start`, to change.
    pub(crate) fn get_mut(&mut self, start: u64) -> Option<&mut V> {
        self.tree.get_mut(&start).map(|(_, v)| v)
    }

    /// Inserts `r` with `value`; `EINVAL`, with the value given back, if it is not a valid
    /// range or overlaps a range already in the map.
    pub(crate) fn insert(
        &mut self,
        r: Range,
        value: V,
        mem: RangeReservation<V>,
    ) -> core::result::Result<(), (Error, V)> {
        if r.start > r.last || self.first_overlap(r).is_some() {
            return Err((EINVAL, value));
        }
        self.tree.insert(mem.into_node(r.start, (r.last, value)));
        Ok(())
    }

    /// Shortens the range that starts at `start` to end at `last`, which must lie inside it.
    pub(crate) fn shrink(&mut self, start: u64, last: u64) {
        if let Some((l, _)) = self.tree.get_mut(&start) {
            if start <= last && last < *l {
                *l = last;
            }
        }
    }

    /// Removes the range that starts at `start`.
    pub(crate) fn remove(&mut self, start: u64) -> Option<(Range, V)> {
        self.tree
            .remove(&start)
            .map(|(last, v)| (Range { start, last }, v))
    }

    /// All ranges, lowest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Range, &V)> {
        self.tree.iter().map(entry)
    }

    /// The ranges that end at or after `at`, lowest first, found by a descent of the tree.
    pub(crate) fn iter_from(&self, at: u64) -> impl Iterator<Item = (Range, &V)> {
        let from = self
            .first_overlap(Range {
                start: at,
                last: at,
            })
            .map_or(at, |r| r.start);
        self.tree.iter_from(&from).map(entry)
    }
}

#[kunit_tests(rust_iommufd_range_map)]
mod tests {
    use super::*;

    fn r(start: u64, last: u64) -> Range {
        Range { start, last }
    }

    fn map(ranges: &[(u64, u64)]) -> RangeMap<u32> {
        let mut m = RangeMap::new();
        for (i, &(s, l)) in ranges.iter().enumerate() {
            let mem = RangeReservation::new(GFP_KERNEL).expect("memory");
            assert!(m.insert(r(s, l), i as u32, mem).is_ok());
        }
        m
    }

    fn overlap(m: &RangeMap<u32>, s: u64, l: u64) -> Option<Range> {
        m.first_overlap(r(s, l))
    }

    #[test]
    fn finds_the_lowest_overlap() {
        let m = map(&[(0x1000, 0x1fff), (0x4000, 0x4fff), (0x8000, u64::MAX)]);
        assert_eq!(overlap(&m, 0, 0xfff), None);
        assert_eq!(overlap(&m, 0, 0x1000), Some(r(0x1000, 0x1fff)));
        assert_eq!(overlap(&m, 0x1fff, 0x1fff), Some(r(0x1000, 0x1fff)));
        assert_eq!(overlap(&m, 0x2000, 0x3fff), None);
        assert_eq!(overlap(&m, 0x1800, 0x9000), Some(r(0x1000, 0x1fff)));
        assert_eq!(overlap(&m, 0x2000, 0x9000), Some(r(0x4000, 0x4fff)));
        assert_eq!(overlap(&m, 0x4000, 0x4000), Some(r(0x4000, 0x4fff)));
        assert_eq!(overlap(&m, u64::MAX, u64::MAX), Some(r(0x8000, u64::MAX)));
        assert_eq!(overlap(&map(&[]), 0, u64::MAX), None);
    }

    #[test]
    fn first_overlap_mut_agrees_with_first_overlap() {
        let ranges = [(0x1000, 0x1fff), (0x4000, 0x4fff), (0x8000, u64::MAX)];
        let mut m = map(&ranges);
        let probes = [
            (0, 0xfff),
            (0, 0x1000),
            (0x1fff, 0x1fff),
            (0x2000, 0x3fff),
            (0x1800, 0x9000),
            (0x2000, 0x9000),
            (0x4000, 0x4000),
            (0x5000, 0x7fff),
            (0x9000, 0x9000),
            (u64::MAX, u64::MAX),
        ];
        for (s, l) in probes {
            let want = overlap(&m, s, l);
            assert_eq!(m.first_overlap_mut(r(s, l)).map(|o| o.range()), want);
        }
        assert!(map(&[]).first_overlap_mut(r(0, u64::MAX)).is_none());
        assert!(map(&[(0x1000, 0x1fff)])
            .first_overlap_mut(r(0x2000, 0x2fff))
            .is_none());

        // Changing and removing through it.
        if let Some(mut o) = m.first_overlap_mut(r(0x4800, 0x4800)) {
            *o.value_mut() = 7;
        }
        assert_eq!(m.get(0x4000), Some(&7));
        let removed = m.first_overlap_mut(r(0x2000, 0x4000)).map(|o| o.remove());
        assert_eq!(removed, Some((r(0x4000, 0x4fff), 7)));
        assert_eq!(overlap(&m, 0x2000, 0x7fff), None);
        let removed = m
            .first_overlap_mut(r(u64::MAX, u64::MAX))
            .map(|o| o.remove());
        assert_eq!(removed, Some((r(0x8000, u64::MAX), 2)));
        assert_eq!(m.iter().count(), 1);
    }

    #[test]
    fn iterates_from_the_range_holding_a_point() {
        let m = map(&[(0x1000, 0x1fff), (0x4000, 0x4fff), (0x8000, u64::MAX)]);
        let from = |at: u64| {
            let mut v = KVec::new();
            for (range, _) in m.iter_from(at) {
                v.push(range.start, GFP_KERNEL).expect("memory");
            }
            v
        };
        assert_eq!(&from(0)[..], &[0x1000, 0x4000, 0x8000]);
        assert_eq!(&from(0x1fff)[..], &[0x1000, 0x4000, 0x8000]);
        assert_eq!(&from(0x2000)[..], &[0x4000, 0x8000]);
        assert_eq!(&from(0x4800)[..], &[0x4000, 0x8000]);
        assert_eq!(&from(u64::MAX)[..], &[0x8000]);
        assert_eq!(map(&[]).iter_from(0).count(), 0);
        assert_eq!(map(&[(0x1000, 0x1fff)]).iter_from(0x2000).count(), 0);
    }

    #[test]
    fn insert_refuses_overlaps_and_inverted_ranges() {
        let mut m = map(&[(0x1000, 0x1fff)]);
        for (s, l) in [
            (0x1fff, 0x2000),
            (0, 0x1000),
            (0x1800, 0x1900),
            (0x3000, 0x2000),
        ] {
            let mem = RangeReservation::new(GFP_KERNEL).expect("memory");
            assert_eq!(m.insert(r(s, l), 9, mem), Err((EINVAL, 9)));
        }
        let mem = RangeReservation::new(GFP_KERNEL).expect("memory");
        assert_eq!(m.insert(r(0x2000, 0x2000), 1, mem), Ok(()));
        let all: KVec<(Range, u32)> = {
            let mut v = KVec::new();
            for (range, val) in m.iter() {
                v.push((range, *val), GFP_KERNEL).expect("memory");
            }
            v
        };
        assert_eq!(&all[..], &[(r(0x1000, 0x1fff), 0), (r(0x2000, 0x2000), 1)]);
        assert_eq!(m.get(0x2000), Some(&1));
        assert_eq!(m.get(0x2001), None);
    }
}
