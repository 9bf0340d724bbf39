// SPDX-License-Identifier: GPL-2.0

//! vIOMMUs and virtual devices (`IOMMU_VIOMMU_ALLOC`, `IOMMU_VDEVICE_ALLOC`): not supported yet.
//!
//! No IOMMU driver here offers a vIOMMU yet, so no vIOMMU object can exist. The ioctls still
//! check their arguments and look their objects up as upstream does, so callers get upstream's
//! errno for every input (`ENOENT` for a device or vIOMMU that does not exist); what would need
//! a vIOMMU fails with `EOPNOTSUPP`.

use crate::{
    context::Iommufd,
    ucmd::UserCmd, //
};
use kernel::{
    prelude::*,
    uapi, //
};

/// `IOMMU_VIOMMU_ALLOC`.
pub(crate) fn alloc_ioctl(
    ictx: &Iommufd,
    ucmd: UserCmd<uapi::iommu_viommu_alloc>,
) -> Result<isize> {
    let cmd = &ucmd.cmd;
    if cmd.flags != 0 || cmd.type_ == uapi::iommu_viommu_type_IOMMU_VIOMMU_TYPE_DEFAULT {
        return Err(EOPNOTSUPP);
    }
    ictx.objects.get_device(cmd.dev_id)?;
    Err(EOPNOTSUPP)
}

/// `IOMMU_VDEVICE_ALLOC`: needs a vIOMMU, and none exists.
pub(crate) fn vdevice_alloc_ioctl(
    _ictx: &Iommufd,
    ucmd: UserCmd<uapi::iommu_vdevice_alloc>,
) -> Result<isize> {
    // The virtual id indexes a table of `usize` keys.
    if usize::try_from(ucmd.cmd.virt_id).is_err() {
        return Err(EINVAL);
    }
    Err(ENOENT)
}
