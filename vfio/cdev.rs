// SPDX-License-Identifier: GPL-2.0

//! The device cdev, `/dev/vfio/devices/vfioN` (`VFIO_DEVICE_CDEV`).
//!
//! Each registered device gets a device `vfioN` in the class `vfio-dev`, a child of the device
//! the driver drives, so that userspace finds its numbers in
//! `/sys/bus/pci/devices/<BDF>/vfio-dev/vfioN/dev`, and its node in `/dev/vfio/devices`.
//!
//! Opening the node gives a [`DeviceFile`] that can do nothing until it is bound to an iommufd
//! (`VFIO_DEVICE_BIND_IOMMUFD`); see [`crate::device_file`].

use crate::{
    device::VfioDevice,
    device_file::DeviceFile, //
};
use kernel::{
    cdev::CdevDevice,
    prelude::*,
    str::CString,
    sync::Arc, //
};

/// The node of a registered device; dropping it removes the node and its sysfs device.
pub(crate) struct Node {
    _dev: CdevDevice<DeviceFile>,
}

impl Node {
    /// Adds the node `vfioN` of `device`.
    pub(crate) fn add(device: &Arc<VfioDevice>) -> Result<Self> {
        let (class, devt) = crate::registry::cdev_class_and_devt(device.index)?;
        let name = CString::try_from_fmt(fmt!("vfio{}", device.index))?;
        Ok(Self {
            _dev: CdevDevice::register(&class, Some(device.parent()), devt, &name, device.clone())?,
        })
    }
}
