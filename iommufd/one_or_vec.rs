// SPDX-License-Identifier: GPL-2.0

//! A list that holds its first element without allocating.
//!
//! Most [`crate::pages::Pages`] hold a single segment of pinned pages: a VMM's 4 KiB mapping
//! is one page, a huge page is one run. Keeping that one segment inline saves an allocation
//! and a free on every map and unmap, a tenth of a small mapping's cost; a second element
//! moves the list to a [`KVVec`], where it stays.

use core::ops::{
    Deref,
    DerefMut, //
};
use kernel::{
    alloc::{
        kvec::InsertError,
        Flags, //
    },
    prelude::*, //
};

/// Up to one element inline, more in a [`KVVec`]; a slice of them either way.
pub(crate) enum OneOrVec<T> {
    One(Option<T>),
    Many(KVVec<T>),
}

impl<T> OneOrVec<T> {
    pub(crate) const fn new() -> Self {
        Self::One(None)
    }

    /// Makes room for `additional` more elements.
    pub(crate) fn reserve(&mut self, additional: usize, flags: Flags) -> Result {
        match self {
            Self::One(one) => {
                let len = usize::from(one.is_some());
                if len + additional <= 1 {
                    return Ok(());
                }
                let mut many = KVVec::with_capacity(len + additional, flags)?;
                if let Some(first) = one.take() {
                    // Cannot fail: there is room for it.
                    many.push_within_capacity(first).map_err(|_| ENOMEM)?;
                }
                *self = Self::Many(many);
                Ok(())
            }
            Self::Many(many) => Ok(many.reserve(additional, flags)?),
        }
    }

    /// Appends `value`, allocating if there is no room for it.
    pub(crate) fn push(&mut self, value: T, flags: Flags) -> Result {
        self.reserve(1, flags)?;
        self.push_within_capacity(value).map_err(|_| ENOMEM)
    }

    /// Appends `value` if there is room for it; gives it back if not.
    pub(crate) fn push_within_capacity(&mut self, value: T) -> core::result::Result<(), T> {
        match self {
            Self::One(one @ None) => {
                *one = Some(value);
                Ok(())
            }
            Self::One(Some(_)) => Err(value),
            Self::Many(many) => many.push_within_capacity(value).map_err(|e| e.0),
        }
    }

    /// Inserts `value` at `index` if there is room for it; gives it back if not, or if
    /// `index` is past the end.
    pub(crate) fn insert_within_capacity(
        &mut self,
        index: usize,
        value: T,
    ) -> core::result::Result<(), T> {
        match self {
            Self::One(one @ None) if index == 0 => {
                *one = Some(value);
                Ok(())
            }
            Self::One(_) => Err(value),
            Self::Many(many) => many
                .insert_within_capacity(index, value)
                .map_err(|(InsertError::IndexOutOfBounds(v) | InsertError::OutOfCapacity(v))| v),
        }
    }

    /// Keeps the first `len` elements and drops the rest.
    pub(crate) fn truncate(&mut self, len: usize) {
        match self {
            Self::One(one) if len == 0 => *one = None,
            Self::One(_) => {}
            Self::Many(many) => many.truncate(len),
        }
    }

    /// Drops every element.
    pub(crate) fn clear(&mut self) {
        self.truncate(0);
    }

    /// Keeps the elements `keep` says to keep, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut T) -> bool) {
        match self {
            Self::One(one) => {
                if one.as_mut().is_some_and(|v| !keep(v)) {
                    *one = None;
                }
            }
            Self::Many(many) => many.retain(keep),
        }
    }

    /// Takes every element out, in order.
    pub(crate) fn drain_all(&mut self) -> impl Iterator<Item = T> + '_ {
        let (one, many) = match self {
            Self::One(one) => (one.take(), None),
            Self::Many(many) => (None, Some(many.drain_all())),
        };
        Iterator::chain(one.into_iter(), many.into_iter().flatten())
    }
}

impl<T> Deref for OneOrVec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Self::One(one) => one.as_slice(),
            Self::Many(many) => &many[..],
        }
    }
}

impl<T> DerefMut for OneOrVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Self::One(one) => one.as_mut_slice(),
            Self::Many(many) => &mut many[..],
        }
    }
}

#[kunit_tests(rust_iommufd_one_or_vec)]
mod tests {
    use super::*;

    fn list(values: &[u32]) -> OneOrVec<u32> {
        let mut l = OneOrVec::new();
        for &v in values {
            assert_eq!(l.push(v, GFP_KERNEL), Ok(()));
        }
        l
    }

    #[test]
    fn one_stays_inline_and_two_move_out() {
        let mut l = list(&[7]);
        assert!(matches!(l, OneOrVec::One(Some(7))));
        assert_eq!(l.push_within_capacity(8), Err(8));
        assert_eq!(l.push(8, GFP_KERNEL), Ok(()));
        assert!(matches!(l, OneOrVec::Many(_)));
        assert_eq!(&l[..], &[7, 8]);
        l.clear();
        assert!(l.is_empty());
        assert_eq!(l.push(9, GFP_KERNEL), Ok(()));
        assert_eq!(&l[..], &[9]);
    }

    #[test]
    fn reserve_makes_room_for_the_insertions_that_follow() {
        let mut l = list(&[1]);
        assert_eq!(l.insert_within_capacity(0, 0), Err(0));
        assert_eq!(l.reserve(2, GFP_KERNEL), Ok(()));
        assert_eq!(l.insert_within_capacity(0, 0), Ok(()));
        assert_eq!(l.insert_within_capacity(2, 2), Ok(()));
        assert_eq!(&l[..], &[0, 1, 2]);
        assert_eq!(l.insert_within_capacity(9, 9), Err(9));
        let mut empty = OneOrVec::new();
        assert_eq!(empty.reserve(1, GFP_KERNEL), Ok(()));
        assert_eq!(empty.insert_within_capacity(1, 5), Err(5));
        assert_eq!(empty.insert_within_capacity(0, 5), Ok(()));
        assert_eq!(&empty[..], &[5]);
    }

    #[test]
    fn retain_truncate_and_drain_work_both_ways() {
        for values in [&[3u32][..], &[1, 2, 3, 4]] {
            let mut l = list(values);
            l.retain(|v| *v % 2 == 1);
            let odd: KVec<u32> = {
                let mut k = KVec::new();
                for &v in values.iter().filter(|v| **v % 2 == 1) {
                    k.push(v, GFP_KERNEL).expect("memory");
                }
                k
            };
            assert_eq!(&l[..], &odd[..]);
            let mut drained = KVec::new();
            for v in l.drain_all() {
                drained.push(v, GFP_KERNEL).expect("memory");
            }
            assert_eq!(&drained[..], &odd[..]);
            assert!(l.is_empty());
            let mut l = list(values);
            l.truncate(1);
            assert_eq!(&l[..], &values[..1]);
            l.truncate(0);
            assert!(l.is_empty());
        }
    }
}
