// SPDX-License-Identifier: GPL-2.0

//! The I/O address space (IOAS): the object userspace maps its memory into, and to which it
//! attaches devices and hardware page tables.
//!
//! An IOAS is its [`IoPagetable`]; this file holds the IOAS ioctls. Mapping memory (the
//! areas and the pinned pages behind them) builds on this.

use crate::{
    context::Iommufd,
    io_pagetable::{
        AllowedRanges,
        IoPagetable, //
    },
    object::Object,
    ucmd::UserCmd, //
};
use core::mem::size_of;
use kernel::{
    prelude::*,
    sync::Arc,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi, //
};

/// An I/O address space.
#[pin_data]
pub(crate) struct Ioas {
    #[pin]
    pub(crate) iopt: IoPagetable,
}

impl Ioas {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                iopt <- IoPagetable::new(),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }
}

/// `IOMMU_IOAS_ALLOC`: creates an empty IOAS and returns its id.
pub(crate) fn alloc_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_ioas_alloc>,
) -> Result<isize> {
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

/// `IOMMU_IOAS_IOVA_RANGES`: the IOVA ranges a mapping may use, and the alignment it needs.
///
/// Userspace passes room for `num_iovas` ranges and gets the real count back; if it gave too
/// little room the command writes what fits, answers and fails with `EMSGSIZE`, so userspace
/// can retry with the right size.
pub(crate) fn iova_ranges_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_ioas_iova_ranges>,
) -> Result<isize> {
    if ucmd.cmd.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let ioas = ictx.objects.get_ioas(ucmd.cmd.ioas_id)?;
    let (ranges, alignment) = ioas.iopt.usable_ranges()?;
    let room = ucmd.cmd.num_iovas as usize;
    let fits = ranges.len().min(room);
    let out = UserPtr::from_addr(ucmd.cmd.allowed_iovas as usize);
    let mut writer = UserSlice::new(out, fits * size_of::<uapi::iommu_iova_range>()).writer();
    for r in &ranges[..fits] {
        writer.write(&uapi::iommu_iova_range {
            start: r.start,
            last: r.last,
        })?;
    }
    ucmd.cmd.num_iovas = u32::try_from(ranges.len()).map_err(|_| EOVERFLOW)?;
    ucmd.cmd.out_iova_alignment = alignment;
    ucmd.respond()?;
    if ranges.len() > room {
        return Err(EMSGSIZE);
    }
    Ok(0)
}

/// `IOMMU_IOAS_ALLOW_IOVAS`: replaces the ranges automatic IOVA allocation may use, all at
/// once or not at all. No ranges means no restriction.
pub(crate) fn allow_iovas_ioctl(
    ictx: &Iommufd,
    ucmd: UserCmd<uapi::iommu_ioas_allow_iovas>,
) -> Result<isize> {
    if ucmd.cmd.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let ioas = ictx.objects.get_ioas(ucmd.cmd.ioas_id)?;
    let count = ucmd.cmd.num_iovas as usize;
    let len = count
        .checked_mul(size_of::<uapi::iommu_iova_range>())
        .ok_or(EOVERFLOW)?;
    let mut reader =
        UserSlice::new(UserPtr::from_addr(ucmd.cmd.allowed_iovas as usize), len).reader();
    let mut allowed = AllowedRanges::new();
    for _ in 0..count {
        let r: uapi::iommu_iova_range = reader.read()?;
        allowed.add(r.start, r.last)?;
    }
    ioas.iopt.set_allowed(allowed)?;
    Ok(0)
}

/// `IOMMU_OPTION` with `IOMMU_OPTION_HUGE_PAGES`: whether the IOAS may map with pages larger
/// than `PAGE_SIZE`.
pub(crate) fn huge_pages_option(ictx: &Iommufd, ucmd: &mut UserCmd<uapi::iommu_option>) -> Result {
    let ioas = ictx.objects.get_ioas(ucmd.cmd.object_id)?;
    match u32::from(ucmd.cmd.op) {
        uapi::iommufd_option_ops_IOMMU_OPTION_OP_GET => {
            ucmd.cmd.val64 = u64::from(ioas.iopt.large_pages());
            Ok(())
        }
        uapi::iommufd_option_ops_IOMMU_OPTION_OP_SET => match ucmd.cmd.val64 {
            0 => ioas.iopt.set_large_pages(false),
            1 => ioas.iopt.set_large_pages(true),
            _ => Err(EINVAL),
        },
        _ => Err(EOPNOTSUPP),
    }
}
