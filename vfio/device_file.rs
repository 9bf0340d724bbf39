// SPDX-License-Identifier: GPL-2.0

//! The open files of a VFIO device, through either way in.
//!
//! A file of the device cdev (`/dev/vfio/devices/vfioN`, [`crate::cdev`]) starts with no access:
//! every ioctl but `VFIO_DEVICE_BIND_IOMMUFD` fails with `EINVAL`, as do `read`, `write` and
//! `mmap`, as upstream. Binding opens the device for this file, bound to the iommufd given;
//! then `VFIO_DEVICE_ATTACH_IOMMUFD_PT` and `VFIO_DEVICE_DETACH_IOMMUFD_PT` attach it, and the
//! device ioctls go to its driver.
//!
//! A file the group hands out (`VFIO_GROUP_GET_DEVICE_FD`, [`crate::group`]) is open from the
//! start, bound to the group's iommufd context and attached by the group; binding, attaching
//! and detaching are not its to do, so those ioctls go to the driver like any other.
//!
//! Closing the file closes the device for it.

use crate::device::VfioDevice;
use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    cdev::CdevFile,
    fs::{
        File,
        LocalFile, //
    },
    iommufd::Ctx,
    mm::virt::{
        SharedMapping,
        VmaNew, //
    },
    new_mutex,
    pm_runtime::Usage,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
        Arc,
        Mutex, //
    },
    transmute::FromBytes,
    types::ForeignOwnable,
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader,
        UserSliceWriter, //
    },
    uapi,
    uapi_bytes::{
        copy_struct_from_user,
        read_user_u32, //
    },
    uapi_ioctl::{
        VFIO_DEVICE_ATTACH_IOMMUFD_PT,
        VFIO_DEVICE_BIND_IOMMUFD,
        VFIO_DEVICE_DETACH_IOMMUFD_PT,
        VFIO_DEVICE_FEATURE,
        VFIO_DEVICE_GET_REGION_INFO, //
    },
    uuid::Uuid,
};

/// One open file of a device.
#[pin_data(PinnedDrop)]
pub(crate) struct DeviceFile {
    pub(crate) device: Arc<VfioDevice>,
    /// The iommufd the file is bound to: `Some` once `VFIO_DEVICE_BIND_IOMMUFD` succeeded, or
    /// from the start for a file the group handed out.
    #[pin]
    iommufd: Mutex<Option<ARef<Ctx>>>,
    /// Set (with release ordering) once the file is bound: it then has access to the device.
    /// Read without a lock, as `mmap` runs under the mm's lock, which a bind (copying to the
    /// user with the file's lock held) may take.
    granted: Atomic<bool>,
    /// For a file the group handed out, the group's file: it keeps the group open, and with
    /// it the group's container, while the device is open through this file.
    #[cfg(CONFIG_VFIO_GROUP)]
    group_file: Option<ARef<File>>,
    /// The KVM instance `vfio_file_set_kvm` linked to the file (only kept, never
    /// dereferenced: no driver uses it yet).
    pub(crate) kvm: Atomic<usize>,
}

/// The end of `T`'s field at `offset` of type `F` (C's `offsetofend`).
const fn end_of<F>(offset: usize) -> usize {
    offset + size_of::<F>()
}

/// Reads the first `len` bytes of a `T` from userspace (the rest stays zero): `EFAULT` if
/// they cannot be read.
fn read_head<T: FromBytes + kernel::transmute::AsBytes + pin_init::Zeroable>(
    arg: usize,
    len: usize,
) -> Result<T> {
    let mut val: T = pin_init::zeroed();
    let bytes = val.as_bytes_mut();
    let len = len.min(bytes.len());
    UserSlice::new(UserPtr::from_addr(arg), len)
        .reader()
        .read_slice(&mut bytes[..len])?;
    Ok(val)
}

/// Writes `val` to the user's `u32` at `addr`.
fn write_u32(addr: usize, val: u32) -> Result {
    UserSlice::new(UserPtr::from_addr(addr), size_of::<u32>())
        .writer()
        .write(&val)
}

/// `VFIO_DEVICE_GET_REGION_INFO`: the driver describes region `index`; `EINVAL` if `argsz`
/// does not cover the struct or the driver has no such region, as upstream. A region with
/// capabilities gets `VFIO_REGION_INFO_FLAG_CAPS` and its chain after the struct, or, if
/// `argsz` leaves no room for it, the `argsz` it needs and `cap_offset` 0.
fn region_info(vdev: &VfioDevice, arg: usize) -> Result<isize> {
    type Info = uapi::vfio_region_info;
    let min_size = size_of::<Info>();
    let mut info: Info = read_head(arg, min_size)?;
    if (info.argsz as usize) < min_size {
        return Err(EINVAL);
    }
    let region = vdev.ops().region_info(vdev, info.index)?;
    info.flags = region.flags;
    info.cap_offset = 0;
    info.size = region.size;
    info.offset = region.offset;
    if !region.caps.is_empty() {
        info.flags |= uapi::VFIO_REGION_INFO_FLAG_CAPS;
        let needed = min_size + region.caps.len();
        if (info.argsz as usize) < needed {
            info.argsz = u32::try_from(needed).map_err(|_| EOVERFLOW)?;
        } else {
            let caps = region.caps.shifted(min_size)?;
            UserSlice::new(UserPtr::from_addr(arg + min_size), caps.len())
                .writer()
                .write_slice(&caps)?;
            info.cap_offset = min_size as u32;
        }
    }
    UserSlice::new(UserPtr::from_addr(arg), min_size)
        .writer()
        .write(&info)?;
    Ok(0)
}

impl DeviceFile {
    /// Whether the file is bound (may use the device).
    fn granted(&self) -> bool {
        self.granted.load(Acquire)
    }

    /// `VFIO_DEVICE_BIND_IOMMUFD`: opens the device for this file, bound to the iommufd given.
    /// As upstream: `EFAULT` for an unreadable argument, `EINVAL` if `argsz` is short of
    /// `out_devid`, `E2BIG` for a longer struct without a zero tail, `EINVAL` for a negative fd,
    /// unknown flags, a file already bound, a token the driver does not take, or a device open
    /// through another file; `EFAULT` for an unreadable token and `EACCES` for a VF token that
    /// does not match (or none where one is needed); `EBADF` for an fd that is not open,
    /// `EBADFD` for one that is not an iommufd; then the errors of binding the device.
    fn bind(&self, arg: usize) -> Result<isize> {
        type Bind = uapi::vfio_device_bind_iommufd;
        if self.through_group() {
            return Err(EINVAL);
        }
        let min_size = end_of::<u32>(offset_of!(Bind, out_devid));
        let user_size = read_user_u32(arg)? as usize;
        if user_size < min_size {
            return Err(EINVAL);
        }
        let bind: Bind = copy_struct_from_user(arg, user_size)?;
        if bind.iommufd < 0 || bind.flags & !uapi::VFIO_DEVICE_BIND_FLAG_TOKEN != 0 {
            return Err(EINVAL);
        }
        // While bound through its cdev the device keeps its group from being opened.
        #[cfg(CONFIG_VFIO_GROUP)]
        self.device.group.block()?;
        let bound = self.bind_blocked(arg, &bind);
        #[cfg(CONFIG_VFIO_GROUP)]
        if bound.is_err() {
            self.device.group.unblock();
        }
        bound
    }

    /// The part of [`DeviceFile::bind`] that runs with the group blocked.
    fn bind_blocked(&self, arg: usize, bind: &uapi::vfio_device_bind_iommufd) -> Result<isize> {
        let mut iommufd = self.iommufd.lock();
        let _set = self.device.set.lock();
        let mut state = self.device.state.lock();
        if iommufd.is_some() {
            return Err(EINVAL);
        }
        let ops = self.device.ops();
        let with_token = bind.flags & uapi::VFIO_DEVICE_BIND_FLAG_TOKEN != 0;
        if ops.takes_token() {
            let token = match with_token {
                true => Some(Uuid::from_user(UserPtr::from_addr(
                    bind.token_uuid_ptr as usize,
                ))?),
                false => None,
            };
            ops.match_token(&self.device, token.as_ref())?;
        } else if with_token {
            return Err(EINVAL);
        }
        let file = LocalFile::fget(bind.iommufd as u32).map_err(|_| EBADF)?;
        let ctx = Ctx::from_file(&file)?;
        drop(file);
        let devid = self.device.open_cdev(&mut state, &ctx)?;
        let out = arg + offset_of!(uapi::vfio_device_bind_iommufd, out_devid);
        if let Err(e) = write_u32(out, devid) {
            self.device.close(&mut state);
            return Err(e);
        }
        *iommufd = Some(ctx);
        self.granted.store(true, Release);
        Ok(0)
    }

    /// Whether the group handed this file out.
    fn through_group(&self) -> bool {
        #[cfg(CONFIG_VFIO_GROUP)]
        return self.group_file.is_some();
        #[cfg(not(CONFIG_VFIO_GROUP))]
        false
    }

    /// A new file of `device`, not bound yet: for its cdev node, or, with `group_file`, for its
    /// group to hand out. `ENODEV` once the device is being unregistered.
    fn new(
        device: &Arc<VfioDevice>,
        #[cfg(CONFIG_VFIO_GROUP)] group_file: Option<ARef<File>>,
    ) -> Result<Pin<KBox<Self>>> {
        device.file_opened()?;
        let file = KBox::pin_init(
            pin_init!(Self {
                device: device.clone(),
                iommufd <- new_mutex!(None),
                granted: Atomic::new(false),
                #[cfg(CONFIG_VFIO_GROUP)]
                group_file,
                kvm: Atomic::new(0),
            }),
            GFP_KERNEL_ACCOUNT,
        );
        // Once made, the file counts itself closed when dropped.
        file.inspect_err(|_| device.file_closed())
    }

    /// A new file of `device` for its group, whose file is `group_file`, to hand out once the
    /// group opened the device for it ([`DeviceFile::grant`]).
    #[cfg(CONFIG_VFIO_GROUP)]
    pub(crate) fn for_group(
        device: &Arc<VfioDevice>,
        group_file: ARef<File>,
    ) -> Result<Pin<KBox<Self>>> {
        Self::new(device, Some(group_file))
    }

    /// The group opened the device for this file, bound to `ictx` (none for a no-IOMMU device
    /// in a VFIO container): the file has access now, and closes the device when dropped.
    #[cfg(CONFIG_VFIO_GROUP)]
    pub(crate) fn grant(&self, ictx: Option<ARef<Ctx>>) {
        *self.iommufd.lock() = ictx;
        self.granted.store(true, Release);
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`: attaches the device, or one of its PASIDs, to an IOAS or
    /// a HWPT, and writes back the HWPT's id. As upstream: `EFAULT`, `EINVAL` for a short
    /// `argsz` or unknown flags, `EOPNOTSUPP` for a PASID when the driver attaches none; then
    /// iommufd's errors (`ENOENT` for no such object, ...).
    fn attach_pt(&self, arg: usize) -> Result<isize> {
        type Attach = uapi::vfio_device_attach_iommufd_pt;
        let min_size = end_of::<u32>(offset_of!(Attach, pt_id));
        let attach: Attach = read_head(arg, min_size)?;
        let pasid = self.pasid_arg(
            arg,
            attach.argsz,
            attach.flags,
            min_size,
            offset_of!(Attach, pasid),
            uapi::VFIO_DEVICE_ATTACH_PASID,
        )?;
        let vdev = &*self.device;
        let ops = vdev.ops();
        let mut state = vdev.state.lock();
        let hwpt = match pasid {
            Some(pasid) => ops.pasid_attach_ioas(vdev, &mut state.phys, pasid, attach.pt_id)?,
            None => ops.attach_ioas(vdev, &mut state.phys, attach.pt_id)?,
        };
        if let Err(e) = write_u32(arg + offset_of!(Attach, pt_id), hwpt) {
            // As upstream, the whole device is detached (whatever was attached).
            ops.detach_ioas(vdev, &mut state.phys);
            return Err(e);
        }
        Ok(0)
    }

    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT`: detaches the device or one of its PASIDs; errors as
    /// for attaching.
    fn detach_pt(&self, arg: usize) -> Result<isize> {
        type Detach = uapi::vfio_device_detach_iommufd_pt;
        let min_size = end_of::<u32>(offset_of!(Detach, flags));
        let detach: Detach = read_head(arg, min_size)?;
        let pasid = self.pasid_arg(
            arg,
            detach.argsz,
            detach.flags,
            min_size,
            offset_of!(Detach, pasid),
            uapi::VFIO_DEVICE_DETACH_PASID,
        )?;
        let vdev = &*self.device;
        let mut state = vdev.state.lock();
        match pasid {
            Some(pasid) => vdev.ops().pasid_detach_ioas(vdev, &mut state.phys, pasid),
            None => vdev.ops().detach_ioas(vdev, &mut state.phys),
        }
        Ok(0)
    }

    /// The PASID of an attach or detach argument whose mandatory part ends at `min_size`, if
    /// `flags` has the PASID flag `pasid_flag`, read from `pasid_offset`.
    fn pasid_arg(
        &self,
        arg: usize,
        argsz: u32,
        flags: u32,
        min_size: usize,
        pasid_offset: usize,
        pasid_flag: u32,
    ) -> Result<Option<u32>> {
        let argsz = argsz as usize;
        if argsz < min_size || flags & !pasid_flag != 0 {
            return Err(EINVAL);
        }
        if flags & pasid_flag == 0 {
            return Ok(None);
        }
        if !self.device.ops().pasid_ops() {
            return Err(EOPNOTSUPP);
        }
        if argsz < end_of::<u32>(pasid_offset) {
            return Err(EINVAL);
        }
        Ok(Some(read_user_u32(arg + pasid_offset)?))
    }

    /// `VFIO_DEVICE_FEATURE`: the common checks, then the driver (the core has no feature of
    /// its own yet: migration and DMA logging come with drivers that have them).
    fn feature(&self, arg: usize) -> Result<isize> {
        type Feature = uapi::vfio_device_feature;
        let min_size = end_of::<u32>(offset_of!(Feature, flags));
        let argsz = read_user_u32(arg)? as usize;
        let flags = read_user_u32(arg + offset_of!(Feature, flags))?;
        if argsz < min_size {
            return Err(EINVAL);
        }
        let get = uapi::VFIO_DEVICE_FEATURE_GET;
        let set = uapi::VFIO_DEVICE_FEATURE_SET;
        let probe = uapi::VFIO_DEVICE_FEATURE_PROBE;
        if flags & !(uapi::VFIO_DEVICE_FEATURE_MASK | get | set | probe) != 0 {
            return Err(EINVAL);
        }
        if flags & probe == 0 && flags & get != 0 && flags & set != 0 {
            return Err(EINVAL);
        }
        self.device
            .ops()
            .device_feature(&self.device, flags, arg + min_size, argsz - min_size)
    }
}

#[pinned_drop]
impl PinnedDrop for DeviceFile {
    fn drop(self: Pin<&mut Self>) {
        let bound = self.iommufd.lock().take();
        if self.through_group() {
            // Granted once the group opened the device for the file.
            #[cfg(CONFIG_VFIO_GROUP)]
            if self.granted() {
                self.device.group.close_device(&self.device);
            }
        } else if bound.is_some() {
            {
                let _set = self.device.set.lock();
                self.device.close(&mut self.device.state.lock());
            }
            #[cfg(CONFIG_VFIO_GROUP)]
            self.device.group.unblock();
        }
        // The iommufd reference goes after the device was unbound from it.
        drop(bound);
        self.device.file_closed();
    }
}

#[vtable]
impl CdevFile for DeviceFile {
    type Data = Arc<VfioDevice>;
    type Ptr = Pin<KBox<Self>>;

    fn open(device: &Arc<VfioDevice>, _file: &File) -> Result<Self::Ptr> {
        Self::new(
            device,
            #[cfg(CONFIG_VFIO_GROUP)]
            None,
        )
    }

    /// Every file of the device maps into the device's address space, so that the driver can
    /// zap the mappings of all of them, as upstream's files take the device inode's.
    fn shared_mapping<'a>(
        me: <Self::Ptr as ForeignOwnable>::Borrowed<'a>,
    ) -> Option<&'a SharedMapping> {
        Some(me.get_ref().device.mapping())
    }

    fn ioctl(me: Pin<&Self>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        if cmd == VFIO_DEVICE_BIND_IOMMUFD {
            return me.bind(arg);
        }
        if !me.granted() {
            return Err(EINVAL);
        }
        let vdev = &*me.device;
        let _awake = match vdev.ops().runtime_pm() {
            true => Some(Usage::resume_and_get(vdev.parent())?),
            false => None,
        };
        let cdev = !me.through_group();
        match cmd {
            VFIO_DEVICE_ATTACH_IOMMUFD_PT if cdev => me.attach_pt(arg),
            VFIO_DEVICE_DETACH_IOMMUFD_PT if cdev => me.detach_pt(arg),
            VFIO_DEVICE_FEATURE => me.feature(arg),
            VFIO_DEVICE_GET_REGION_INFO => region_info(vdev, arg),
            _ => vdev.ops().ioctl(vdev, cmd, arg),
        }
    }

    fn read(
        me: Pin<&Self>,
        _file: &LocalFile,
        buf: &mut UserSliceWriter,
        pos: &mut i64,
    ) -> Result<usize> {
        if !me.granted() {
            return Err(EINVAL);
        }
        me.device.ops().read(&me.device, buf, pos)
    }

    fn write(
        me: Pin<&Self>,
        _file: &LocalFile,
        buf: &mut UserSliceReader,
        pos: &mut i64,
    ) -> Result<usize> {
        if !me.granted() {
            return Err(EINVAL);
        }
        me.device.ops().write(&me.device, buf, pos)
    }

    fn mmap(me: Pin<&Self>, _file: &File, vma: &VmaNew) -> Result {
        if !me.granted() {
            return Err(EINVAL);
        }
        me.device.ops().mmap(&me.device, vma)
    }
}

/// The device file behind `file`, if it is one (a cdev's or one a group handed out).
pub(crate) fn of_file(file: &File) -> Option<Pin<&DeviceFile>> {
    kernel::cdev::CdevDevice::<DeviceFile>::file_data(file)
}

impl DeviceFile {
    /// Links the KVM instance `kvm` (0 for none) to the file.
    pub(crate) fn set_kvm(&self, kvm: usize) {
        self.kvm.store(kvm, Relaxed);
    }
}
