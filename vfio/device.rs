// SPDX-License-Identifier: GPL-2.0

//! VFIO devices: what a VFIO driver implements ([`VfioDeviceOps`]), how it registers a device
//! ([`Registration`]), and the open count that turns the opens of userspace into the driver's
//! first-open and last-close callbacks.
//!
//! A driver registers each device it takes; the device gets an index, with
//! `VFIO_DEVICE_CDEV` its node `/dev/vfio/devices/vfioN` ([`crate::cdev`]), and with
//! `VFIO_GROUP` a place in the group of its IOMMU group ([`crate::group`]). A file of the cdev
//! gives nothing until it is bound to an iommufd: only then is the device *opened* (bound to
//! the iommufd, then the driver's `open_device`), and only one cdev file at a time may have it
//! open. The group opens the device for each device file it hands out, several at a time if
//! asked; the first open binds it to the group's iommufd context and attaches it to that
//! context's compat IOAS. When the last file that opened it is closed, the device is closed.
//!
//! Unregistering removes the device from its group and its node at once, and then waits until
//! every file of the device is
//! closed (asking the driver to ask its user, [`VfioDeviceOps::request`]), so that nothing of
//! the driver's device is reached after its driver let go of it.
//!
//! Devices that reset together form a *device set* ([`crate::device_set`]); opens and closes
//! happen under the set's lock, so that a driver holding it sees the open state of every
//! member stand still.
//!
//! Lock order: a group's `state`, then a device file's binding lock, then the device's set,
//! then the device's `state`.

use crate::iommufd::PhysicalBinding;
#[cfg(CONFIG_VFIO_GROUP)]
use kernel::capability::{
    capable,
    Capability, //
};
use kernel::{
    device::{
        Bound,
        Device, //
    },
    iommufd::Ctx,
    mm::virt::{
        SharedMapping,
        VmaNew, //
    },
    new_condvar, new_mutex,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        CondVar,
        CondVarTimeoutResult,
        Mutex, //
    },
    uaccess::{
        UserSliceReader,
        UserSliceWriter, //
    },
    uuid::Uuid,
};

/// What a VFIO driver does for its devices. Every method but the iommufd ones has a default
/// that refuses as upstream does when a driver leaves the callback out; the iommufd ones default
/// to binding and attaching the physical device (upstream's `vfio_iommufd_physical_*`).
pub(crate) trait VfioDeviceOps: Send + Sync {
    /// The first user opened the device (after it was bound to the user's iommufd).
    /// `dev` is the parent, bound (the device's state is locked meanwhile: use `dev`, not
    /// [`VfioDevice::bound_parent`]).
    fn open_device(&self, _vdev: &VfioDevice, _dev: &Device<Bound>) -> Result {
        Ok(())
    }

    /// The last user closed the device (before it is unbound from the iommufd).
    /// `dev` as for `open_device`.
    fn close_device(&self, _vdev: &VfioDevice, _dev: &Device<Bound>) {}

    /// The driver's own state, for a driver that reaches the other devices of a device set
    /// (vfio-pci's hot reset locks and zaps each of them): `None` by default.
    fn as_any(&self) -> Option<&(dyn core::any::Any + Send + Sync)> {
        None
    }

    /// A device ioctl the core does not answer itself: `EINVAL` by default.
    fn ioctl(&self, _vdev: &VfioDevice, _cmd: u32, _arg: usize) -> Result<isize> {
        Err(EINVAL)
    }

    /// `read()` of the device file at `*pos`: `EINVAL` by default.
    fn read(
        &self,
        _vdev: &VfioDevice,
        _buf: &mut UserSliceWriter,
        _pos: &mut i64,
    ) -> Result<usize> {
        Err(EINVAL)
    }

    /// `write()` of the device file at `*pos`: `EINVAL` by default.
    fn write(
        &self,
        _vdev: &VfioDevice,
        _buf: &mut UserSliceReader,
        _pos: &mut i64,
    ) -> Result<usize> {
        Err(EINVAL)
    }

    /// `mmap()` of the device file: `EINVAL` by default.
    fn mmap(&self, _vdev: &VfioDevice, _vma: &VmaNew) -> Result {
        Err(EINVAL)
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` for region `index` (upstream's `get_region_info_caps`);
    /// the core reads and answers the ioctl, capabilities included. `EINVAL` by default,
    /// as upstream for a driver without regions.
    fn region_info(&self, _vdev: &VfioDevice, _index: u32) -> Result<RegionInfo> {
        Err(EINVAL)
    }

    /// `VFIO_DEVICE_FEATURE` for a feature the core does not know: `ENOTTY` by default.
    fn device_feature(
        &self,
        _vdev: &VfioDevice,
        _flags: u32,
        _arg: usize,
        _argsz: usize,
    ) -> Result<isize> {
        Err(ENOTTY)
    }

    /// The device is being unregistered and the user still has it: ask them to let go.
    /// `count` says how many times they were asked already.
    fn request(&self, _vdev: &VfioDevice, _count: u32) {}

    /// Whether `name`, given to `VFIO_GROUP_GET_DEVICE_FD`, names this device (upstream's
    /// `match`): by default when it is the parent's name. An error refuses the open with it.
    #[cfg(CONFIG_VFIO_GROUP)]
    fn match_name(&self, vdev: &VfioDevice, name: &CStr) -> Result<bool> {
        Ok(vdev.parent().name() == name)
    }

    /// Whether the driver lets the device runtime suspend: the core then resumes it for each
    /// ioctl of its files and keeps it active until the ioctl returns (upstream does so for
    /// drivers with PM callbacks, `vfio_device_pm_runtime_get`).
    fn runtime_pm(&self) -> bool {
        false
    }

    /// Whether the driver checks VF tokens (upstream: it has `match_token_uuid`). A bind with
    /// a token to a device whose driver does not is `EINVAL`, before the token is read.
    fn takes_token(&self) -> bool {
        false
    }

    /// Checks the VF token a user gave to open the device through its cdev, or that none was
    /// given (upstream's `match_token_uuid`); called only if [`VfioDeviceOps::takes_token`].
    fn match_token(&self, _vdev: &VfioDevice, _token: Option<&Uuid>) -> Result {
        Ok(())
    }

    /// Binds the device to `ictx` and returns its id there.
    fn bind_iommufd(
        &self,
        vdev: &VfioDevice,
        phys: &mut PhysicalBinding,
        ictx: &Ctx,
    ) -> Result<u32> {
        phys.bind(vdev.parent(), ictx)
    }

    /// Unbinds the device from its iommufd, detaching whatever it is attached to.
    fn unbind_iommufd(&self, _vdev: &VfioDevice, phys: &mut PhysicalBinding) {
        phys.unbind();
    }

    /// Attaches the device to the IOAS or HWPT `pt_id` (replacing its attachment, if any) and
    /// returns the id of the HWPT it uses.
    fn attach_ioas(
        &self,
        _vdev: &VfioDevice,
        phys: &mut PhysicalBinding,
        pt_id: u32,
    ) -> Result<u32> {
        phys.attach(pt_id)
    }

    /// Detaches the device, if attached.
    fn detach_ioas(&self, _vdev: &VfioDevice, phys: &mut PhysicalBinding) {
        phys.detach();
    }

    /// Whether the driver attaches PASIDs of the device (upstream: it has `pasid_attach_ioas`);
    /// `EOPNOTSUPP` for the PASID variants if not.
    fn pasid_ops(&self) -> bool {
        true
    }

    /// Attaches PASID `pasid` of the device to `pt_id`, as [`VfioDeviceOps::attach_ioas`].
    fn pasid_attach_ioas(
        &self,
        _vdev: &VfioDevice,
        phys: &mut PhysicalBinding,
        pasid: u32,
        pt_id: u32,
    ) -> Result<u32> {
        phys.pasid_attach(pasid, pt_id)
    }

    /// Detaches PASID `pasid` of the device, if attached.
    fn pasid_detach_ioas(&self, _vdev: &VfioDevice, phys: &mut PhysicalBinding, pasid: u32) {
        phys.pasid_detach(pasid);
    }
}

/// The checks every `VFIO_DEVICE_FEATURE` handler starts with (upstream's
/// `vfio_check_feature`): `EINVAL` for a `GET` or `SET` the feature does not offer
/// (`supported`), for neither without `PROBE`, or for data shorter than `min_size`. `false`
/// for a probe, which is answered (0) with nothing done; `true` to go on.
#[cfg_attr(
    not(CONFIG_VFIO_PCI),
    expect(dead_code, reason = "vfio-pci's features are the only ones")
)]
pub(crate) fn check_feature(
    flags: u32,
    argsz: usize,
    supported: u32,
    min_size: usize,
) -> Result<bool> {
    let ops =
        flags & (kernel::uapi::VFIO_DEVICE_FEATURE_GET | kernel::uapi::VFIO_DEVICE_FEATURE_SET);
    if ops & !supported != 0 {
        return Err(EINVAL);
    }
    if flags & kernel::uapi::VFIO_DEVICE_FEATURE_PROBE != 0 {
        return Ok(false);
    }
    if ops == 0 || argsz < min_size {
        return Err(EINVAL);
    }
    Ok(true)
}

/// Answers `VFIO_DEVICE_GET_INFO` at `arg` as upstream drivers do: `EINVAL` if `argsz` does not
/// reach `num_irqs`; as much of `struct vfio_device_info` as `argsz` covers, with no
/// capabilities.
pub(crate) fn answer_device_info(
    arg: usize,
    flags: u32,
    num_regions: u32,
    num_irqs: u32,
) -> Result<isize> {
    type Info = kernel::uapi::vfio_device_info;
    let min_size = core::mem::offset_of!(Info, num_irqs) + core::mem::size_of::<u32>();
    let argsz = kernel::uapi_bytes::read_user_u32(arg)?;
    if (argsz as usize) < min_size {
        return Err(EINVAL);
    }
    let info = Info {
        argsz,
        flags,
        num_regions,
        num_irqs,
        cap_offset: 0,
        pad: 0,
    };
    let len = (argsz as usize).min(core::mem::size_of::<Info>());
    kernel::uaccess::UserSlice::new(kernel::uaccess::UserPtr::from_addr(arg), len)
        .writer()
        .write_slice(&kernel::transmute::AsBytes::as_bytes(&info)[..len])?;
    Ok(0)
}

/// What a driver says of one of its regions (`struct vfio_region_info` without the header).
#[derive(Default)]
pub(crate) struct RegionInfo {
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub(crate) flags: u32,
    /// The region's size; 0 for a region the device does not have.
    pub(crate) size: u64,
    /// Where the region starts in the device file.
    pub(crate) offset: u64,
    /// Its capabilities (`VFIO_REGION_INFO_CAP_*`), if any.
    pub(crate) caps: InfoCaps,
}

/// A chain of capabilities an info ioctl returns after its struct (upstream's
/// `struct vfio_info_cap`): each a `struct vfio_info_cap_header` and its body, 8-byte aligned,
/// each header's `next` the offset of the next one, 0 for the last.
#[derive(Default)]
pub(crate) struct InfoCaps {
    buf: KVec<u8>,
    /// Where the last header starts in `buf`.
    last: Option<usize>,
}

impl InfoCaps {
    /// Size of `struct vfio_info_cap_header`.
    const HEADER: usize = 8;

    /// Adds capability `id` of `version` with `body` after its header.
    pub(crate) fn add(&mut self, id: u16, version: u16, body: &[u8]) -> Result {
        let start = self.buf.len();
        let len = (Self::HEADER + body.len()).next_multiple_of(8);
        self.buf.reserve(len, GFP_KERNEL)?;
        self.buf.extend_from_slice(&id.to_ne_bytes(), GFP_KERNEL)?;
        self.buf
            .extend_from_slice(&version.to_ne_bytes(), GFP_KERNEL)?;
        self.buf
            .extend_from_slice(&0u32.to_ne_bytes(), GFP_KERNEL)?;
        self.buf.extend_from_slice(body, GFP_KERNEL)?;
        self.buf.resize(start + len, 0, GFP_KERNEL)?;
        if let Some(last) = self.last.replace(start) {
            self.set_next(last, start)?;
        }
        Ok(())
    }

    /// How many bytes the chain takes.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether there are no capabilities.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The chain as it reads `offset` bytes into the user's buffer: every `next` but the last
    /// moved by `offset` (upstream's `vfio_info_cap_shift`).
    pub(crate) fn shifted(mut self, offset: usize) -> Result<KVec<u8>> {
        let mut at = 0;
        while at < self.buf.len() && Some(at) != self.last {
            let next = self.next(at)?;
            self.set_next(at, next + offset)?;
            at = next;
        }
        Ok(self.buf)
    }

    fn next(&self, header: usize) -> Result<usize> {
        let field = self.buf.get(header + 4..header + 8).ok_or(EINVAL)?;
        Ok(u32::from_ne_bytes([field[0], field[1], field[2], field[3]]) as usize)
    }

    fn set_next(&mut self, header: usize, next: usize) -> Result {
        let next = u32::try_from(next).map_err(|_| EOVERFLOW)?;
        self.buf
            .get_mut(header + 4..header + 8)
            .ok_or(EINVAL)?
            .copy_from_slice(&next.to_ne_bytes());
        Ok(())
    }
}

/// The parent of a VFIO device as a bound device, for the driver's callbacks
/// ([`VfioDevice::bound_parent`]). It counts as an open file of the device while it lives, so
/// that unregistering, which the driver does before its device is unbound, waits for it.
pub(crate) struct BoundParent<'a> {
    vdev: &'a VfioDevice,
}

impl core::ops::Deref for BoundParent<'_> {
    type Target = Device<Bound>;

    fn deref(&self) -> &Device<Bound> {
        // SAFETY: While `self` lives it is counted in `files` (see `bound_parent`), so
        // `wait_unused` has not returned; the driver unregisters the device, and so waits there,
        // before its device is unbound, and registered it after it was bound.
        unsafe { self.vdev.parent.as_bound() }
    }
}

impl Drop for BoundParent<'_> {
    fn drop(&mut self) {
        self.vdev.file_closed();
    }
}

/// What a device's lock guards; its open state changes only with its set locked too.
pub(crate) struct State {
    /// Whether the device is still registered: new files are refused once it is not.
    registered: bool,
    /// Open files of the device, bound or not.
    files: u32,
    /// How many users have the device open (at most one through the cdev).
    open_count: u32,
    /// Whether the device is open through its cdev (upstream's `cdev_opened`).
    cdev_opened: bool,
    /// The binding of the opened device to its user's iommufd.
    pub(crate) phys: PhysicalBinding,
}

/// A device a VFIO driver registered.
#[pin_data]
pub(crate) struct VfioDevice {
    /// The device the driver drives (a PCI function, say): the parent of the VFIO device.
    parent: ARef<Device>,
    /// The device's number: `vfioN`.
    pub(crate) index: u32,
    /// The VFIO group of the device's IOMMU group.
    #[cfg(CONFIG_VFIO_GROUP)]
    pub(crate) group: Arc<crate::group::Group>,
    ops: Arc<dyn VfioDeviceOps>,
    /// The devices that reset with this one.
    pub(crate) set: Arc<crate::device_set::DeviceSet>,
    #[pin]
    pub(crate) state: Mutex<State>,
    /// Signalled when a file of the device is closed.
    #[pin]
    closed: CondVar,
    /// The address space of every file of the device, through either way in (upstream's device
    /// inode): the driver zaps its mappings of the device through it.
    mapping: SharedMapping,
}

impl VfioDevice {
    /// The address space the mappings of every file of the device are in.
    pub(crate) fn mapping(&self) -> &SharedMapping {
        &self.mapping
    }

    /// The device the driver drives.
    pub(crate) fn parent(&self) -> &Device {
        &self.parent
    }

    /// The driver's callbacks.
    pub(crate) fn ops(&self) -> &dyn VfioDeviceOps {
        &*self.ops
    }

    /// Whether a user has the device open.
    pub(crate) fn is_open(&self) -> bool {
        self.state.lock().open_count != 0
    }

    /// Whether the device is open through its cdev (not its group).
    pub(crate) fn cdev_opened(&self) -> bool {
        self.state.lock().cdev_opened
    }

    /// The iommufd context the device is bound to, if it is (upstream's
    /// `vfio_iommufd_device_ictx`).
    pub(crate) fn iommufd_ctx(&self) -> Option<ARef<Ctx>> {
        let state = self.state.lock();
        state.phys.device().map(|bound| bound.ctx().into())
    }

    /// Whether `ictx` owns the device, and its id there (upstream's `vfio_iommufd_get_dev_id`):
    /// the id if the device is bound to `ictx`; `ENOENT` if it is not, but a device of its
    /// IOMMU group is, so that `ictx` owns the group; `ENODEV` if `ictx` does not own it.
    pub(crate) fn id_in(&self, ictx: &Ctx) -> Result<u32> {
        {
            let state = self.state.lock();
            if let Some(bound) = state.phys.device() {
                if bound.ctx().as_raw() == ictx.as_raw() {
                    return Ok(bound.id());
                }
            }
        }
        let group = kernel::iommu::group::Group::of(&self.parent).map_err(|_| ENODEV)?;
        if ictx.has_group(&group) {
            Err(ENOENT)
        } else {
            Err(ENODEV)
        }
    }

    /// A new file of the device: `ENODEV` once it is being unregistered.
    pub(crate) fn file_opened(&self) -> Result {
        let mut state = self.state.lock();
        if !state.registered {
            return Err(ENODEV);
        }
        state.files += 1;
        Ok(())
    }

    /// The parent as a bound device, for as long as the caller keeps the device's `state`
    /// locked: `ENODEV` if the device was unregistered and its last file closed.
    fn bound_in<'a>(&'a self, state: &'a State) -> Result<&'a Device<Bound>> {
        if !state.registered && state.files == 0 {
            return Err(ENODEV);
        }
        // SAFETY: The device is registered or has a file open, and cannot lose both while
        // `state` stays locked: `wait_unused`, which the driver's remove goes through before
        // its device is unbound, returns only once it saw neither (see `BoundParent`).
        Ok(unsafe { self.parent.as_bound() })
    }

    /// The parent as a bound device, for the driver's callbacks to reach its hardware: they
    /// run for an open file, so this cannot fail there. `ENODEV` once the device was
    /// unregistered and its last file closed, when the parent may be unbound.
    pub(crate) fn bound_parent(&self) -> Result<BoundParent<'_>> {
        let mut state = self.state.lock();
        if !state.registered && state.files == 0 {
            return Err(ENODEV);
        }
        // Counted as a file: see `BoundParent`.
        state.files += 1;
        Ok(BoundParent { vdev: self })
    }

    /// A file of the device was closed.
    pub(crate) fn file_closed(&self) {
        let mut state = self.state.lock();
        state.files -= 1;
        if state.files == 0 {
            self.closed.notify_all();
        }
    }

    /// Opens the device for a user of the cdev bound to `ictx`, with the set's lock held:
    /// `EINVAL` if somebody has it open already (the cdev has no safe way to share it). The
    /// first open binds the device to `ictx` and calls the driver's `open_device`; on failure
    /// nothing is left. Returns the device's id in `ictx`.
    pub(crate) fn open_cdev(&self, state: &mut State, ictx: &Ctx) -> Result<u32> {
        if state.open_count != 0 {
            return Err(EINVAL);
        }
        let devid = self.first_open(state, ictx)?;
        state.cdev_opened = true;
        Ok(devid)
    }

    /// Binds the device to `ictx` and calls the driver's `open_device`, leaving nothing on
    /// failure; returns the device's id in `ictx`.
    fn first_open(&self, state: &mut State, ictx: &Ctx) -> Result<u32> {
        let devid = self.ops.bind_iommufd(self, &mut state.phys, ictx)?;
        if let Err(e) = self.ops.open_device(self, self.bound_in(state)?) {
            self.ops.unbind_iommufd(self, &mut state.phys);
            return Err(e);
        }
        state.open_count = 1;
        Ok(devid)
    }

    /// Opens the device for a user of its group, whose iommufd context is `ictx`, with the
    /// group's and the set's locks held. Unlike the cdev the group may open a device several
    /// times; the first open binds it to `ictx` (see [`VfioDevice::open_cdev`]) and attaches it
    /// to the context's compat IOAS, where the container's mappings are (`ENODEV` if the
    /// context has none any more). A device of a no-IOMMU group (`noiommu`) is neither bound
    /// nor attached: nothing translates its DMA. Through an iommufd only the privileged may
    /// open one, and only if they did not ask for translation (no compat IOAS): `EPERM`.
    #[cfg(CONFIG_VFIO_GROUP)]
    pub(crate) fn open_group(
        &self,
        state: &mut State,
        ictx: Option<&Ctx>,
        noiommu: bool,
    ) -> Result {
        if state.open_count != 0 {
            state.open_count += 1;
            return Ok(());
        }
        if noiommu {
            if let Some(ictx) = ictx {
                if !capable(Capability::SYS_RAWIO) || ictx.compat_ioas_id().is_ok() {
                    return Err(EPERM);
                }
            }
            self.ops.open_device(self, self.bound_in(state)?)?;
            state.open_count = 1;
            return Ok(());
        }
        let ictx = ictx.ok_or(EINVAL)?;
        self.first_open(state, ictx)?;
        let attached = ictx
            .compat_ioas_id()
            .and_then(|ioas| self.ops.attach_ioas(self, &mut state.phys, ioas));
        if let Err(e) = attached {
            self.close(state);
            return Err(e);
        }
        Ok(())
    }

    /// Closes the device for a user, with the set's lock held; the last close calls the
    /// driver's `close_device` and unbinds the device from its iommufd.
    pub(crate) fn close(&self, state: &mut State) {
        match state.open_count {
            0 => pr_warn!("closing vfio{}, which is not open\n", self.index),
            1 => {
                match self.bound_in(state) {
                    Ok(dev) => self.ops.close_device(self, dev),
                    Err(_) => pr_warn!("vfio{}: closed with its parent unbound\n", self.index),
                }
                self.ops.unbind_iommufd(self, &mut state.phys);
                state.open_count = 0;
                state.cdev_opened = false;
            }
            _ => state.open_count -= 1,
        }
    }

    /// Refuses new files, then waits until every file of the device is closed, asking the
    /// driver every 10 seconds to have its user let go, as upstream. A signal ends the asking
    /// (not the wait: the driver's device must not be reached after this returns).
    fn wait_unused(&self) {
        let mut state = self.state.lock();
        state.registered = false;
        let mut asked = 0;
        let mut interrupted = false;
        while state.files != 0 {
            if interrupted {
                self.closed.wait(&mut state);
                continue;
            }
            drop(state);
            self.ops.request(self, asked);
            if asked == 0 {
                pr_info!(
                    "vfio{} is in use, unregistering waits until it is released\n",
                    self.index
                );
            }
            asked += 1;
            state = self.state.lock();
            if state.files == 0 {
                break;
            }
            let ten_seconds = kernel::time::msecs_to_jiffies(10_000);
            if let CondVarTimeoutResult::Signal { .. } = self
                .closed
                .wait_interruptible_timeout(&mut state, ten_seconds)
            {
                pr_info!(
                    "vfio{}: unregistering goes on waiting, no longer asking\n",
                    self.index
                );
                interrupted = true;
            }
        }
    }
}

/// A registered VFIO device; dropping it unregisters the device, waiting until userspace has
/// closed every file of it.
pub(crate) struct Registration {
    // Field order matters: the node goes (no new opens) before the wait in `drop`, and the
    // group goes last.
    #[cfg(CONFIG_VFIO_DEVICE_CDEV)]
    node: Option<crate::cdev::Node>,
    device: Arc<VfioDevice>,
    /// Gives the index back when the registration goes.
    _index: crate::registry::Index,
    _set: SetUse,
    #[cfg(CONFIG_VFIO_GROUP)]
    _group: GroupUse,
}

/// A registering device's use of its set (and the device, once added), given back on drop.
struct SetUse(Arc<crate::device_set::DeviceSet>, Option<Arc<VfioDevice>>);

impl Drop for SetUse {
    fn drop(&mut self) {
        crate::device_set::put(&self.0, self.1.as_ref());
    }
}

/// A registered device's use of its group, given back on drop.
#[cfg(CONFIG_VFIO_GROUP)]
struct GroupUse(Arc<crate::group::Group>, ARef<Device>);

#[cfg(CONFIG_VFIO_GROUP)]
impl Drop for GroupUse {
    fn drop(&mut self) {
        crate::group::put(&self.0, &self.1);
    }
}

impl Registration {
    /// Registers `parent`, driven by `ops`, as a VFIO device, in the device set of id `set_id`
    /// (see [`crate::device_set`]: devices that reset together register with the same id), or
    /// in a set of its own for `None`. `EINVAL` if the device has no IOMMU group (no IOMMU
    /// protects it), unless no-IOMMU mode is on.
    pub(crate) fn new(
        parent: &Device,
        ops: Arc<dyn VfioDeviceOps>,
        set_id: Option<usize>,
    ) -> Result<Self> {
        #[cfg(not(CONFIG_VFIO_GROUP))]
        kernel::iommu::group::Group::of(parent).map_err(|_| EINVAL)?;
        #[cfg(CONFIG_VFIO_GROUP)]
        let group = GroupUse(crate::group::get(parent)?, parent.into());
        #[cfg(CONFIG_VFIO_GROUP)]
        let device_group = group.0.clone();
        let set = SetUse(crate::device_set::get(set_id)?, None);
        let index = crate::registry::Index::alloc()?;
        let number = index.get();
        let device_set = set.0.clone();
        let mapping = SharedMapping::new(c"[vfio-device]")?;
        let device = Arc::pin_init(
            pin_init!(VfioDevice {
                parent: parent.into(),
                index: number,
                #[cfg(CONFIG_VFIO_GROUP)]
                group: device_group,
                ops,
                set: device_set,
                state <- new_mutex!(State {
                    registered: true,
                    files: 0,
                    open_count: 0,
                    cdev_opened: false,
                    phys: PhysicalBinding::new(),
                }),
                closed <- new_condvar!(),
                mapping,
            }),
            GFP_KERNEL,
        )?;
        // A no-IOMMU device is offered through its group only: the cdev binds to an iommufd,
        // which needs an IOMMU.
        #[cfg(all(CONFIG_VFIO_DEVICE_CDEV, CONFIG_VFIO_GROUP))]
        let node = match device.group.noiommu {
            true => None,
            false => Some(crate::cdev::Node::add(&device)?),
        };
        #[cfg(all(CONFIG_VFIO_DEVICE_CDEV, not(CONFIG_VFIO_GROUP)))]
        let node = Some(crate::cdev::Node::add(&device)?);
        let mut set = set;
        set.0.add(&device)?;
        set.1 = Some(device.clone());
        #[cfg(CONFIG_VFIO_GROUP)]
        device.group.add_device(&device)?;
        Ok(Self {
            #[cfg(CONFIG_VFIO_DEVICE_CDEV)]
            node,
            device,
            _index: index,
            _set: set,
            #[cfg(CONFIG_VFIO_GROUP)]
            _group: group,
        })
    }

    /// The registered device.
    pub(crate) fn device(&self) -> &Arc<VfioDevice> {
        &self.device
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        #[cfg(CONFIG_VFIO_GROUP)]
        self.device.group.remove_device(&self.device);
        #[cfg(CONFIG_VFIO_DEVICE_CDEV)]
        drop(self.node.take());
        self.device.wait_unused();
    }
}

#[kunit_tests(rust_vfio_info_caps)]
mod tests {
    use super::InfoCaps;

    fn u32_at(buf: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
    }

    /// Two capabilities, 8-byte aligned, chained by offsets from the user's struct.
    #[test]
    fn chain_is_aligned_and_shifted() {
        let mut caps = InfoCaps::default();
        assert!(caps.is_empty());
        caps.add(3, 1, &[]).expect("add");
        caps.add(1, 2, &[1, 2, 3, 4, 5]).expect("add");
        assert_eq!(caps.len(), 8 + 16);
        let buf = caps.shifted(32).expect("shift");
        assert_eq!(u16::from_ne_bytes([buf[0], buf[1]]), 3);
        assert_eq!(u16::from_ne_bytes([buf[2], buf[3]]), 1);
        assert_eq!(u32_at(&buf, 4), 32 + 8);
        assert_eq!(u16::from_ne_bytes([buf[8], buf[9]]), 1);
        assert_eq!(u16::from_ne_bytes([buf[10], buf[11]]), 2);
        assert_eq!(u32_at(&buf, 12), 0);
        assert_eq!(&buf[16..24], &[1, 2, 3, 4, 5, 0, 0, 0]);
    }
}
