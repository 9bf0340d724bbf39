// SPDX-License-Identifier: GPL-2.0

//! PCIe device control settings a driver may apply on its user's behalf: the max read request
//! size, bounded below by the max payload size the PCI core chose for the link.

use super::Device;
use crate::{
    bindings,
    device::Bound,
    error::to_result,
    prelude::*, //
};

impl Device<Bound> {
    /// The function's PCIe max payload size in bytes (`pcie_get_mps()`).
    pub fn pcie_max_payload(&self) -> u32 {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        let mps = unsafe { bindings::pcie_get_mps(self.as_raw()) };
        u32::try_from(mps).unwrap_or(0)
    }

    /// Sets the function's PCIe max read request size to `bytes` (`pcie_set_readrq()`, which
    /// takes a power of two from 128 to 4096): `EINVAL` otherwise or for a function without
    /// the PCIe capability.
    pub fn set_pcie_read_request(&self, bytes: u32) -> Result {
        let rq = i32::try_from(bytes).map_err(|_| EINVAL)?;
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`, bound to the caller's driver.
        to_result(unsafe { bindings::pcie_set_readrq(self.as_raw(), rq) })
    }
}
