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

    /// What `IOMMU_GET_HW_INFO` reports of the IOMMU, for a request of data type `data_type`
    /// (`IOMMU_HW_INFO_TYPE_DEFAULT` for the driver's own); `EOPNOTSUPP` for a type the driver
    /// does not have.
    fn hw_info(&self, data_type: u32) -> Result<HwInfo>;

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

/// The attachment of a device, and the handle the next one gets.
#[derive(Default)]
struct Attached {
    current: Option<Attachment>,
    next_handle: u64,
}

impl Attached {
    fn next_handle(&mut self) -> u64 {
        let handle = self.next_handle;
        self.next_handle = handle.wrapping_add(1);
        handle
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
    /// What is attached to each PASID of the device, by PASID.
    #[pin]
    pasids: Mutex<KVec<(u32, Attachment)>>,
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
                pasids <- new_mutex!(KVec::new()),
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
        let pasids = core::mem::take(&mut *self.pasids.lock());
        for (_, old) in pasids {
            self.release_attachment(ictx, old);
        }
        ictx.objects.remove_user(self.id);
        let _ = ictx.objects.destroy(self.id);
    }

    /// Attaches the device to `pt_id`, an IOAS or a HWPT, and returns the id of the HWPT it
    /// uses. `EINVAL` if already attached, or if `pt_id` names neither.
    pub(crate) fn attach(&self, ictx: &Iommufd, pt_id: u32) -> Result<u32> {
        let mut attached = self.attached.lock();
        if attached.current.is_some() {
            return Err(EINVAL);
        }
        let (hwpt_id, hwpt) = self.get_hwpt(ictx, pt_id)?;
        let handle = attached.next_handle();
        attached.current = Some(Attachment {
            hwpt_id,
            hwpt,
            handle,
        });
        Ok(hwpt_id)
    }

    /// Moves the attached device to `pt_id` (an IOAS or a HWPT) in one step, and returns the
    /// id of the HWPT it now uses; its old automatic HWPT goes if it has no other device, and
    /// the faults it reported under the old attachment are answered. `EINVAL` if the device is
    /// not attached; on failure it stays where it was.
    pub(crate) fn replace(&self, ictx: &Iommufd, pt_id: u32) -> Result<u32> {
        let mut attached = self.attached.lock();
        if attached.current.is_none() {
            return Err(EINVAL);
        }
        let (hwpt_id, hwpt) = self.get_hwpt(ictx, pt_id)?;
        if attached.current.as_ref().map(|a| a.hwpt_id) == Some(hwpt_id) {
            // Already there: nothing changes, not even the attachment (as upstream).
            ictx.objects.remove_user(hwpt_id);
            return Ok(hwpt_id);
        }
        let handle = attached.next_handle();
        let old = attached.current.replace(Attachment {
            hwpt_id,
            hwpt,
            handle,
        });
        drop(attached);
        if let Some(old) = old {
            self.release_attachment(ictx, old);
        }
        Ok(hwpt_id)
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

    /// Attaches HWPT or IOAS `pt_id` to PASID `pasid` of the device, and returns the id of the
    /// HWPT it uses: `EINVAL` if something is attached there already.
    pub(crate) fn pasid_attach(&self, ictx: &Iommufd, pasid: u32, pt_id: u32) -> Result<u32> {
        let mut pasids = self.pasids.lock();
        if pasids.iter().any(|(p, _)| *p == pasid) {
            return Err(EINVAL);
        }
        pasids.reserve(1, GFP_KERNEL_ACCOUNT)?;
        let (hwpt_id, hwpt) = self.get_hwpt(ictx, pt_id)?;
        let handle = self.attached.lock().next_handle();
        let attachment = Attachment {
            hwpt_id,
            hwpt,
            handle,
        };
        if let Err(back) = pasids.push_within_capacity((pasid, attachment)) {
            // Not reached: the space was reserved above.
            drop(pasids);
            self.release_attachment(ictx, back.0 .1);
            return Err(ENOMEM);
        }
        Ok(hwpt_id)
    }

    /// Moves PASID `pasid` of the device to `pt_id` in one step, and returns the id of the
    /// HWPT it now uses: `EINVAL` if nothing is attached there.
    pub(crate) fn pasid_replace(&self, ictx: &Iommufd, pasid: u32, pt_id: u32) -> Result<u32> {
        let mut pasids = self.pasids.lock();
        let Some((_, cur)) = pasids.iter_mut().find(|(p, _)| *p == pasid) else {
            return Err(EINVAL);
        };
        let (hwpt_id, hwpt) = self.get_hwpt(ictx, pt_id)?;
        if cur.hwpt_id == hwpt_id {
            ictx.objects.remove_user(hwpt_id);
            return Ok(hwpt_id);
        }
        let handle = self.attached.lock().next_handle();
        let old = core::mem::replace(
            cur,
            Attachment {
                hwpt_id,
                hwpt,
                handle,
            },
        );
        drop(pasids);
        self.release_attachment(ictx, old);
        Ok(hwpt_id)
    }

    /// Detaches PASID `pasid` of the device, if attached.
    pub(crate) fn pasid_detach(&self, ictx: &Iommufd, pasid: u32) {
        let mut pasids = self.pasids.lock();
        let Some(i) = pasids.iter().position(|(p, _)| *p == pasid) else {
            return;
        };
        let old = pasids.remove(i);
        drop(pasids);
        if let Ok((_, old)) = old {
            self.release_attachment(ictx, old);
        }
    }

    /// The id of the HWPT attached to PASID `pasid` of the device, if any.
    pub(crate) fn pasid_hwpt(&self, pasid: u32) -> Option<u32> {
        self.pasids
            .lock()
            .iter()
            .find(|(p, _)| *p == pasid)
            .map(|(_, a)| a.hwpt_id)
    }

    /// The HWPT the device would use for `pt_id`, counted as one more user of it: that HWPT,
    /// or for an IOAS an automatic HWPT the device accepts, made if there is none. A nested
    /// HWPT made over a vIOMMU takes only a device that has a virtual device behind that
    /// vIOMMU (`ENOENT` otherwise, as the IOMMU drivers say).
    fn get_hwpt(&self, ictx: &Iommufd, pt_id: u32) -> Result<(u32, Hwpt)> {
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
                    match self.source.check_domain(&hwpt) {
                        Ok(()) => {
                            ictx.objects.add_user(id)?;
                            return Ok((id, hwpt));
                        }
                        Err(e) if e == EINVAL => continue,
                        Err(e) => return Err(e),
                    }
                }
                autos.reserve(1, GFP_KERNEL_ACCOUNT)?;
                let (id, hwpt) = HwptPaging::create_auto(ictx, pt_id, self.source.alloc_domain()?)?;
                autos.push(id, GFP_KERNEL_ACCOUNT)?;
                return Ok((id, Hwpt::Paging(hwpt)));
            }
            _ => return Err(EINVAL),
        };
        self.source.check_domain(&hwpt)?;
        if let Hwpt::Nested(nested) = &hwpt {
            if let Some((viommu_id, _)) = &nested.viommu {
                let link = *self.vdev.lock();
                if link.map(|l| l.viommu_id) != Some(*viommu_id) {
                    return Err(ENOENT);
                }
            }
        }
        ictx.objects.add_user(pt_id)?;
        Ok((pt_id, hwpt))
    }

    /// Detaches the device, if attached; an automatic HWPT left without devices is destroyed.
    pub(crate) fn detach(&self, ictx: &Iommufd) {
        let old = self.attached.lock().current.take();
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
    /// to the fault queue of the HWPT the device is attached to, if that HWPT has one. A
    /// request tagged with a PASID goes there only if the IOMMU leaves PASIDs to a nested
    /// HWPT's owner and the device is attached to one (no PASID is attached on its own here).
    /// Otherwise nobody handles it, and the device is told so (which the devices here ignore).
    pub(crate) fn report_fault(&self, request: PageRequest) -> Result {
        let attached = self.attached.lock();
        let Some(current) = &attached.current else {
            return Ok(());
        };
        let pasid_valid = uapi::iommu_hwpt_pgfault_flags_IOMMU_PGFAULT_FLAGS_PASID_VALID;
        if request.flags & pasid_valid != 0
            && !(self.source.user_pasid_table() && matches!(current.hwpt, Hwpt::Nested(_)))
        {
            return Ok(());
        }
        match current.hwpt.fault() {
            // Under the attachment lock, so that the fault cannot outlive the attachment.
            Some(fault) => fault.report(self.id, current.handle, request),
            None => Ok(()),
        }
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
