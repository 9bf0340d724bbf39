// SPDX-License-Identifier: GPL-2.0

//! The IOVA dirty bitmap that IOMMU drivers fill in (`include/linux/iova_bitmap.h`).
//!
//! When userspace asks for the dirty pages of an I/O page table, it hands in a bitmap in its own
//! memory: bit `n` stands for the page at `iova + n * page_size`. The IOMMU driver walks its page
//! table and calls [`iova_bitmap_set`] for every dirty range. Those calls can come from
//! contexts that must not fault on user memory, so the bits are gathered in a kernel window
//! and merged into the user's bitmap (OR-ed in, so bits already set stay set) after the driver
//! has walked that window.
//!
//! The C functions are exported from here because C IOMMU drivers (intel, amd, arm-smmu-v3 and
//! the generic page-table code) call them; the bitmap itself is opaque to them.

use crate::{
    alloc::KVVec,
    error::to_result,
    ffi::{
        c_int,
        c_ulong,
        c_void, //
    },
    prelude::*,
    transmute::AsBytes,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

/// Bits gathered in the kernel before they are merged into the user's bitmap: 32 KiB, which
/// covers 1 GiB of IOVA at 4 KiB pages.
const WINDOW_WORDS: usize = 4096;
const WORD_BITS: u64 = u64::BITS as u64;

/// The callback that [`iova_bitmap_for_each`] runs over each window.
pub type IovaBitmapFn = unsafe extern "C" fn(*mut IovaBitmap, c_ulong, usize, *mut c_void) -> c_int;

/// A dirty bitmap over `[iova, iova + length)` with one bit per `1 << page_shift` bytes, backed
/// by user memory at `user`.
pub struct IovaBitmap {
    iova: u64,
    /// Index of the last bit.
    last_bit: u64,
    page_shift: u32,
    user: usize,
    /// The window being walked: its first bit, and its bits.
    window_first_bit: u64,
    window: KVVec<u64>,
    /// Bits set past the end of the previous window, up to (not including) this bit.
    carry_end_bit: u64,
}

impl IovaBitmap {
    /// Makes a bitmap for `length` bytes of IOVA from `iova`, with bits of `page_size` bytes,
    /// to be merged into the user's `u64` array at `user`.
    pub fn new(iova: u64, length: u64, page_size: u64, user: usize) -> Result<Self> {
        if length == 0 || !page_size.is_power_of_two() || iova.checked_add(length - 1).is_none() {
            return Err(EINVAL);
        }
        let page_shift = page_size.trailing_zeros();
        Ok(Self {
            iova,
            last_bit: (length - 1) >> page_shift,
            page_shift,
            user,
            window_first_bit: 0,
            window: KVVec::from_elem(0, WINDOW_WORDS, GFP_KERNEL)?,
            carry_end_bit: 0,
        })
    }

    fn window_last_bit(&self) -> u64 {
        let end = self.window_first_bit + WINDOW_WORDS as u64 * WORD_BITS - 1;
        end.min(self.last_bit)
    }

    /// Sets bits `first..=last` (bitmap-relative); bits past the window are carried into the
    /// next one, bits before it were already merged and stay as they are.
    fn set_bits(&mut self, first: u64, last: u64) {
        let win_last = self.window_last_bit();
        if last > win_last {
            self.carry_end_bit = self.carry_end_bit.max(last.min(self.last_bit) + 1);
        }
        let first = first.max(self.window_first_bit);
        let last = last.min(win_last);
        let mut bit = first;
        while bit <= last {
            let rel = bit - self.window_first_bit;
            let word = (rel / WORD_BITS) as usize;
            let shift = rel % WORD_BITS;
            let n = (WORD_BITS - shift).min(last - bit + 1);
            let mask = if n == WORD_BITS {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << shift
            };
            if let Some(w) = self.window.get_mut(word) {
                *w |= mask;
            }
            bit += n;
        }
    }

    /// Marks `[iova, iova + length)` dirty.
    pub fn set(&mut self, iova: u64, length: u64) {
        if length == 0 || iova < self.iova {
            return;
        }
        let first = (iova - self.iova) >> self.page_shift;
        let last = (iova - self.iova).saturating_add(length - 1) >> self.page_shift;
        if first > self.last_bit {
            return;
        }
        self.set_bits(first, last.min(self.last_bit));
    }

    /// Starts the window at `first_bit`: clears it and applies what the previous one carried.
    fn start_window(&mut self, first_bit: u64) {
        self.window_first_bit = first_bit;
        self.window.iter_mut().for_each(|w| *w = 0);
        if self.carry_end_bit > first_bit {
            let carry_last = self.carry_end_bit - 1;
            self.carry_end_bit = 0;
            self.set_bits(first_bit, carry_last);
        }
    }

    /// IOVA range of the current window.
    fn window_range(&self) -> (u64, u64) {
        let start = self.iova + (self.window_first_bit << self.page_shift);
        let bits = self.window_last_bit() - self.window_first_bit + 1;
        (start, bits << self.page_shift)
    }

    /// ORs the window into the user's bitmap.
    fn merge_window(&mut self) -> Result {
        let bits = self.window_last_bit() - self.window_first_bit + 1;
        let words = bits.div_ceil(WORD_BITS) as usize;
        let byte_off = (self.window_first_bit / WORD_BITS) as usize * size_of::<u64>();
        let len = words * size_of::<u64>();
        let addr = self.user.checked_add(byte_off).ok_or(EFAULT)?;
        let (mut reader, mut writer) =
            UserSlice::new(UserPtr::from_addr(addr), len).reader_writer();
        let mut user_words = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
        reader.read_slice(AsBytes::as_bytes_mut(&mut user_words[..]))?;
        for (u, k) in user_words.iter_mut().zip(self.window.iter()) {
            *u |= *k;
        }
        writer.write_slice(AsBytes::as_bytes(&user_words[..]))
    }
}

/// Allocates a bitmap; returns an `ERR_PTR` on failure.
///
/// # Safety
///
/// Any values are accepted; `data` is a user pointer and is only accessed with user copies.
#[no_mangle]
pub unsafe extern "C" fn iova_bitmap_alloc(
    iova: c_ulong,
    length: usize,
    page_size: c_ulong,
    data: *mut u64,
) -> *mut IovaBitmap {
    match IovaBitmap::new(iova as u64, length as u64, page_size as u64, data as usize)
        .and_then(|b| Ok(KBox::new(b, GFP_KERNEL)?))
    {
        Ok(b) => KBox::into_raw(b),
        Err(e) => e.to_ptr(),
    }
}

/// Frees a bitmap from [`iova_bitmap_alloc`].
///
/// # Safety
///
/// `bitmap` must come from [`iova_bitmap_alloc`] and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn iova_bitmap_free(bitmap: *mut IovaBitmap) {
    if !bitmap.is_null() {
        // SAFETY: By the safety requirements, `bitmap` came from `KBox::into_raw` and is given
        // back exactly once.
        drop(unsafe { KBox::from_raw(bitmap) });
    }
}

/// Calls `f` for each window of the bitmap, then merges the window into user memory. Stops
/// at the first error.
///
/// # Safety
///
/// `bitmap` must come from [`iova_bitmap_alloc`]; `f` must be a valid callback for `opaque`.
#[no_mangle]
pub unsafe extern "C" fn iova_bitmap_for_each(
    bitmap: *mut IovaBitmap,
    opaque: *mut c_void,
    f: Option<IovaBitmapFn>,
) -> c_int {
    let Some(f) = f else {
        return EINVAL.to_errno();
    };
    let mut first_bit = 0;
    loop {
        // Each `&mut` below lives only between the callbacks, which get the raw pointer.
        let (iova, length) = {
            // SAFETY: `bitmap` is valid by the safety requirements and no other reference to
            // it is live.
            let b = unsafe { &mut *bitmap };
            if first_bit > b.last_bit {
                return 0;
            }
            b.start_window(first_bit);
            b.window_range()
        };
        // SAFETY: `f` and `opaque` are valid by the safety requirements.
        let ret = unsafe { f(bitmap, iova as c_ulong, length as usize, opaque) };
        if let Err(e) = to_result(ret) {
            return e.to_errno();
        }
        // SAFETY: As above; the callback has returned.
        let b = unsafe { &mut *bitmap };
        if let Err(e) = b.merge_window() {
            return e.to_errno();
        }
        first_bit = b.window_last_bit() + 1;
    }
}

/// Marks `[iova, iova + length)` dirty. Called by IOMMU drivers from within the callback of
/// [`iova_bitmap_for_each`].
///
/// # Safety
///
/// `bitmap` must be the bitmap whose [`iova_bitmap_for_each`] callback is running.
#[no_mangle]
pub unsafe extern "C" fn iova_bitmap_set(bitmap: *mut IovaBitmap, iova: c_ulong, length: usize) {
    // SAFETY: By the safety requirements `bitmap` is valid, and `iova_bitmap_for_each` holds no
    // reference to it while the callback runs.
    let b = unsafe { &mut *bitmap };
    b.set(iova as u64, length as u64);
}

#[macros::kunit_tests(rust_iova_bitmap)]
mod tests {
    use super::*;

    fn bitmap(pages: u64) -> IovaBitmap {
        let mut b = IovaBitmap::new(0x10000, pages * 4096, 4096, 0).unwrap();
        b.start_window(0);
        b
    }

    #[test]
    fn sets_single_and_spanning_ranges() {
        let mut b = bitmap(256);
        b.set(0x10000, 4096);
        assert_eq!(b.window[0], 1);
        b.set(0x10000 + 62 * 4096, 3 * 4096);
        assert_eq!(b.window[0], 1 | (3u64 << 62));
        assert_eq!(b.window[1], 1);
        // Partial pages count as dirty.
        b.set(0x10000 + 70 * 4096 + 1, 1);
        assert_eq!(b.window[1], 1 | (1 << 6));
    }

    #[test]
    fn ignores_outside_and_clamps_at_end() {
        let mut b = bitmap(4);
        b.set(0x1000, 4096);
        b.set(0x10000 + 4 * 4096, 4096);
        assert_eq!(b.window[0], 0);
        b.set(0x10000 + 3 * 4096, 8 * 4096);
        assert_eq!(b.window[0], 1 << 3);
    }

    #[test]
    fn carries_into_next_window() {
        let pages = WINDOW_WORDS as u64 * WORD_BITS + 8;
        let mut b = bitmap(pages);
        let win_end = 0x10000 + (WINDOW_WORDS as u64 * WORD_BITS) * 4096;
        // A 2-page range straddling the window end, and one beyond it entirely.
        b.set(win_end - 4096, 3 * 4096);
        assert_eq!(b.window[WINDOW_WORDS - 1], 1 << 63);
        b.start_window(WINDOW_WORDS as u64 * WORD_BITS);
        assert_eq!(b.window[0], 0b11);
        assert_eq!(b.window_range(), (win_end, 8 * 4096));
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(IovaBitmap::new(0, 0, 4096, 0).is_err());
        assert!(IovaBitmap::new(0, 4096, 3000, 0).is_err());
        assert!(IovaBitmap::new(u64::MAX, 4096, 4096, 0).is_err());
    }
}
