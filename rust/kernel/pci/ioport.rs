// SPDX-License-Identifier: GPL-2.0

//! I/O-port BARs: a function's port I/O space, read and written through the kernel's iomap
//! cookies (`pci_iomap()`, then `ioread8()` to `iowrite32()`), for a driver that passes its
//! user's accesses on, as VFIO does with every BAR it hands out.
//!
//! Memory BARs have [`super::Bar`], whose accessors are MMIO only: an iomap cookie of port
//! space is not an address to load from.

use super::Device;
use crate::{
    bindings,
    device::Bound,
    devres::Devres,
    prelude::*,
    sync::aref::ARef, //
};
use core::ptr::NonNull;

/// An I/O-port BAR of a bound function, requested and mapped for the driver.
///
/// # Invariants
///
/// `cookie` is `pci_iomap()`'s mapping of the whole of BAR `num` of `pdev`, an I/O-port BAR of
/// `len` bytes whose region is requested; both are given back on drop, which [`Devres`] runs
/// before the function is unbound.
pub struct IoPortBar {
    pdev: ARef<Device>,
    cookie: NonNull<c_void>,
    len: usize,
    num: i32,
}

// SAFETY: The cookie is an address of port space, which any thread may use.
unsafe impl Send for IoPortBar {}
// SAFETY: As for `Send`; port accesses need no exclusion of their own.
unsafe impl Sync for IoPortBar {}

impl IoPortBar {
    /// Requests (as `name`) and maps I/O-port BAR `num` of `pdev`: `EINVAL` for a BAR that is
    /// not port I/O or is empty, `EBUSY` if its region is taken, `ENOMEM` if it cannot be
    /// mapped.
    pub fn new(pdev: &Device<Bound>, num: u32, name: &'static CStr) -> Result<Devres<Self>> {
        if num >= bindings::PCI_STD_NUM_BARS {
            return Err(EINVAL);
        }
        // SAFETY: `pdev` is a valid function and `num` one of its standard BARs; the flags
        // do not change while it is bound.
        let flags = unsafe { (*pdev.as_raw()).resource[num as usize].flags };
        let len = usize::try_from(pdev.resource_len(num)?)?;
        if flags & bindings::IORESOURCE_IO as usize == 0 || len == 0 {
            return Err(EINVAL);
        }
        let num = num as i32;
        // SAFETY: As above; `name` is static.
        if unsafe { bindings::pci_request_region(pdev.as_raw(), num, name.as_char_ptr()) } != 0 {
            return Err(EBUSY);
        }
        // SAFETY: The region of BAR `num` is requested (above).
        let cookie = unsafe { bindings::pci_iomap(pdev.as_raw(), num, 0) };
        let Some(cookie) = NonNull::new(cookie) else {
            // SAFETY: Requested above, and not mapped.
            unsafe { bindings::pci_release_region(pdev.as_raw(), num) };
            return Err(ENOMEM);
        };
        let pdev_ref: &Device = pdev;
        // INVARIANT: The whole BAR is mapped and its region requested; `Devres` drops the
        // mapping when the function is unbound, if nothing dropped it before.
        Devres::new(
            pdev.as_ref(),
            Ok::<_, Error>(Self {
                pdev: pdev_ref.into(),
                cookie,
                len,
                num,
            }),
        )
    }

    /// The BAR's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the BAR is empty (never: [`IoPortBar::new`] refuses empty BARs).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The cookie at `offset`, for an access of `size` bytes: `EINVAL` past the BAR.
    fn at(&self, offset: usize, size: usize) -> Result<*mut c_void> {
        match offset.checked_add(size) {
            Some(end) if end <= self.len => Ok(self.cookie.as_ptr().wrapping_byte_add(offset)),
            _ => Err(EINVAL),
        }
    }

    /// Reads the byte at `offset`.
    pub fn try_read8(&self, offset: usize) -> Result<u8> {
        let at = self.at(offset, 1)?;
        // SAFETY: `at` is within the mapped BAR (the invariants and `at()`).
        Ok(unsafe { bindings::ioread8(at) } as u8)
    }

    /// Reads the little-endian 16 bits at `offset`.
    pub fn try_read16(&self, offset: usize) -> Result<u16> {
        let at = self.at(offset, 2)?;
        // SAFETY: As for `try_read8`.
        Ok(unsafe { bindings::ioread16(at) } as u16)
    }

    /// Reads the little-endian 32 bits at `offset`.
    pub fn try_read32(&self, offset: usize) -> Result<u32> {
        let at = self.at(offset, 4)?;
        // SAFETY: As for `try_read8`.
        Ok(unsafe { bindings::ioread32(at) })
    }

    /// Writes the byte `val` at `offset`.
    pub fn try_write8(&self, val: u8, offset: usize) -> Result {
        let at = self.at(offset, 1)?;
        // SAFETY: As for `try_read8`.
        unsafe { bindings::iowrite8(val, at) };
        Ok(())
    }

    /// Writes `val`, little-endian, at `offset`.
    pub fn try_write16(&self, val: u16, offset: usize) -> Result {
        let at = self.at(offset, 2)?;
        // SAFETY: As for `try_read8`.
        unsafe { bindings::iowrite16(val, at) };
        Ok(())
    }

    /// Writes `val`, little-endian, at `offset`.
    pub fn try_write32(&self, val: u32, offset: usize) -> Result {
        let at = self.at(offset, 4)?;
        // SAFETY: As for `try_read8`.
        unsafe { bindings::iowrite32(val, at) };
        Ok(())
    }
}

impl Drop for IoPortBar {
    fn drop(&mut self) {
        // SAFETY: By the invariants the BAR is mapped at `cookie` and its region requested.
        unsafe {
            bindings::pci_iounmap(self.pdev.as_raw(), self.cookie.as_ptr());
            bindings::pci_release_region(self.pdev.as_raw(), self.num);
        }
    }
}
