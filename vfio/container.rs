// SPDX-License-Identifier: GPL-2.0

//! The VFIO container, `/dev/vfio/vfio`.
//!
//! Legacy VFIO users open a container, add groups to it, pick an IOMMU backend with
//! `VFIO_SET_IOMMU` and then map memory through the backend's ioctls. Until a group is added
//! no backend can be set, and the container answers only the version and extension queries.
//! The backend will be iommufd's mapping engine (one engine behind both front ends), so no
//! backend is registered yet and every extension query answers 0, as upstream does when no
//! backend module is loaded.

use kernel::{
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration,
        MiscNode, //
    },
    prelude::*,
    uapi,
    uapi_ioctl::{
        VFIO_CHECK_EXTENSION,
        VFIO_GET_API_VERSION,
        VFIO_SET_IOMMU, //
    },
};

/// `VFIO_MINOR` from `include/linux/miscdevice.h`.
const VFIO_MINOR: u32 = 196;

/// One open container. It holds no groups yet: groups arrive with the group interface.
pub(crate) struct Container {}

/// Registers `/dev/vfio/vfio` (world-accessible, as upstream: the groups carry the access
/// control).
pub(crate) fn register() -> impl PinInit<MiscDeviceRegistration<Container>, Error> {
    MiscDeviceRegistration::register_node(
        MiscDeviceOptions { name: c"vfio" },
        MiscNode {
            nodename: Some(c"vfio/vfio"),
            mode: 0o666,
            minor: Some(VFIO_MINOR),
        },
    )
}

impl Container {
    /// Extensions a backend could provide. No backend is registered yet.
    fn check_extension(&self, _extension: usize) -> isize {
        0
    }

    /// Setting a backend needs at least one group in the container; as upstream, a
    /// container without groups answers `EINVAL`.
    fn set_iommu(&self, _backend: usize) -> Result<isize> {
        Err(EINVAL)
    }
}

#[vtable]
impl MiscDevice for Container {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Self::Ptr> {
        Ok(KBox::new(Self {}, GFP_KERNEL_ACCOUNT)?)
    }

    fn ioctl(me: &Self, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            VFIO_GET_API_VERSION => Ok(uapi::VFIO_API_VERSION as isize),
            VFIO_CHECK_EXTENSION => Ok(me.check_extension(arg)),
            VFIO_SET_IOMMU => me.set_iommu(arg),
            // Without a backend there is nothing else to pass the ioctl to.
            _ => Err(EINVAL),
        }
    }
}
