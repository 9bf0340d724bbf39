// SPDX-License-Identifier: GPL-2.0

//! IOMMU paging domains: I/O page tables of a hardware IOMMU, filled by their kernel owner.
//!
//! C header: [`include/linux/iommu.h`](srctree/include/linux/iommu.h)
//!
//! A paging domain translates the DMA addresses (IOVAs) of the devices attached to it into
//! physical addresses through a page table the IOMMU driver builds. Its owner (iommufd, VFIO)
//! decides what is mapped where; the IOMMU core splits each mapping into the page sizes the
//! hardware has. A domain does nothing until it is attached to devices (see
//! [`super::group::DmaOwner::attach`]), and it cannot be freed while it is attached: an
//! attachment holds a reference to it.

use crate::{
    alloc::{
        flags::__GFP_HIGHMEM,
        Flags, //
    },
    bindings,
    device::Device,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_int,
        c_ulong, //
    },
    prelude::*,
    types::Opaque,
};
use core::ptr::NonNull;

#[cfg(any(CONFIG_IOMMUFD_DRIVER, CONFIG_IOMMUFD_ENGINE))]
use crate::iova_bitmap::IovaBitmap;

/// Protection flags of a mapping (`IOMMU_READ` and the others), as [`PagingDomain::map`] takes
/// them.
pub use super::pgtable::prot;

/// The range of IOVA a domain translates, both ends included (`struct iommu_domain_geometry`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Aperture {
    /// The first IOVA.
    pub start: u64,
    /// The last IOVA.
    pub last: u64,
    /// Whether the IOMMU refuses DMA outside the range (if not, the range is a hint).
    pub enforced: bool,
}

/// A paging domain (`struct iommu_domain` of type `IOMMU_DOMAIN_UNMANAGED`) made for a device,
/// freed when dropped.
///
/// # Invariants
///
/// `ptr` points to a paging domain from `iommu_paging_domain_alloc_flags()` that only this
/// object frees, and only when it is dropped.
pub struct PagingDomain {
    ptr: NonNull<bindings::iommu_domain>,
}

// SAFETY: The IOMMU core and drivers take a domain from any thread; its operations lock what
// they share.
unsafe impl Send for PagingDomain {}
// SAFETY: Mapping, unmapping and translating on a shared domain are serialised by the drivers
// where needed (callers keep their IOVA ranges apart, as for the C API).
unsafe impl Sync for PagingDomain {}

impl PagingDomain {
    /// Allocates a paging domain that `dev`'s IOMMU can attach `dev` to: `ENODEV` if the
    /// device has no IOMMU, or the driver's error.
    pub fn new(dev: &Device) -> Result<Self> {
        Self::with_flags(dev, 0)
    }

    /// Like [`PagingDomain::new`] with `IOMMU_HWPT_ALLOC_*` flags (for example dirty
    /// tracking): `EOPNOTSUPP` for what the driver does not have.
    pub fn with_flags(dev: &Device, flags: u32) -> Result<Self> {
        // SAFETY: `dev.as_raw()` is a valid device for the duration of the call; the core
        // checks that it has an IOMMU.
        let ptr = from_err_ptr(unsafe {
            bindings::iommu_paging_domain_alloc_flags(dev.as_raw(), flags)
        })?;
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // INVARIANT: `ptr` was just allocated and is owned by the new object.
        Ok(Self { ptr })
    }

    /// The raw `struct iommu_domain`.
    pub fn as_raw(&self) -> *mut bindings::iommu_domain {
        self.ptr.as_ptr()
    }

    /// The domain, for reading its fields.
    fn raw(&self) -> &bindings::iommu_domain {
        // SAFETY: By the type invariant the domain is valid while `self` lives. The fields read
        // through this are set when the domain is allocated and not changed afterwards.
        unsafe { self.ptr.as_ref() }
    }

    /// Whether the domain comes from the IOMMU driver of `dev`: the core refuses to attach a
    /// device to another driver's domain (and the driver may still refuse a domain of its own
    /// that the device's IOMMU instance cannot use).
    pub fn is_from_driver_of(&self, dev: &Device) -> bool {
        super::device::ops_of(dev).is_some_and(|ops| core::ptr::eq(ops, self.raw().owner))
    }

    /// The page sizes the domain maps, as a bitmap of powers of two.
    pub fn pgsize_bitmap(&self) -> u64 {
        self.raw().pgsize_bitmap as u64
    }

    /// The smallest page size: every mapping is aligned to it.
    pub fn min_page_size(&self) -> u64 {
        match self.pgsize_bitmap() {
            0 => 0,
            b => 1 << b.trailing_zeros(),
        }
    }

    /// The IOVA range the domain translates.
    pub fn aperture(&self) -> Aperture {
        let g = &self.raw().geometry;
        Aperture {
            start: g.aperture_start,
            last: g.aperture_end,
            enforced: g.force_aperture,
        }
    }

    /// Maps `len` bytes of physical memory at `phys` to `iova`, with `prot` (a mix of
    /// [`prot`] flags, at least one of `READ` and `WRITE`), allocating page-table memory with
    /// `gfp`. The core cuts the range into the largest page sizes that fit. All three values
    /// must be aligned to [`PagingDomain::min_page_size`].
    ///
    /// On failure nothing of the range is mapped: `EINVAL` for an empty range, a `prot`
    /// without access or highmem `gfp`, `ENXIO` for misaligned values, `ERANGE` outside what
    /// the page table covers, `ENOMEM`.
    pub fn map(&self, iova: u64, phys: u64, len: u64, prot: u32, gfp: Flags) -> Result {
        if len == 0 || prot & (prot::READ | prot::WRITE) == 0 || gfp.contains(__GFP_HIGHMEM) {
            // The core would warn about the last two.
            return Err(EINVAL);
        }
        let iova = c_ulong::try_from(iova).map_err(|_| ERANGE)?;
        let len = usize::try_from(len).map_err(|_| ERANGE)?;
        let prot = c_int::try_from(prot).map_err(|_| EINVAL)?;
        // SAFETY: The domain is valid by the type invariant; the core checks the range, the
        // alignment and the physical address, and undoes a partial mapping itself.
        to_result(unsafe {
            bindings::iommu_map(self.as_raw(), iova, phys, len, prot, gfp.as_raw())
        })
    }

    /// Unmaps `[iova, iova + len)` and returns how many bytes were unmapped: the whole range if
    /// it covers whole mappings, less if it ends inside a page the IOMMU mapped larger, 0 for a
    /// misaligned range. Unmapping what is not mapped is not an error.
    pub fn unmap(&self, iova: u64, len: u64) -> u64 {
        let (Ok(iova), Ok(len)) = (c_ulong::try_from(iova), usize::try_from(len)) else {
            return 0;
        };
        if len == 0 {
            return 0;
        }
        // SAFETY: The domain is valid by the type invariant; the core checks the range.
        unsafe { bindings::iommu_unmap(self.as_raw(), iova, len) as u64 }
    }

    /// The physical address `iova` translates to, 0 if it is not mapped.
    pub fn iova_to_phys(&self, iova: u64) -> u64 {
        // SAFETY: The domain is valid by the type invariant.
        unsafe { bindings::iommu_iova_to_phys(self.as_raw(), iova) }
    }

    /// Asks the IOMMU to make every DMA through the domain cache-coherent, including PCIe
    /// no-snoop requests (`enforce_cache_coherency`), and returns whether it does. Only
    /// possible before anything is mapped, and only for a device whose IOMMU has
    /// `IOMMU_CAP_ENFORCE_CACHE_COHERENCY`.
    pub fn enforce_cache_coherency(&self) -> bool {
        let ops = self.raw().ops;
        if ops.is_null() {
            return false;
        }
        // SAFETY: A domain's ops are static and valid while it lives.
        let Some(enforce) = (unsafe { (*ops).enforce_cache_coherency }) else {
            return false;
        };
        // SAFETY: The domain is valid by the type invariant and `enforce` is its driver's op.
        unsafe { enforce(self.as_raw()) }
    }

    /// The driver's dirty-tracking operations: only a domain made with
    /// `IOMMU_HWPT_ALLOC_DIRTY_TRACKING` has them.
    fn dirty_ops(&self) -> Option<&bindings::iommu_dirty_ops> {
        let ops = self.raw().dirty_ops;
        // SAFETY: A domain's dirty ops, if any, are static and valid while it lives.
        (!ops.is_null()).then(|| unsafe { &*ops })
    }

    /// Whether the domain can track which pages devices write to.
    pub fn dirty_tracking(&self) -> bool {
        self.dirty_ops().is_some()
    }

    /// Starts or stops recording which pages devices write to: `EOPNOTSUPP` for a domain made
    /// without dirty tracking.
    pub fn set_dirty_tracking(&self, enable: bool) -> Result {
        let set = self
            .dirty_ops()
            .and_then(|ops| ops.set_dirty_tracking)
            .ok_or(EOPNOTSUPP)?;
        // SAFETY: The domain is valid by the type invariant and `set` is its driver's op.
        to_result(unsafe { set(self.as_raw(), enable) })
    }

    /// Reports the pages of `[iova, iova + len)` written to since they were last cleaned into
    /// `bitmap`, and cleans them unless `no_clear` (with no `bitmap`, it only cleans them);
    /// the IOTLB is flushed afterwards for what was cleaned. `EOPNOTSUPP` for a domain made
    /// without dirty tracking. The range must lie within the bitmap's current window, as in
    /// a callback of [`IovaBitmap::for_each`].
    #[cfg(any(CONFIG_IOMMUFD_DRIVER, CONFIG_IOMMUFD_ENGINE))]
    pub fn read_and_clear_dirty(
        &self,
        iova: u64,
        len: u64,
        no_clear: bool,
        bitmap: Option<&mut IovaBitmap>,
    ) -> Result {
        let read = self
            .dirty_ops()
            .and_then(|ops| ops.read_and_clear_dirty)
            .ok_or(EOPNOTSUPP)?;
        let iova = c_ulong::try_from(iova).map_err(|_| ERANGE)?;
        let len = usize::try_from(len).map_err(|_| ERANGE)?;
        // C's `struct iova_bitmap` is the Rust `IovaBitmap` (see `kernel::iova_bitmap`).
        let bitmap = bitmap.map_or(core::ptr::null_mut(), |b| {
            core::ptr::from_mut(b).cast::<bindings::iova_bitmap>()
        });
        let flags = if no_clear {
            bindings::IOMMU_DIRTY_NO_CLEAR as c_ulong
        } else {
            0
        };
        // Both live on this frame and are not moved while the driver uses them: the gather's
        // free list points to itself once initialised.
        let gather = Opaque::<bindings::iommu_iotlb_gather>::uninit();
        let dirty = Opaque::<bindings::iommu_dirty_bitmap>::uninit();
        // SAFETY: `dirty` and `gather` are writable; this initialises both.
        unsafe { bindings::iommu_dirty_bitmap_init(dirty.get(), bitmap, gather.get()) };
        // SAFETY: The domain is valid by the type invariant and `read` is its driver's op;
        // `dirty` is initialised, and its bitmap is null or a live `IovaBitmap` borrowed
        // mutably for this call, whose C functions the driver calls.
        let ret = unsafe { read(self.as_raw(), iova, len, flags, dirty.get()) };
        if !no_clear {
            // SAFETY: The domain is valid; `gather` holds what the driver gathered to flush.
            unsafe { bindings::iommu_iotlb_sync(self.as_raw(), gather.get()) };
        }
        to_result(ret)
    }
}

impl Drop for PagingDomain {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the domain is owned by `self` and freed only here; no
        // attachment holds it (an attachment holds a reference to `self`).
        unsafe { bindings::iommu_domain_free(self.as_raw()) };
    }
}
