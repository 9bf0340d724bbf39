// SPDX-License-Identifier: GPL-2.0

//! Hot reset: resetting a function together with every other one its slot or bus reset
//! reaches, for a function without a reset of its own or a user who wants the whole slot
//! clean (`VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`, `VFIO_DEVICE_PCI_HOT_RESET`).
//!
//! Such a reset reaches functions the caller may not own, so it is allowed only when every one
//! of them is a vfio-pci device of the caller's device set (vfio-pci puts the functions of a
//! slot or bus in one set, see `probe`) and the caller proves it owns each of them: through the
//! group interface, by passing a descriptor of each one's VFIO group; through the cdev, by
//! having bound the device to an iommufd that owns all of them (bound to it, or of an IOMMU
//! group with a device bound to it). Meanwhile the set stays locked, so no member is opened or
//! closed, and each member's BAR accesses and faults wait, their mappings zapped, as for
//! `VFIO_DEVICE_RESET`.
//!
//! Lock order: the device set, then each member's `config`, then its `mem` (both only tried:
//! `EBUSY` rather than waiting on a member in use, as upstream), then the functions' device
//! locks (tried by the PCI core: `EAGAIN`).

use super::{
    power,
    PciDevice, //
};
use crate::{
    device::VfioDevice,
    device_set::Members, //
};
use core::mem::size_of;
use kernel::{
    device::Bound,
    fs::LocalFile,
    iommu::group::Group,
    iommufd::Ctx,
    pci::{
        self,
        ResetScope, //
    },
    pm_runtime::Usage,
    prelude::*,
    sync::aref::ARef,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
    uapi_bytes::read_user_u32,
};

/// The header both ioctls start with: `argsz`, `flags`, `count`.
const HEADER: usize = 3 * size_of::<u32>();
/// `struct vfio_pci_dependent_device`: a `u32` (group id or device id), segment, bus, devfn.
const DEPENDENT: usize = 8;
/// `VFIO_PCI_DEVID_OWNED` and `VFIO_PCI_DEVID_NOT_OWNED` (-1).
const DEVID_OWNED: u32 = 0;
const DEVID_NOT_OWNED: u32 = u32::MAX;

/// Reads the header at `arg`.
fn read_header(arg: usize) -> Result<[u32; 3]> {
    let mut words = [0u32; 3];
    for (i, w) in words.iter_mut().enumerate() {
        *w = read_user_u32(arg + i * size_of::<u32>())?;
    }
    Ok(words)
}

/// Writes `bytes` to the user at `addr`.
fn write_user(addr: usize, bytes: &[u8]) -> Result {
    UserSlice::new(UserPtr::from_addr(addr), bytes.len())
        .writer()
        .write_slice(bytes)
}

/// How a hot reset of `pdev` goes: `ENODEV` if neither its slot nor its bus can be reset.
fn scope(pdev: &pci::Device) -> Result<ResetScope> {
    pdev.hot_reset_scope().ok_or(ENODEV)
}

/// The member of the set that drives `dev`, if there is one (upstream's
/// `vfio_find_device_in_devset`).
fn member_of<'a>(members: &'a Members, dev: &pci::Device) -> Option<&'a VfioDevice> {
    let dev: &kernel::device::Device = dev.as_ref();
    members
        .devices
        .iter()
        .map(|d| &**d)
        .find(|d| core::ptr::eq(d.parent(), dev))
}

/// `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO` for `vdev`, whose function is `pdev`: every function a
/// hot reset reaches, by segment, bus and devfn, with its IOMMU group's id, or, for a device
/// opened through its cdev, with its id in the caller's iommufd (`VFIO_PCI_DEVID_OWNED` if that
/// iommufd owns it without an id, `VFIO_PCI_DEVID_NOT_OWNED` if it does not, which also clears
/// `VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED`). As upstream: `EFAULT`, `EINVAL` if `argsz` is short
/// of `count`, `ENODEV` without a slot or bus reset, `ENOSPC` with the number needed in `count`
/// when the array is too short, `EPERM` for a function without an IOMMU group.
pub(super) fn info(vdev: &VfioDevice, pdev: &pci::Device<Bound>, arg: usize) -> Result<isize> {
    let [argsz, ..] = read_header(arg)?;
    if (argsz as usize) < HEADER {
        return Err(EINVAL);
    }
    let affected = pdev.hot_reset_affected(scope(pdev)?)?;
    let count = affected.len();
    if count > (argsz as usize - HEADER) / DEPENDENT {
        write_user(arg + 2 * size_of::<u32>(), &(count as u32).to_ne_bytes())?;
        write_user(arg + size_of::<u32>(), &0u32.to_ne_bytes())?;
        return Err(ENOSPC);
    }
    let mut flags = 0;
    let ictx = match vdev.cdev_opened() {
        true => {
            flags |=
                uapi::VFIO_PCI_HOT_RESET_FLAG_DEV_ID | uapi::VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
            vdev.iommufd_ctx()
        }
        false => None,
    };
    let mut out = KVec::with_capacity(count * DEPENDENT, GFP_KERNEL)?;
    {
        let members = vdev.set.lock();
        for dev in &affected {
            let id = if flags & uapi::VFIO_PCI_HOT_RESET_FLAG_DEV_ID != 0 {
                let id = match (member_of(&members, dev), &ictx) {
                    (Some(member), Some(ictx)) => match member.id_in(ictx) {
                        Ok(id) => id,
                        Err(e) if e == ENOENT => DEVID_OWNED,
                        Err(_) => DEVID_NOT_OWNED,
                    },
                    _ => DEVID_NOT_OWNED,
                };
                if id == DEVID_NOT_OWNED {
                    flags &= !uapi::VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
                }
                id
            } else {
                // A function without a group is not isolated: it cannot be reset by a user.
                Group::of(dev.as_ref()).map_err(|_| EPERM)?.id() as u32
            };
            out.extend_from_slice(&id.to_ne_bytes(), GFP_KERNEL)?;
            out.extend_from_slice(&(dev.domain_nr() as u16).to_ne_bytes(), GFP_KERNEL)?;
            out.extend_from_slice(&[dev.bus_number(), dev.devfn()], GFP_KERNEL)?;
        }
    }
    write_user(arg + HEADER, &out)?;
    write_user(arg + size_of::<u32>(), &flags.to_ne_bytes())?;
    write_user(arg + 2 * size_of::<u32>(), &(count as u32).to_ne_bytes())?;
    Ok(0)
}

/// Whether `file` is a VFIO group's.
fn is_group(file: &LocalFile) -> bool {
    #[cfg(CONFIG_VFIO_GROUP)]
    return crate::group::of_file(file).is_some();
    #[cfg(not(CONFIG_VFIO_GROUP))]
    {
        let _ = file;
        false
    }
}

/// Whether `file` is the VFIO group of `member` (upstream's `vfio_file_has_dev`).
fn group_has(file: &LocalFile, member: &VfioDevice) -> bool {
    #[cfg(CONFIG_VFIO_GROUP)]
    return crate::group::of_file(file)
        .is_some_and(|group| core::ptr::eq::<crate::group::Group>(&*group, &*member.group));
    #[cfg(not(CONFIG_VFIO_GROUP))]
    {
        let _ = (file, member);
        false
    }
}

/// How the caller proves it owns the devices a hot reset reaches.
enum Proof<'a> {
    /// Descriptors of the VFIO groups of all of them (the group interface).
    Groups(&'a [ARef<LocalFile>]),
    /// The iommufd the caller's device is bound to (the cdev).
    Iommufd(&'a Ctx),
}

impl Proof<'_> {
    /// Whether the caller owns `member` (upstream: `vfio_dev_in_groups`, or the id of
    /// `vfio_iommufd_get_dev_id` or `ENOENT`).
    fn owns(&self, member: &VfioDevice) -> bool {
        match self {
            Proof::Groups(files) => files.iter().any(|file| group_has(file, member)),
            Proof::Iommufd(ictx) => match member.id_in(ictx) {
                Ok(_) => true,
                Err(e) => e == ENOENT,
            },
        }
    }
}

/// `VFIO_DEVICE_PCI_HOT_RESET` for `vdev`, whose function is `pdev`: the group form (`count`
/// group descriptors after the header) for a device opened through its group, the zero-length
/// form for one opened through its cdev. As upstream: `EFAULT`; `EINVAL` for an `argsz` short
/// of `count`, any flag, the other form, more descriptors than functions reached, a descriptor
/// that is not a VFIO group's, a function reached that is not in the device set or that the
/// caller does not own; `ENODEV` without a slot or bus reset; `EBADF` for a descriptor that is
/// not open; `EBUSY` while a member's BARs are in use; `EAGAIN` while a function's device lock
/// is taken.
pub(super) fn reset(vdev: &VfioDevice, pdev: &pci::Device<Bound>, arg: usize) -> Result<isize> {
    let [argsz, flags, count] = read_header(arg)?;
    if (argsz as usize) < HEADER || flags != 0 {
        return Err(EINVAL);
    }
    // The zero-length form is for devices opened through their cdev, and only for them.
    if (count != 0) == vdev.cdev_opened() {
        return Err(EINVAL);
    }
    let scope = scope(pdev)?;
    if count == 0 {
        let ictx = vdev.iommufd_ctx().ok_or(EINVAL)?;
        return reset_set(vdev, pdev, scope, Proof::Iommufd(&ictx));
    }
    // A group can hold several devices, so no more groups than functions reached.
    if count as usize > pdev.hot_reset_affected(scope)?.len() {
        return Err(EINVAL);
    }
    // All the descriptors are read before any is looked up, as upstream (`EFAULT` first).
    let mut fds = KVec::with_capacity(count as usize, GFP_KERNEL)?;
    for i in 0..count as usize {
        fds.push(
            read_user_u32(arg + HEADER + i * size_of::<i32>())?,
            GFP_KERNEL,
        )?;
    }
    let mut files = KVec::with_capacity(count as usize, GFP_KERNEL)?;
    for fd in fds {
        let file = LocalFile::fget(fd).map_err(|_| EBADF)?;
        if !is_group(&file) {
            return Err(EINVAL);
        }
        files.push(file, GFP_KERNEL)?;
    }
    reset_set(vdev, pdev, scope, Proof::Groups(&files))
}

/// Hot-resets `pdev`'s slot or bus (`scope`) with `vdev`'s device set locked, if every
/// function it reaches is a member and `proof` shows the caller owns every member (upstream's
/// `vfio_pci_dev_set_hot_reset`; `EINVAL` otherwise). Each member's BAR accesses and faults
/// are held off meanwhile, its mappings zapped (`EBUSY` if one is in use).
fn reset_set(
    vdev: &VfioDevice,
    pdev: &pci::Device<Bound>,
    scope: ResetScope,
    proof: Proof<'_>,
) -> Result<isize> {
    let affected = pdev.hot_reset_affected(scope)?;
    let members = vdev.set.lock();
    if affected
        .iter()
        .any(|dev| member_of(&members, dev).is_none())
    {
        return Err(EINVAL);
    }
    // Every member is resumed for the reset and kept active until it is done (upstream's
    // `vfio_pci_dev_set_pm_runtime_get`), before any of their locks is taken: resuming takes
    // the `mem` lock.
    let mut awake = KVec::with_capacity(members.devices.len(), GFP_KERNEL)?;
    for member in members.devices.iter() {
        let parent = member.bound_parent()?;
        let usage = Usage::resume_and_get(&parent)?;
        awake.push((parent, usage), GFP_KERNEL)?;
    }
    let mut held = KVec::with_capacity(members.devices.len(), GFP_KERNEL)?;
    for (member, (parent, _)) in members.devices.iter().zip(awake.iter()) {
        if !proof.owns(member) {
            return Err(EINVAL);
        }
        let pci = member
            .ops()
            .as_any()
            .and_then(|ops| ops.downcast_ref::<PciDevice>())
            .ok_or(EINVAL)?;
        let config = pci.config.try_lock().ok_or(EBUSY)?;
        let mut mem = pci.mem.try_lock().ok_or(EBUSY)?;
        pci.withdraw_bars(member);
        // A member its user put in D3hot comes back to D0 first, as upstream: the reset
        // would bring it there behind the PCI core's back.
        power::set_state(pci, (&**parent).try_into()?, &mut mem, 0);
        held.push((pci, config, mem), GFP_KERNEL)?;
    }
    let reset = pdev.try_hot_reset();
    for (pci, _config, mem) in held.iter() {
        pci.restore_bars(mem);
    }
    drop(held);
    reset?;
    Ok(0)
}
