// SPDX-License-Identifier: GPL-2.0

//! ioctl numbers of the VFIO uAPI.
//!
//! `include/uapi/linux/vfio.h` builds them with the `_IO()` macro, which bindgen cannot
//! evaluate, so they are computed here once for every Rust user (VFIO's container and
//! iommufd's VFIO compatibility front end).

use crate::{
    ioctl::_IO,
    uapi, //
};

/// The VFIO ioctl `VFIO_BASE + offset`.
const fn vfio_cmd(offset: u32) -> u32 {
    _IO(uapi::VFIO_TYPE as u32, uapi::VFIO_BASE + offset)
}

/// `VFIO_GET_API_VERSION`.
pub const VFIO_GET_API_VERSION: u32 = vfio_cmd(0);
/// `VFIO_CHECK_EXTENSION`.
pub const VFIO_CHECK_EXTENSION: u32 = vfio_cmd(1);
/// `VFIO_SET_IOMMU`.
pub const VFIO_SET_IOMMU: u32 = vfio_cmd(2);
/// `VFIO_GROUP_GET_STATUS`.
pub const VFIO_GROUP_GET_STATUS: u32 = vfio_cmd(3);
/// `VFIO_GROUP_SET_CONTAINER`.
pub const VFIO_GROUP_SET_CONTAINER: u32 = vfio_cmd(4);
/// `VFIO_GROUP_UNSET_CONTAINER`.
pub const VFIO_GROUP_UNSET_CONTAINER: u32 = vfio_cmd(5);
/// `VFIO_GROUP_GET_DEVICE_FD`.
pub const VFIO_GROUP_GET_DEVICE_FD: u32 = vfio_cmd(6);
/// `VFIO_IOMMU_GET_INFO`.
pub const VFIO_IOMMU_GET_INFO: u32 = vfio_cmd(12);
/// `VFIO_IOMMU_MAP_DMA`.
pub const VFIO_IOMMU_MAP_DMA: u32 = vfio_cmd(13);
/// `VFIO_IOMMU_UNMAP_DMA`.
pub const VFIO_IOMMU_UNMAP_DMA: u32 = vfio_cmd(14);
/// `VFIO_DEVICE_GET_INFO`.
pub const VFIO_DEVICE_GET_INFO: u32 = vfio_cmd(7);
/// `VFIO_DEVICE_GET_REGION_INFO`.
pub const VFIO_DEVICE_GET_REGION_INFO: u32 = vfio_cmd(8);
/// `VFIO_DEVICE_GET_IRQ_INFO`.
pub const VFIO_DEVICE_GET_IRQ_INFO: u32 = vfio_cmd(9);
/// `VFIO_DEVICE_SET_IRQS`.
pub const VFIO_DEVICE_SET_IRQS: u32 = vfio_cmd(10);
/// `VFIO_DEVICE_RESET`.
pub const VFIO_DEVICE_RESET: u32 = vfio_cmd(11);
/// `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`.
pub const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: u32 = vfio_cmd(12);
/// `VFIO_DEVICE_PCI_HOT_RESET`.
pub const VFIO_DEVICE_PCI_HOT_RESET: u32 = vfio_cmd(13);
/// `VFIO_DEVICE_FEATURE`.
pub const VFIO_DEVICE_FEATURE: u32 = vfio_cmd(17);
/// `VFIO_DEVICE_BIND_IOMMUFD`.
pub const VFIO_DEVICE_BIND_IOMMUFD: u32 = vfio_cmd(18);
/// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`.
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: u32 = vfio_cmd(19);
/// `VFIO_DEVICE_DETACH_IOMMUFD_PT`.
pub const VFIO_DEVICE_DETACH_IOMMUFD_PT: u32 = vfio_cmd(20);
