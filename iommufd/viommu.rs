// SPDX-License-Identifier: GPL-2.0

//! vIOMMUs, virtual devices and hardware queues (`IOMMU_VIOMMU_ALLOC`, `IOMMU_VDEVICE_ALLOC`,
//! `IOMMU_HW_QUEUE_ALLOC`).
//!
//! A vIOMMU stands for the slice of a physical IOMMU a VMM gives its guest: it sits on a
//! nesting-parent paging HWPT (the guest's physical memory) and gathers what the guest's IOMMU
//! driver would program: nested HWPTs made over the vIOMMU (`pt_id` naming it), the guest's ids
//! for the devices behind it (virtual devices), cache invalidations naming those ids
//! (`IOMMU_HWPT_INVALIDATE` on the vIOMMU), event queues (see [`crate::veventq`]) and queues the
//! hardware reads straight from guest memory (hardware queues, whose memory stays pinned).
//!
//! Ownership: every object here counts as a user of what it needs (a vIOMMU of its parent HWPT;
//! a virtual device, queue or nested HWPT of its vIOMMU), so those cannot be destroyed first
//! (`EBUSY`). Objects point only down that chain, never back with an `Arc`, so that closing the
//! iommufd, which drops the table without releasing objects one by one, leaves no cycle: a vIOMMU
//! names its virtual devices' devices by id, and a device names its virtual device by id.
//!
//! When a device is unbound its virtual device goes too, but its id stays taken (a tombstone, see
//! [`crate::object::ObjectTable::tombstone`]): destroying it then fails with `ENOENT`.

use crate::{
    context::Iommufd,
    device::Device,
    hw_pagetable::HwptPaging,
    object::Object,
    ucmd::{
        UserCmd,
        UserData,
        UserDataArray, //
    },
    veventq::Veventq,
};
use kernel::{
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        Arc,
        Mutex, //
    },
    uapi, //
};

/// A vIOMMU object.
#[pin_data]
pub(crate) struct Viommu {
    /// The nesting parent: kept, and undestroyable while the vIOMMU exists.
    pub(crate) hwpt: Arc<HwptPaging>,
    hwpt_id: u32,
    /// `IOMMU_VIOMMU_TYPE_*`.
    pub(crate) viommu_type: u32,
    /// The virtual devices: the device object each virtual id stands for.
    #[pin]
    vdevs: Mutex<RBTree<u64, u32>>,
    /// The event queues, at most one of each type.
    #[pin]
    pub(crate) veventqs: Mutex<KVec<Arc<Veventq>>>,
    /// The driver's part.
    #[cfg(CONFIG_IOMMUFD_TEST)]
    #[pin]
    pub(crate) mock: crate::mock_viommu::MockViommu,
}

impl Viommu {
    /// What destroying the vIOMMU (out of the table) releases: its hold on its parent, and what
    /// its driver gave userspace.
    pub(crate) fn release(&self, ictx: &Iommufd) {
        ictx.objects.remove_user(self.hwpt_id);
        self.release_driver(ictx);
    }

    /// What the driver gives back when the vIOMMU goes, published or not.
    fn release_driver(&self, _ictx: &Iommufd) {
        #[cfg(CONFIG_IOMMUFD_TEST)]
        self.mock.release(_ictx);
    }

    /// The id of its parent HWPT.
    pub(crate) fn hwpt_id(&self) -> u32 {
        self.hwpt_id
    }

    /// The device object virtual id `virt_id` stands for.
    pub(crate) fn find_dev(&self, virt_id: u64) -> Option<u32> {
        self.vdevs.lock().get(&virt_id).copied()
    }

    /// Reports an event of type `event_type` to userspace, through the vIOMMU's event queue of
    /// that type: `EOPNOTSUPP` if there is none. An event that cannot be queued (full queue, no
    /// memory) is counted as lost.
    pub(crate) fn report_event(&self, event_type: u32, data: &[u8]) -> Result {
        let queues = self.veventqs.lock();
        let queue = queues
            .iter()
            .find(|q| q.event_type == event_type)
            .ok_or(EOPNOTSUPP)?;
        queue.report(data)
    }
}

/// The virtual device a device has, as the device keeps it.
#[derive(Clone, Copy)]
pub(crate) struct VdevLink {
    /// The virtual device's object id.
    pub(crate) id: u32,
    pub(crate) viommu_id: u32,
    pub(crate) virt_id: u64,
}

/// A virtual device: a device behind a vIOMMU, under the guest's id for it.
pub(crate) struct Vdevice {
    viommu: Arc<Viommu>,
    viommu_id: u32,
    dev: Arc<Device>,
    virt_id: u64,
}

impl Vdevice {
    /// What destroying the virtual device (out of the table, destroyed or tombstoned) releases:
    /// its virtual id, the device's link to it, and its holds on the vIOMMU and the device.
    pub(crate) fn release(&self, ictx: &Iommufd, id: u32) {
        self.viommu.vdevs.lock().remove(&self.virt_id);
        self.dev.clear_vdev(id);
        ictx.objects.remove_user(self.viommu_id);
        ictx.objects.remove_user(self.dev.id);
    }
}

/// Looks vIOMMU `id` up, counting the caller as its user (undone with
/// [`crate::object::ObjectTable::remove_user`]); `ENOENT` if `id` names no vIOMMU.
fn hold_viommu(ictx: &Iommufd, id: u32) -> Result<Arc<Viommu>> {
    ictx.objects.add_user_if(id, |object| match object {
        Object::Viommu(v) => Some(v.clone()),
        _ => None,
    })
}

/// `IOMMU_VIOMMU_ALLOC`: a vIOMMU of `type` for the IOMMU of device `dev_id`, over the nesting
/// parent HWPT `hwpt_id`. Upstream's checks in upstream's order: flags or the default type are
/// `EOPNOTSUPP`, then the device (`ENOENT`), a type the IOMMU has no vIOMMU of (`EOPNOTSUPP`),
/// the HWPT (`ENOENT`), a HWPT that is not a nesting parent (`EINVAL`), then the driver's
/// errors on its data.
pub(crate) fn alloc_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_viommu_alloc>,
) -> Result<isize> {
    let cmd = &ucmd.cmd;
    if cmd.flags != 0 || cmd.type_ == uapi::iommu_viommu_type_IOMMU_VIOMMU_TYPE_DEFAULT {
        return Err(EOPNOTSUPP);
    }
    let dev = ictx.objects.get_device(cmd.dev_id)?;
    if !dev.iommu().viommu_type(cmd.type_) {
        return Err(EOPNOTSUPP);
    }
    let hwpt_id = cmd.hwpt_id;
    let hwpt = ictx.objects.add_user_if(hwpt_id, |object| match object {
        Object::HwptPaging(hwpt) => Some(hwpt.clone()),
        _ => None,
    })?;
    let data = UserData {
        data_type: cmd.type_,
        uptr: cmd.data_uptr,
        len: cmd.data_len,
    };
    let made = (|| {
        if !hwpt.nest_parent {
            return Err(EINVAL);
        }
        let new = ictx.objects.reserve()?;
        let viommu = Arc::pin_init(
            try_pin_init!(Viommu {
                hwpt: hwpt.clone(),
                hwpt_id,
                viommu_type: ucmd.cmd.type_,
                vdevs <- new_mutex!(RBTree::new()),
                veventqs <- new_mutex!(KVec::new()),
                #[cfg(CONFIG_IOMMUFD_TEST)]
                mock <- crate::mock_viommu::MockViommu::new(),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        #[cfg(CONFIG_IOMMUFD_TEST)]
        if data.len != 0 {
            let owner = Object::Viommu(viommu.clone());
            viommu.mock.init_data(ictx, new.id(), owner, &data)?;
        }
        #[cfg(not(CONFIG_IOMMUFD_TEST))]
        let _ = &data;
        ucmd.cmd.out_viommu_id = new.id();
        if let Err(e) = ucmd.respond() {
            viommu.release_driver(ictx);
            return Err(e);
        }
        new.publish(Object::Viommu(viommu));
        Ok(0)
    })();
    if made.is_err() {
        ictx.objects.remove_user(hwpt_id);
    }
    made
}

/// `IOMMU_VDEVICE_ALLOC`: device `dev_id` is behind vIOMMU `viommu_id` under the guest's id
/// `virt_id`. A virtual id that does not fit a `usize` is `EINVAL`, a vIOMMU or device that does
/// not exist `ENOENT`, a device that has a virtual device already or a virtual id in use
/// `EEXIST`.
pub(crate) fn vdevice_alloc_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_vdevice_alloc>,
) -> Result<isize> {
    let virt_id = ucmd.cmd.virt_id;
    // The virtual id indexes a table of `usize` keys.
    if usize::try_from(virt_id).is_err() {
        return Err(EINVAL);
    }
    let viommu_id = ucmd.cmd.viommu_id;
    let viommu = hold_viommu(ictx, viommu_id)?;
    let dev_id = ucmd.cmd.dev_id;
    let dev = match ictx.objects.add_user_if(dev_id, |object| match object {
        Object::Device(dev) => Some(dev.clone()),
        _ => None,
    }) {
        Ok(dev) => dev,
        Err(e) => {
            ictx.objects.remove_user(viommu_id);
            return Err(e);
        }
    };
    let made = (|| {
        let mut link = dev.vdev.lock();
        if link.is_some() {
            return Err(EEXIST);
        }
        let new = ictx.objects.reserve()?;
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let vdev = Arc::new(
            Vdevice {
                viommu: viommu.clone(),
                viommu_id,
                dev: dev.clone(),
                virt_id,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        let mut vdevs = viommu.vdevs.lock();
        if vdevs.get(&virt_id).is_some() {
            return Err(EEXIST);
        }
        ucmd.cmd.out_vdevice_id = new.id();
        ucmd.respond()?;
        vdevs.insert(node.into_node(virt_id, dev_id));
        drop(vdevs);
        *link = Some(VdevLink {
            id: new.id(),
            viommu_id,
            virt_id,
        });
        new.publish(Object::Vdevice(vdev));
        Ok(0)
    })();
    if made.is_err() {
        ictx.objects.remove_user(dev_id);
        ictx.objects.remove_user(viommu_id);
    }
    made
}

/// A hardware queue: guest memory the IOMMU reads commands from, pinned while the queue lives.
pub(crate) struct HwQueue {
    viommu: Arc<Viommu>,
    viommu_id: u32,
    /// `IOMMU_HW_QUEUE_TYPE_*`.
    _queue_type: u32,
    pub(crate) index: u32,
    /// The pinned IOVA range (whole pages) of the parent HWPT's IOAS.
    pinned_iova: u64,
    pinned_len: u64,
}

impl HwQueue {
    /// What destroying the queue (out of the table) releases: the driver's hold and its hold
    /// on the vIOMMU. The memory is unpinned when the queue is dropped.
    pub(crate) fn release(&self, ictx: &Iommufd) {
        #[cfg(CONFIG_IOMMUFD_TEST)]
        self.viommu.mock.queue_destroyed(ictx, self.index);
        ictx.objects.remove_user(self.viommu_id);
    }
}

impl Drop for HwQueue {
    fn drop(&mut self) {
        self.viommu
            .hwpt
            .ioas
            .iopt
            .access_unpin(self.pinned_iova, self.pinned_len, true);
    }
}

/// Pins `[iova, iova + length)` of `viommu`'s parent IOAS for a hardware queue, as whole pages,
/// and returns the pinned range and the physical address of `iova`: `ERANGE` if the range of
/// pages does not fit, the errors of pinning (`ENOENT` for memory not mapped), `EFAULT` if the
/// pages are not physically contiguous (the hardware reads the queue by physical address).
fn pin_queue(viommu: &Viommu, iova: u64, length: u64) -> Result<(u64, u64, u64)> {
    let page = PAGE_SIZE as u64;
    let offset = iova & (page - 1);
    let aligned = iova - offset;
    let len = offset
        .checked_add(length)
        .and_then(|l| l.checked_add(page - 1))
        .ok_or(ERANGE)?
        & !(page - 1);
    let iopt = &viommu.hwpt.ioas.iopt;
    let phys = iopt.access_pin(aligned, len, false, true)?;
    let contiguous = phys
        .iter()
        .zip(phys.iter().skip(1))
        .all(|(a, b)| a.checked_add(page) == Some(*b));
    match phys.first() {
        Some(first) if contiguous => Ok((aligned, len, first + offset)),
        _ => {
            iopt.access_unpin(aligned, len, true);
            Err(EFAULT)
        }
    }
}

/// `IOMMU_HW_QUEUE_ALLOC`: hardware queue `index` of `type` of vIOMMU `viommu_id`, in guest
/// memory at `nesting_parent_iova` of the parent HWPT. Upstream's checks in upstream's order:
/// flags or the default type `EOPNOTSUPP`, no length `EINVAL`, a range that wraps `EOVERFLOW`,
/// the vIOMMU (`ENOENT`), a type the vIOMMU has no queues of (`EOPNOTSUPP`), the errors of
/// pinning the memory, then the driver's.
pub(crate) fn hw_queue_alloc_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_hw_queue_alloc>,
) -> Result<isize> {
    let cmd = &ucmd.cmd;
    if cmd.flags != 0 || cmd.type_ == uapi::iommu_hw_queue_type_IOMMU_HW_QUEUE_TYPE_DEFAULT {
        return Err(EOPNOTSUPP);
    }
    let length = cmd.length;
    if length == 0 {
        return Err(EINVAL);
    }
    let iova = cmd.nesting_parent_iova;
    iova.checked_add(length - 1).ok_or(EOVERFLOW)?;
    let viommu_id = cmd.viommu_id;
    let (queue_type, index) = (cmd.type_, cmd.index);
    let viommu = hold_viommu(ictx, viommu_id)?;
    let made = (|| {
        #[cfg(CONFIG_IOMMUFD_TEST)]
        let supported = queue_type == kernel::bindings::IOMMU_HW_QUEUE_TYPE_SELFTEST;
        #[cfg(not(CONFIG_IOMMUFD_TEST))]
        let supported = false;
        if !supported {
            return Err(EOPNOTSUPP);
        }
        let new = ictx.objects.reserve()?;
        let (pinned_iova, pinned_len, _base_pa) = pin_queue(&viommu, iova, length)?;
        // From here the queue unpins the memory when dropped.
        let queue = Arc::new(
            HwQueue {
                viommu: viommu.clone(),
                viommu_id,
                _queue_type: queue_type,
                index,
                pinned_iova,
                pinned_len,
            },
            GFP_KERNEL_ACCOUNT,
        )
        .inspect_err(|_| {
            viommu
                .hwpt
                .ioas
                .iopt
                .access_unpin(pinned_iova, pinned_len, true)
        })?;
        #[cfg(CONFIG_IOMMUFD_TEST)]
        viommu.mock.queue_init(ictx, index, new.id())?;
        ucmd.cmd.out_hw_queue_id = new.id();
        let responded = ucmd.respond();
        #[cfg(CONFIG_IOMMUFD_TEST)]
        if responded.is_err() {
            viommu.mock.queue_destroyed(ictx, index);
        }
        responded?;
        new.publish(Object::HwQueue(queue));
        Ok(0)
    })();
    if made.is_err() {
        ictx.objects.remove_user(viommu_id);
    }
    made
}

/// The most requests one invalidation takes (as `IOMMU_HWPT_INVALIDATE` on a HWPT).
const INVALIDATE_ENTRY_NUM_MAX: u32 = 1 << 19;

/// `IOMMU_HWPT_INVALIDATE` on a vIOMMU: the driver carries out the requests of `array` (which
/// name devices by virtual id). Returns how many it carried out, and the failure.
pub(crate) fn cache_invalidate(
    ictx: &Iommufd,
    viommu: &Viommu,
    array: &UserDataArray,
) -> (u32, Result) {
    if array.entry_num > INVALIDATE_ENTRY_NUM_MAX {
        return (0, Err(EINVAL));
    }
    #[cfg(CONFIG_IOMMUFD_TEST)]
    {
        crate::mock_viommu::cache_invalidate(ictx, viommu, array)
    }
    #[cfg(not(CONFIG_IOMMUFD_TEST))]
    {
        let _ = (ictx, viommu);
        (0, Err(EOPNOTSUPP))
    }
}
