// SPDX-License-Identifier: GPL-2.0

//! Nested HWPTs: a stage-1 page table userspace owns, over a paging HWPT as stage 2.
//!
//! With nesting, an IOMMU translates in two stages: a guest's I/O page table (stage 1, which
//! the guest builds in its own memory and the kernel never reads) on top of a paging HWPT
//! (stage 2, the guest's physical memory, which the IOAS maps). A nested HWPT is such a
//! stage-1 table: the IOMMU driver makes its domain from driver data userspace describes the
//! table with (`IOMMU_HWPT_ALLOC` over a paging HWPT allocated with
//! `IOMMU_HWPT_ALLOC_NEST_PARENT`), and since the kernel does not see the table change,
//! userspace tells the driver what to flush from the IOMMU's caches (`IOMMU_HWPT_INVALIDATE`).
//!
//! A nested HWPT maps nothing itself, so the mapping engine never sees it; it holds its parent,
//! which cannot be destroyed while it exists (`EBUSY`). Devices attach to it as to any HWPT.

use crate::{
    context::Iommufd,
    device::Device,
    hw_pagetable::{
        FaultHold,
        HwptPaging, //
    },
    object::Object,
    ucmd::{
        UserData,
        UserDataArray, //
    },
    viommu::Viommu,
};
use kernel::{
    prelude::*,
    sync::Arc,
    uapi, //
};

/// What iommufd needs of an IOMMU driver's nested domain.
pub(crate) trait NestedDomain: Send + Sync {
    /// `IOMMU_HWPT_INVALIDATE`: carries out the invalidation requests of `array`, in order,
    /// until one fails. Returns how many it carried out, and the failure. `EOPNOTSUPP` by
    /// default, for a driver that takes none.
    fn cache_invalidate_user(&self, _array: &UserDataArray) -> (u32, Result) {
        (0, Err(EOPNOTSUPP))
    }
}

/// A nested domain a driver made for a device.
pub(crate) struct AllocatedNested {
    pub(crate) domain: Arc<dyn NestedDomain>,
    #[cfg(CONFIG_IOMMUFD_TEST)]
    pub(crate) mock: Option<Arc<crate::mock_nested::MockNested>>,
}

/// A nested HWPT.
pub(crate) struct HwptNested {
    /// The stage-2 HWPT the nested domain translates through: kept alive by this `Arc` and,
    /// through the table's user count, undestroyable while this HWPT exists.
    _parent: Arc<HwptPaging>,
    parent_id: u32,
    pub(crate) domain: Arc<dyn NestedDomain>,
    /// Where its page faults go, if to userspace.
    pub(crate) fault: Option<FaultHold>,
    /// PASIDs may use it (`IOMMU_HWPT_ALLOC_PASID`).
    pub(crate) pasid_compat: bool,
    /// The vIOMMU it was made over, and its id: then it holds that instead of its parent.
    pub(crate) viommu: Option<(u32, Arc<Viommu>)>,
    /// The mock domain behind `domain`, for the test ABI's checks.
    #[cfg(CONFIG_IOMMUFD_TEST)]
    pub(crate) mock: Option<Arc<crate::mock_nested::MockNested>>,
}

impl HwptNested {
    /// What destroying the HWPT (already out of the table, or never published) releases: its
    /// hold on its parent and on its fault queue.
    pub(crate) fn release(&self, ictx: &Iommufd) {
        match &self.viommu {
            Some((viommu_id, _)) => ictx.objects.remove_user(*viommu_id),
            None => ictx.objects.remove_user(self.parent_id),
        }
        if let Some(fault) = &self.fault {
            fault.release(ictx);
        }
    }
}

/// The nested part of `IOMMU_HWPT_ALLOC`: a nested HWPT over `parent` (the paging HWPT
/// `parent_id`) for device `dev`, from driver data `data`, not published. Upstream's checks
/// in upstream's order: flags other than `IOMMU_HWPT_FAULT_ID_VALID` and
/// `IOMMU_HWPT_ALLOC_PASID`, no data, or a driver without nesting are `EOPNOTSUPP`; a parent
/// that is automatic, not made as a parent, or of another driver is `EINVAL`; then come the
/// driver's errors, then the fault queue's (`ENOENT`).
pub(crate) fn alloc(
    ictx: &Iommufd,
    dev: &Device,
    parent_id: u32,
    parent: Arc<HwptPaging>,
    flags: u32,
    data: &UserData,
    fault_id: Option<u32>,
) -> Result<Arc<HwptNested>> {
    let fault_flag = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_FAULT_ID_VALID;
    let pasid = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_PASID;
    let iommu = dev.iommu();
    if flags & !(fault_flag | pasid) != 0 || data.len == 0 || !iommu.nesting() {
        return Err(EOPNOTSUPP);
    }
    if parent.auto_domain || !parent.nest_parent {
        return Err(EINVAL);
    }
    // Held while the driver makes the domain, as upstream: the parent must stay a parent.
    ictx.objects.add_user_if(parent_id, |object| match object {
        Object::HwptPaging(p) if Arc::ptr_eq(p, &parent) => Some(()),
        _ => None,
    })?;
    let made = iommu
        .alloc_nested(&parent, flags & !fault_flag, data)
        .and_then(|allocated| {
            let compat = flags & pasid != 0;
            finish(ictx, parent, parent_id, allocated, fault_id, compat, None)
        });
    if made.is_err() {
        ictx.objects.remove_user(parent_id);
    }
    made
}

/// Makes the nested HWPT of a domain the driver `allocated` over `parent`, taking its fault
/// queue `fault_id`; `ENOENT` for a queue that is not there.
fn finish(
    ictx: &Iommufd,
    parent: Arc<HwptPaging>,
    parent_id: u32,
    allocated: AllocatedNested,
    fault_id: Option<u32>,
    pasid_compat: bool,
    viommu: Option<(u32, Arc<Viommu>)>,
) -> Result<Arc<HwptNested>> {
    let fault = fault_id.map(|id| FaultHold::take(ictx, id)).transpose()?;
    let hwpt = HwptNested {
        _parent: parent,
        parent_id,
        domain: allocated.domain,
        fault,
        pasid_compat,
        viommu,
        #[cfg(CONFIG_IOMMUFD_TEST)]
        mock: allocated.mock,
    };
    Arc::new(hwpt, GFP_KERNEL_ACCOUNT).map_err(|e| {
        if let Some(fault) = fault_id {
            ictx.objects.remove_user(fault);
        }
        Error::from(e)
    })
}

/// The nested part of `IOMMU_HWPT_ALLOC` over a vIOMMU: a nested HWPT for device `dev` over the
/// parent of `viommu` (the vIOMMU `viommu_id`), from driver data `data`, not published. Flags
/// other than `IOMMU_HWPT_FAULT_ID_VALID` and `IOMMU_HWPT_ALLOC_PASID` are `EOPNOTSUPP`, then
/// come the driver's errors, then the fault queue's (`ENOENT`).
pub(crate) fn alloc_on_viommu(
    ictx: &Iommufd,
    dev: &Device,
    viommu_id: u32,
    viommu: Arc<Viommu>,
    flags: u32,
    data: &UserData,
    fault_id: Option<u32>,
) -> Result<Arc<HwptNested>> {
    let fault_flag = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_FAULT_ID_VALID;
    let pasid = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_PASID;
    if flags & !(fault_flag | pasid) != 0 {
        return Err(EOPNOTSUPP);
    }
    ictx.objects.add_user_if(viommu_id, |object| match object {
        Object::Viommu(v) if Arc::ptr_eq(v, &viommu) => Some(()),
        _ => None,
    })?;
    let parent = viommu.hwpt.clone();
    let parent_id = viommu.hwpt_id();
    let made = dev
        .iommu()
        .alloc_nested(&parent, flags & !fault_flag, data)
        .and_then(|allocated| {
            let on = Some((viommu_id, viommu.clone()));
            let compat = flags & pasid != 0;
            finish(ictx, parent, parent_id, allocated, fault_id, compat, on)
        });
    if made.is_err() {
        ictx.objects.remove_user(viommu_id);
    }
    made
}
