// SPDX-License-Identifier: GPL-2.0

//! The IOVA dirty bitmap that IOMMU drivers fill in (`include/linux/iova_bitmap.h`).
//!
//! When userspace asks for the dirty pages of an I/O page table, it hands in a bitmap in its own
//! memory: bit `n` stands for the page at `iova + n * page_size`. The IOMMU driver walks its page
//! table and reports every dirty range ([`IovaBitmap::set`], `iova_bitmap_set()` from C). Those calls can come from
//! contexts that must not fault on user memory, so the bits are gathered in a kernel window
//! and merged into the user's bitmap (OR-ed in, so bits already set stay set) after the driver
//! has walked that window.
//!
//! The C functions are exported from here because C IOMMU drivers (intel, amd, arm-smmu-v3 and
//! the generic page-table code) call them; the bitmap itself is opaque to them.

use crate::{
    alloc::KVVec,
    page::PAGE_SIZE,
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
/// The window in 64 segments, each merged only if a bit of it is set: 512 bytes, 16 MiB of
/// IOVA at 4 KiB pages.
const SEGMENT_WORDS: usize = WINDOW_WORDS / 64;

/// The runs of set bits of `mask` as ranges of window words `lo..hi`, lowest first.
fn segment_runs(mut mask: u64) -> impl Iterator<Item = (usize, usize)> {
    core::iter::from_fn(move || {
        if mask == 0 {
            return None;
        }
        let first = mask.trailing_zeros();
        let len = (mask >> first).trailing_ones();
        mask &= if first + len >= 64 {
            0
        } else {
            u64::MAX << (first + len)
        };
        let (first, len) = (first as usize, len as usize);
        Some((first * SEGMENT_WORDS, (first + len) * SEGMENT_WORDS))
    })
}

/// Where the bits end up.
enum Target {
    /// The user's `u64` array at this address.
    User(usize),
    /// A kernel buffer whose byte `offset` stands for the array's start, for the tests, which
    /// have no user memory.
    #[cfg_attr(not(CONFIG_KUNIT), expect(dead_code, reason = "for the KUnit tests"))]
    Kernel { buf: KVVec<u8>, offset: usize },
}

/// A dirty bitmap over `[iova, iova + length)` with one bit per `1 << page_shift` bytes, backed
/// by user memory.
pub struct IovaBitmap {
    iova: u64,
    /// Index of the last bit.
    last_bit: u64,
    page_shift: u32,
    target: Target,
    /// The window being walked: its first bit, and its bits.
    window_first_bit: u64,
    window: KVVec<u64>,
    /// The user's words under the window, read, OR-ed with it and written back.
    merge: KVVec<u64>,
    /// Bits set past the end of the current window, `carry_first..carry_end`: applied when
    /// the next window starts. Empty when `carry_first >= carry_end`.
    carry_first: u64,
    carry_end: u64,
    /// Which segments of [`SEGMENT_WORDS`] words of the window have a bit set: only those are
    /// cleared for the next window and merged into the user's array, so a window of clean
    /// pages costs no copy of the array and no pass over the window, and a few dirty pages
    /// cost a few short copies.
    touched: u64,
}

impl IovaBitmap {
    /// Makes a bitmap for `length` bytes of IOVA from `iova`, with bits of `page_size` bytes,
    /// to be merged into the user's `u64` array at `user`.
    pub fn new(iova: u64, length: u64, page_size: u64, user: usize) -> Result<Self> {
        Self::with_target(iova, length, page_size, Target::User(user))
    }

    /// A bitmap like [`IovaBitmap::new`]'s whose array is a zeroed kernel buffer, for the KUnit
    /// tests of IOMMU drivers: read it back with [`IovaBitmap::kernel_bit`].
    #[cfg(CONFIG_KUNIT)]
    pub fn new_in_kernel(iova: u64, length: u64, page_size: u64) -> Result<Self> {
        if length == 0 || !page_size.is_power_of_two() {
            return Err(EINVAL);
        }
        let bits = ((length - 1) >> page_size.trailing_zeros()) + 1;
        let bytes = usize::try_from(bits.div_ceil(WORD_BITS) * 8).map_err(|_| EINVAL)?;
        let buf = KVVec::from_elem(0, bytes, GFP_KERNEL)?;
        Self::with_target(iova, length, page_size, Target::Kernel { buf, offset: 0 })
    }

    /// Whether bit `n` of the array of a bitmap from [`IovaBitmap::new_in_kernel`] is set.
    #[cfg(CONFIG_KUNIT)]
    pub fn kernel_bit(&self, n: u64) -> bool {
        let Target::Kernel { buf, offset } = &self.target else {
            return false;
        };
        usize::try_from(n / 8)
            .ok()
            .and_then(|i| buf.get(offset + i))
            .is_some_and(|b| b & (1 << (n % 8)) != 0)
    }

    fn with_target(iova: u64, length: u64, page_size: u64, target: Target) -> Result<Self> {
        if length == 0 || !page_size.is_power_of_two() || iova.checked_add(length - 1).is_none() {
            return Err(EINVAL);
        }
        let page_shift = page_size.trailing_zeros();
        Ok(Self {
            iova,
            last_bit: (length - 1) >> page_shift,
            page_shift,
            target,
            window_first_bit: 0,
            window: KVVec::from_elem(0, WINDOW_WORDS, GFP_KERNEL)?,
            merge: KVVec::from_elem(0, WINDOW_WORDS, GFP_KERNEL)?,
            carry_first: 0,
            carry_end: 0,
            touched: 0,
        })
    }

    fn window_last_bit(&self) -> u64 {
        let end = self.window_first_bit + WINDOW_WORDS as u64 * WORD_BITS - 1;
        end.min(self.last_bit)
    }

    /// Sets bits `first..=last` (bitmap-relative). Bits past the window are carried into the
    /// next one: IOMMU drivers report whole entries, and an entry of a large page can end
    /// past the window. Two carried ranges become the one range covering both, which may set
    /// bits between them: a page reported dirty that was not costs a copy, one missed would
    /// lose data. Bits before the window were already merged and stay as they are (windows
    /// are walked in order, and a walk reports only what it was given).
    fn set_bits(&mut self, first: u64, last: u64) {
        let win_last = self.window_last_bit();
        if last > win_last {
            let from = first.max(win_last + 1);
            let end = last.min(self.last_bit) + 1;
            if self.carry_first >= self.carry_end {
                self.carry_first = from;
                self.carry_end = end;
            } else {
                self.carry_first = self.carry_first.min(from);
                self.carry_end = self.carry_end.max(end);
            }
        }
        let first = first.max(self.window_first_bit);
        let last = last.min(win_last);
        if first > last {
            return;
        }
        let lo = ((first - self.window_first_bit) / WORD_BITS) as usize / SEGMENT_WORDS;
        let hi = ((last - self.window_first_bit) / WORD_BITS) as usize / SEGMENT_WORDS;
        // Segments `lo..=hi`, `hi` below 64.
        self.touched |= (u64::MAX >> (63 - hi)) & (u64::MAX << lo);
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
    /// The parts outside the bitmap are ignored.
    pub fn set(&mut self, iova: u64, length: u64) {
        if length == 0 {
            return;
        }
        let end = iova.saturating_add(length - 1);
        if end < self.iova {
            return;
        }
        let first = (iova.max(self.iova) - self.iova) >> self.page_shift;
        let last = (end - self.iova) >> self.page_shift;
        if first > self.last_bit {
            return;
        }
        self.set_bits(first, last.min(self.last_bit));
    }

    /// Starts the window at `first_bit`: clears it and applies what the previous one carried.
    fn start_window(&mut self, first_bit: u64) {
        self.window_first_bit = first_bit;
        for (lo, hi) in segment_runs(core::mem::take(&mut self.touched)) {
            if let Some(words) = self.window.get_mut(lo..hi) {
                words.iter_mut().for_each(|w| *w = 0);
            }
        }
        let (carry_first, carry_end) = (self.carry_first, self.carry_end);
        self.carry_first = 0;
        self.carry_end = 0;
        if carry_first < carry_end {
            self.set_bits(carry_first.max(first_bit), carry_end - 1);
        }
    }

    /// IOVA range of the current window.
    fn window_range(&self) -> (u64, u64) {
        let start = self.iova + (self.window_first_bit << self.page_shift);
        let bits = self.window_last_bit() - self.window_first_bit + 1;
        (start, bits << self.page_shift)
    }

    /// The user's words under the window: their byte offset in the array, and how many.
    fn window_words(&self) -> (usize, usize) {
        let bits = self.window_last_bit() - self.window_first_bit + 1;
        let words = bits.div_ceil(WORD_BITS) as usize;
        let byte_off = (self.window_first_bit / WORD_BITS) as usize * size_of::<u64>();
        (byte_off, words)
    }

    /// Makes sure the user's words under the window can be read and written, before the domain
    /// reports (and cleans) its dirty entries: a bitmap that is not there fails the walk while
    /// the domain's dirty state is still intact. One byte of each page the words lie in is read
    /// and written back, which faults the pages in; the array is one of `u64`s, at any byte
    /// alignment.
    fn probe_window(&self) -> Result {
        let (byte_off, words) = self.window_words();
        let len = words * size_of::<u64>();
        match &self.target {
            Target::User(user) => {
                let start = user.checked_add(byte_off).ok_or(EFAULT)?;
                let end = start.checked_add(len).ok_or(EFAULT)?;
                let mut at = start;
                while at < end {
                    let mut byte = [0u8; 1];
                    let (mut reader, mut writer) =
                        UserSlice::new(UserPtr::from_addr(at), 1).reader_writer();
                    reader.read_slice(&mut byte)?;
                    writer.write_slice(&byte)?;
                    at = (at / PAGE_SIZE + 1) * PAGE_SIZE;
                }
                Ok(())
            }
            Target::Kernel { buf, offset } => {
                let at = *offset + byte_off;
                buf.get(at..at + len).map(|_| ()).ok_or(EFAULT)
            }
        }
    }

    /// ORs the segments of the window that have bits set into the user's array, a run of
    /// touched segments at a time.
    fn merge_window(&mut self) -> Result {
        let (window_off, words) = self.window_words();
        for (lo, hi) in segment_runs(self.touched) {
            let hi = hi.min(words);
            if lo < hi {
                self.merge_words(window_off, lo, hi)?;
            }
        }
        Ok(())
    }

    /// ORs words `lo..hi` of the window into the user's array, whose words under the window
    /// start at byte `window_off`.
    fn merge_words(&mut self, window_off: usize, lo: usize, hi: usize) -> Result {
        let byte_off = window_off + lo * size_of::<u64>();
        let len = (hi - lo) * size_of::<u64>();
        let merged = self.merge.get_mut(lo..hi).ok_or(EINVAL)?;
        let window = self.window.get(lo..hi).ok_or(EINVAL)?;
        match &mut self.target {
            Target::User(user) => {
                let addr = user.checked_add(byte_off).ok_or(EFAULT)?;
                let (mut reader, mut writer) =
                    UserSlice::new(UserPtr::from_addr(addr), len).reader_writer();
                reader.read_slice(AsBytes::as_bytes_mut(merged))?;
                for (u, k) in merged.iter_mut().zip(window.iter()) {
                    *u |= *k;
                }
                writer.write_slice(AsBytes::as_bytes(merged))
            }
            Target::Kernel { buf, offset } => {
                let at = *offset + byte_off;
                let bytes = buf.get_mut(at..at + len).ok_or(EFAULT)?;
                AsBytes::as_bytes_mut(merged).copy_from_slice(bytes);
                for (u, k) in merged.iter_mut().zip(window.iter()) {
                    *u |= *k;
                }
                bytes.copy_from_slice(AsBytes::as_bytes(merged));
                Ok(())
            }
        }
    }

    /// Walks the bitmap a window at a time: calls `f` with the IOVA range of each window
    /// (`f` reports dirty ranges with [`IovaBitmap::set`]), then merges what it set into the
    /// user's bitmap. Stops at the first error, of `f` or of the copies (`EFAULT`); the user's
    /// words of a window are probed before `f` runs, so a bitmap that is not there fails before
    /// the domain cleans anything.
    pub fn for_each(&mut self, mut f: impl FnMut(&mut Self, u64, u64) -> Result) -> Result {
        let mut first_bit = 0;
        while first_bit <= self.last_bit {
            self.start_window(first_bit);
            self.probe_window()?;
            let (iova, length) = self.window_range();
            f(self, iova, length)?;
            self.merge_window()?;
            first_bit = self.window_last_bit() + 1;
        }
        Ok(())
    }

    /// The IOVA the bitmap starts at.
    pub fn iova(&self) -> u64 {
        self.iova
    }

    /// The number of bytes of IOVA one bit stands for.
    pub fn page_size(&self) -> u64 {
        1 << self.page_shift
    }
}

/// The C interface, for the IOMMU drivers (`CONFIG_IOMMUFD_DRIVER`) that track dirty pages.
#[cfg(CONFIG_IOMMUFD_DRIVER)]
mod c_abi {
    use super::IovaBitmap;
    use crate::{
        error::to_result,
        ffi::{
            c_int,
            c_ulong,
            c_void, //
        },
        prelude::*,
    };

    /// The callback that [`iova_bitmap_for_each`] runs over each window.
    pub type IovaBitmapFn =
        unsafe extern "C" fn(*mut IovaBitmap, c_ulong, usize, *mut c_void) -> c_int;

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
                if let Err(e) = b.probe_window() {
                    return e.to_errno();
                }
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
    pub unsafe extern "C" fn iova_bitmap_set(
        bitmap: *mut IovaBitmap,
        iova: c_ulong,
        length: usize,
    ) {
        // SAFETY: By the safety requirements `bitmap` is valid, and `iova_bitmap_for_each` holds no
        // reference to it while the callback runs.
        let b = unsafe { &mut *bitmap };
        b.set(iova as u64, length as u64);
    }
}

#[cfg(CONFIG_IOMMUFD_DRIVER)]
pub use c_abi::{
    iova_bitmap_alloc,
    iova_bitmap_for_each,
    iova_bitmap_free,
    iova_bitmap_set,
    IovaBitmapFn, //
};

#[macros::kunit_tests(rust_iova_bitmap)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;
    /// Bits in one window.
    const WINDOW_BITS: u64 = WINDOW_WORDS as u64 * WORD_BITS;

    fn bitmap(pages: u64) -> IovaBitmap {
        let mut b = IovaBitmap::new(0x10000, pages * PAGE, PAGE, 0).unwrap();
        b.start_window(0);
        b
    }

    /// A bitmap over `length` bytes from `iova` merging into a kernel buffer at byte `offset`,
    /// with `slack` bytes after the array; every byte of the buffer starts as `fill`.
    fn in_kernel(
        iova: u64,
        length: u64,
        page: u64,
        offset: usize,
        slack: usize,
        fill: u8,
    ) -> IovaBitmap {
        let bits = (length - 1) / page + 1;
        let bytes = offset + bits.div_ceil(WORD_BITS) as usize * 8 + slack;
        let buf = KVVec::from_elem(fill, bytes, GFP_KERNEL).unwrap();
        IovaBitmap::with_target(iova, length, page, Target::Kernel { buf, offset }).unwrap()
    }

    fn buf(b: &IovaBitmap) -> &[u8] {
        match &b.target {
            Target::Kernel { buf, .. } => buf,
            Target::User(_) => &[],
        }
    }

    /// Bit `n` of the array at byte `offset` of the buffer.
    fn bit(b: &IovaBitmap, n: u64) -> bool {
        let Target::Kernel { buf, offset } = &b.target else {
            return false;
        };
        buf[offset + (n / 8) as usize] & (1 << (n % 8)) != 0
    }

    /// Walks `b`, setting `ranges` (absolute IOVA, length) in whichever window they touch, as
    /// a domain that reports each dirty entry from the window holding its start would. Returns
    /// the windows seen.
    fn walk(b: &mut IovaBitmap, ranges: &[(u64, u64)]) -> KVec<(u64, u64)> {
        let mut windows = KVec::new();
        b.for_each(|b, iova, length| {
            windows.push((iova, length), GFP_KERNEL)?;
            for &(r, len) in ranges {
                if r >= iova && r - iova < length {
                    b.set(r, len);
                }
            }
            Ok(())
        })
        .unwrap();
        windows
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
        // A whole word at once.
        b.set(0x10000 + 128 * 4096, 64 * 4096);
        assert_eq!(b.window[2], u64::MAX);
        assert_eq!(b.window[3], 0);
    }

    #[test]
    fn ignores_outside_and_clamps_at_both_ends() {
        let mut b = bitmap(4);
        b.set(0x1000, 4096);
        b.set(0x10000 + 4 * 4096, 4096);
        assert_eq!(b.window[0], 0);
        b.set(0x10000 + 3 * 4096, 8 * 4096);
        assert_eq!(b.window[0], 1 << 3);
        // A range that starts before the bitmap (a large page) sets what lies inside.
        b.set(0x8000, 0x9000);
        assert_eq!(b.window[0], 0b1001);
        // Ranges reaching the end of the address space do not wrap.
        b.set(u64::MAX - 4095, 4096);
        b.set(0x10000 + 4096, u64::MAX);
        assert_eq!(b.window[0], 0b1111);
    }

    #[test]
    fn first_and_last_bit_reach_the_user_array() {
        // 1000 bits: the last word is partly used; what lies past the array is not touched,
        // and bits already set stay set (the window is OR-ed in).
        let mut b = in_kernel(0x10000, 1000 * PAGE, PAGE, 0, 16, 0);
        let windows = walk(&mut b, &[(0x10000, 1), (0x10000 + 999 * PAGE, PAGE)]);
        assert_eq!(&windows[..], &[(0x10000, 1000 * PAGE)]);
        assert!(bit(&b, 0));
        assert!(bit(&b, 999));
        let set = (0..1024).filter(|&n| bit(&b, n)).count();
        assert_eq!(set, 2);
        assert!(buf(&b)[128..].iter().all(|&x| x == 0));

        let mut b = in_kernel(0x10000, 1000 * PAGE, PAGE, 0, 16, 0x5a);
        walk(&mut b, &[(0x10000 + 3 * PAGE, PAGE)]);
        assert_eq!(buf(&b)[0], 0x5a | 0x08);
        assert!(buf(&b)[1..].iter().all(|&x| x == 0x5a));
    }

    #[test]
    fn unaligned_user_array() {
        // The selftests hand in arrays at odd byte addresses (page + 0xff1): words straddle
        // them, and the bytes before the array are never written.
        let mut b = in_kernel(0, 200 * PAGE, PAGE, 0xff1, 8, 0);
        walk(&mut b, &[(63 * PAGE, 2 * PAGE), (199 * PAGE, PAGE)]);
        assert!(buf(&b)[..0xff1].iter().all(|&x| x == 0));
        let set: KVec<u64> = {
            let mut v = KVec::new();
            for n in 0..256 {
                if bit(&b, n) {
                    v.push(n, GFP_KERNEL).unwrap();
                }
            }
            v
        };
        assert_eq!(&set[..], &[63, 64, 199]);
    }

    #[test]
    fn unaligned_iova_and_any_page_size() {
        // An IOVA that is not a multiple of the page size: bits count from it.
        let mut b = in_kernel(0x10800, 8 * PAGE, PAGE, 0, 0, 0);
        walk(&mut b, &[(0x10800 + PAGE - 1, 2)]);
        assert!(bit(&b, 0) && bit(&b, 1) && !bit(&b, 2));
        // 2 KiB (the mock's), 1 MiB and 1 GiB bits.
        for shift in [11u32, 20, 30] {
            let page = 1u64 << shift;
            let base = 1u64 << 40;
            let mut b = in_kernel(base, 300 * page, page, 0, 0, 0);
            walk(
                &mut b,
                &[(base + 5 * page + 1, page), (base + 299 * page, 1)],
            );
            let set = (0..320).filter(|&n| bit(&b, n)).count();
            assert_eq!(set, 3);
            assert!(bit(&b, 5) && bit(&b, 6) && bit(&b, 299));
        }
    }

    #[test]
    fn carries_into_next_window() {
        let pages = WINDOW_BITS + 8;
        let mut b = bitmap(pages);
        let win_end = 0x10000 + WINDOW_BITS * PAGE;
        // A 3-page range straddling the window end, and one beyond it entirely.
        b.set(win_end - PAGE, 3 * PAGE);
        assert_eq!(b.window[WINDOW_WORDS - 1], 1 << 63);
        b.start_window(WINDOW_BITS);
        assert_eq!(b.window[0], 0b11);
        assert_eq!(b.window_range(), (win_end, 8 * PAGE));
    }

    #[test]
    fn windows_cover_the_range_and_carry_across() {
        // Three windows, the last one short; entries straddling each window boundary (as a
        // large page reported whole from the window holding its start).
        let pages = 2 * WINDOW_BITS + 100;
        let iova = 1u64 << 32;
        let mut b = in_kernel(iova, pages * PAGE, PAGE, 3, 0, 0);
        let w = WINDOW_BITS * PAGE;
        let windows = walk(
            &mut b,
            &[
                (iova, PAGE),
                (iova + w - 2 * PAGE, 4 * PAGE),
                (iova + 2 * w - PAGE, 2 * PAGE),
                (iova + (pages - 1) * PAGE, PAGE),
            ],
        );
        assert_eq!(
            &windows[..],
            &[(iova, w), (iova + w, w), (iova + 2 * w, 100 * PAGE)]
        );
        let mut set = KVec::new();
        for n in 0..pages {
            if bit(&b, n) {
                set.push(n, GFP_KERNEL).unwrap();
            }
        }
        let wb = WINDOW_BITS;
        assert_eq!(
            &set[..],
            &[0, wb - 2, wb - 1, wb, wb + 1, 2 * wb - 1, 2 * wb, pages - 1]
        );
    }

    #[test]
    fn a_range_larger_than_a_window() {
        // One entry covering two and a half windows, reported from the first.
        let pages = 3 * WINDOW_BITS;
        let mut b = in_kernel(0, pages * PAGE, PAGE, 0, 0, 0);
        walk(&mut b, &[(PAGE, (5 * WINDOW_BITS / 2) * PAGE)]);
        let words = buf(&b).len() / 8;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&buf(&b)[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        assert_eq!(word(0), !1);
        let last = (1 + 5 * WINDOW_BITS / 2) as usize; // first bit not set
        for i in 1..last / 64 {
            assert_eq!(word(i), u64::MAX);
        }
        assert_eq!(word(last / 64), (1 << (last % 64)) - 1);
        for i in last / 64 + 1..words {
            assert_eq!(word(i), 0);
        }
    }

    #[test]
    fn huge_range_at_small_pages() {
        // 64 GiB at 4 KiB: 16M bits, 2 MiB of bitmap, 64 windows; every page dirty.
        let length = 64u64 << 30;
        let mut b = in_kernel(1 << 30, length, PAGE, 0, 0, 0);
        let mut n = 0;
        b.for_each(|b, iova, len| {
            n += 1;
            b.set(iova, len);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, length / PAGE / WINDOW_BITS);
        assert_eq!(buf(&b).len() as u64, length / PAGE / 8);
        assert!(buf(&b).iter().all(|&x| x == 0xff));
    }

    #[test]
    fn a_failing_walk_stops_and_merges_nothing_more() {
        let mut b = in_kernel(0, 2 * WINDOW_BITS * PAGE, PAGE, 0, 0, 0);
        let mut calls = 0;
        let res = b.for_each(|b, iova, len| {
            calls += 1;
            b.set(iova, len);
            if calls == 2 {
                return Err(EIO);
            }
            Ok(())
        });
        assert_eq!(res, Err(EIO));
        assert_eq!(calls, 2);
        let half = (WINDOW_BITS / 8) as usize;
        assert!(buf(&b)[..half].iter().all(|&x| x == 0xff));
        assert!(buf(&b)[half..].iter().all(|&x| x == 0));
    }

    #[test]
    fn an_unreadable_array_fails_before_the_walk() {
        // 128 bits need two words; the buffer holds one.
        let buf = KVVec::from_elem(0u8, 8, GFP_KERNEL).unwrap();
        let target = Target::Kernel { buf, offset: 0 };
        let mut b = IovaBitmap::with_target(0, 128 * PAGE, PAGE, target).unwrap();
        let mut calls = 0;
        let res = b.for_each(|_, _, _| {
            calls += 1;
            Ok(())
        });
        assert_eq!(res, Err(EFAULT));
        assert_eq!(calls, 0);
    }

    #[test]
    fn only_touched_segments_are_merged() {
        // Bits in segments 0, 2 and 63 of the window; the words of the other segments keep
        // what the user had there, which shows they were not written.
        let mut b = in_kernel(0, WINDOW_BITS * PAGE, PAGE, 0, 0, 0x5a);
        let seg_bits = SEGMENT_WORDS as u64 * WORD_BITS;
        walk(
            &mut b,
            &[
                (0, PAGE),
                (2 * seg_bits * PAGE, PAGE),
                ((WINDOW_BITS - 1) * PAGE, PAGE),
            ],
        );
        let seg_bytes = SEGMENT_WORDS * 8;
        let seg = |n: usize| &buf(&b)[n * seg_bytes..(n + 1) * seg_bytes];
        assert_eq!(seg(0)[0], 0x5b);
        assert!(seg(0)[1..].iter().all(|&x| x == 0x5a));
        assert!(seg(1).iter().all(|&x| x == 0x5a));
        assert_eq!(seg(2)[0], 0x5b);
        assert_eq!(seg(63)[seg_bytes - 1], 0xda);
        let mut runs = KVec::new();
        for r in segment_runs((1 << 63) | 0b1101) {
            runs.push(r, GFP_KERNEL).unwrap();
        }
        assert_eq!(
            &runs[..],
            &[
                (0, SEGMENT_WORDS),
                (2 * SEGMENT_WORDS, 4 * SEGMENT_WORDS),
                (63 * SEGMENT_WORDS, 64 * SEGMENT_WORDS)
            ]
        );
        assert_eq!(segment_runs(u64::MAX).next(), Some((0, WINDOW_WORDS)));
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(IovaBitmap::new(0, 0, 4096, 0).is_err());
        assert!(IovaBitmap::new(0, 4096, 3000, 0).is_err());
        assert!(IovaBitmap::new(0, 4096, 0, 0).is_err());
        assert!(IovaBitmap::new(u64::MAX, 4096, 4096, 0).is_err());
    }
}
