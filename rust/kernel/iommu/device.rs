// SPDX-License-Identifier: GPL-2.0

//! What a device's IOMMU offers: capabilities, the driver's hardware description, reserved
//! regions.
//!
//! C header: [`include/linux/iommu.h`](srctree/include/linux/iommu.h)
//!
//! A user of IOMMU domains (iommufd, VFIO) asks these before it lets userspace map memory for a
//! device: whether DMA through the IOMMU is cache-coherent, whether it can track dirty pages,
//! which IOVA ranges must stay unmapped (MSI doorbells, firmware's direct mappings), and, for
//! `IOMMU_GET_HW_INFO`, the IOMMU driver's own description of the hardware.
//!
//! As for the C API, the device must not be removed from its bus during these calls; a driver
//! bound to it ensures that.

use crate::{bindings, device::Device, ffi::c_void, prelude::*};

/// A capability of a device's IOMMU (`enum iommu_cap`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Cap {
    /// DMA can be made cache-coherent (`IOMMU_CACHE`).
    CacheCoherency = bindings::iommu_cap_IOMMU_CAP_CACHE_COHERENCY,
    /// A domain can be made to enforce cache coherency, no-snoop requests included.
    EnforceCacheCoherency = bindings::iommu_cap_IOMMU_CAP_ENFORCE_CACHE_COHERENCY,
    /// Domains can track dirty pages.
    DirtyTracking = bindings::iommu_cap_IOMMU_CAP_DIRTY_TRACKING,
    /// The device can use PCI ATS.
    PciAtsSupported = bindings::iommu_cap_IOMMU_CAP_PCI_ATS_SUPPORTED,
}

/// Whether `dev`'s IOMMU has `cap`; false for a device without an IOMMU.
pub fn capable(dev: &Device, cap: Cap) -> bool {
    // SAFETY: `dev.as_raw()` is a valid device; the core checks that it has an IOMMU.
    unsafe { bindings::device_iommu_capable(dev.as_raw(), cap as bindings::iommu_cap) }
}

/// The IOMMU state of `dev` and its driver's operations, if it has an IOMMU.
fn iommu_of(dev: &Device) -> Option<(&bindings::dev_iommu, &bindings::iommu_ops)> {
    // SAFETY: `dev.as_raw()` is valid; `iommu` is set while the IOMMU core has probed the
    // device, and then points to its IOMMU state, which lives until the device is released
    // from its IOMMU (not during the borrow of `dev`, see the module documentation).
    let iommu = unsafe { (*dev.as_raw()).iommu };
    if iommu.is_null() {
        return None;
    }
    // SAFETY: As above.
    let iommu = unsafe { &*iommu };
    if iommu.iommu_dev.is_null() {
        return None;
    }
    // SAFETY: A probed device's `iommu_dev` is its registered IOMMU, whose ops are static.
    let ops = unsafe { (*iommu.iommu_dev).ops };
    if ops.is_null() {
        return None;
    }
    // SAFETY: As above.
    Some((iommu, unsafe { &*ops }))
}

/// The operations of `dev`'s IOMMU driver, if it has an IOMMU.
pub(super) fn ops_of(dev: &Device) -> Option<&bindings::iommu_ops> {
    iommu_of(dev).map(|(_, ops)| ops)
}

/// How many PASIDs the IOMMU core enabled for `dev`, 0 for none.
pub fn max_pasids(dev: &Device) -> u32 {
    iommu_of(dev).map_or(0, |(iommu, _)| iommu.max_pasids)
}

/// The IOMMU driver's description of the hardware behind a device (`hw_info`).
pub struct HwInfo {
    /// `IOMMU_HW_INFO_TYPE_*` of `data`: `IOMMU_HW_INFO_TYPE_NONE` (and no data) for a driver
    /// without one.
    pub data_type: u32,
    /// The driver's structure, as `include/uapi/linux/iommufd.h` defines it for `data_type`.
    pub data: KVec<u8>,
}

/// What `dev`'s IOMMU driver says of the hardware, in the format `data_type` asks for
/// (`IOMMU_HW_INFO_TYPE_DEFAULT` for the driver's own): `ENODEV` for a device without an IOMMU,
/// `EOPNOTSUPP` for a type the driver does not have.
pub fn hw_info(dev: &Device, data_type: u32) -> Result<HwInfo> {
    let (_, ops) = iommu_of(dev).ok_or(ENODEV)?;
    let Some(hw_info) = ops.hw_info else {
        return Ok(HwInfo {
            data_type: bindings::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_NONE,
            data: KVec::new(),
        });
    };
    let mut len = 0u32;
    let mut out_type = data_type;
    // SAFETY: `dev` is valid with an IOMMU whose driver this op is; `len` and `out_type` are
    // writable. The driver returns a `kmalloc()`ed buffer of `len` bytes or an error pointer.
    let buf = unsafe { hw_info(dev.as_raw(), &mut len, &mut out_type) };
    let buf = crate::error::from_err_ptr(buf)?;
    if buf.is_null() {
        return Err(ENOMEM);
    }
    let mut data = KVec::new();
    let copied = if out_type == bindings::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_NONE {
        // A driver with `hw_info` must name its type (the core warns otherwise).
        Err(EOPNOTSUPP)
    } else {
        // SAFETY: The driver gave `len` initialised bytes at `buf`.
        let bytes = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len as usize) };
        data.extend_from_slice(bytes, GFP_KERNEL)
            .map_err(Error::from)
    };
    // SAFETY: The buffer came from `kmalloc()` and is not used after this.
    unsafe { bindings::kfree(buf.cast::<c_void>()) };
    copied?;
    Ok(HwInfo {
        data_type: out_type,
        data,
    })
}

/// What a reserved region is for (`enum iommu_resv_type`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResvType {
    /// Must be mapped one-to-one (firmware DMA, RMRR); userspace cannot map there.
    Direct,
    /// As [`ResvType::Direct`], but may be given up when the device is assigned.
    DirectRelaxable,
    /// Must not be mapped.
    Reserved,
    /// The hardware MSI doorbell, translated by the IOMMU itself.
    Msi,
    /// An IOVA window where software maps the MSI doorbell.
    SwMsi,
    /// A type this abstraction does not know.
    Other(u32),
}

impl ResvType {
    fn from_raw(t: bindings::iommu_resv_type) -> Self {
        match t {
            bindings::iommu_resv_type_IOMMU_RESV_DIRECT => Self::Direct,
            bindings::iommu_resv_type_IOMMU_RESV_DIRECT_RELAXABLE => Self::DirectRelaxable,
            bindings::iommu_resv_type_IOMMU_RESV_RESERVED => Self::Reserved,
            bindings::iommu_resv_type_IOMMU_RESV_MSI => Self::Msi,
            bindings::iommu_resv_type_IOMMU_RESV_SW_MSI => Self::SwMsi,
            t => Self::Other(t),
        }
    }
}

/// An IOVA range a device's IOMMU reserves, both ends included.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ResvRegion {
    /// The first IOVA.
    pub start: u64,
    /// The last IOVA.
    pub last: u64,
    /// What it is for.
    pub kind: ResvType,
}

/// Makes `head` an empty list (what `INIT_LIST_HEAD()` does). It must not move while the list
/// is in use.
pub(super) fn init_list(head: &mut bindings::list_head) -> *mut bindings::list_head {
    let ptr = core::ptr::from_mut(head);
    head.next = ptr;
    head.prev = ptr;
    ptr
}

/// The regions of the list at `head`.
///
/// # Safety
///
/// `head` must be a valid list of `struct iommu_resv_region`s, not changed during the call.
pub(super) unsafe fn read_regions(head: *mut bindings::list_head) -> Result<KVec<ResvRegion>> {
    let mut out = KVec::new();
    // SAFETY: `head` is a valid list by the safety requirements.
    let mut pos = unsafe { (*head).next };
    while pos != head {
        // SAFETY: Every entry of the list is the `list` field of a `struct iommu_resv_region`.
        let region = unsafe { &*crate::container_of!(pos, bindings::iommu_resv_region, list) };
        if region.length != 0 {
            let r = ResvRegion {
                start: region.start,
                last: region.start.saturating_add(region.length as u64 - 1),
                kind: ResvType::from_raw(region.type_),
            };
            out.push(r, GFP_KERNEL)?;
        }
        // SAFETY: `pos` is an entry of the valid list.
        pos = unsafe { (*pos).next };
    }
    Ok(out)
}

/// The IOVA ranges `dev`'s IOMMU reserves (`iommu_get_resv_regions()`): none for a device
/// without an IOMMU.
pub fn resv_regions(dev: &Device) -> Result<KVec<ResvRegion>> {
    if iommu_of(dev).is_none() {
        return Ok(KVec::new());
    }
    let mut head = bindings::list_head::default();
    // `head` stays on this frame until the regions are freed.
    let head = init_list(&mut head);
    // SAFETY: `dev` is valid and has an IOMMU (checked above); the driver adds regions it
    // allocated to the list.
    unsafe { bindings::iommu_get_resv_regions(dev.as_raw(), head) };
    // SAFETY: `head` is the list just filled.
    let regions = unsafe { read_regions(head) };
    // SAFETY: The list holds what `iommu_get_resv_regions()` gave; this frees every region.
    unsafe { bindings::iommu_put_resv_regions(dev.as_raw(), head) };
    regions
}
