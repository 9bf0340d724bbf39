// SPDX-License-Identifier: GPL-2.0

//! Hardware page tables (HWPTs): IOMMU domains as iommufd objects.
//!
//! A paging HWPT is one IOMMU domain kept in step with one IOAS: while it lives the IOAS maps
//! every area into its domain (see [`crate::io_pagetable`]). Devices attach to HWPTs. Attaching
//! a device to an IOAS instead makes an *automatic* HWPT, or reuses one of that IOAS's that the
//! device accepts; an automatic HWPT goes away with its last device.
//!
//! A nested HWPT (see [`crate::nested`]) is a stage-1 table over a paging HWPT; devices attach
//! to either kind, which [`Hwpt`] stands for. Either may send its page faults to a fault queue
//! (see [`crate::fault`]).
//!
//! Ownership: the object table and every attached device hold an `Arc` of the HWPT; the HWPT
//! holds its IOAS (or parent) and fault queue and, through the table's user counts, keeps them
//! from being destroyed. Dropping the last reference takes the domain out of the IOAS.

use crate::{
    context::Iommufd,
    device::{
        AllocatedDomain,
        Device, //
    },
    domain::Domain,
    fault::Fault,
    ioas::Ioas,
    nested::{
        self,
        HwptNested, //
    },
    object::Object,
    ucmd::{
        UserCmd,
        UserData,
        UserDataArray, //
    },
    viommu,
};
use kernel::{
    prelude::*,
    sync::Arc,
    uapi, //
};

/// A HWPT: what a device attaches to.
#[derive(Clone)]
pub(crate) enum Hwpt {
    Paging(Arc<HwptPaging>),
    Nested(Arc<HwptNested>),
}

impl Hwpt {
    /// The fault queue the HWPT's page faults go to, if they go to userspace.
    pub(crate) fn fault(&self) -> Option<&Arc<Fault>> {
        let hold = match self {
            Hwpt::Paging(hwpt) => hwpt.fault.as_ref(),
            Hwpt::Nested(hwpt) => hwpt.fault.as_ref(),
        };
        hold.map(|h| &h.fault)
    }

    /// Whether PASIDs may use the HWPT (made with `IOMMU_HWPT_ALLOC_PASID`); see
    /// [`crate::device`] for the rules.
    pub(crate) fn pasid_compat(&self) -> bool {
        match self {
            Hwpt::Paging(hwpt) => hwpt.pasid_compat,
            Hwpt::Nested(hwpt) => hwpt.pasid_compat,
        }
    }

    /// Whether the HWPT was made for a device attaching to an IOAS, and goes with its last
    /// device.
    pub(crate) fn auto_domain(&self) -> Option<&Arc<HwptPaging>> {
        match self {
            Hwpt::Paging(hwpt) if hwpt.auto_domain => Some(hwpt),
            _ => None,
        }
    }

    /// Releases what the HWPT holds, once out of the table (or never published).
    pub(crate) fn release(&self, ictx: &Iommufd) {
        match self {
            Hwpt::Paging(hwpt) => release(ictx, hwpt),
            Hwpt::Nested(hwpt) => hwpt.release(ictx),
        }
    }
}

/// A fault queue a HWPT reports to; the HWPT counts as a user of its object.
pub(crate) struct FaultHold {
    pub(crate) id: u32,
    pub(crate) fault: Arc<Fault>,
}

impl FaultHold {
    /// Looks fault queue `id` up for a new HWPT, counting the HWPT as its user; `ENOENT` if `id`
    /// names no fault queue.
    pub(crate) fn take(ictx: &Iommufd, id: u32) -> Result<Self> {
        let fault = ictx.objects.add_user_if(id, |object| match object {
            Object::Fault(fault) => Some(fault.clone()),
            _ => None,
        })?;
        Ok(Self { id, fault })
    }

    /// Undoes [`FaultHold::take`].
    pub(crate) fn release(&self, ictx: &Iommufd) {
        ictx.objects.remove_user(self.id);
    }
}

/// How a paging HWPT is made.
#[derive(Clone, Copy, Default)]
pub(crate) struct PagingFlags {
    /// Made by attaching a device to an IOAS rather than by userspace.
    pub(crate) auto_domain: bool,
    /// May be the parent of nested HWPTs (`IOMMU_HWPT_ALLOC_NEST_PARENT`).
    pub(crate) nest_parent: bool,
    /// PASIDs may use it (`IOMMU_HWPT_ALLOC_PASID`).
    pub(crate) pasid_compat: bool,
}

/// A paging HWPT.
pub(crate) struct HwptPaging {
    pub(crate) ioas: Arc<Ioas>,
    pub(crate) ioas_id: u32,
    pub(crate) domain: Arc<dyn Domain>,
    /// Made by attaching a device to the IOAS rather than by userspace.
    pub(crate) auto_domain: bool,
    /// May be the parent of nested HWPTs.
    pub(crate) nest_parent: bool,
    /// PASIDs may use it.
    pub(crate) pasid_compat: bool,
    /// Where its page faults go, if to userspace.
    pub(crate) fault: Option<FaultHold>,
    /// The mock domain behind `domain`, for the test ABI's checks.
    #[cfg(CONFIG_IOMMUFD_TEST)]
    pub(crate) mock: Option<Arc<crate::mock_domain::MockDomain>>,
}

impl HwptPaging {
    /// Makes a HWPT for `domain` over the IOAS `ioas_id`, not published: the IOAS fills the
    /// domain with its areas first, and counts the HWPT as a user. Then, for a `fault_id`, the
    /// HWPT takes that fault queue (as upstream, its `ENOENT` comes after any error of the
    /// domain). Undone by [`release`] and dropping it.
    pub(crate) fn create(
        ictx: &Iommufd,
        ioas_id: u32,
        allocated: AllocatedDomain,
        flags: PagingFlags,
        fault_id: Option<u32>,
    ) -> Result<Arc<Self>> {
        let domain = allocated.domain;
        let Object::Ioas(ioas) = ictx.objects.add_user(ioas_id)? else {
            ictx.objects.remove_user(ioas_id);
            return Err(ENOENT);
        };
        let undo = |ioas: &Ioas| {
            ioas.iopt.remove_domain(&domain);
            ictx.objects.remove_user(ioas_id);
        };
        if let Err(e) = ioas.iopt.add_domain(domain.clone()) {
            ictx.objects.remove_user(ioas_id);
            return Err(e);
        }
        let fault = match fault_id.map(|id| FaultHold::take(ictx, id)).transpose() {
            Ok(fault) => fault,
            Err(e) => {
                undo(&ioas);
                return Err(e);
            }
        };
        let hwpt = Self {
            ioas: ioas.clone(),
            ioas_id,
            domain: domain.clone(),
            auto_domain: flags.auto_domain,
            nest_parent: flags.nest_parent,
            pasid_compat: flags.pasid_compat,
            fault,
            #[cfg(CONFIG_IOMMUFD_TEST)]
            mock: allocated.mock,
        };
        Arc::new(hwpt, GFP_KERNEL_ACCOUNT).map_err(|e| {
            // The HWPT was dropped, and with it the domain's place in the IOAS.
            ictx.objects.remove_user(ioas_id);
            if let Some(fault) = &fault_id {
                ictx.objects.remove_user(*fault);
            }
            Error::from(e)
        })
    }

    /// Makes an automatic HWPT for `domain` over the IOAS `ioas_id`, and publishes it in use
    /// by the device it is made for. Returns its id.
    pub(crate) fn create_auto(
        ictx: &Iommufd,
        ioas_id: u32,
        allocated: AllocatedDomain,
    ) -> Result<(u32, Arc<Self>)> {
        let new = ictx.objects.reserve()?;
        let flags = PagingFlags {
            auto_domain: true,
            ..PagingFlags::default()
        };
        let hwpt = Self::create(ictx, ioas_id, allocated, flags, None)?;
        let id = new.id();
        new.publish_in_use(Object::HwptPaging(hwpt.clone()));
        Ok((id, hwpt))
    }
}

impl Drop for HwptPaging {
    fn drop(&mut self) {
        self.ioas.iopt.remove_domain(&self.domain);
    }
}

/// What destroying HWPT `hwpt` (already out of the table) releases: its hold on the IOAS and
/// on its fault queue.
pub(crate) fn release(ictx: &Iommufd, hwpt: &HwptPaging) {
    ictx.objects.remove_user(hwpt.ioas_id);
    if let Some(fault) = &hwpt.fault {
        fault.release(ictx);
    }
}

/// `IOMMU_HWPT_ALLOC`: a HWPT not attached to anything yet. Over IOAS `pt_id`, a paging HWPT
/// with a domain made for device `dev_id`; over a paging HWPT `pt_id` made with
/// `IOMMU_HWPT_ALLOC_NEST_PARENT`, a nested HWPT whose stage-1 table the driver data
/// describes (see [`crate::nested`]). With `IOMMU_HWPT_FAULT_ID_VALID`, its page faults go to
/// fault queue `fault_id`. Over a vIOMMU `pt_id`, a nested HWPT over the vIOMMU's parent.
/// A paging HWPT made with `IOMMU_HWPT_ALLOC_DIRTY_TRACKING` can track dirty pages (see
/// [`set_dirty_tracking_ioctl`]); the driver data of a paging HWPT is the driver's to read.
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
    let fault_id = (cmd.flags & uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_FAULT_ID_VALID != 0)
        .then_some(cmd.fault_id);
    let data = UserData {
        data_type: cmd.data_type,
        uptr: cmd.data_uptr,
        len: cmd.data_len,
    };
    let new = ictx.objects.reserve()?;
    let (object, hwpt) = match pt {
        Object::Ioas(_) => {
            let hwpt = alloc_paging(ictx, &dev, cmd.pt_id, cmd.flags, &data, fault_id)?;
            (Object::HwptPaging(hwpt.clone()), Hwpt::Paging(hwpt))
        }
        Object::HwptPaging(parent) => {
            let hwpt = nested::alloc(ictx, &dev, cmd.pt_id, parent, cmd.flags, &data, fault_id)?;
            (Object::HwptNested(hwpt.clone()), Hwpt::Nested(hwpt))
        }
        Object::Viommu(viommu) => {
            let hwpt =
                nested::alloc_on_viommu(ictx, &dev, cmd.pt_id, viommu, cmd.flags, &data, fault_id)?;
            (Object::HwptNested(hwpt.clone()), Hwpt::Nested(hwpt))
        }
        _ => return Err(EINVAL),
    };
    ucmd.cmd.out_hwpt_id = new.id();
    if let Err(e) = ucmd.respond() {
        hwpt.release(ictx);
        return Err(e);
    }
    new.publish(object);
    Ok(0)
}

/// The paging part of `IOMMU_HWPT_ALLOC`.
fn alloc_paging(
    ictx: &Iommufd,
    dev: &Device,
    ioas_id: u32,
    flags: u32,
    data: &UserData,
    fault_id: Option<u32>,
) -> Result<Arc<HwptPaging>> {
    let nest_parent = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_NEST_PARENT;
    let dirty = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
    let fault = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_FAULT_ID_VALID;
    let valid = nest_parent | dirty | fault | uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_PASID;
    if flags & !valid != 0
        || (flags & dirty != 0 && !dev.iommu().dirty_tracking())
        || (flags & fault != 0 && flags & nest_parent != 0)
    {
        return Err(EOPNOTSUPP);
    }
    let allocated = dev.iommu().alloc_domain_flags(flags & !fault, data)?;
    let flags = PagingFlags {
        auto_domain: false,
        nest_parent: flags & nest_parent != 0,
        pasid_compat: flags & uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_PASID != 0,
    };
    HwptPaging::create(ictx, ioas_id, allocated, flags, fault_id)
}

/// `IOMMU_HWPT_SET_DIRTY_TRACKING`: turns dirty tracking of paging HWPT `hwpt_id` on (with
/// `IOMMU_HWPT_DIRTY_TRACKING_ENABLE`; every mapped page starts clean) or off. `EOPNOTSUPP` for
/// unknown flags or a HWPT not made with `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`, `ENOENT` if
/// `hwpt_id` is no paging HWPT.
pub(crate) fn set_dirty_tracking_ioctl(
    ictx: &Iommufd,
    ucmd: UserCmd<uapi::iommu_hwpt_set_dirty_tracking>,
) -> Result<isize> {
    let cmd = &ucmd.cmd;
    let enable = uapi::iommufd_hwpt_set_dirty_tracking_flags_IOMMU_HWPT_DIRTY_TRACKING_ENABLE;
    if cmd.flags & !enable != 0 {
        return Err(EOPNOTSUPP);
    }
    let hwpt = ictx.objects.get_hwpt_paging(cmd.hwpt_id)?;
    hwpt.ioas
        .iopt
        .set_dirty_tracking(&hwpt.domain, cmd.flags & enable != 0)?;
    Ok(0)
}

/// `IOMMU_HWPT_GET_DIRTY_BITMAP`: the dirty pages of `[iova, iova + length)` of paging HWPT
/// `hwpt_id`, a bit per `page_size` bytes in the user's bitmap at `data` (bits are only set,
/// never cleared there); the pages read become clean unless
/// `IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR`. `EOPNOTSUPP` for unknown flags or a non-zero
/// reserved field, `ENOENT` if `hwpt_id` is no paging HWPT; the range's errors are
/// [`crate::io_pagetable::IoPagetable::read_and_clear_dirty`]'s.
pub(crate) fn get_dirty_bitmap_ioctl(
    ictx: &Iommufd,
    ucmd: UserCmd<uapi::iommu_hwpt_get_dirty_bitmap>,
) -> Result<isize> {
    let cmd = &ucmd.cmd;
    let no_clear = uapi::iommufd_hwpt_get_dirty_bitmap_flags_IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR;
    if cmd.flags & !no_clear != 0 || cmd.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let hwpt = ictx.objects.get_hwpt_paging(cmd.hwpt_id)?;
    hwpt.ioas.iopt.read_and_clear_dirty(
        &hwpt.domain,
        cmd.iova,
        cmd.length,
        cmd.page_size,
        cmd.data,
        cmd.flags & no_clear != 0,
    )?;
    Ok(0)
}

/// The most requests one `IOMMU_HWPT_INVALIDATE` takes, so that one call cannot hold the CPU
/// for long (upstream's bound).
const INVALIDATE_ENTRY_NUM_MAX: u32 = 1 << 19;

/// `IOMMU_HWPT_INVALIDATE`: invalidates caches of the stage-1 table of a nested HWPT, as the
/// driver reads the requests of the array (`data_type`, `entry_len`, `entry_num`) one after
/// the other; `entry_num` comes back as the number handled before one failed, or all. A vIOMMU
/// cannot exist yet; any other object is `EINVAL`.
pub(crate) fn invalidate_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_hwpt_invalidate>,
) -> Result<isize> {
    let cmd = &ucmd.cmd;
    let array = UserDataArray {
        data_type: cmd.data_type,
        uptr: cmd.data_uptr,
        entry_len: cmd.entry_len,
        entry_num: cmd.entry_num,
    };
    let (done, res) = if cmd.__reserved != 0 {
        (0, Err(EOPNOTSUPP))
    } else if cmd.entry_num != 0
        && (cmd.data_uptr == 0
            || cmd.entry_len == 0
            || cmd.entry_len as usize > kernel::page::PAGE_SIZE
            || cmd.entry_num > INVALIDATE_ENTRY_NUM_MAX)
    {
        (0, Err(EINVAL))
    } else {
        match ictx.objects.get(cmd.hwpt_id) {
            Ok(Object::HwptNested(hwpt)) => hwpt.domain.cache_invalidate_user(&array),
            Ok(Object::Viommu(viommu)) => viommu::cache_invalidate(ictx, &viommu, &array),
            Ok(_) => (0, Err(EINVAL)),
            Err(e) => (0, Err(e)),
        }
    };
    ucmd.cmd.entry_num = done;
    ucmd.respond()?;
    res.map(|()| 0)
}
