// SPDX-License-Identifier: GPL-2.0

//! The IOVA dirty bitmap that IOMMU drivers fill in (`include/linux/iova_bitmap.h`).
//!
//! When userspace asks for the dirty pages of an I/O page table, it hands in a bitmap in its own
//! memory: bit `n` stands for the page at `iova + n * page_size`. The IOMMU driver walks its page
//! table and reports every dirty range ([`IovaBitmap::set`], `iova_bitmap_set()` from C). Those
//! calls come from contexts that must not fault on user memory (the driver holds its page-table
//! locks), so the walk goes a window at a time: the pages of the user's array under a window
//! are pinned first, the driver reports the window's IOVA range, and the bits go straight into
//! the pinned pages (OR-ed in: bits already set stay set). There is no copy of the array in or
//! out, which for a large bitmap costs more than the walk; a window of a page of page pointers
//! covers 64 GiB of IOVA at 4 KiB pages.
//!
//! An array that cannot be pinned for writing fails the walk with `EFAULT` before the driver
//! reports (and cleans) the window, so no dirty state is lost to a bad pointer.
//!
//! The C functions are exported from here because C IOMMU drivers (intel, amd, arm-smmu-v3 and
//! the generic page-table code) call them; the bitmap itself is opaque to them.

use crate::{
    alloc::{
        KVVec,
        KVec, //
    },
    bindings,
    page::PAGE_SIZE,
    prelude::*,
};

/// The most pages of the user's array one window pins: a page of page pointers, as upstream.
const WINDOW_PAGES: usize = PAGE_SIZE / size_of::<*mut bindings::page>();
const WORD_BITS: u64 = u64::BITS as u64;
/// Bits in a page of the array.
const PAGE_BITS: u64 = PAGE_SIZE as u64 * 8;

/// Where the bits end up.
enum Target {
    /// The user's `u64` array at this address, and the pages of it the current window pinned
    /// (the first `pinned` of `pages`).
    User {
        addr: usize,
        pages: KVec<*mut bindings::page>,
        pinned: usize,
    },
    /// A kernel buffer whose byte `offset` stands for the array's start, for the tests, which
    /// have no user memory. Byte `i` of it plays user address `i`, so the buffer's "pages" are
    /// its `PAGE_SIZE` chunks.
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
    /// The most pages a window maps ([`WINDOW_PAGES`]; fewer in the tests).
    max_pages: usize,
    /// The current window: the bits `window_first_bit..=window_last_bit` of the bitmap, which
    /// lie in the array's pages from the one holding byte `window_first_bit / 8`, from byte
    /// `pgoff` of it.
    window_first_bit: u64,
    window_last_bit: u64,
    pgoff: usize,
    /// The address of the window's first page.
    window_page: usize,
    /// Bits set past the end of the current window, `carry_first..carry_end`: applied when
    /// the next window starts. Empty when `carry_first >= carry_end`.
    carry_first: u64,
    carry_end: u64,
}

impl IovaBitmap {
    /// Makes a bitmap for `length` bytes of IOVA from `iova`, with bits of `page_size` bytes,
    /// set in the user's `u64` array at `user`.
    pub fn new(iova: u64, length: u64, page_size: u64, user: usize) -> Result<Self> {
        let target = Target::User {
            addr: user,
            pages: KVec::new(),
            pinned: 0,
        };
        let mut b = Self::with_target(iova, length, page_size, target, WINDOW_PAGES)?;
        let npages = b.array_pages(0).min(WINDOW_PAGES);
        if let Target::User { pages, .. } = &mut b.target {
            pages.resize(npages, core::ptr::null_mut(), GFP_KERNEL)?;
        }
        Ok(b)
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
        let target = Target::Kernel { buf, offset: 0 };
        Self::with_target(iova, length, page_size, target, WINDOW_PAGES)
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

    fn with_target(
        iova: u64,
        length: u64,
        page_size: u64,
        target: Target,
        max_pages: usize,
    ) -> Result<Self> {
        if length == 0 || !page_size.is_power_of_two() || iova.checked_add(length - 1).is_none() {
            return Err(EINVAL);
        }
        let page_shift = page_size.trailing_zeros();
        let last_bit = (length - 1) >> page_shift;
        // The array's size in bytes must be an address size.
        usize::try_from(last_bit.div_ceil(WORD_BITS) * 8).map_err(|_| EINVAL)?;
        Ok(Self {
            iova,
            last_bit,
            page_shift,
            target,
            max_pages,
            window_first_bit: 0,
            window_last_bit: 0,
            pgoff: 0,
            window_page: 0,
            carry_first: 0,
            carry_end: 0,
        })
    }

    /// The address of the array's byte `byte`: a user address, or an index into the kernel
    /// buffer.
    fn array_addr(&self, byte: usize) -> Option<usize> {
        let base = match &self.target {
            Target::User { addr, .. } => *addr,
            Target::Kernel { offset, .. } => *offset,
        };
        base.checked_add(byte)
    }

    /// The number of bytes of the array: whole `u64`s, as userspace hands it in.
    fn array_bytes(&self) -> usize {
        ((self.last_bit / WORD_BITS + 1) * 8) as usize
    }

    /// How many pages the array spans from its byte `byte` to its end (0 if that overflows).
    fn array_pages(&self, byte: usize) -> usize {
        let Some(start) = self.array_addr(byte) else {
            return 0;
        };
        let len = self.array_bytes().saturating_sub(byte);
        if start.checked_add(len).is_none() {
            return 0;
        }
        (start % PAGE_SIZE + len).div_ceil(PAGE_SIZE)
    }

    /// Sets bits `first..=last` (bitmap-relative). Bits past the window are carried into the
    /// next one: IOMMU drivers report whole entries, and an entry of a large page can end
    /// past the window. Two carried ranges become the one range covering both, which may set
    /// bits between them: a page reported dirty that was not costs a copy, one missed would
    /// lose data. Bits before the window were already set in the array and stay as they are
    /// (windows are walked in order, and a walk reports only what it was given).
    fn set_bits(&mut self, first: u64, last: u64) {
        let win_last = self.window_last_bit;
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
        // Bit positions counted from the start of the window's first page, so that a page's
        // words are whole (the array may start anywhere in a page).
        let base = self.pgoff as u64 * 8;
        let (mut p, end) = (
            first - self.window_first_bit + base,
            last - self.window_first_bit + base,
        );
        while p <= end {
            let page = p / PAGE_BITS;
            let to = end.min((page + 1) * PAGE_BITS - 1);
            self.target.set_in_page(
                self.window_page,
                page as usize,
                p % PAGE_BITS,
                to % PAGE_BITS,
            );
            p = to + 1;
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

    /// Starts the window at `first_bit` (a multiple of 8): pins the pages of the array under
    /// it, up to [`Self::max_pages`], and applies what the previous window carried. `EFAULT`
    /// if not even the first page can be pinned for writing.
    fn start_window(&mut self, first_bit: u64) -> Result {
        let byte = (first_bit / 8) as usize;
        let start = self.array_addr(byte).ok_or(EFAULT)?;
        let want = self.array_pages(byte).min(self.max_pages);
        let got = self.target.pin(start, want, self.array_bytes() - byte)?;
        self.window_first_bit = first_bit;
        self.pgoff = start % PAGE_SIZE;
        self.window_page = start - self.pgoff;
        // Bits up to the end of the last page pinned.
        let end_byte = (got * PAGE_SIZE - self.pgoff) as u64;
        self.window_last_bit = (first_bit + end_byte * 8 - 1).min(self.last_bit);
        let (carry_first, carry_end) = (self.carry_first, self.carry_end);
        self.carry_first = 0;
        self.carry_end = 0;
        if carry_first < carry_end {
            self.set_bits(carry_first.max(first_bit), carry_end - 1);
        }
        Ok(())
    }

    /// IOVA range of the current window.
    fn window_range(&self) -> (u64, u64) {
        let start = self.iova + (self.window_first_bit << self.page_shift);
        let bits = self.window_last_bit - self.window_first_bit + 1;
        (start, bits << self.page_shift)
    }

    /// Walks the bitmap a window at a time: pins the array's pages under each window, calls
    /// `f` with the window's IOVA range (`f` reports dirty ranges with [`IovaBitmap::set`],
    /// which sets them in the pinned pages), and unpins them. Stops at the first error, of `f`
    /// or of pinning (`EFAULT`, before `f` runs for that window).
    pub fn for_each(&mut self, mut f: impl FnMut(&mut Self, u64, u64) -> Result) -> Result {
        let mut first_bit = 0;
        while first_bit <= self.last_bit {
            self.start_window(first_bit)?;
            let (iova, length) = self.window_range();
            let res = f(self, iova, length);
            self.target.unpin();
            res?;
            first_bit = self.window_last_bit + 1;
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

impl Target {
    /// Pins up to `want` pages of the array from the page holding the address `start`, where
    /// a window starts that has `len` bytes of the array left; returns how many pages were
    /// pinned, at least one. `EFAULT` if none can be.
    fn pin(&mut self, start: usize, want: usize, len: usize) -> Result<usize> {
        match self {
            Target::User { pages, pinned, .. } => {
                let want = want.min(pages.len());
                let n = i32::try_from(want).map_err(|_| EINVAL)?;
                // SAFETY: `pages` has room for `want` page pointers; the pins taken are
                // recorded in `pinned` and given back by `unpin`.
                let rc = unsafe {
                    bindings::pin_user_pages_fast(
                        start - start % PAGE_SIZE,
                        n,
                        bindings::FOLL_WRITE,
                        pages.as_mut_ptr(),
                    )
                };
                if rc <= 0 {
                    return Err(EFAULT);
                }
                *pinned = (rc as usize).min(want);
                Ok(*pinned)
            }
            Target::Kernel { buf, .. } => {
                // The window's bytes of the array must all be in the buffer, as user memory
                // must be there to be pinned.
                if want == 0 {
                    return Err(EFAULT);
                }
                let bytes = len.min(want * PAGE_SIZE - start % PAGE_SIZE);
                match start.checked_add(bytes) {
                    Some(end) if end <= buf.len() => Ok(want),
                    _ => Err(EFAULT),
                }
            }
        }
    }

    /// Gives back the pages the window pinned, dirty: they were written.
    fn unpin(&mut self) {
        if let Target::User { pages, pinned, .. } = self {
            if *pinned > 0 {
                // SAFETY: the first `pinned` pointers of `pages` each hold a pin `pin` took;
                // they are given back here once.
                unsafe { bindings::unpin_user_pages_dirty_lock(pages.as_mut_ptr(), *pinned, true) };
                *pinned = 0;
            }
        }
    }

    /// Sets the bits `lo..=hi` of page `page` of the window that starts at the page at
    /// `window_page` (bit 0 is the first of the page, whose words are whole `u64`s whatever
    /// the array's alignment).
    fn set_in_page(&mut self, window_page: usize, page: usize, lo: u64, hi: u64) {
        let words = (lo / WORD_BITS) as usize..=(hi / WORD_BITS) as usize;
        let mask = |w: usize| {
            let first = (w as u64 * WORD_BITS).max(lo) % WORD_BITS;
            let last = ((w as u64 + 1) * WORD_BITS - 1).min(hi) % WORD_BITS;
            (u64::MAX >> (WORD_BITS - 1 - last)) & (u64::MAX << first)
        };
        match self {
            Target::User { pages, pinned, .. } => {
                let Some(&page) = pages.get(page).filter(|_| page < *pinned) else {
                    return;
                };
                // SAFETY: the page is pinned (so it stays) and writable; its words are
                // accessed within the page, aligned. The user may write the same words at the
                // same time: as with C's `bitmap_set()` on the same mapping, one of the writes
                // then wins, which only a program racing its own ioctl can see.
                unsafe {
                    let base = bindings::kmap_local_page(page).cast::<u64>();
                    for w in words {
                        let word = base.add(w);
                        let m = mask(w);
                        if m == u64::MAX {
                            word.write_volatile(m);
                        } else {
                            word.write_volatile(word.read_volatile() | m);
                        }
                    }
                    bindings::kunmap_local(base.cast());
                }
            }
            Target::Kernel { buf, .. } => {
                // Only the bytes holding bits are touched: the others may lie outside the
                // buffer.
                let page_start = window_page + page * PAGE_SIZE;
                for w in words {
                    for (i, m) in mask(w).to_ne_bytes().into_iter().enumerate() {
                        if m != 0 {
                            if let Some(b) = buf.get_mut(page_start + w * 8 + i) {
                                *b |= m;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Drop for IovaBitmap {
    fn drop(&mut self) {
        self.target.unpin();
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
    /// Any values are accepted; `data` is a user pointer, whose pages are only reached by pinning
    /// them.
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

    /// Calls `f` for each window of the bitmap, with the user's pages under it pinned. Stops
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
                if let Err(e) = b.start_window(first_bit) {
                    return e.to_errno();
                }
                b.window_range()
            };
            // SAFETY: `f` and `opaque` are valid by the safety requirements.
            let ret = unsafe { f(bitmap, iova as c_ulong, length as usize, opaque) };
            // SAFETY: As above; the callback has returned.
            let b = unsafe { &mut *bitmap };
            b.target.unpin();
            if let Err(e) = to_result(ret) {
                return e.to_errno();
            }
            first_bit = b.window_last_bit + 1;
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
    /// Bits in a window of one page, at an array that starts a page.
    const WB: u64 = PAGE_BITS;

    /// A bitmap over `length` bytes from `iova` setting bits in a kernel buffer at byte
    /// `offset`, with `slack` bytes after the array, windows of at most `window` pages; every
    /// byte of the buffer starts as `fill`.
    fn in_kernel(
        iova: u64,
        length: u64,
        page: u64,
        offset: usize,
        slack: usize,
        fill: u8,
        window: usize,
    ) -> IovaBitmap {
        let bits = (length - 1) / page + 1;
        let bytes = offset + bits.div_ceil(WORD_BITS) as usize * 8 + slack;
        let buf = KVVec::from_elem(fill, bytes, GFP_KERNEL).unwrap();
        let target = Target::Kernel { buf, offset };
        IovaBitmap::with_target(iova, length, page, target, window).unwrap()
    }

    fn buf(b: &IovaBitmap) -> &[u8] {
        match &b.target {
            Target::Kernel { buf, .. } => buf,
            Target::User { .. } => &[],
        }
    }

    /// Bit `n` of the array at byte `offset` of the buffer.
    fn bit(b: &IovaBitmap, n: u64) -> bool {
        let Target::Kernel { buf, offset } = &b.target else {
            return false;
        };
        buf[offset + (n / 8) as usize] & (1 << (n % 8)) != 0
    }

    /// Word `i` of the array.
    fn word(b: &IovaBitmap, i: usize) -> u64 {
        let Target::Kernel { buf, offset } = &b.target else {
            return 0;
        };
        let mut w = [0u8; 8];
        w.copy_from_slice(&buf[offset + i * 8..offset + i * 8 + 8]);
        u64::from_ne_bytes(w)
    }

    /// The bits of the first `n` set in the array.
    fn set_bits(b: &IovaBitmap, n: u64) -> KVec<u64> {
        let mut v = KVec::new();
        for i in (0..n).filter(|&i| bit(b, i)) {
            v.push(i, GFP_KERNEL).unwrap();
        }
        v
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
        let mut b = in_kernel(0x10000, 256 * PAGE, PAGE, 0, 0, 0, WINDOW_PAGES);
        b.for_each(|b, _, _| {
            b.set(0x10000, 4096);
            assert_eq!(word(b, 0), 1);
            b.set(0x10000 + 62 * 4096, 3 * 4096);
            assert_eq!(word(b, 0), 1 | (3u64 << 62));
            assert_eq!(word(b, 1), 1);
            // Partial pages count as dirty.
            b.set(0x10000 + 70 * 4096 + 1, 1);
            assert_eq!(word(b, 1), 1 | (1 << 6));
            // A whole word at once.
            b.set(0x10000 + 128 * 4096, 64 * 4096);
            assert_eq!(word(b, 2), u64::MAX);
            assert_eq!(word(b, 3), 0);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn ignores_outside_and_clamps_at_both_ends() {
        let mut b = in_kernel(0x10000, 4 * PAGE, PAGE, 0, 0, 0, WINDOW_PAGES);
        b.for_each(|b, _, _| {
            b.set(0x1000, 4096);
            b.set(0x10000 + 4 * 4096, 4096);
            assert_eq!(word(b, 0), 0);
            b.set(0x10000 + 3 * 4096, 8 * 4096);
            assert_eq!(word(b, 0), 1 << 3);
            // A range that starts before the bitmap (a large page) sets what lies inside.
            b.set(0x8000, 0x9000);
            assert_eq!(word(b, 0), 0b1001);
            // Ranges reaching the end of the address space do not wrap.
            b.set(u64::MAX - 4095, 4096);
            b.set(0x10000 + 4096, u64::MAX);
            assert_eq!(word(b, 0), 0b1111);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn first_and_last_bit_reach_the_user_array() {
        // 1000 bits: the last word is partly used; what lies past the array is not touched,
        // and bits already set stay set (bits are OR-ed in).
        let mut b = in_kernel(0x10000, 1000 * PAGE, PAGE, 0, 16, 0, WINDOW_PAGES);
        let windows = walk(&mut b, &[(0x10000, 1), (0x10000 + 999 * PAGE, PAGE)]);
        assert_eq!(&windows[..], &[(0x10000, 1000 * PAGE)]);
        assert_eq!(&set_bits(&b, 1024)[..], &[0, 999]);
        assert!(buf(&b)[128..].iter().all(|&x| x == 0));

        let mut b = in_kernel(0x10000, 1000 * PAGE, PAGE, 0, 16, 0x5a, WINDOW_PAGES);
        walk(&mut b, &[(0x10000 + 3 * PAGE, PAGE)]);
        assert_eq!(buf(&b)[0], 0x5a | 0x08);
        assert!(buf(&b)[1..].iter().all(|&x| x == 0x5a));
    }

    #[test]
    fn unaligned_user_array() {
        // The selftests hand in arrays at odd byte addresses (page + 0xff1): the array's words
        // straddle the page boundary, and the bytes before the array are never written.
        for window in [WINDOW_PAGES, 1] {
            let mut b = in_kernel(0, 200 * PAGE, PAGE, 0xff1, 8, 0, window);
            let windows = walk(&mut b, &[(63 * PAGE, 2 * PAGE), (199 * PAGE, PAGE)]);
            assert!(buf(&b)[..0xff1].iter().all(|&x| x == 0));
            assert_eq!(&set_bits(&b, 256)[..], &[63, 64, 199]);
            if window == 1 {
                // A window of one page holds the array's first 15 bytes, the next the rest.
                assert_eq!(&windows[..], &[(0, 120 * PAGE), (120 * PAGE, 80 * PAGE)]);
            } else {
                assert_eq!(&windows[..], &[(0, 200 * PAGE)]);
            }
        }
    }

    #[test]
    fn unaligned_iova_and_any_page_size() {
        // An IOVA that is not a multiple of the page size: bits count from it.
        let mut b = in_kernel(0x10800, 8 * PAGE, PAGE, 0, 0, 0, WINDOW_PAGES);
        walk(&mut b, &[(0x10800 + PAGE - 1, 2)]);
        assert!(bit(&b, 0) && bit(&b, 1) && !bit(&b, 2));
        // 2 KiB (the mock's), 1 MiB and 1 GiB bits.
        for shift in [11u32, 20, 30] {
            let page = 1u64 << shift;
            let base = 1u64 << 40;
            let mut b = in_kernel(base, 300 * page, page, 0, 0, 0, WINDOW_PAGES);
            walk(
                &mut b,
                &[(base + 5 * page + 1, page), (base + 299 * page, 1)],
            );
            assert_eq!(&set_bits(&b, 320)[..], &[5, 6, 299]);
        }
    }

    #[test]
    fn carries_into_next_window() {
        let pages = WB + 8;
        let mut b = in_kernel(0x10000, pages * PAGE, PAGE, 0, 0, 0, 1);
        let win_end = 0x10000 + WB * PAGE;
        let mut n = 0;
        b.for_each(|b, iova, length| {
            n += 1;
            if n == 1 {
                assert_eq!((iova, length), (0x10000, WB * PAGE));
                // A 3-page range straddling the window end.
                b.set(win_end - PAGE, 3 * PAGE);
                assert_eq!(word(b, (WB / WORD_BITS) as usize - 1), 1 << 63);
            } else {
                // Its rest was set when this window started.
                assert_eq!((iova, length), (win_end, 8 * PAGE));
                assert_eq!(word(b, (WB / WORD_BITS) as usize), 0b11);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn windows_cover_the_range_and_carry_across() {
        // Three windows of one page of an array at byte 3 of a page: the first holds 4093
        // bytes, the next a page, the last the rest. Entries straddle each window boundary
        // (as a large page reported whole from the window holding its start).
        let w1 = (PAGE - 3) * 8;
        let w2 = w1 + WB;
        let pages = w2 + 100;
        let iova = 1u64 << 32;
        let mut b = in_kernel(iova, pages * PAGE, PAGE, 3, 0, 0, 1);
        let windows = walk(
            &mut b,
            &[
                (iova, PAGE),
                (iova + (w1 - 2) * PAGE, 4 * PAGE),
                (iova + (w2 - 1) * PAGE, 2 * PAGE),
                (iova + (pages - 1) * PAGE, PAGE),
            ],
        );
        assert_eq!(
            &windows[..],
            &[
                (iova, w1 * PAGE),
                (iova + w1 * PAGE, WB * PAGE),
                (iova + w2 * PAGE, 100 * PAGE)
            ]
        );
        assert_eq!(
            &set_bits(&b, pages)[..],
            &[0, w1 - 2, w1 - 1, w1, w1 + 1, w2 - 1, w2, pages - 1]
        );
    }

    #[test]
    fn a_range_larger_than_a_window() {
        // One entry covering two and a half windows, reported from the first.
        let pages = 3 * WB;
        let mut b = in_kernel(0, pages * PAGE, PAGE, 0, 0, 0, 1);
        walk(&mut b, &[(PAGE, (5 * WB / 2) * PAGE)]);
        let words = buf(&b).len() / 8;
        assert_eq!(word(&b, 0), !1);
        let last = (1 + 5 * WB / 2) as usize; // first bit not set
        for i in 1..last / 64 {
            assert_eq!(word(&b, i), u64::MAX);
        }
        assert_eq!(word(&b, last / 64), (1 << (last % 64)) - 1);
        for i in last / 64 + 1..words {
            assert_eq!(word(&b, i), 0);
        }
    }

    #[test]
    fn huge_range_at_small_pages() {
        // 64 GiB at 4 KiB: 16M bits, 2 MiB of bitmap, one window of 512 pages; every page
        // dirty.
        let length = 64u64 << 30;
        let mut b = in_kernel(1 << 30, length, PAGE, 0, 0, 0, WINDOW_PAGES);
        let mut n = 0;
        b.for_each(|b, iova, len| {
            n += 1;
            b.set(iova, len);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, length / PAGE / (WINDOW_PAGES as u64 * WB));
        assert_eq!(buf(&b).len() as u64, length / PAGE / 8);
        assert!(buf(&b).iter().all(|&x| x == 0xff));
    }

    #[test]
    fn a_failing_walk_stops() {
        // Three windows; the second fails after setting its bits: the third is never walked.
        let mut b = in_kernel(0, 3 * WB * PAGE, PAGE, 0, 0, 0, 1);
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
        let two = (2 * WB / 8) as usize;
        assert!(buf(&b)[..two].iter().all(|&x| x == 0xff));
        assert!(buf(&b)[two..].iter().all(|&x| x == 0));
    }

    #[test]
    fn an_unreachable_array_fails_before_the_walk() {
        // 128 bits need two words; the buffer holds one.
        let buf = KVVec::from_elem(0u8, 8, GFP_KERNEL).unwrap();
        let target = Target::Kernel { buf, offset: 0 };
        let mut b = IovaBitmap::with_target(0, 128 * PAGE, PAGE, target, WINDOW_PAGES).unwrap();
        let mut calls = 0;
        let res = b.for_each(|_, _, _| {
            calls += 1;
            Ok(())
        });
        assert_eq!(res, Err(EFAULT));
        assert_eq!(calls, 0);
    }

    #[test]
    fn a_window_pins_at_most_a_page_of_pointers() {
        let pointers = |b: &IovaBitmap| match &b.target {
            Target::User { pages, .. } => pages.len(),
            Target::Kernel { .. } => 0,
        };
        // 1 GiB at 4 KiB: 32 KiB of array, 8 pages, or 9 when it does not start a page.
        let b = IovaBitmap::new(0, 1 << 30, PAGE, 0x10000).unwrap();
        assert_eq!(pointers(&b), 8);
        let b = IovaBitmap::new(0, 1 << 30, PAGE, 0x10008).unwrap();
        assert_eq!(pointers(&b), 9);
        // 1 TiB: 32 MiB of array, pinned 512 pages (2 MiB) at a time.
        let b = IovaBitmap::new(0, 1 << 40, PAGE, 0x10000).unwrap();
        assert_eq!(pointers(&b), WINDOW_PAGES);
        // An array whose end overflows the address space has nothing to pin.
        let b = IovaBitmap::new(0, 1 << 30, PAGE, usize::MAX - 16).unwrap();
        assert_eq!(pointers(&b), 0);
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(IovaBitmap::new(0, 0, 4096, 0).is_err());
        assert!(IovaBitmap::new(0, 4096, 3000, 0).is_err());
        assert!(IovaBitmap::new(0, 4096, 0, 0).is_err());
        assert!(IovaBitmap::new(u64::MAX, 4096, 4096, 0).is_err());
    }
}
