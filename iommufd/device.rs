// SPDX-License-Identifier: GPL-2.0

//! The device kAPI: binding a device to an iommufd, attaching it to an IOAS or a HWPT, and
//! detaching and unbinding it.
//!
//! A driver that gives userspace a device which does DMA (VFIO, or the mock devices of the test
//! ABI) binds it to the userspace's iommufd, which makes a device object userspace names by
//! id. The driver holds that object: userspace cannot destroy it (`EBUSY`), only the driver
//! unbinds it.
//!
//! Attaching to a HWPT uses that HWPT's domain. Attaching to an IOAS picks a domain
//! automatically: an automatic HWPT of that IOAS the device accepts, or a new one made from
//! the device's own kind of domain. Detaching drops the device's hold on its HWPT; an automatic
//! HWPT goes with its last device.
//!
//! A device's page faults go to the fault queue of the HWPT it is attached to, if it has one;
//! those still queued when the attachment ends are answered for userspace.

use crate::{
    context::Iommufd,
    domain::Domain,
    fault::PageRequest,
    hw_pagetable::{
        Hwpt,
        HwptPaging, //
    },
    nested::AllocatedNested,
    object::Object,
    ucmd::{
        UserCmd,
        UserData, //
    },
    viommu::{
        VdevLink,
        Viommu, //
    },
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
    transmute::AsBytes,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi, //
};

/// What iommufd needs of the IOMMU (driver) behind a bound device.
pub(crate) trait DeviceIommu: Send + Sync {
    /// A new paging domain for the device.
    fn alloc_domain(&self) -> Result<AllocatedDomain>;

    /// A new paging domain for `IOMMU_HWPT_ALLOC` with `flags` (`IOMMU_HWPT_ALLOC_*` but the
    /// fault queue's, already checked by the core) and the driver data `data` (none when
    /// empty): `EOPNOTSUPP` for what the driver does not take. By default only the flags
    /// every domain meets and no data.
    fn alloc_domain_flags(&self, flags: u32, data: &UserData) -> Result<AllocatedDomain> {
        let plain = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_NEST_PARENT
            | uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_PASID;
        if flags & !plain != 0 || data.len != 0 {
            return Err(EOPNOTSUPP);
        }
        self.alloc_domain()
    }

    /// Whether the IOMMU can track which pages the device writes to (upstream's
    /// `IOMMU_CAP_DIRTY_TRACKING`).
    fn dirty_tracking(&self) -> bool {
        false
    }

    /// Whether the device can use `hwpt`'s domain; `EINVAL` if not, as an IOMMU driver says of
    /// an incompatible domain.
    fn check_domain(&self, hwpt: &Hwpt) -> Result;

    /// Whether the driver makes nested domains at all.
    fn nesting(&self) -> bool {
        false
    }

    /// A new nested domain for the device over the stage-2 domain of `parent`, from the
    /// driver data `data`: `EINVAL` if `parent`'s domain is not the driver's, `EOPNOTSUPP` for
    /// `flags` (`IOMMU_HWPT_ALLOC_*`) or a data type the driver does not take, or the errors
    /// of reading the data (see [`UserData::read`]).
    fn alloc_nested(
        &self,
        _parent: &HwptPaging,
        _flags: u32,
        _data: &UserData,
    ) -> Result<AllocatedNested> {
        Err(EOPNOTSUPP)
    }

    /// Whether the IOMMU has vIOMMUs of type `viommu_type` (`IOMMU_VIOMMU_TYPE_*`).
    fn viommu_type(&self, _viommu_type: u32) -> bool {
        false
    }

    /// Whether the IOMMU leaves the device's PASID table to the stage-1 table's owner, so that
    /// a fault tagged with a PASID goes to the nested domain attached to the whole device
    /// (upstream's `user_pasid_table`).
    fn user_pasid_table(&self) -> bool {
        false
    }

    /// Whether the driver attaches domains to PASIDs at all (upstream: it has `set_dev_pasid`
    /// for its domains and its blocking domain); `EOPNOTSUPP` for a PASID attach if not.
    fn pasid_ops(&self) -> bool {
        false
    }

    /// How many PASIDs the device has, 0 for none (upstream's `max_pasids`). The IOMMU core
    /// leaves a device without PASIDs out of PASID attachments: they succeed without the
    /// driver being asked.
    fn max_pasids(&self) -> u32 {
        0
    }

    /// Points PASID `pasid` of a device with PASIDs at the domain of `hwpt`, replacing what was
    /// there, or blocks it for `None` (which must not fail): the driver's `set_dev_pasid`. On
    /// failure the PASID stays as it was.
    fn set_dev_pasid(&self, _pasid: u32, _hwpt: Option<&Hwpt>) -> Result {
        Err(EOPNOTSUPP)
    }

    /// Points the device's requests without a PASID at the domain of `hwpt` (already accepted
    /// by [`DeviceIommu::check_domain`]), replacing the one there, or blocks them for `None`
    /// (which must not fail). On failure the device stays as it was. Nothing to do for a device
    /// whose IOMMU iommufd emulates.
    fn attach_domain(&self, _hwpt: Option<&Hwpt>) -> Result {
        Ok(())
    }

    /// What `IOMMU_GET_HW_INFO` reports of the IOMMU, for a request of data type `data_type`
    /// (`IOMMU_HW_INFO_TYPE_DEFAULT` for the driver's own); `EOPNOTSUPP` for a type the driver
    /// does not have.
    fn hw_info(&self, data_type: u32) -> Result<HwInfo>;

    /// Whether the device belongs to the IOMMU group `group` (only compared, never
    /// dereferenced). No by default: a device whose IOMMU iommufd emulates has no group.
    fn in_iommu_group(&self, _group: *const kernel::bindings::iommu_group) -> bool {
        false
    }

    /// The mock device behind this, for the test ABI.
    #[cfg(CONFIG_IOMMUFD_TEST)]
    fn mock(&self) -> Option<&crate::selftest::MockIommu> {
        None
    }
}

/// An IOMMU's answer to `IOMMU_GET_HW_INFO`.
pub(crate) struct HwInfo {
    pub(crate) data_type: u32,
    /// The driver's data, of `data_type`.
    pub(crate) data: KVec<u8>,
    /// `IOMMU_HW_CAP_*`.
    pub(crate) capabilities: u64,
    /// log2 of the number of PASIDs the device has enabled, 0 for none.
    pub(crate) max_pasid_log2: u8,
}

/// A domain made for a device.
pub(crate) struct AllocatedDomain {
    pub(crate) domain: Arc<dyn Domain>,
    #[cfg(CONFIG_IOMMUFD_TEST)]
    pub(crate) mock: Option<Arc<crate::mock_domain::MockDomain>>,
}

/// What a device is attached to.
struct Attachment {
    hwpt_id: u32,
    hwpt: Hwpt,
    /// Tells this attachment from the device's others: the faults it reported under one are
    /// answered for userspace when that one ends.
    handle: u64,
}

/// What a device is attached to: its whole-device attachment (its requests without a PASID, the
/// RID), those of its PASIDs, and the handle the next one gets.
///
/// The IOMMU core's rule for mixing them (upstream's `pasid_compat`): while any PASID is
/// attached, the RID may only use a HWPT made with `IOMMU_HWPT_ALLOC_PASID`, and a PASID may only
/// be attached to such a HWPT, and only while the RID uses one too (or nothing).
#[derive(Default)]
struct Attached {
    current: Option<Attachment>,
    /// By PASID.
    pasids: KVec<(u32, Attachment)>,
    next_handle: u64,
}

impl Attached {
    fn next_handle(&mut self) -> u64 {
        let handle = self.next_handle;
        self.next_handle = handle.wrapping_add(1);
        handle
    }

    fn pasid(&self, pasid: u32) -> Option<&Attachment> {
        self.pasids
            .iter()
            .find(|(p, _)| *p == pasid)
            .map(|(_, a)| a)
    }

    /// Whether a HWPT, PASID-compatible or not (`compat`), may be attached to `pasid` (the RID
    /// for `None`) beside what is attached already; `EINVAL` if not.
    fn pasid_compat(&self, compat: bool, pasid: Option<u32>) -> Result {
        let ok = match pasid {
            None => compat || self.pasids.is_empty(),
            Some(_) => compat && !matches!(&self.current, Some(a) if !a.hwpt.pasid_compat()),
        };
        if ok {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }
}

/// A device bound to an iommufd.
#[pin_data]
pub(crate) struct Device {
    /// Its id in the iommufd's table.
    pub(crate) id: u32,
    source: Arc<dyn DeviceIommu>,
    #[pin]
    attached: Mutex<Attached>,
    /// The device's virtual device, if it has one (see [`crate::viommu`]).
    #[pin]
    pub(crate) vdev: Mutex<Option<VdevLink>>,
}

impl Device {
    /// Binds a device whose domains come from `source` to `ictx`: publishes its device object,
    /// which the caller holds until [`Device::unbind`].
    pub(crate) fn bind(ictx: &Iommufd, source: Arc<dyn DeviceIommu>) -> Result<Arc<Self>> {
        let new = ictx.objects.reserve()?;
        let id = new.id();
        let dev = Arc::pin_init(
            pin_init!(Self {
                id,
                source,
                attached <- new_mutex!(Attached::default()),
                vdev <- new_mutex!(None),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        // The binder's hold: userspace cannot destroy the object.
        new.publish_in_use(Object::Device(dev.clone()));
        Ok(dev)
    }

    /// What the device's IOMMU is.
    pub(crate) fn iommu(&self) -> &dyn DeviceIommu {
        &*self.source
    }

    /// Detaches the device (from every PASID too) and removes its object. Its virtual device
    /// goes first, leaving a tombstone.
    pub(crate) fn unbind(&self, ictx: &Iommufd) {
        let link = *self.vdev.lock();
        if let Some(link) = link {
            if let Ok(Object::Vdevice(vdev)) = ictx.objects.tombstone(link.id) {
                vdev.release(ictx, link.id);
            }
        }
        self.detach(ictx);
        let pasids = {
            let mut attached = self.attached.lock();
            for (pasid, _) in attached.pasids.iter() {
                self.block_pasid(*pasid);
            }
            core::mem::take(&mut attached.pasids)
        };
        for (_, old) in pasids {
            self.release_attachment(ictx, old);
        }
        ictx.objects.remove_user(self.id);
        let _ = ictx.objects.destroy(self.id);
    }

    /// Attaches the device (its requests without a PASID) to `pt_id`, an IOAS or a HWPT, and
    /// returns the id of the HWPT it uses. As upstream, in this order: `ENOENT` if `pt_id` names
    /// nothing, `EINVAL` if it names neither, `EBUSY` if already attached, `EINVAL` if it names a
    /// HWPT made without `IOMMU_HWPT_ALLOC_PASID` (or an IOAS) while a PASID of the device is
    /// attached.
    pub(crate) fn attach(&self, ictx: &Iommufd, pt_id: u32) -> Result<u32> {
        check_pt(ictx, pt_id)?;
        let mut attached = self.attached.lock();
        if attached.current.is_some() {
            return Err(EBUSY);
        }
        let (hwpt_id, hwpt) = self.get_hwpt(ictx, pt_id, &attached, None)?;
        let handle = attached.next_handle();
        let new = Attachment {
            hwpt_id,
            hwpt,
            handle,
        };
        if let Err(e) = self.source.attach_domain(Some(&new.hwpt)) {
            drop(attached);
            self.release_attachment(ictx, new);
            return Err(e);
        }
        attached.current = Some(new);
        Ok(hwpt_id)
    }

    /// Moves the attached device to `pt_id` (an IOAS or a HWPT) in one step, and returns the
    /// id of the HWPT it now uses; its old automatic HWPT goes if it has no other device, and
    /// the faults it reported under the old attachment are answered. `EINVAL` if the device is
    /// not attached, and as for [`Device::attach`]; on failure it stays where it was.
    pub(crate) fn replace(&self, ictx: &Iommufd, pt_id: u32) -> Result<u32> {
        let mut attached = self.attached.lock();
        if attached.current.is_none() {
            return Err(EINVAL);
        }
        let (hwpt_id, hwpt) = self.get_hwpt(ictx, pt_id, &attached, None)?;
        if attached.current.as_ref().map(|a| a.hwpt_id) == Some(hwpt_id) {
            // Already there: nothing changes, not even the attachment (as upstream).
            ictx.objects.remove_user(hwpt_id);
            return Ok(hwpt_id);
        }
        let handle = attached.next_handle();
        let new = Attachment {
            hwpt_id,
            hwpt,
            handle,
        };
        if let Err(e) = self.source.attach_domain(Some(&new.hwpt)) {
            drop(attached);
            self.release_attachment(ictx, new);
            return Err(e);
        }
        let old = attached.current.replace(new);
        drop(attached);
        if let Some(old) = old {
            self.release_attachment(ictx, old);
        }
        Ok(hwpt_id)
    }

    /// The id of the HWPT the device (without a PASID) is attached to, if any.
    pub(crate) fn hwpt_id(&self) -> Option<u32> {
        self.attached.lock().current.as_ref().map(|a| a.hwpt_id)
    }

    /// Forgets the device's virtual device `id`, which went away.
    pub(crate) fn clear_vdev(&self, id: u32) {
        let mut link = self.vdev.lock();
        if link.map(|l| l.id) == Some(id) {
            *link = None;
        }
    }

    /// The virtual id the device has behind the vIOMMU of the nested HWPT it is attached to,
    /// and that vIOMMU; `None` if it is not attached to such a HWPT.
    pub(crate) fn attached_viommu(&self) -> Option<(u64, Arc<Viommu>)> {
        let attached = self.attached.lock();
        let Some(Attachment {
            hwpt: Hwpt::Nested(hwpt),
            ..
        }) = &attached.current
        else {
            return None;
        };
        let (viommu_id, viommu) = hwpt.viommu.as_ref()?;
        let link = (*self.vdev.lock())?;
        (link.viommu_id == *viommu_id).then(|| (link.virt_id, viommu.clone()))
    }

    /// Attaches HWPT `pt_id` to PASID `pasid` (not 0, which is the RID's) of the device, and
    /// returns its id. As upstream, and in its order: `ENOENT` for no object, `EINVAL` for one
    /// that is neither a HWPT nor an IOAS; `EBUSY` if something is attached there already; `EINVAL` for an IOAS (an automatic HWPT is never PASID-compatible), for a HWPT
    /// made without `IOMMU_HWPT_ALLOC_PASID`, or while the RID uses such a HWPT; `EOPNOTSUPP`
    /// if the driver attaches no PASIDs; `EINVAL` for a HWPT the device cannot use or a PASID
    /// it does not have; then the driver's errors.
    pub(crate) fn pasid_attach(&self, ictx: &Iommufd, pasid: u32, pt_id: u32) -> Result<u32> {
        check_pt(ictx, pt_id)?;
        let mut attached = self.attached.lock();
        if attached.pasid(pasid).is_some() {
            return Err(EBUSY);
        }
        attached.pasids.reserve(1, GFP_KERNEL_ACCOUNT)?;
        let (hwpt_id, hwpt) = self.get_hwpt(ictx, pt_id, &attached, Some(pasid))?;
        if let Err(e) = self.set_pasid(pasid, Some(&hwpt)) {
            ictx.objects.remove_user(hwpt_id);
            return Err(e);
        }
        let handle = attached.next_handle();
        let attachment = Attachment {
            hwpt_id,
            hwpt,
            handle,
        };
        if let Err(back) = attached.pasids.push_within_capacity((pasid, attachment)) {
            // Not reached: the space was reserved above.
            self.block_pasid(pasid);
            drop(attached);
            self.release_attachment(ictx, back.0 .1);
            return Err(ENOMEM);
        }
        Ok(hwpt_id)
    }

    /// Moves PASID `pasid` of the device to HWPT `pt_id` in one step, and returns its id:
    /// `EINVAL` if nothing is attached there, else as [`Device::pasid_attach`]. On failure the
    /// PASID stays where it was.
    pub(crate) fn pasid_replace(&self, ictx: &Iommufd, pasid: u32, pt_id: u32) -> Result<u32> {
        let mut attached = self.attached.lock();
        let Some(i) = attached.pasids.iter().position(|(p, _)| *p == pasid) else {
            return Err(EINVAL);
        };
        let (hwpt_id, hwpt) = self.get_hwpt(ictx, pt_id, &attached, Some(pasid))?;
        if attached.pasids[i].1.hwpt_id == hwpt_id {
            ictx.objects.remove_user(hwpt_id);
            return Ok(hwpt_id);
        }
        if let Err(e) = self.set_pasid(pasid, Some(&hwpt)) {
            ictx.objects.remove_user(hwpt_id);
            return Err(e);
        }
        let handle = attached.next_handle();
        let old = core::mem::replace(
            &mut attached.pasids[i].1,
            Attachment {
                hwpt_id,
                hwpt,
                handle,
            },
        );
        drop(attached);
        self.release_attachment(ictx, old);
        Ok(hwpt_id)
    }

    /// Detaches PASID `pasid` of the device, if attached.
    pub(crate) fn pasid_detach(&self, ictx: &Iommufd, pasid: u32) {
        let mut attached = self.attached.lock();
        let Some(i) = attached.pasids.iter().position(|(p, _)| *p == pasid) else {
            return;
        };
        self.block_pasid(pasid);
        let old = attached.pasids.remove(i);
        drop(attached);
        if let Ok((_, old)) = old {
            self.release_attachment(ictx, old);
        }
    }

    /// The id of the HWPT attached to PASID `pasid` of the device, if any.
    pub(crate) fn pasid_hwpt(&self, pasid: u32) -> Option<u32> {
        self.attached.lock().pasid(pasid).map(|a| a.hwpt_id)
    }

    /// Tells the driver that PASID `pasid` now uses `hwpt`'s domain, or is blocked for `None`.
    /// As the IOMMU core, only for a device with PASIDs; for one without, the attachment is
    /// iommufd's bookkeeping alone.
    fn set_pasid(&self, pasid: u32, hwpt: Option<&Hwpt>) -> Result {
        if self.source.max_pasids() == 0 {
            return Ok(());
        }
        self.source.set_dev_pasid(pasid, hwpt)
    }

    /// Blocks PASID `pasid`, which is being detached: the driver cannot refuse.
    fn block_pasid(&self, pasid: u32) {
        if let Err(e) = self.set_pasid(pasid, None) {
            pr_warn!("iommufd: blocking PASID {} failed: {:?}\n", pasid, e);
        }
    }

    /// The HWPT the device would use for `pt_id` at `pasid` (the RID for `None`), beside what
    /// is `attached` already, counted as one more user of it: that HWPT, or for an IOAS an
    /// automatic HWPT the device accepts, made if there is none. For the RID, a nested HWPT
    /// made over a vIOMMU takes only a device that has a virtual device behind that vIOMMU
    /// (`ENOENT` otherwise, as the IOMMU drivers say).
    fn get_hwpt(
        &self,
        ictx: &Iommufd,
        pt_id: u32,
        attached: &Attached,
        pasid: Option<u32>,
    ) -> Result<(u32, Hwpt)> {
        let hwpt = match ictx.objects.get(pt_id)? {
            Object::HwptPaging(hwpt) => Hwpt::Paging(hwpt),
            Object::HwptNested(hwpt) => Hwpt::Nested(hwpt),
            Object::Ioas(ioas) => {
                let mut autos = ioas.auto_hwpts.lock();
                for &id in autos.iter() {
                    let Ok(hwpt) = ictx.objects.get_hwpt_paging(id) else {
                        continue;
                    };
                    let hwpt = Hwpt::Paging(hwpt);
                    let usable = attached
                        .pasid_compat(false, pasid)
                        .and_then(|()| self.source.check_domain(&hwpt));
                    match usable {
                        Ok(()) => {
                            ictx.objects.add_user(id)?;
                            return Ok((id, hwpt));
                        }
                        Err(e) if e == EINVAL => continue,
                        Err(e) => return Err(e),
                    }
                }
                // A new automatic HWPT would not be PASID-compatible either.
                attached.pasid_compat(false, pasid)?;
                autos.reserve(1, GFP_KERNEL_ACCOUNT)?;
                let (id, hwpt) = HwptPaging::create_auto(ictx, pt_id, self.source.alloc_domain()?)?;
                autos.push(id, GFP_KERNEL_ACCOUNT)?;
                return Ok((id, Hwpt::Paging(hwpt)));
            }
            _ => return Err(EINVAL),
        };
        attached.pasid_compat(hwpt.pasid_compat(), pasid)?;
        if pasid.is_some() && !self.source.pasid_ops() {
            return Err(EOPNOTSUPP);
        }
        self.source.check_domain(&hwpt)?;
        match pasid {
            Some(pasid) => {
                let max = self.source.max_pasids();
                if max > 0 && pasid >= max {
                    return Err(EINVAL);
                }
            }
            None => {
                if let Hwpt::Nested(nested) = &hwpt {
                    if let Some((viommu_id, _)) = &nested.viommu {
                        let link = *self.vdev.lock();
                        if link.map(|l| l.viommu_id) != Some(*viommu_id) {
                            return Err(ENOENT);
                        }
                    }
                }
            }
        }
        ictx.objects.add_user(pt_id)?;
        Ok((pt_id, hwpt))
    }

    /// Detaches the device (its requests without a PASID), if attached; an automatic HWPT left
    /// without devices is destroyed.
    pub(crate) fn detach(&self, ictx: &Iommufd) {
        let old = {
            let mut attached = self.attached.lock();
            let old = attached.current.take();
            if old.is_some() {
                if let Err(e) = self.source.attach_domain(None) {
                    pr_warn!("iommufd: blocking a device's DMA failed: {:?}\n", e);
                }
            }
            old
        };
        if let Some(old) = old {
            self.release_attachment(ictx, old);
        }
    }

    /// Drops the device's hold on a HWPT it was attached to: the faults it reported under that
    /// attachment are answered (as upstream, invalid), and an automatic HWPT left without
    /// devices is destroyed.
    fn release_attachment(&self, ictx: &Iommufd, old: Attachment) {
        if let Some(fault) = old.hwpt.fault() {
            fault.attachment_ended(self.id, old.handle);
        }
        ictx.objects.remove_user(old.hwpt_id);
        if let Some(auto) = old.hwpt.auto_domain() {
            let mut autos = auto.ioas.auto_hwpts.lock();
            if let Ok(Object::HwptPaging(hwpt)) = ictx.objects.destroy(old.hwpt_id) {
                autos.retain(|id| *id != old.hwpt_id);
                drop(autos);
                Hwpt::Paging(hwpt).release(ictx);
            }
        }
    }

    /// Reports a page request of the device, as its IOMMU does when the device faults: it goes
    /// to the fault queue of the HWPT that handles it, if that HWPT has one. That is the HWPT
    /// attached to the request's PASID; for a request without a PASID, or with one nothing is
    /// attached to when the IOMMU leaves PASIDs to the owner of a nested HWPT attached to the
    /// RID, the RID's. Otherwise nobody handles it, and the device is told so (which the
    /// devices here ignore).
    pub(crate) fn report_fault(&self, request: PageRequest) -> Result {
        let attached = self.attached.lock();
        let pasid_valid = uapi::iommu_hwpt_pgfault_flags_IOMMU_PGFAULT_FLAGS_PASID_VALID;
        let target = if request.flags & pasid_valid == 0 {
            attached.current.as_ref()
        } else {
            let to_rid = |a: &&Attachment| {
                self.source.user_pasid_table() && matches!(a.hwpt, Hwpt::Nested(_))
            };
            attached
                .pasid(request.pasid)
                .or_else(|| attached.current.as_ref().filter(to_rid))
        };
        let Some(target) = target else {
            return Ok(());
        };
        match target.hwpt.fault() {
            // Under the attachment lock, so that the fault cannot outlive the attachment.
            Some(fault) => fault.report(self.id, target.handle, request),
            None => Ok(()),
        }
    }
}

/// Whether `pt_id` names something a device can attach to, a HWPT or an IOAS: `ENOENT` if it
/// names nothing, `EINVAL` if something else. Upstream looks the object up before anything else.
fn check_pt(ictx: &Iommufd, pt_id: u32) -> Result {
    match ictx.objects.get(pt_id)? {
        Object::HwptPaging(_) | Object::HwptNested(_) | Object::Ioas(_) => Ok(()),
        _ => Err(EINVAL),
    }
}

/// `IOMMU_GET_HW_INFO`: what the IOMMU behind device `dev_id` is. The driver's data goes to
/// `data_uptr`, truncated to `data_len` or zero-filled up to it; `data_len` comes back as the
/// driver's full length.
pub(crate) fn hw_info_ioctl(
    ictx: &Iommufd,
    mut ucmd: UserCmd<uapi::iommu_hw_info>,
) -> Result<isize> {
    let input_type = uapi::iommufd_hw_info_flags_IOMMU_HW_INFO_FLAG_INPUT_TYPE;
    let cmd = &mut ucmd.cmd;
    if cmd.flags & !input_type != 0 || cmd.__reserved != [0; 3] {
        return Err(EOPNOTSUPP);
    }
    // `in_data_type` and `out_data_type` share the union's only four bytes.
    let requested = if cmd.flags & input_type != 0 {
        let mut b = [0u8; 4];
        b.copy_from_slice(cmd.__bindgen_anon_1.as_bytes());
        u32::from_ne_bytes(b)
    } else {
        uapi::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_DEFAULT
    };
    let dev = ictx.objects.get_device(cmd.dev_id)?;
    let info = dev.iommu().hw_info(requested)?;
    let user_len = cmd.data_len as usize;
    let copy = user_len.min(info.data.len());
    let mut writer = UserSlice::new(UserPtr::from_addr(cmd.data_uptr as usize), user_len).writer();
    writer.write_slice(&info.data[..copy])?;
    const ZEROES: [u8; 64] = [0; 64];
    while !writer.is_empty() {
        let n = writer.len().min(ZEROES.len());
        writer.write_slice(&ZEROES[..n])?;
    }
    cmd.data_len = u32::try_from(info.data.len()).map_err(|_| EOVERFLOW)?;
    cmd.__bindgen_anon_1
        .as_bytes_mut()
        .copy_from_slice(&info.data_type.to_ne_bytes());
    cmd.out_capabilities = info.capabilities;
    cmd.out_max_pasid_log2 = info.max_pasid_log2;
    ucmd.respond()?;
    Ok(0)
}
