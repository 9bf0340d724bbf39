// SPDX-License-Identifier: GPL-2.0

//! The I/O address space (IOAS): the object userspace maps its memory into, and to which it
//! attaches devices and hardware page tables.
//!
//! This first step holds no mappings yet; the io_pagetable that records them, and the IOAS
//! ioctls that use it, build on this object.

use crate::{
    context::Iommufd,
    object::Object,
    ucmd::UserCmd, //
};
use kernel::{
    prelude::*,
    sync::Arc,
    uapi::iommu_ioas_alloc, //
};

/// An I/O address space.
pub(crate) struct Ioas {}

impl Ioas {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Ok(Arc::new(Self {}, GFP_KERNEL_ACCOUNT)?)
    }
}

/// `IOMMU_IOAS_ALLOC`: creates an empty IOAS and returns its id.
pub(crate) fn alloc_ioctl(ictx: &Iommufd, mut ucmd: UserCmd<iommu_ioas_alloc>) -> Result<isize> {
    if ucmd.cmd.flags != 0 {
        return Err(EOPNOTSUPP);
    }
    let new = ictx.objects.reserve()?;
    let ioas = Ioas::new()?;
    ucmd.cmd.out_ioas_id = new.id();
    // If the id cannot be returned, `new` is dropped unpublished and the IOAS goes with it.
    ucmd.respond()?;
    new.publish(Object::Ioas(ioas));
    Ok(0)
}
