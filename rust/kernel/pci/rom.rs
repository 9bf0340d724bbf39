// SPDX-License-Identifier: GPL-2.0

//! A function's expansion ROM, mapped for reading while a [`Rom`] lives (`pci_map_rom()`:
//! the ROM BAR's decoding is on meanwhile), for a driver that hands the ROM to someone else,
//! as VFIO does.
//!
//! The PCI core checks the ROM's images (the `55 AA` signature and each `PCIR` structure) and
//! tells how much of the BAR they fill: [`Rom::size`]. The function's memory decoding must be
//! on for the ROM to answer.

use super::Device;
use crate::{
    bindings,
    device::Bound,
    prelude::*, //
};
use core::ptr::NonNull;

/// The mapped expansion ROM of a bound function.
///
/// # Invariants
///
/// `io` is `pci_map_rom()`'s mapping of `pdev`'s ROM, whose images fill `size` bytes of it;
/// it is unmapped on drop.
pub struct Rom<'a> {
    pdev: &'a Device<Bound>,
    io: NonNull<c_void>,
    size: usize,
}

impl Device<Bound> {
    /// Maps the function's expansion ROM: `None` without one, or if it holds no valid image.
    pub fn map_rom(&self) -> Option<Rom<'_>> {
        let mut size = 0usize;
        // SAFETY: `self` is a bound function; `size` may be written.
        let io = NonNull::new(unsafe { bindings::pci_map_rom(self.as_raw(), &mut size) })?;
        // INVARIANT: Mapped, with its images' size; `pci_map_rom()` refuses a ROM without any.
        Some(Rom {
            pdev: self,
            io,
            size,
        })
    }
}

impl Rom<'_> {
    /// How many bytes the ROM's images fill (at most the BAR's length).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The address of `offset`, for a read of `len` bytes: `EINVAL` past the images.
    fn at(&self, offset: usize, len: usize) -> Result<*const c_void> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(self.io.as_ptr().wrapping_byte_add(offset)),
            _ => Err(EINVAL),
        }
    }

    /// Reads the byte at `offset`.
    pub fn try_read8(&self, offset: usize) -> Result<u8> {
        let at = self.at(offset, 1)?;
        // SAFETY: `at` is within the mapping (the invariants and `at()`).
        Ok(unsafe { bindings::readb(at) })
    }

    /// Reads the little-endian 16 bits at `offset`.
    pub fn try_read16(&self, offset: usize) -> Result<u16> {
        let at = self.at(offset, 2)?;
        // SAFETY: As for `try_read8`.
        Ok(unsafe { bindings::readw(at) })
    }

    /// Reads the little-endian 32 bits at `offset`.
    pub fn try_read32(&self, offset: usize) -> Result<u32> {
        let at = self.at(offset, 4)?;
        // SAFETY: As for `try_read8`.
        Ok(unsafe { bindings::readl(at) })
    }
}

impl Drop for Rom<'_> {
    fn drop(&mut self) {
        // SAFETY: By the invariants `io` is the ROM's mapping, not unmapped yet.
        unsafe { bindings::pci_unmap_rom(self.pdev.as_raw(), self.io.as_ptr()) };
    }
}
