// SPDX-License-Identifier: GPL-2.0

//! The group interface, `/dev/vfio/$GROUP` (`VFIO_GROUP`).
//!
//! The IOMMU cannot tell the devices of an IOMMU group apart, so the classic VFIO interface
//! hands out whole groups: the first device a driver registers in an IOMMU group creates the
//! VFIO group and its node, named by the IOMMU group's number; the last one to go removes them.
//! A program opens the node (one file at a time), checks that the group is *viable*
//! (`VFIO_GROUP_GET_STATUS`: no device of it is left to a kernel driver that does DMA), gives
//! the group something to map DMA through (`VFIO_GROUP_SET_CONTAINER`: a VFIO container, or an
//! iommufd, the compat container among them), and then asks for its devices by name
//! (`VFIO_GROUP_GET_DEVICE_FD`). The device files it gets are [`DeviceFile`]s that are open from
//! the start: the first one opens the device, binds it to the group's iommufd context and
//! attaches it to that context's compat IOAS, where the container's mappings are.
//!
//! A device is used through its group or through its cdev, never both: while any device of
//! the group is bound through its cdev the group cannot be opened, and while the group is open
//! no device of it can be bound through its cdev (`EBUSY` either way). A device file holds the
//! group's file, so the group stays open (and its container set) while a device is open
//! through it, whatever the program does with the group's descriptor (close it, pass it on,
//! fork).
//!
//! Lock order: the registry, then a group's `state`, then its devices' `state`.

use crate::{
    device::VfioDevice,
    device_file::DeviceFile, //
};
use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    capability::{
        capable,
        Capability, //
    },
    cdev::{
        CdevDevice,
        CdevFile, //
    },
    device::Device,
    fs::{
        file::FileDescriptorReservation,
        File,
        LocalFile, //
    },
    iommu::{
        device::{
            self as iommu_device,
            Cap, //
        },
        group::Group as IommuGroup,
    },
    iommufd::Ctx,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    str::CString,
    sync::{
        aref::ARef,
        Arc,
        ArcBorrow,
        Mutex, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
    uapi_bytes::read_user_u32,
    uapi_ioctl::{
        VFIO_GROUP_GET_DEVICE_FD,
        VFIO_GROUP_GET_STATUS,
        VFIO_GROUP_SET_CONTAINER,
        VFIO_GROUP_UNSET_CONTAINER, //
    },
};

/// What a group's lock guards.
pub(crate) struct GroupState {
    /// Whether the group still has devices; once the last one went, opening fails (`ENODEV`).
    live: bool,
    /// Whether a file of the group is open: one at a time.
    opened: bool,
    /// How many devices of the group are bound through their cdev.
    cdev_bound: u32,
    /// How many files the group handed out have a device of it open.
    device_files: u32,
    /// Whether `VFIO_GROUP_SET_CONTAINER` gave the group a container or an iommufd.
    has_container: bool,
    /// The iommufd context the group's devices bind to, once `VFIO_GROUP_SET_CONTAINER` set it:
    /// an iommufd, or the context of a VFIO container (none for a no-IOMMU group in one).
    ictx: Option<ARef<Ctx>>,
    /// The VFIO container the group was added to, if it was one.
    #[cfg(CONFIG_VFIO_CONTAINER)]
    container: Option<Arc<crate::container::Container>>,
    /// The registered devices of the group.
    devices: KVec<Arc<VfioDevice>>,
    /// The KVM instance `vfio_file_set_kvm` linked to the group's file (only kept, never
    /// dereferenced: no driver uses it yet).
    pub(crate) kvm: usize,
}

/// A VFIO group: the registered devices of one IOMMU group.
#[pin_data]
pub(crate) struct Group {
    iommu_group: IommuGroup,
    /// Whether this is a no-IOMMU group ([`crate::noiommu`]): the IOMMU group was made for
    /// its one device, which no IOMMU translates.
    pub(crate) noiommu: bool,
    #[pin]
    pub(crate) state: Mutex<GroupState>,
}

/// A group in the registry: the node, and how many devices hold the group.
pub(crate) struct Entry {
    group: Arc<Group>,
    /// Registered devices of the group (upstream's `drivers`).
    users: u32,
    minor: u32,
    // Dropped inside the registry's lock, so that a group of the same number can be created as
    // soon as the lock is released.
    _node: CdevDevice<GroupFile>,
}

/// The group of `dev`, created (with its node) if `dev` is the first of its IOMMU group to
/// register; the caller gives it back with [`put`]. `EINVAL` if `dev` has no IOMMU group,
/// unless no-IOMMU mode is on: then `dev` gets a no-IOMMU group of its own, and the kernel is
/// tainted.
pub(crate) fn get(dev: &Device) -> Result<Arc<Group>> {
    let (iommu_group, noiommu) = match IommuGroup::of(dev) {
        Ok(group) => (group, false),
        Err(_) if crate::noiommu::enabled() => {
            let group = IommuGroup::new_for(dev, c"vfio-noiommu")?;
            let made = add(group, true);
            if made.is_err() {
                IommuGroup::remove_device(dev);
            } else {
                crate::noiommu::taint(dev);
            }
            return made;
        }
        Err(_) => return Err(EINVAL),
    };
    add(iommu_group, noiommu)
}

/// The VFIO group of `iommu_group` (a no-IOMMU one if `noiommu`), made if there is none.
fn add(iommu_group: IommuGroup, noiommu: bool) -> Result<Arc<Group>> {
    crate::registry::with_groups(|groups| {
        if let Some(entry) = groups
            .entries
            .iter_mut()
            .find(|e| e.group.iommu_group.is(&iommu_group))
        {
            entry.users += 1;
            return Ok(entry.group.clone());
        }
        groups.entries.reserve(1, GFP_KERNEL)?;
        let minor = groups.minors.alloc()?;
        let add = |groups: &mut crate::registry::Groups| -> Result<Entry> {
            let devt = groups.region.devt(minor).ok_or(ENOSPC)?;
            let prefix = if noiommu { "noiommu-" } else { "" };
            let name = CString::try_from_fmt(fmt!("{}{}", prefix, iommu_group.id()))?;
            let group = Arc::pin_init(
                pin_init!(Group {
                    iommu_group,
                    noiommu,
                    state <- new_mutex!(GroupState {
                        live: true,
                        opened: false,
                        cdev_bound: 0,
                        device_files: 0,
                        has_container: false,
                        ictx: None,
                        #[cfg(CONFIG_VFIO_CONTAINER)]
                        container: None,
                        devices: KVec::new(),
                        kvm: 0,
                    }),
                }),
                GFP_KERNEL,
            )?;
            let node = CdevDevice::register(&groups.class, None, devt, &name, group.clone())?;
            Ok(Entry {
                group,
                users: 1,
                minor,
                _node: node,
            })
        };
        match add(groups) {
            Ok(entry) => {
                let group = entry.group.clone();
                groups.entries.push(entry, GFP_KERNEL)?;
                Ok(group)
            }
            Err(e) => {
                groups.minors.free(minor);
                Err(e)
            }
        }
    })
}

/// Gives back the group [`get`] returned for `dev`; the last user removes the node, and the
/// group can no longer be opened or used (files still open keep it until they are closed).
pub(crate) fn put(group: &Arc<Group>, dev: &Device) {
    if group.noiommu {
        IommuGroup::remove_device(dev);
    }
    let _ = crate::registry::with_groups(|groups| {
        let Some(i) = groups
            .entries
            .iter()
            .position(|e| Arc::ptr_eq(&e.group, group))
        else {
            return Ok(());
        };
        groups.entries[i].users -= 1;
        if groups.entries[i].users == 0 {
            let entry = groups.entries.remove(i)?;
            {
                let mut state = group.state.lock();
                state.live = false;
                group.detach_locked(&mut state);
            }
            let minor = entry.minor;
            drop(entry);
            groups.minors.free(minor);
        }
        Ok(())
    });
}

impl Group {
    /// Adds a registered device to the group.
    pub(crate) fn add_device(&self, device: &Arc<VfioDevice>) -> Result {
        Ok(self.state.lock().devices.push(device.clone(), GFP_KERNEL)?)
    }

    /// Removes an unregistering device: the group no longer hands it out.
    pub(crate) fn remove_device(&self, device: &Arc<VfioDevice>) {
        let mut state = self.state.lock();
        if let Some(i) = state.devices.iter().position(|d| Arc::ptr_eq(d, device)) {
            let _ = state.devices.remove(i);
        }
    }

    /// The IOMMU group.
    #[cfg(CONFIG_SPAPR_TCE_IOMMU)]
    pub(crate) fn iommu_group(&self) -> &IommuGroup {
        &self.iommu_group
    }

    /// Whether every device of the group has DMA that is always cache coherent (the IOMMU
    /// enforces it), as KVM asks through `vfio_file_enforced_coherent`.
    pub(crate) fn enforced_coherent(&self) -> bool {
        self.state
            .lock()
            .devices
            .iter()
            .all(|d| iommu_device::capable(d.parent(), Cap::EnforceCacheCoherency))
    }

    /// A device of the group is about to be bound through its cdev: `EBUSY` while the group is
    /// open. Undone by [`Group::unblock`].
    pub(crate) fn block(&self) -> Result {
        let mut state = self.state.lock();
        if state.opened {
            return Err(EBUSY);
        }
        state.cdev_bound += 1;
        Ok(())
    }

    /// A device of the group bound through its cdev was unbound (or failed to bind).
    pub(crate) fn unblock(&self) {
        self.state.lock().cdev_bound -= 1;
    }

    /// Opens the group's node: `ENODEV` once it has no devices, `EBUSY` while a device of it is
    /// bound through its cdev or another file of the group is open.
    fn open(&self) -> Result {
        let mut state = self.state.lock();
        if !state.live {
            return Err(ENODEV);
        }
        if self.noiommu && !capable(Capability::SYS_RAWIO) {
            return Err(EPERM);
        }
        if state.cdev_bound != 0 || state.opened {
            return Err(EBUSY);
        }
        state.opened = true;
        Ok(())
    }

    /// The group's file was released (its device files hold it, so none is open).
    fn release(&self) {
        let mut state = self.state.lock();
        self.detach_locked(&mut state);
        state.kvm = 0;
        state.opened = false;
    }

    /// Forgets the group's iommufd context and leaves its container, if any.
    fn detach_locked(&self, state: &mut GroupState) {
        #[cfg(CONFIG_VFIO_CONTAINER)]
        if let Some(container) = state.container.take() {
            container.remove_group();
        }
        state.ictx = None;
        state.has_container = false;
    }

    /// `VFIO_GROUP_GET_STATUS`: whether the group is viable and has a container. As upstream,
    /// `EFAULT`, `EINVAL` for an `argsz` short of `flags`, `ENODEV` once the group has no
    /// devices. With an iommufd the group counts as viable: it is checked when a device is
    /// bound.
    fn get_status(&self, arg: usize) -> Result<isize> {
        type Status = uapi::vfio_group_status;
        let minsz = offset_of!(Status, flags) + size_of::<u32>();
        let argsz = read_user_u32(arg)?;
        if (argsz as usize) < minsz {
            return Err(EINVAL);
        }
        let flags = {
            let state = self.state.lock();
            if !state.live {
                return Err(ENODEV);
            }
            if state.has_container {
                uapi::VFIO_GROUP_FLAGS_CONTAINER_SET | uapi::VFIO_GROUP_FLAGS_VIABLE
            } else if !self.iommu_group.dma_owner_claimed() {
                uapi::VFIO_GROUP_FLAGS_VIABLE
            } else {
                0
            }
        };
        let status = [argsz, flags];
        UserSlice::new(UserPtr::from_addr(arg), minsz)
            .writer()
            .write(&status)?;
        Ok(0)
    }

    /// `VFIO_GROUP_SET_CONTAINER`: gives the group the container or iommufd whose descriptor
    /// `arg` points to. As upstream: `EFAULT`, `EBADF` for a descriptor that is not open,
    /// `EINVAL` if the group has one already, `ENODEV` once it has no devices, `EBADFD` for a
    /// file that is neither; then the container's errors.
    fn set_container(&self, arg: usize) -> Result<isize> {
        let fd = read_user_u32(arg)?;
        let file = LocalFile::fget(fd).map_err(|_| EBADF)?;
        let mut state = self.state.lock();
        if state.has_container {
            return Err(EINVAL);
        }
        if !state.live {
            return Err(ENODEV);
        }
        #[cfg(CONFIG_VFIO_CONTAINER)]
        if let Some(container) = crate::container::Container::of_file(&file) {
            state.ictx = container.add_group(&self.iommu_group, self.noiommu)?;
            state.container = Some(container);
            state.has_container = true;
            return Ok(0);
        }
        let ictx = Ctx::from_file(&file)?;
        if self.noiommu {
            ictx.set_no_iommu()?;
        } else {
            ictx.compat_ioas_create()?;
        }
        state.ictx = Some(ictx);
        state.has_container = true;
        Ok(0)
    }

    /// `VFIO_GROUP_UNSET_CONTAINER`: `EINVAL` if the group has none; `EBUSY` if it is in a VFIO
    /// container and a device of it is open (an iommufd lets go at once, as upstream: the open
    /// devices keep their binding).
    fn unset_container(&self) -> Result<isize> {
        let mut state = self.state.lock();
        if !state.has_container {
            return Err(EINVAL);
        }
        #[cfg(CONFIG_VFIO_CONTAINER)]
        if state.container.is_some() && state.device_files != 0 {
            return Err(EBUSY);
        }
        self.detach_locked(&mut state);
        Ok(0)
    }

    /// `VFIO_GROUP_GET_DEVICE_FD`: opens the device of the group whose name (its `dev_name`,
    /// a PCI address say) `arg` points to, and returns a new descriptor of it. As upstream:
    /// `EFAULT` for an unreadable name, `EINVAL` for one longer than a page, `ENODEV` for no
    /// such device, `EINVAL` if the group has no container; then the errors of opening it.
    /// The device of the group that `name` names, as its driver reads names (a VF's may carry
    /// a token): `ENODEV` if none, or the first driver's refusal.
    fn find_device(&self, name: &CStr) -> Result<Arc<VfioDevice>> {
        let state = self.state.lock();
        for device in state.devices.iter() {
            if device.ops().match_name(device, name)? {
                return Ok(device.clone());
            }
        }
        Err(ENODEV)
    }

    fn get_device_fd(&self, group_file: &File, arg: usize) -> Result<isize> {
        let mut buf = KVec::from_elem(0u8, PAGE_SIZE + 1, GFP_KERNEL)?;
        let name = UserSlice::new(UserPtr::from_addr(arg), PAGE_SIZE + 1)
            .reader()
            .strcpy_into_buf(&mut buf)?;
        if name.to_bytes().len() >= PAGE_SIZE {
            return Err(EINVAL);
        }
        let device = self.find_device(name)?;
        let reservation = FileDescriptorReservation::get_unused_fd_flags(uapi::O_CLOEXEC)?;
        let this = DeviceFile::for_group(&device, group_file.into())?;
        {
            let mut state = self.state.lock();
            if !state.has_container {
                return Err(EINVAL);
            }
            let ictx = state.ictx.clone();
            // The set's lock only around the open: granting takes the file's lock, which
            // the cdev's bind holds while it takes the set's.
            {
                let _set = device.set.lock();
                device.open_group(&mut device.state.lock(), ictx.as_deref(), self.noiommu)?;
            }
            state.device_files += 1;
            this.grant(ictx);
        }
        // Should this fail, dropping the file closes the device again.
        let file = CdevDevice::<DeviceFile>::new_file(c"[vfio-device]", this)?;
        if self.noiommu {
            dev_warn!(
                device.parent(),
                "vfio-noiommu device opened by user (pid {})\n",
                kernel::current!().pid()
            );
        }
        let fd = reservation.reserved_fd();
        reservation.fd_install(file);
        Ok(fd as isize)
    }

    /// A device file the group handed out was closed: closes the device for it.
    pub(crate) fn close_device(&self, device: &VfioDevice) {
        let mut state = self.state.lock();
        let _set = device.set.lock();
        device.close(&mut device.state.lock());
        state.device_files -= 1;
    }
}

/// An open file of a group's node.
pub(crate) struct GroupFile;

#[vtable]
impl CdevFile for GroupFile {
    type Data = Arc<Group>;
    type Ptr = Arc<Group>;

    fn open(group: &Arc<Group>, _file: &File) -> Result<Arc<Group>> {
        group.open()?;
        Ok(group.clone())
    }

    fn release(group: Arc<Group>, _file: &File) {
        group.release();
    }

    fn ioctl(group: ArcBorrow<'_, Group>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            VFIO_GROUP_GET_DEVICE_FD => group.get_device_fd(file, arg),
            VFIO_GROUP_GET_STATUS => group.get_status(arg),
            VFIO_GROUP_SET_CONTAINER => group.set_container(arg),
            VFIO_GROUP_UNSET_CONTAINER => group.unset_container(),
            _ => Err(ENOTTY),
        }
    }
}

/// The group of `file` if it is an open group file.
pub(crate) fn of_file(file: &LocalFile) -> Option<ArcBorrow<'_, Group>> {
    CdevDevice::<GroupFile>::file_data(file)
}
