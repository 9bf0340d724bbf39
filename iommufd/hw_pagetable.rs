// SPDX-License-Identifier: GPL-2.0

//! Hardware page tables (HWPTs): IOMMU domains as iommufd objects.
//!
//! A paging HWPT is one IOMMU domain kept in step with one IOAS: while it lives the IOAS maps
//! every area into its domain (see [`crate::io_pagetable`]). Devices attach to HWPTs. Attaching
//! a device to an IOAS instead makes an *automatic* HWPT, or reuses one of that IOAS's that the
//! device accepts; an automatic HWPT goes away with its last device.
//!
//! Ownership: the object table and every attached device hold an `Arc` of the HWPT; the HWPT
//! holds its IOAS and, through the table's user count, keeps the IOAS from being destroyed.
//! Dropping the last reference takes the domain out of the IOAS.

use crate::{
    context::Iommufd,
    device::AllocatedDomain,
    domain::Domain,
    ioas::Ioas,
    object::Object,
    ucmd::UserCmd, //
};
use kernel::{
    prelude::*,
    sync::Arc,
    uapi, //
};

/// A paging HWPT.
pub(crate) struct HwptPaging {
    pub(crate) ioas: Arc<Ioas>,
    pub(crate) ioas_id: u32,
    pub(crate) domain: Arc<dyn Domain>,
    /// Made by attaching a device to the IOAS rather than by userspace.
    pub(crate) auto_domain: bool,
    /// The mock domain behind `domain`, for the test ABI's checks.
    #[cfg(CONFIG_IOMMUFD_TEST)]
    pub(crate) mock: Option<Arc<crate::mock_domain::MockDomain>>,
}

impl HwptPaging {
    /// Makes a HWPT for `domain` over the IOAS `ioas_id` and publishes it: the IOAS fills the
    /// domain with its areas first, and the IOAS counts the HWPT as a user. An automatic HWPT
    /// is published in use by the device it is made for. Returns its id.
    pub(crate) fn create(
        ictx: &Iommufd,
        ioas_id: u32,
        allocated: AllocatedDomain,
        auto_domain: bool,
    ) -> Result<(u32, Arc<Self>)> {
        let domain = allocated.domain;
        let new = ictx.objects.reserve()?;
        let Object::Ioas(ioas) = ictx.objects.add_user(ioas_id)? else {
            ictx.objects.remove_user(ioas_id);
            return Err(ENOENT);
        };
        let hwpt = ioas
            .iopt
            .add_domain(domain.clone())
            .and_then(|()| {
                Arc::new(
                    Self {
                        ioas: ioas.clone(),
                        ioas_id,
                        domain: domain.clone(),
                        auto_domain,
                        #[cfg(CONFIG_IOMMUFD_TEST)]
                        mock: allocated.mock,
                    },
                    GFP_KERNEL_ACCOUNT,
                )
                .inspect_err(|_| ioas.iopt.remove_domain(&domain))
                .map_err(Error::from)
            })
            .inspect_err(|_| ictx.objects.remove_user(ioas_id))?;
        let id = new.id();
        if auto_domain {
            // Made for the device attaching: in use by it from the start.
            new.publish_in_use(Object::HwptPaging(hwpt.clone()));
        } else {
            new.publish(Object::HwptPaging(hwpt.clone()));
        }
        Ok((id, hwpt))
    }
}

impl Drop for HwptPaging {
    fn drop(&mut self) {
        self.ioas.iopt.remove_domain(&self.domain);
    }
}

/// What destroying HWPT `hwpt` (already out of the table) releases: its hold on the IOAS.
pub(crate) fn release(ictx: &Iommufd, hwpt: &HwptPaging) {
    ictx.objects.remove_user(hwpt.ioas_id);
}

/// `IOMMU_HWPT_ALLOC`: a paging HWPT over IOAS `pt_id` with a domain made for device `dev_id`,
/// not attached to anything yet. Nested HWPTs (over a HWPT or a vIOMMU) are not supported yet
/// (`EOPNOTSUPP`), nor is dirty tracking; a fault queue must exist (`ENOENT`: none can yet).
pub(crate) fn alloc_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_hwpt_alloc>,
) -> Result<isize> {
    let cmd = &ucmd.cmd;
    let none = uapi::iommu_hwpt_data_type_IOMMU_HWPT_DATA_NONE;
    if cmd.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    if (cmd.data_type == none) != (cmd.data_len == 0) {
        return Err(EINVAL);
    }
    let dev = ictx.objects.get_device(cmd.dev_id)?;
    let pt = ictx.objects.get(cmd.pt_id).map_err(|_| EINVAL)?;
    let Object::Ioas(_) = pt else {
        return match pt {
            Object::HwptPaging(_) => Err(EOPNOTSUPP),
            _ => Err(EINVAL),
        };
    };
    let valid = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_NEST_PARENT
        | uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_DIRTY_TRACKING
        | uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_FAULT_ID_VALID
        | uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_PASID;
    if cmd.flags & !valid != 0
        || cmd.flags & uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_DIRTY_TRACKING != 0
        || cmd.data_type != none
    {
        return Err(EOPNOTSUPP);
    }
    if cmd.flags & uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_FAULT_ID_VALID != 0 {
        // Fault queues (IOMMU_FAULT_QUEUE_ALLOC) do not exist yet, so no id names one.
        return Err(ENOENT);
    }
    let (id, _hwpt) = HwptPaging::create(ictx, cmd.pt_id, dev.iommu().alloc_domain()?, false)?;
    ucmd.cmd.out_hwpt_id = id;
    if let Err(e) = ucmd.respond() {
        if let Ok(Object::HwptPaging(hwpt)) = ictx.objects.destroy(id) {
            release(ictx, &hwpt);
        }
        return Err(e);
    }
    Ok(0)
}

/// The most requests one `IOMMU_HWPT_INVALIDATE` takes, so that one call cannot hold the CPU
/// for long (upstream's bound).
const INVALIDATE_ENTRY_NUM_MAX: u32 = 1 << 19;

/// `IOMMU_HWPT_INVALIDATE`: invalidates caches of a nested HWPT or a vIOMMU. Neither exists
/// yet, so a valid request names some other object (`EINVAL`) or none (`ENOENT`); the count
/// of requests handled comes back as 0 either way.
pub(crate) fn invalidate_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_hwpt_invalidate>,
) -> Result<isize> {
    let cmd = &ucmd.cmd;
    let res = if cmd.__reserved != 0 {
        Err(EOPNOTSUPP)
    } else if cmd.entry_num != 0
        && (cmd.data_uptr == 0
            || cmd.entry_len == 0
            || cmd.entry_len as usize > kernel::page::PAGE_SIZE
            || cmd.entry_num > INVALIDATE_ENTRY_NUM_MAX)
    {
        Err(EINVAL)
    } else {
        ictx.objects.get(cmd.hwpt_id).and(Err(EINVAL))
    };
    ucmd.cmd.entry_num = 0;
    ucmd.respond()?;
    res
}
