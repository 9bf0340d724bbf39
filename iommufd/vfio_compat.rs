// SPDX-License-Identifier: GPL-2.0

//! The VFIO type1 container ioctls on an iommufd.
//!
//! Programs written for the VFIO container (`VFIO_SET_IOMMU`, `VFIO_IOMMU_MAP_DMA`, ...) can
//! issue the same ioctls on `/dev/iommu`. They name no IOAS, so they act on the context's
//! *compat IOAS*, chosen with `IOMMU_VFIO_IOAS`. Everything here is a front end: mappings go
//! through the same [`crate::io_pagetable`] engine as `IOMMU_IOAS_MAP`.

use crate::{
    context::Iommufd,
    io_pagetable::Prot,
    ioas::Ioas,
    object::Object,
    ucmd::{
        zeroed,
        UserCmd, //
    },
};
use core::mem::size_of;
use kernel::{
    capability::{
        capable,
        Capability, //
    },
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::Relaxed,
        Arc, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
    uapi_ioctl::{
        VFIO_CHECK_EXTENSION,
        VFIO_GET_API_VERSION,
        VFIO_IOMMU_GET_INFO,
        VFIO_IOMMU_MAP_DMA,
        VFIO_IOMMU_UNMAP_DMA, //
        VFIO_SET_IOMMU,
    },
};

/// The compat IOAS of a context, remembered with its id.
pub(crate) type CompatIoas = Option<(u32, Arc<Ioas>)>;

impl Iommufd {
    /// The compat IOAS and its id; `ENODEV` if none is set or it was destroyed since.
    fn compat_ioas_with_id(&self) -> Result<(u32, Arc<Ioas>)> {
        self.compat_ioas_with_id_locked(&self.compat_ioas.lock())
            .ok_or(ENODEV)
    }

    /// As [`Self::compat_ioas_with_id`], given the locked compat IOAS; `None` if there is none.
    fn compat_ioas_with_id_locked(&self, compat: &CompatIoas) -> Option<(u32, Arc<Ioas>)> {
        let (id, ioas) = compat.as_ref()?;
        self.objects.is_ioas(*id, ioas).then(|| (*id, ioas.clone()))
    }

    fn compat_ioas(&self) -> Result<Arc<Ioas>> {
        Ok(self.compat_ioas_with_id()?.1)
    }
}

impl Iommufd {
    /// The id of the compat IOAS: `ENODEV` if there is none (upstream's
    /// `iommufd_vfio_compat_ioas_get_id`, which VFIO's group path attaches its devices to).
    pub(crate) fn compat_ioas_id(&self) -> Result<u32> {
        Ok(self.compat_ioas_with_id()?.0)
    }

    /// Makes a new IOAS the compat IOAS, unless there is one already (upstream's
    /// `iommufd_vfio_compat_ioas_create`, for a VFIO group set to this context).
    pub(crate) fn compat_ioas_create(&self) -> Result {
        let mut compat = self.compat_ioas.lock();
        // A context cannot serve groups with and without an IOMMU.
        if self.no_iommu_mode.load(Relaxed) {
            return Err(EINVAL);
        }
        if self.compat_ioas_with_id_locked(&compat).is_some() {
            return Ok(());
        }
        let new = self.objects.reserve()?;
        let ioas = Ioas::new()?;
        *compat = Some((new.id(), ioas.clone()));
        new.publish(Object::Ioas(ioas));
        Ok(())
    }

    /// Puts the context in no-IOMMU mode, for a VFIO group of devices no IOMMU translates
    /// (upstream's `iommufd_vfio_compat_set_no_iommu`): `EINVAL` if it has a compat IOAS.
    pub(crate) fn set_no_iommu(&self) -> Result {
        let compat = self.compat_ioas.lock();
        if self.compat_ioas_with_id_locked(&compat).is_some() {
            return Err(EINVAL);
        }
        self.no_iommu_mode.store(true, Relaxed);
        Ok(())
    }
}

/// `IOMMU_VFIO_IOAS`: gets, sets or clears the compat IOAS.
pub(crate) fn vfio_ioas_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_vfio_ioas>,
) -> Result<isize> {
    if ucmd.cmd.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    match u32::from(ucmd.cmd.op) {
        uapi::iommufd_vfio_ioas_op_IOMMU_VFIO_IOAS_GET => {
            ucmd.cmd.ioas_id = ictx.compat_ioas_with_id()?.0;
            ucmd.respond()?;
        }
        uapi::iommufd_vfio_ioas_op_IOMMU_VFIO_IOAS_SET => {
            let ioas = ictx.objects.get_ioas(ucmd.cmd.ioas_id)?;
            *ictx.compat_ioas.lock() = Some((ucmd.cmd.ioas_id, ioas));
        }
        uapi::iommufd_vfio_ioas_op_IOMMU_VFIO_IOAS_CLEAR => {
            *ictx.compat_ioas.lock() = None;
        }
        _ => return Err(EOPNOTSUPP),
    }
    Ok(0)
}

/// Reads the fixed part (`minsz` bytes) of a VFIO argument struct `T`; the rest of `T` reads
/// as zero. `EFAULT` if unreadable, `EINVAL` if its `argsz` (the first `u32`) is below `minsz`.
fn read_vfio_arg<T: FromBytes + AsBytes>(arg: usize, minsz: usize) -> Result<T> {
    let mut v: T = zeroed()?;
    let bytes = v.as_bytes_mut();
    let len = minsz.min(bytes.len());
    UserSlice::new(UserPtr::from_addr(arg), len)
        .reader()
        .read_slice(&mut bytes[..len])?;
    let argsz = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or(EINVAL)?;
    if (argsz as usize) < minsz {
        return Err(EINVAL);
    }
    Ok(v)
}

/// Writes `bytes` to user address `addr`.
fn write_user(addr: usize, bytes: &[u8]) -> Result {
    UserSlice::new(UserPtr::from_addr(addr), bytes.len())
        .writer()
        .write_slice(bytes)
}

/// Handles a VFIO container ioctl issued on `/dev/iommu`; `ENOTTY` for anything else.
pub(crate) fn ioctl(ictx: &Iommufd, cmd: u32, arg: usize) -> Result<isize> {
    match cmd {
        VFIO_GET_API_VERSION => Ok(uapi::VFIO_API_VERSION as isize),
        VFIO_CHECK_EXTENSION => check_extension(ictx, arg),
        VFIO_SET_IOMMU => set_iommu(ictx, arg),
        VFIO_IOMMU_GET_INFO => get_info(ictx, arg),
        VFIO_IOMMU_MAP_DMA => map_dma(ictx, arg),
        VFIO_IOMMU_UNMAP_DMA => unmap_dma(ictx, arg),
        _ => Err(ENOTTY),
    }
}

fn check_extension(ictx: &Iommufd, extension: usize) -> Result<isize> {
    let Ok(extension) = u32::try_from(extension) else {
        return Ok(0);
    };
    Ok(match extension {
        uapi::VFIO_TYPE1_IOMMU | uapi::VFIO_TYPE1v2_IOMMU | uapi::VFIO_UNMAP_ALL => {
            isize::from(!ictx.no_iommu_mode.load(Relaxed))
        }
        uapi::VFIO_NOIOMMU_IOMMU => isize::from(cfg!(CONFIG_VFIO_NOIOMMU)),
        // Coherent DMA holds while no domain without cache coherency is attached: none yet.
        uapi::VFIO_DMA_CC_IOMMU => {
            ictx.compat_ioas()?;
            1
        }
        _ => 0,
    })
}

/// `VFIO_SET_IOMMU`: type1 and type1v2 are both served by the compat IOAS; type1 (v1) maps
/// in `PAGE_SIZE` units, so it turns large pages off.
fn set_iommu(ictx: &Iommufd, kind: usize) -> Result<isize> {
    let kind = u32::try_from(kind).map_err(|_| EINVAL)?;
    let no_iommu = ictx.no_iommu_mode.load(Relaxed);
    // No-IOMMU mode: nothing to map, but the backend is there to be chosen (by the
    // privileged only), as upstream.
    if cfg!(CONFIG_VFIO_NOIOMMU) && kind == uapi::VFIO_NOIOMMU_IOMMU && no_iommu {
        if !capable(Capability::SYS_RAWIO) {
            return Err(EPERM);
        }
        return Ok(0);
    }
    if (kind != uapi::VFIO_TYPE1_IOMMU && kind != uapi::VFIO_TYPE1v2_IOMMU) || no_iommu {
        return Err(EINVAL);
    }
    let ioas = ictx.compat_ioas()?;
    if kind == uapi::VFIO_TYPE1_IOMMU {
        ioas.iopt.set_large_pages(false)?;
    }
    Ok(0)
}

fn map_dma(ictx: &Iommufd, arg: usize) -> Result<isize> {
    let minsz = size_of::<uapi::vfio_iommu_type1_dma_map>();
    let map: uapi::vfio_iommu_type1_dma_map = read_vfio_arg(arg, minsz)?;
    if map.flags & !(uapi::VFIO_DMA_MAP_FLAG_READ | uapi::VFIO_DMA_MAP_FLAG_WRITE) != 0 {
        return Err(EINVAL);
    }
    let prot = Prot {
        read: map.flags & uapi::VFIO_DMA_MAP_FLAG_READ != 0,
        write: map.flags & uapi::VFIO_DMA_MAP_FLAG_WRITE != 0,
    };
    let ioas = ictx.compat_ioas()?;
    let charger = ictx.charger()?;
    // VFIO's own container also maps device memory (a BAR's `mmap()`, for peer-to-peer DMA) by
    // physical address, as type1 does. Pinning refuses it with `EFAULT`, so it is looked for
    // only then, as type1 does (a look at the memory map per map costs more than the rest of
    // the call's bookkeeping); but first when the IOAS has no domain, as nothing is pinned then.
    let owner = ictx.vfio_container.then(|| charger.owner.clone()).flatten();
    let device_memory = || {
        owner
            .as_ref()
            .is_some_and(|owner| kernel::pfnmap::is_pfnmap(owner.mm(), map.vaddr as usize))
    };
    let pins_first = owner.is_some() && ioas.iopt.has_domains();
    if pins_first || !device_memory() {
        match ioas
            .iopt
            .map_user(Some(map.iova), map.vaddr, map.size, prot, charger)
        {
            Err(e) if e == EFAULT && pins_first && device_memory() => {}
            res => return res.map(|_| 0),
        }
    }
    // Only device memory gets here, which only an owner has.
    let owner = owner.ok_or(EFAULT)?;
    ioas.iopt
        .map_pfnmap(map.iova, map.vaddr, map.size, prot, &owner)?;
    Ok(0)
}

/// `VFIO_IOMMU_UNMAP_DMA`: like type1, the unmapped size is written back even when the unmap
/// stopped part way.
fn unmap_dma(ictx: &Iommufd, arg: usize) -> Result<isize> {
    let minsz = size_of::<uapi::vfio_iommu_type1_dma_unmap>();
    let mut unmap: uapi::vfio_iommu_type1_dma_unmap = read_vfio_arg(arg, minsz)?;
    if unmap.flags & !uapi::VFIO_DMA_UNMAP_FLAG_ALL != 0 {
        return Err(EINVAL);
    }
    let ioas = ictx.compat_ioas()?;
    let mut unmapped = 0;
    let result = if unmap.flags & uapi::VFIO_DMA_UNMAP_FLAG_ALL != 0 {
        if unmap.iova != 0 || unmap.size != 0 {
            return Err(EINVAL);
        }
        ioas.iopt.unmap_counting(0, u64::MAX, &mut unmapped)
    } else {
        if !ioas.iopt.large_pages() {
            // Type1 (v1) may unmap part of a mapping: first split the areas at the ends of
            // the range (as upstream, with its wrapping arithmetic).
            let last = unmap.iova.wrapping_add(unmap.size).wrapping_sub(1);
            let before = unmap.iova.wrapping_sub(1);
            let ends = [last, before];
            ioas.iopt
                .cut(&ends[..if unmap.iova != 0 { 2 } else { 1 }])?;
        }
        match unmap.size.checked_sub(1) {
            None => Err(EINVAL),
            Some(len) => match unmap.iova.checked_add(len) {
                Some(last) => ioas.iopt.unmap_counting(unmap.iova, last, &mut unmapped),
                None => Err(EOVERFLOW),
            },
        }
    };
    unmap.size = unmapped;
    write_user(arg, &unmap.as_bytes()[..minsz])?;
    result.map(|()| 0)
}

/// A capability of `VFIO_IOMMU_GET_INFO`: the bytes it takes, written at `at` if `room`
/// allows (the caller fills in the header's `next`).
type FillCap = fn(&Ioas, usize, usize) -> Result<usize>;

fn cap_dma_avail(_ioas: &Ioas, at: usize, room: usize) -> Result<usize> {
    let cap = uapi::vfio_iommu_type1_info_dma_avail {
        header: uapi::vfio_info_cap_header {
            id: uapi::VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL as u16,
            version: 1,
            next: 0,
        },
        avail: u32::MAX,
    };
    let size = size_of::<uapi::vfio_iommu_type1_info_dma_avail>();
    if room >= size {
        write_user(at, &cap.as_bytes()[..size])?;
    }
    Ok(size)
}

fn cap_iova_range(ioas: &Ioas, at: usize, room: usize) -> Result<usize> {
    let (ranges, _) = ioas.iopt.usable_ranges()?;
    let head = size_of::<uapi::vfio_iommu_type1_info_cap_iova_range>();
    let elem = size_of::<uapi::vfio_iova_range>();
    let size = head + ranges.len() * elem;
    if room >= size {
        for (i, r) in ranges.iter().enumerate() {
            let range = uapi::vfio_iova_range {
                start: r.start,
                end: r.last,
            };
            write_user(at + head + i * elem, range.as_bytes())?;
        }
        let mut cap: uapi::vfio_iommu_type1_info_cap_iova_range = zeroed()?;
        cap.header.id = uapi::VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE as u16;
        cap.header.version = 1;
        cap.nr_iovas = u32::try_from(ranges.len()).map_err(|_| EOVERFLOW)?;
        write_user(at, &cap.as_bytes()[..head])?;
    }
    Ok(size)
}

/// `VFIO_IOMMU_GET_INFO`: the IOVA page sizes and a chain of capabilities (DMA mappings
/// available, usable IOVA ranges) after the struct, as far as the caller's `argsz` reaches;
/// `argsz` comes back as the size the whole answer needs.
fn get_info(ictx: &Iommufd, arg: usize) -> Result<isize> {
    let minsz = core::mem::offset_of!(uapi::vfio_iommu_type1_info, iova_pgsizes) + size_of::<u64>();
    let mut info: uapi::vfio_iommu_type1_info = read_vfio_arg(arg, minsz)?;
    let argsz = info.argsz as usize;
    let info_size = size_of::<uapi::vfio_iommu_type1_info>();
    let out_size = argsz.min(info_size);
    let ioas = ictx.compat_ioas()?;

    info.flags = uapi::VFIO_IOMMU_INFO_PGSIZES;
    // No domain restricts the page sizes: every multiple of PAGE_SIZE, at least the alignment.
    info.iova_pgsizes = (!(PAGE_SIZE as u64 - 1)).max(ioas.iopt.iova_alignment());
    info.cap_offset = 0;

    let caps: [FillCap; 2] = [cap_dma_avail, cap_iova_range];
    let mut total = info_size;
    let mut last_cap: Option<usize> = None;
    for fill in caps {
        let size = if argsz > total {
            fill(&ioas, arg + total, argsz - total)?
        } else {
            fill(&ioas, 0, 0)?
        };
        let size = size.next_multiple_of(size_of::<u64>());
        if let Some(last) = last_cap {
            if argsz >= total {
                let next = u32::try_from(total).map_err(|_| EOVERFLOW)?;
                write_user(
                    last + core::mem::offset_of!(uapi::vfio_info_cap_header, next),
                    &next.to_ne_bytes(),
                )?;
            }
        }
        last_cap = Some(arg + total);
        total += size;
    }
    if argsz >= total {
        info.cap_offset = info_size as u32;
    }
    info.argsz = u32::try_from(total).map_err(|_| EOVERFLOW)?;
    info.flags |= uapi::VFIO_IOMMU_INFO_CAPS;
    write_user(arg, &info.as_bytes()[..out_size])?;
    Ok(0)
}
