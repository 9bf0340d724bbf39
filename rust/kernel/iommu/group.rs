// SPDX-License-Identifier: GPL-2.0

//! IOMMU groups, DMA ownership, and attaching paging domains.
//!
//! C header: [`include/linux/iommu.h`](srctree/include/linux/iommu.h)
//!
//! An IOMMU group is the smallest set of devices the IOMMU can tell apart: what one of them
//! may reach by DMA, all of them may. So the IOMMU core hands the DMA of a whole group to one
//! owner at a time. While the kernel's DMA API owns it, the group uses its default domain; a
//! user like iommufd or VFIO first claims the DMA of a device ([`DmaOwner::claim`]), which
//! blocks all DMA of the group, and then attaches its own paging domain
//! ([`DmaOwner::attach`]). Dropping the owner detaches its domain and gives the group back to
//! the DMA API.

use super::{
    device::{
        init_list,
        read_regions,
        ResvRegion, //
    },
    domain::PagingDomain,
};
use crate::{
    bindings,
    device::Device,
    error::to_result,
    ffi::c_void,
    prelude::*,
    sync::{
        aref::ARef,
        Arc, //
    },
    types::Opaque,
};
use core::ptr::NonNull;

/// A counted reference to an IOMMU group (`struct iommu_group`).
///
/// # Invariants
///
/// `ptr` points to a group this object holds a reference to.
pub struct Group {
    ptr: NonNull<bindings::iommu_group>,
}

// SAFETY: A group reference may be taken and dropped on any thread; the group locks its state.
unsafe impl Send for Group {}
// SAFETY: All operations on a shared group go through the IOMMU core, which locks.
unsafe impl Sync for Group {}

impl Group {
    /// The group of `dev`: `ENODEV` if it has no IOMMU.
    pub fn of(dev: &Device) -> Result<Self> {
        // SAFETY: `dev.as_raw()` is a valid device for the call.
        let ptr = unsafe { bindings::iommu_group_get(dev.as_raw()) };
        // INVARIANT: `iommu_group_get()` took a reference for us.
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(ENODEV)
    }

    /// A new group, named `name` in sysfs, holding only `dev`, a device no IOMMU translates
    /// (which has no group): how VFIO's no-IOMMU mode gives such a device a group. The device
    /// leaves it with [`Group::remove_device`].
    pub fn new_for(dev: &Device, name: &CStr) -> Result<Self> {
        // SAFETY: No arguments; returns a group with one reference, or an error pointer.
        let ptr = crate::error::from_err_ptr(unsafe { bindings::iommu_group_alloc() })?;
        // INVARIANT: `iommu_group_alloc()` gave us its reference; dropping `group` puts it.
        let group = Self {
            // SAFETY: Not an error pointer, so not null.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
        };
        // SAFETY: The group is valid; the core copies the name.
        to_result(unsafe { bindings::iommu_group_set_name(ptr, name.as_char_ptr()) })?;
        // SAFETY: The group and `dev` are valid; the group takes its own reference on `dev`.
        to_result(unsafe { bindings::iommu_group_add_device(ptr, dev.as_raw()) })?;
        Ok(group)
    }

    /// Takes `dev` out of the group [`Group::new_for`] put it in.
    pub fn remove_device(dev: &Device) {
        // SAFETY: `dev` is valid; the core checks that it is in a group.
        unsafe { bindings::iommu_group_remove_device(dev.as_raw()) };
    }

    /// The raw `struct iommu_group`.
    pub fn as_raw(&self) -> *mut bindings::iommu_group {
        self.ptr.as_ptr()
    }

    /// Whether a DMA write of the group's devices can only raise the interrupts given to them
    /// (interrupt remapping, or an MSI-isolating IOMMU): what it takes to hand them to userspace
    /// safely.
    pub fn has_isolated_msi(&self) -> bool {
        // SAFETY: The group is valid by the type invariant.
        unsafe { bindings::iommu_group_has_isolated_msi(self.as_raw()) }
    }

    /// The group's id, as in `/sys/kernel/iommu_groups/<id>`.
    pub fn id(&self) -> i32 {
        // SAFETY: The group is valid by the type invariant.
        unsafe { bindings::iommu_group_id(self.as_raw()) }
    }

    /// Whether some user (VFIO, iommufd, a driver with `driver_managed_dma`) claimed the DMA of
    /// the group from the kernel's DMA API.
    pub fn dma_owner_claimed(&self) -> bool {
        // SAFETY: The group is valid by the type invariant.
        unsafe { bindings::iommu_group_dma_owner_claimed(self.as_raw()) }
    }

    /// Whether `self` and `other` are the same group.
    pub fn is(&self, other: &Group) -> bool {
        self.ptr == other.ptr
    }

    /// The IOVA ranges the IOMMU reserves for any device of the group, overlapping ones of a
    /// type merged (`iommu_get_group_resv_regions()`, what VFIO's type1 container reports).
    pub fn resv_regions(&self) -> Result<KVec<ResvRegion>> {
        let mut head = bindings::list_head::default();
        // `head` stays on this frame until the regions are freed.
        let head = init_list(&mut head);
        // SAFETY: The group is valid by the type invariant; the core adds copies of the
        // regions, allocated with `kmalloc()`, to the list (some even on failure).
        let ret = unsafe { bindings::iommu_get_group_resv_regions(self.as_raw(), head) };
        // SAFETY: `head` is the list just filled.
        let regions = unsafe { read_regions(head) };
        // SAFETY: `head` is a valid list of regions the caller owns; each is freed once, after
        // its successor was read.
        unsafe {
            let mut pos = (*head).next;
            while pos != head {
                let next = (*pos).next;
                bindings::kfree(
                    crate::container_of!(pos, bindings::iommu_resv_region, list).cast::<c_void>(),
                );
                pos = next;
            }
        }
        to_result(ret)?;
        regions
    }
}

impl Clone for Group {
    fn clone(&self) -> Self {
        // SAFETY: The group is valid by the type invariant; this takes another reference (and
        // returns the same group).
        unsafe { bindings::iommu_group_ref_get(self.as_raw()) };
        // INVARIANT: The new object owns the reference just taken.
        Self { ptr: self.ptr }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold a reference, given back here.
        unsafe { bindings::iommu_group_put(self.as_raw()) };
    }
}

/// A paging domain attached to a group, and the attach handle the core keeps for it.
struct Attached {
    domain: Arc<PagingDomain>,
    /// The core stores a pointer to it while the domain is attached (and writes its `domain`).
    _handle: KBox<Opaque<bindings::iommu_attach_handle>>,
}

/// The DMA of a device, claimed from the kernel's DMA API: its group's DMA is blocked until a
/// domain is attached, and goes back to the DMA API when this is dropped (after the domain, if
/// any, is detached).
///
/// Devices of one group can be claimed by the same owner (the same `owner` argument) together;
/// any other owner gets `EPERM` until they are all released. A domain is attached to the whole
/// group, through one of its claimed devices.
///
/// # Invariants
///
/// DMA ownership of `dev` is claimed (`iommu_device_claim_dma_owner()` succeeded) and released
/// only on drop; `group` is `dev`'s group; `attached` is the domain attached to `group`
/// through this object (with the handle the core keeps), if any.
pub struct DmaOwner {
    dev: ARef<Device>,
    group: Group,
    attached: Option<Attached>,
}

// SAFETY: DMA ownership is not tied to a thread: it may be released, and domains attached and
// detached, from any thread. The attach handle is only used by the core, under the group's lock.
unsafe impl Send for DmaOwner {}
// SAFETY: A shared `DmaOwner` only gives out its device, group and attached domain, which are
// all `Sync`.
unsafe impl Sync for DmaOwner {}

impl DmaOwner {
    /// Claims the DMA of `dev` for `owner`, an object whose address names the owner (as C
    /// callers use their context): `ENODEV` for a device without an IOMMU, `EPERM` if another
    /// owner holds the group, `EBUSY` if a kernel driver uses the DMA API of a device in the
    /// group.
    pub fn claim<T: ?Sized>(dev: &Device, owner: &T) -> Result<Self> {
        let group = Group::of(dev)?;
        let cookie = core::ptr::from_ref(owner).cast::<c_void>().cast_mut();
        // SAFETY: `dev.as_raw()` is a valid device; the cookie is only compared, never
        // dereferenced, and is not null as it comes from a reference.
        to_result(unsafe { bindings::iommu_device_claim_dma_owner(dev.as_raw(), cookie) })?;
        // INVARIANT: Ownership was just claimed; `group` is the device's.
        Ok(Self {
            dev: dev.into(),
            group,
            attached: None,
        })
    }

    /// The device whose DMA is claimed.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// The device's group.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// The domain attached through this owner, if any.
    pub fn attached(&self) -> Option<&Arc<PagingDomain>> {
        self.attached.as_ref().map(|a| &a.domain)
    }

    /// Attaches `domain` to the group, in place of the domain attached through this owner if
    /// there is one (without blocking DMA in between, as iommufd replaces): `EINVAL` if the
    /// group's devices cannot use `domain`, `EBUSY` if a domain is attached to the group
    /// otherwise (through another owner of a device of the group). On failure the group stays
    /// as it was.
    pub fn attach(&mut self, domain: &Arc<PagingDomain>) -> Result {
        if let Some(a) = &self.attached {
            if Arc::ptr_eq(&a.domain, domain) {
                return Ok(());
            }
        }
        // A new handle for each attachment, as the core asks.
        let handle = KBox::new(
            Opaque::<bindings::iommu_attach_handle>::zeroed(),
            GFP_KERNEL,
        )?;
        let ret = if self.attached.is_some() {
            // SAFETY: The group and domain are valid; the handle stays allocated while the
            // domain is attached (it is kept in `self.attached`).
            unsafe {
                bindings::iommu_replace_group_handle(
                    self.group.as_raw(),
                    domain.as_raw(),
                    handle.get(),
                )
            }
        } else {
            // SAFETY: As above.
            unsafe {
                bindings::iommu_attach_group_handle(
                    domain.as_raw(),
                    self.group.as_raw(),
                    handle.get(),
                )
            }
        };
        to_result(ret)?;
        // The old domain and handle go only now: the core no longer refers to them.
        self.attached = Some(Attached {
            domain: domain.clone(),
            _handle: handle,
        });
        Ok(())
    }

    /// Detaches the domain attached through this owner, if any: the group's DMA is blocked
    /// again.
    pub fn detach(&mut self) {
        if let Some(a) = self.attached.take() {
            // SAFETY: The domain is attached to the group through this owner (type invariant),
            // and both are valid; the core forgets the handle before this returns.
            unsafe { bindings::iommu_detach_group_handle(a.domain.as_raw(), self.group.as_raw()) };
        }
    }
}

impl Drop for DmaOwner {
    fn drop(&mut self) {
        self.detach();
        // SAFETY: Ownership was claimed by the type invariant and is given back once, after
        // the domain is detached (the core warns if one is still attached).
        unsafe { bindings::iommu_device_release_dma_owner(self.dev.as_raw()) };
    }
}

/// These run against QEMU's `edu` PCI device behind emulated VT-d (the project's test VM); on
/// a machine without it they log that and pass.
#[macros::kunit_tests(rust_iommu_paging)]
mod tests {
    use super::*;
    use crate::{
        alloc::flags::GFP_KERNEL_ACCOUNT,
        iommu::{
            device::{
                self,
                Cap,
                ResvType, //
            },
            domain::prot,
        },
        pci,
    };

    const RW: u32 = prot::READ | prot::WRITE;
    const SZ_4K: u64 = 0x1000;
    const SZ_2M: u64 = 0x20_0000;

    /// QEMU's `edu` device, which no driver takes.
    fn edu() -> Option<ARef<pci::Device>> {
        let dev = pci::Device::find_by_ids(0x1234, 0x11e8);
        if dev.is_none() {
            pr_info!("rust_iommu_paging: no edu device (1234:11e8), nothing to test\n");
        }
        dev
    }

    /// A domain for `dev`, attached through a fresh DMA owner.
    fn attached(dev: &Device) -> Result<(DmaOwner, Arc<PagingDomain>)> {
        let mut owner = DmaOwner::claim(dev, &0u8)?;
        let domain = Arc::new(PagingDomain::new(dev)?, GFP_KERNEL)?;
        owner.attach(&domain)?;
        Ok((owner, domain))
    }

    #[test]
    fn map_iova_to_phys_unmap() -> Result {
        let Some(pdev) = edu() else { return Ok(()) };
        let dev: &Device = (*pdev).as_ref();
        let group = Group::of(dev)?;
        assert!(group.id() >= 0);
        let (mut owner, domain) = attached(dev)?;
        assert_eq!(owner.group().id(), group.id());
        assert!(owner.attached().is_some());
        let ap = domain.aperture();
        let sizes = domain.pgsize_bitmap();
        pr_info!(
            "rust_iommu_paging: group {}, pgsize_bitmap {:#x}, aperture {:#x}..={:#x} ({})\n",
            group.id(),
            sizes,
            ap.start,
            ap.last,
            if ap.enforced { "enforced" } else { "a hint" }
        );
        assert_eq!(domain.min_page_size(), SZ_4K);

        // Four 4 KiB pages.
        let iova = ap.start + SZ_2M;
        let phys = 0x4000_0000;
        domain.map(iova, phys, 4 * SZ_4K, RW, GFP_KERNEL_ACCOUNT)?;
        assert_eq!(domain.iova_to_phys(iova), phys);
        assert_eq!(domain.iova_to_phys(iova + 0x3123), phys + 0x3123);
        assert_eq!(domain.iova_to_phys(iova + 4 * SZ_4K), 0);

        // A 2 MiB page, and 2 MiB + 4 KiB that need both sizes.
        let big = ap.start + 4 * SZ_2M;
        if sizes & SZ_2M != 0 {
            domain.map(
                big,
                phys + SZ_2M,
                SZ_2M + SZ_4K,
                prot::READ,
                GFP_KERNEL_ACCOUNT,
            )?;
            assert_eq!(domain.iova_to_phys(big + 0x1_2345), phys + SZ_2M + 0x1_2345);
            assert_eq!(domain.iova_to_phys(big + SZ_2M + 8), phys + 2 * SZ_2M + 8);
            assert_eq!(domain.unmap(big, SZ_2M + SZ_4K), SZ_2M + SZ_4K);
            assert_eq!(domain.iova_to_phys(big), 0);
            assert_eq!(domain.iova_to_phys(big + SZ_2M), 0);
        } else {
            pr_info!("rust_iommu_paging: no 2 MiB pages\n");
        }

        assert_eq!(domain.unmap(iova, 4 * SZ_4K), 4 * SZ_4K);
        for n in 0..4 {
            assert_eq!(domain.iova_to_phys(iova + n * SZ_4K), 0);
        }
        // Nothing left to unmap.
        assert_eq!(domain.unmap(iova, 4 * SZ_4K), 0);

        // Replace with a second domain, then detach.
        let other = Arc::new(PagingDomain::new(dev)?, GFP_KERNEL)?;
        owner.attach(&other)?;
        assert!(owner.attached().is_some_and(|d| Arc::ptr_eq(d, &other)));
        owner.detach();
        assert!(owner.attached().is_none());
        owner.attach(&domain)?;
        drop(owner);
        Ok(())
    }

    #[test]
    fn failed_maps_leave_nothing() -> Result {
        let Some(pdev) = edu() else { return Ok(()) };
        let dev: &Device = (*pdev).as_ref();
        let (_owner, domain) = attached(dev)?;
        let ap = domain.aperture();
        let iova = ap.start + SZ_2M;
        let phys = 0x4000_0000;
        let gfp = GFP_KERNEL_ACCOUNT;

        assert_eq!(domain.map(iova + 0x800, phys, SZ_4K, RW, gfp), Err(ENXIO));
        assert_eq!(domain.map(iova, phys + 0x800, SZ_4K, RW, gfp), Err(ENXIO));
        assert_eq!(domain.map(iova, phys, 0x800, RW, gfp), Err(ENXIO));
        assert_eq!(domain.map(iova, phys, 0, RW, gfp), Err(EINVAL));
        assert_eq!(domain.map(iova, phys, SZ_4K, prot::CACHE, gfp), Err(EINVAL));
        assert_eq!(domain.iova_to_phys(iova), 0);

        // Across the end of the aperture: the part inside is not left mapped.
        if ap.last < u64::MAX {
            let end = ap.last + 1;
            assert!(domain.map(end, phys, SZ_4K, RW, gfp).is_err());
            assert!(domain.map(end - SZ_4K, phys, 2 * SZ_4K, RW, gfp).is_err());
            assert_eq!(domain.iova_to_phys(end - SZ_4K), 0);
        }
        // Nothing was mapped, so nothing unmaps.
        assert_eq!(domain.unmap(ap.start, 64 * SZ_2M), 0);
        Ok(())
    }

    #[test]
    fn ownership_and_capabilities() -> Result {
        let Some(pdev) = edu() else { return Ok(()) };
        let dev: &Device = (*pdev).as_ref();
        let cookie = 0u8;
        let owner = DmaOwner::claim(dev, &cookie)?;
        // The same owner may claim again; another may not.
        let again = DmaOwner::claim(dev, &cookie)?;
        assert_eq!(DmaOwner::claim(dev, &1u8).err(), Some(EPERM));
        drop(again);
        drop(owner);

        assert!(device::capable(dev, Cap::CacheCoherency));
        let dirty = device::capable(dev, Cap::DirtyTracking);
        let info = device::hw_info(dev, bindings::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_DEFAULT)?;
        pr_info!(
            "rust_iommu_paging: hw_info type {}, {} bytes; enforce coherency {}, dirty tracking {}, ATS {}, {} PASIDs\n",
            info.data_type,
            info.data.len(),
            device::capable(dev, Cap::EnforceCacheCoherency),
            dirty,
            device::capable(dev, Cap::PciAtsSupported),
            device::max_pasids(dev)
        );
        if info.data_type == bindings::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_INTEL_VTD {
            assert_eq!(
                info.data.len(),
                core::mem::size_of::<bindings::iommu_hw_info_vtd>()
            );
            let again = device::hw_info(dev, info.data_type)?;
            assert_eq!(again.data_type, info.data_type);
            assert_eq!(device::hw_info(dev, 0xdead).err(), Some(EOPNOTSUPP));
        }
        let regions = device::resv_regions(dev)?;
        let group_regions = Group::of(dev)?.resv_regions()?;
        // The group's regions cover the device's.
        for r in regions.iter() {
            assert!(group_regions
                .iter()
                .any(|g| g.start <= r.start && r.last <= g.last));
        }
        for r in regions.iter() {
            pr_info!(
                "rust_iommu_paging: reserved {:#x}..={:#x} {:?}\n",
                r.start,
                r.last,
                r.kind
            );
        }
        if info.data_type == bindings::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_INTEL_VTD {
            // VT-d reserves the interrupt address range.
            assert!(regions
                .iter()
                .any(|r| r.kind == ResvType::Msi && r.start == 0xfee0_0000));
        }

        // Dirty tracking only for a domain made for it.
        let domain = PagingDomain::new(dev)?;
        assert!(domain.is_from_driver_of(dev));
        assert!(!domain.dirty_tracking());
        assert_eq!(domain.set_dirty_tracking(true), Err(EOPNOTSUPP));
        assert_eq!(
            domain.read_and_clear_dirty(0, SZ_2M, false, None),
            Err(EOPNOTSUPP)
        );
        let flag = bindings::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
        match PagingDomain::with_flags(dev, flag) {
            Ok(d) => {
                assert!(dirty && d.dirty_tracking());
                d.set_dirty_tracking(true)?;
                d.set_dirty_tracking(false)?;
            }
            Err(_) => assert!(!dirty),
        }
        Ok(())
    }
}
