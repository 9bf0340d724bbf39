// SPDX-License-Identifier: GPL-2.0

//! The power state of a PCI function: as the PCI core knows it, and moved on a driver's behalf.
//!
//! A function in D3hot or D3cold does not decode its BARs: a driver that forwards accesses to
//! them (VFIO) refuses them rather than reaching a function that cannot answer. The PCI core
//! moves functions to D3hot itself when they runtime suspend (see [`crate::pm_runtime`]); a
//! driver that lets its user choose the power state moves them with
//! [`Device::set_power_state`]. A function without `NoSoftRst` loses its config space on the
//! way back from D3hot: [`Device::save_state`] keeps a copy that
//! [`Device::restore_state`] writes back.

use super::Device;
use crate::{
    bindings,
    device::{
        Bound,
        DeviceContext, //
    },
    error::to_result,
    prelude::*,
};
use core::ptr::NonNull;

/// `PCI_D3hot` (`include/linux/pci.h`), whose definition bindgen cannot read.
const PCI_D3HOT: i32 = 3;

/// `PCI_PM_CTRL` and its `PCI_PM_CTRL_NO_SOFT_RESET` bit (`include/uapi/linux/pci_regs.h`).
const PCI_PM_CTRL: i32 = 4;
const PCI_PM_CTRL_NO_SOFT_RESET: u16 = 0x0008;

/// A copy of a function's config space, taken by [`Device::save_state`]; freed if dropped.
pub struct SavedState(NonNull<bindings::pci_saved_state>);

// SAFETY: The copy is plain memory owned by this value, usable and freeable from any thread.
unsafe impl Send for SavedState {}
// SAFETY: `SavedState` offers no access through a shared reference.
unsafe impl Sync for SavedState {}

impl Drop for SavedState {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `pci_store_saved_state()`, which allocates it with
        // `kzalloc()`, and is owned by `self`.
        unsafe { bindings::kfree(self.0.as_ptr().cast()) };
    }
}

impl<Ctx: DeviceContext> Device<Ctx> {
    /// Whether the function is in D3hot or D3cold, as the PCI core last set or found it
    /// (`current_state`), which it may change at any time.
    pub fn in_d3(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; `current_state` is an `int` the
        // PCI core writes under its own locks, read once here, as C readers do.
        let state = unsafe { core::ptr::addr_of!((*self.as_raw()).current_state).read_volatile() };
        state >= PCI_D3HOT
    }
}

impl Device<Bound> {
    /// Moves the function to D`state` (0 for D0 up to 3 for D3hot) with
    /// `pci_set_power_state()`: `EINVAL` for another state, `EIO` if the function cannot go
    /// there.
    pub fn set_power_state(&self, state: u8) -> Result {
        if state > 3 {
            return Err(EINVAL);
        }
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`, bound to the caller's driver.
        to_result(unsafe { bindings::pci_set_power_state(self.as_raw(), state.into()) })
    }

    /// Whether the function keeps its config space through D3hot to D0 (`NoSoftRst` in its PM
    /// capability); a function without the capability never leaves D0, so keeps it too.
    pub fn keeps_state_in_d3(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; `pm_cap` is set at enumeration.
        let pm = unsafe { (*self.as_raw()).pm_cap };
        if pm == 0 {
            return true;
        }
        let mut ctrl = 0u16;
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`, `ctrl` a valid `u16` to write.
        let ret = unsafe {
            bindings::pci_read_config_word(self.as_raw(), i32::from(pm) + PCI_PM_CTRL, &mut ctrl)
        };
        ret == 0 && ctrl & PCI_PM_CTRL_NO_SOFT_RESET != 0
    }

    /// Saves the function's config space (`pci_save_state()`) and returns a copy of it
    /// (`pci_store_saved_state()`), or `None` if there was no memory for one.
    pub fn save_state(&self) -> Option<SavedState> {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`, bound to the caller's driver.
        unsafe { bindings::pci_save_state(self.as_raw()) };
        // SAFETY: As above; the copy returned is allocated for the caller, or null.
        let saved = unsafe { bindings::pci_store_saved_state(self.as_raw()) };
        NonNull::new(saved).map(SavedState)
    }

    /// Writes `saved` back into the function's config space (`pci_load_and_free_saved_state()`
    /// and `pci_restore_state()`).
    pub fn restore_state(&self, saved: SavedState) {
        let mut ptr = saved.0.as_ptr();
        core::mem::forget(saved);
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; `ptr` is a copy from
        // `pci_store_saved_state()` whose ownership passes to the call, which frees it.
        unsafe {
            bindings::pci_load_and_free_saved_state(self.as_raw(), &mut ptr);
            bindings::pci_restore_state(self.as_raw());
        }
    }
}
