// SPDX-License-Identifier: GPL-2.0

//! The power state of a PCI function, as the PCI core knows it.
//!
//! A function in D3hot or D3cold does not decode its BARs: a driver that forwards accesses to
//! them (VFIO) refuses them rather than reaching a function that cannot answer. The PCI core
//! moves functions to D3hot itself when they runtime suspend (see [`crate::pm_runtime`]).

use super::Device;
use crate::device::DeviceContext;

/// `PCI_D3hot` (`include/linux/pci.h`), whose definition bindgen cannot read.
const PCI_D3HOT: i32 = 3;

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
