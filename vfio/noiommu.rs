// SPDX-License-Identifier: GPL-2.0

//! VFIO's no-IOMMU mode (`VFIO_NOIOMMU`): devices that no IOMMU translates, handed to
//! userspace anyway when root asks for it (`enable_unsafe_noiommu_mode`), each in a group of
//! its own (`/dev/vfio/noiommu-$GROUP`) that only `CAP_SYS_RAWIO` may open, in a container
//! that maps nothing (`VFIO_NOIOMMU_IOMMU`). Such a device can DMA anywhere, so giving one out
//! taints the kernel. The switch is a C module parameter (`noiommu_param.c`), which root can
//! flip at run time; this file is the FFI glue to it.

use kernel::{device::Device, prelude::*};

#[cfg(CONFIG_VFIO_NOIOMMU)]
extern "C" {
    fn vfio_noiommu_enabled() -> bool;
    fn vfio_noiommu_taint();
}

/// Whether no-IOMMU mode is on.
pub(crate) fn enabled() -> bool {
    #[cfg(CONFIG_VFIO_NOIOMMU)]
    // SAFETY: Reads a module parameter; no arguments.
    return unsafe { vfio_noiommu_enabled() };
    #[cfg(not(CONFIG_VFIO_NOIOMMU))]
    false
}

/// Taints the kernel for `dev`, about to be given out without an IOMMU, and says so.
pub(crate) fn taint(dev: &Device) {
    #[cfg(CONFIG_VFIO_NOIOMMU)]
    // SAFETY: No arguments; adds a taint flag.
    unsafe {
        vfio_noiommu_taint()
    };
    dev_warn!(
        dev,
        "Adding kernel taint for vfio-noiommu group on device\n"
    );
}
