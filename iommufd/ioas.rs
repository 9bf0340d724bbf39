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
        IoPagetable,
        Prot, //
    },
    object::Object,
    ucmd::UserCmd, //
};
use core::mem::size_of;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
    user_pin::fget_for_pin, //
};

/// An I/O address space.
#[pin_data]
pub(crate) struct Ioas {
    #[pin]
    pub(crate) iopt: IoPagetable,
    /// Ids of the automatic HWPTs over this IOAS, which devices attaching to it may share.
    /// Held while a device picks or makes one, so that two attaches do not both make one.
    #[pin]
    pub(crate) auto_hwpts: Mutex<KVec<u32>>,
}

impl Ioas {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                iopt <- IoPagetable::new(),
                auto_hwpts <- new_mutex!(KVec::new()),
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

const MAP_FIXED_IOVA: u32 = uapi::iommufd_ioas_map_flags_IOMMU_IOAS_MAP_FIXED_IOVA;
const MAP_WRITEABLE: u32 = uapi::iommufd_ioas_map_flags_IOMMU_IOAS_MAP_WRITEABLE;
const MAP_READABLE: u32 = uapi::iommufd_ioas_map_flags_IOMMU_IOAS_MAP_READABLE;

/// `IOMMU_IOAS_MAP_FILE`: maps part of a memfd into the IOAS at a fixed or a kernel-chosen
/// IOVA and returns the IOVA. The pages are pinned a folio at a time, when a domain or an
/// emulated device needs them.
pub(crate) fn map_file_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_ioas_map_file>,
) -> Result<isize> {
    let cmd = &ucmd.cmd;
    let prot = map_args(cmd.flags, &[cmd.iova, cmd.length])?;
    let ioas = ictx.objects.get_ioas(cmd.ioas_id)?;
    if cmd.length == 0 {
        return Err(EINVAL);
    }
    cmd.start.checked_add(cmd.length - 1).ok_or(EOVERFLOW)?;
    let fixed = (cmd.flags & MAP_FIXED_IOVA != 0).then_some(cmd.iova);
    // A dma-buf is mapped from its exporter's memory; any other file must be a memfd (which
    // pinning checks, as upstream). A memfd, the common case, is known by its file alone: only
    // another file is looked up again as a dma-buf.
    let file = fget_for_pin(u32::try_from(cmd.fd).map_err(|_| EBADF)?)?;
    #[cfg(CONFIG_DMA_SHARED_BUFFER)]
    if !kernel::user_pin::is_memfd(&file) {
        if let Ok(buf) = kernel::dma_buf::DmaBuf::get(cmd.fd) {
            drop(file);
            let dev = ictx.dev.as_ref().ok_or(ENODEV)?;
            let iova = ioas
                .iopt
                .map_dmabuf(fixed, buf, dev, cmd.start, cmd.length, prot)?;
            ucmd.cmd.iova = iova;
            ucmd.respond()?;
            return Ok(0);
        }
    }
    let iova = ioas
        .iopt
        .map_file(fixed, file, cmd.start, cmd.length, prot, ictx.charger()?)?;
    ucmd.cmd.iova = iova;
    ucmd.respond()?;
    Ok(0)
}

/// `IOMMU_IOAS_MAP`: maps user memory into the IOAS at a fixed or a kernel-chosen IOVA and
/// returns the IOVA.
pub(crate) fn map_ioctl(ictx: &Iommufd, mut ucmd: UserCmd<uapi::iommu_ioas_map>) -> Result<isize> {
    let cmd = &ucmd.cmd;
    if cmd.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let prot = map_args(cmd.flags, &[cmd.iova, cmd.length])?;
    let ioas = ictx.objects.get_ioas(cmd.ioas_id)?;
    let fixed = (cmd.flags & MAP_FIXED_IOVA != 0).then_some(cmd.iova);
    let iova = ioas
        .iopt
        .map_user(fixed, cmd.user_va, cmd.length, prot, ictx.charger()?)?;
    ucmd.cmd.iova = iova;
    ucmd.respond()?;
    Ok(0)
}

/// `IOMMU_IOAS_COPY`: maps into one IOAS what is mapped at a range of another (or the same),
/// sharing the memory already looked up instead of looking it up again.
pub(crate) fn copy_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_ioas_copy>,
) -> Result<isize> {
    let cmd = &ucmd.cmd;
    let prot = map_args(cmd.flags, &[cmd.length, cmd.src_iova, cmd.dst_iova])?;
    let src = ictx.objects.get_ioas(cmd.src_ioas_id)?;
    let slices = src.iopt.get_pages(cmd.src_iova, cmd.length)?;
    let dst = ictx.objects.get_ioas(cmd.dst_ioas_id)?;
    let fixed = (cmd.flags & MAP_FIXED_IOVA != 0).then_some(cmd.dst_iova);
    let iova = dst.iopt.map_pages(fixed, &slices, cmd.length, prot)?;
    ucmd.cmd.dst_iova = iova;
    ucmd.respond()?;
    Ok(0)
}

/// The checks every map and copy makes first, in upstream's order: only known flags
/// (`EOPNOTSUPP`), no IOVA or length of `u64::MAX` among `values` (`EOVERFLOW`), and some access
/// asked for; returns that access.
fn map_args(flags: u32, values: &[u64]) -> Result<Prot> {
    if flags & !(MAP_FIXED_IOVA | MAP_WRITEABLE | MAP_READABLE) != 0 {
        return Err(EOPNOTSUPP);
    }
    if values.contains(&u64::MAX) {
        return Err(EOVERFLOW);
    }
    if flags & (MAP_WRITEABLE | MAP_READABLE) == 0 {
        return Err(EINVAL);
    }
    Ok(Prot {
        read: flags & MAP_READABLE != 0,
        write: flags & MAP_WRITEABLE != 0,
    })
}

/// `IOMMU_IOAS_UNMAP`: unmaps whole areas inside a range and returns the bytes unmapped;
/// `iova` 0 with `length` `u64::MAX` unmaps everything, even nothing.
pub(crate) fn unmap_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_ioas_unmap>,
) -> Result<isize> {
    let ioas = ictx.objects.get_ioas(ucmd.cmd.ioas_id)?;
    let (iova, length) = (ucmd.cmd.iova, ucmd.cmd.length);
    let unmapped = if iova == 0 && length == u64::MAX {
        ioas.iopt.unmap(0, u64::MAX)?
    } else {
        if iova == u64::MAX || length == u64::MAX {
            return Err(EOVERFLOW);
        }
        if length == 0 {
            return Err(EINVAL);
        }
        let last = iova.checked_add(length - 1).ok_or(EOVERFLOW)?;
        match ioas.iopt.unmap(iova, last)? {
            0 => return Err(ENOENT),
            n => n,
        }
    };
    ucmd.cmd.length = unmapped;
    ucmd.respond()?;
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

/// `IOMMU_IOAS_CHANGE_PROCESS`: makes the calling process the owner of all memory mapped in
/// the context's IOASes (which must all be memfd mappings: `EINVAL` otherwise), so that the
/// pinned pages are charged to it from now on; all or nothing (`ENOMEM` if it cannot take
/// the charge).
pub(crate) fn change_process_ioctl(
    ictx: &Iommufd,
    ucmd: UserCmd<uapi::iommu_ioas_change_process>,
) -> Result<isize> {
    if ucmd.cmd.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let mut pages = KVec::new();
    for ioas in ictx.objects.ioases()?.iter() {
        ioas.iopt.file_pages(&mut pages)?;
    }
    let mut moved = KVec::with_capacity(pages.len(), GFP_KERNEL)?;
    for p in pages.iter() {
        match p.move_to_current() {
            Ok(old) => moved.push((p.clone(), old), GFP_KERNEL)?,
            Err(e) => {
                for (p, old) in moved {
                    if let Some(old) = old {
                        p.restore_owner(old);
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(0)
}
