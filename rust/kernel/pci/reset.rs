// SPDX-License-Identifier: GPL-2.0

//! Resetting a bound PCI function, for a driver that hands functions to someone else and must
//! give each new user a clean one, as VFIO does.
//!
//! The function's own reset methods (function level reset, PM reset, or a secondary bus reset
//! when it is alone on its bus) are reached through [`Device::try_reset_function`], which
//! saves and restores the function's config space around the reset.

use super::Device;
use crate::{
    bindings,
    device::Bound,
    error::to_result,
    prelude::*, //
};

impl Device<Bound> {
    /// Turns bus mastering off.
    pub fn clear_master(&self) {
        // SAFETY: `self.as_raw()` is a valid, bound `struct pci_dev`.
        unsafe { bindings::pci_clear_master(self.as_raw()) };
    }

    /// Resets the function by the first method it has, its config space saved before and
    /// restored after. `ENOTTY` if it has none, `EAGAIN` if the function's device lock is
    /// taken (someone is binding or unbinding it), so that the caller never waits on it.
    pub fn try_reset_function(&self) -> Result {
        // SAFETY: `self.as_raw()` is a valid, bound `struct pci_dev`; the call only tries the
        // device lock, so it cannot deadlock with the driver core.
        to_result(unsafe { bindings::pci_try_reset_function(self.as_raw()) })
    }
}
