// SPDX-License-Identifier: GPL-2.0

//! One open `/dev/iommu`: its objects and the ioctl dispatch.
//!
//! Every iommufd ioctl number is `_IO(';', nr)`: the struct size travels inside the struct, not
//! in the number. Dispatch therefore goes by `nr`, then checks the whole number, then reads the
//! struct with the extensible-struct rules of [`UserCmd`].

#[cfg(CONFIG_IOMMUFD_TEST)]
use crate::selftest;
use crate::{
    device,
    fault,
    hw_pagetable,
    ioas,
    mmap::MmapTable,
    object::{
        Object,
        ObjectTable, //
    },
    pages::{
        Charger,
        OwnerCache, //
    },
    ucmd::UserCmd,
    veventq,
    vfio_compat::{
        self,
        CompatIoas, //
    },
    viommu, //
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
    fs::File,
    ioctl::{
        _IO,
        _IOC_NR, //
    },
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    mm::virt::VmaNew,
    new_mutex,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uapi,
    uapi_bytes::read_user_u32, //
};

/// Whose limit pinned pages count against (`IOMMU_OPTION_RLIMIT_MODE`).
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) enum AccountMode {
    /// The user's `locked_vm`, against `RLIMIT_MEMLOCK` (the default, as VFIO type1).
    User,
    /// The process's `pinned_vm`.
    Mm,
}

/// The state behind one open file of `/dev/iommu`.
#[pin_data]
pub(crate) struct Iommufd {
    /// Shared with the emulated-device accesses, which may outlive the file.
    pub(crate) objects: Arc<ObjectTable>,
    /// Whether pinned pages count per process (`AccountMode::Mm`) rather than per user. It
    /// only changes while the context has no objects, under the object table's lock, so a map
    /// (which holds an IOAS) always sees the value it started with.
    account_per_mm: Atomic<bool>,
    /// The owner of the pages the context's first mapping process maps.
    owners: OwnerCache,
    /// The IOAS the VFIO container ioctls act on.
    #[pin]
    pub(crate) compat_ioas: Mutex<CompatIoas>,
    /// Set (under `compat_ioas`'s lock) when a VFIO group in no-IOMMU mode was set to the
    /// context: the container ioctls then offer only `VFIO_NOIOMMU_IOMMU`.
    pub(crate) no_iommu_mode: Atomic<bool>,
    /// `/dev/iommu`'s device, which dma-buf attachments name as the importer; `None` where
    /// the engine runs without `/dev/iommu` (`IOMMUFD=n`), for VFIO's container alone.
    pub(crate) dev: Option<ARef<kernel::device::Device>>,
    /// The driver memory userspace can map through the file.
    #[pin]
    pub(crate) mmaps: MmapTable,
    /// Whether VFIO's own container made the context (`iommufd_ctx_create()`). Its type1 maps
    /// then take device memory (`VM_PFNMAP`, a BAR's `mmap()`) as upstream's type1 does; the
    /// compat ioctls on `/dev/iommu` refuse it, as upstream's iommufd does.
    pub(crate) vfio_container: bool,
}

/// One past the last command number of upstream's ioctl table. Numbers from there on are not
/// iommufd commands: no argument is read for them.
#[cfg(not(CONFIG_IOMMUFD_TEST))]
const CMD_END: u32 = uapi::IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA + 1;
#[cfg(CONFIG_IOMMUFD_TEST)]
const CMD_END: u32 = TEST_CMD_NR + 1;

/// The number of `IOMMU_TEST_CMD` (`IOMMUFD_CMD_BASE + 32`, as iommufd_test.h defines it).
#[cfg(CONFIG_IOMMUFD_TEST)]
const TEST_CMD_NR: u32 = uapi::IOMMUFD_CMD_BASE + 32;

const fn iommufd_cmd(nr: u32) -> u32 {
    _IO(uapi::IOMMUFD_TYPE as u32, nr)
}

/// The size of the field `field` selects, without reading it.
fn field_size<T, F>(_field: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// Runs `$handler` on the command struct `uapi::$t`, whose mandatory fields end with `$last`
/// (upstream's `IOCTL_OP`).
macro_rules! op {
    ($ictx:expr, $arg:expr, $t:ident, $last:ident, $handler:expr) => {
        run(
            $ictx,
            $arg,
            offset_of!(uapi::$t, $last) + field_size(|c: &uapi::$t| &c.$last),
            $handler,
        )
    };
}

/// Reads the command struct `T` (mandatory fields ending at `min_size`) and runs `f` on it.
fn run<T: FromBytes + AsBytes>(
    ictx: &Iommufd,
    (arg, user_size): (usize, usize),
    min_size: usize,
    f: fn(&Iommufd, UserCmd<T>) -> Result<isize>,
) -> Result<isize> {
    f(ictx, UserCmd::read(arg, user_size, min_size)?)
}

/// `IOMMU_OPTION`: reads or sets an option of the context or of one object; answers in
/// `val64` only.
fn option_ioctl(ictx: &Iommufd, mut ucmd: UserCmd<uapi::iommu_option>) -> Result<isize> {
    if ucmd.cmd.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    match ucmd.cmd.option_id {
        uapi::iommufd_option_IOMMU_OPTION_RLIMIT_MODE => ictx.rlimit_mode_option(&mut ucmd.cmd)?,
        uapi::iommufd_option_IOMMU_OPTION_HUGE_PAGES => ioas::huge_pages_option(ictx, &mut ucmd)?,
        _ => return Err(EOPNOTSUPP),
    }
    ucmd.respond_part(offset_of!(uapi::iommu_option, val64), size_of::<u64>())?;
    Ok(0)
}

/// `IOMMU_DESTROY`: removes any object by id, and releases what it held.
fn destroy_ioctl(ictx: &Iommufd, ucmd: UserCmd<uapi::iommu_destroy>) -> Result<isize> {
    let id = ucmd.cmd.id;
    match ictx.objects.destroy(id)? {
        Object::HwptPaging(hwpt) => hw_pagetable::release(ictx, &hwpt),
        Object::HwptNested(hwpt) => hwpt.release(ictx),
        Object::Viommu(viommu) => viommu.release(ictx),
        Object::Vdevice(vdev) => vdev.release(ictx, id),
        Object::Veventq(veventq) => veventq.release(ictx),
        Object::HwQueue(queue) => queue.release(ictx),
        #[cfg(CONFIG_IOMMUFD_TEST)]
        Object::Selftest(mock) => selftest::release(ictx, &mock),
        Object::Ioas(_) | Object::Device(_) | Object::Fault(_) => {}
    }
    Ok(0)
}

impl Iommufd {
    /// `IOMMU_OPTION_RLIMIT_MODE`: 0 accounts pinned pages per user, 1 per process. Changing it
    /// needs `CAP_SYS_RESOURCE` and a context with no objects yet.
    fn rlimit_mode_option(&self, cmd: &mut uapi::iommu_option) -> Result {
        if cmd.object_id != 0 {
            return Err(EOPNOTSUPP);
        }
        match u32::from(cmd.op) {
            uapi::iommufd_option_ops_IOMMU_OPTION_OP_GET => {
                cmd.val64 = u64::from(self.account_mode() == AccountMode::Mm);
                Ok(())
            }
            uapi::iommufd_option_ops_IOMMU_OPTION_OP_SET => {
                if !capable(Capability::SYS_RESOURCE) {
                    return Err(EPERM);
                }
                // As upstream: EBUSY for a context with objects comes before EINVAL.
                self.objects.if_empty(|| {
                    let per_mm = match cmd.val64 {
                        0 => false,
                        1 => true,
                        _ => return Err(EINVAL),
                    };
                    self.account_per_mm.store(per_mm, Relaxed);
                    Ok(())
                })?
            }
            _ => Err(EOPNOTSUPP),
        }
    }

    /// Whose limit pages pinned for this context count against.
    pub(crate) fn account_mode(&self) -> AccountMode {
        if self.account_per_mm.load(Relaxed) {
            AccountMode::Mm
        } else {
            AccountMode::User
        }
    }

    /// Who pages the current process maps now are charged to when pinned.
    pub(crate) fn charger(&self) -> Result<Charger> {
        Ok(Charger {
            mode: self.account_mode(),
            owner: self.owners.current()?,
        })
    }

    fn dispatch(&self, cmd: u32, arg: usize) -> Result<isize> {
        let nr = _IOC_NR(cmd);
        if !(uapi::IOMMUFD_CMD_BASE..CMD_END).contains(&nr) {
            return vfio_compat::ioctl(self, cmd, arg);
        }
        // As upstream: the size word is read before the number is validated further, so a
        // bad pointer is EFAULT for any number in iommufd's range. It is read once.
        let user_size = read_user_u32(arg)? as usize;
        if cmd != iommufd_cmd(nr) {
            return Err(ENOTTY);
        }
        let arg = (arg, user_size);
        match nr {
            uapi::IOMMUFD_CMD_DESTROY => op!(self, arg, iommu_destroy, id, destroy_ioctl),
            uapi::IOMMUFD_CMD_IOAS_ALLOC => {
                op!(self, arg, iommu_ioas_alloc, out_ioas_id, ioas::alloc_ioctl)
            }
            uapi::IOMMUFD_CMD_IOAS_IOVA_RANGES => op!(
                self,
                arg,
                iommu_ioas_iova_ranges,
                out_iova_alignment,
                ioas::iova_ranges_ioctl
            ),
            uapi::IOMMUFD_CMD_IOAS_ALLOW_IOVAS => op!(
                self,
                arg,
                iommu_ioas_allow_iovas,
                allowed_iovas,
                ioas::allow_iovas_ioctl
            ),
            uapi::IOMMUFD_CMD_IOAS_MAP => op!(self, arg, iommu_ioas_map, iova, ioas::map_ioctl),
            uapi::IOMMUFD_CMD_IOAS_MAP_FILE => {
                op!(self, arg, iommu_ioas_map_file, iova, ioas::map_file_ioctl)
            }
            uapi::IOMMUFD_CMD_IOAS_COPY => {
                op!(self, arg, iommu_ioas_copy, src_iova, ioas::copy_ioctl)
            }
            uapi::IOMMUFD_CMD_IOAS_UNMAP => {
                op!(self, arg, iommu_ioas_unmap, length, ioas::unmap_ioctl)
            }
            uapi::IOMMUFD_CMD_VFIO_IOAS => op!(
                self,
                arg,
                iommu_vfio_ioas,
                __reserved,
                vfio_compat::vfio_ioas_ioctl
            ),
            uapi::IOMMUFD_CMD_OPTION => op!(self, arg, iommu_option, val64, option_ioctl),
            uapi::IOMMUFD_CMD_HWPT_ALLOC => {
                op!(
                    self,
                    arg,
                    iommu_hwpt_alloc,
                    __reserved,
                    hw_pagetable::alloc_ioctl
                )
            }
            uapi::IOMMUFD_CMD_HWPT_INVALIDATE => op!(
                self,
                arg,
                iommu_hwpt_invalidate,
                __reserved,
                hw_pagetable::invalidate_ioctl
            ),
            uapi::IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING => op!(
                self,
                arg,
                iommu_hwpt_set_dirty_tracking,
                __reserved,
                hw_pagetable::set_dirty_tracking_ioctl
            ),
            uapi::IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP => op!(
                self,
                arg,
                iommu_hwpt_get_dirty_bitmap,
                data,
                hw_pagetable::get_dirty_bitmap_ioctl
            ),
            uapi::IOMMUFD_CMD_FAULT_QUEUE_ALLOC => op!(
                self,
                arg,
                iommu_fault_alloc,
                out_fault_fd,
                fault::alloc_ioctl
            ),
            uapi::IOMMUFD_CMD_IOAS_CHANGE_PROCESS => op!(
                self,
                arg,
                iommu_ioas_change_process,
                __reserved,
                ioas::change_process_ioctl
            ),
            uapi::IOMMUFD_CMD_VIOMMU_ALLOC => {
                op!(
                    self,
                    arg,
                    iommu_viommu_alloc,
                    out_viommu_id,
                    viommu::alloc_ioctl
                )
            }
            uapi::IOMMUFD_CMD_VDEVICE_ALLOC => op!(
                self,
                arg,
                iommu_vdevice_alloc,
                virt_id,
                viommu::vdevice_alloc_ioctl
            ),
            uapi::IOMMUFD_CMD_VEVENTQ_ALLOC => op!(
                self,
                arg,
                iommu_veventq_alloc,
                __reserved,
                veventq::alloc_ioctl
            ),
            uapi::IOMMUFD_CMD_HW_QUEUE_ALLOC => op!(
                self,
                arg,
                iommu_hw_queue_alloc,
                length,
                viommu::hw_queue_alloc_ioctl
            ),
            uapi::IOMMUFD_CMD_GET_HW_INFO => {
                op!(self, arg, iommu_hw_info, __reserved, device::hw_info_ioctl)
            }
            #[cfg(CONFIG_IOMMUFD_TEST)]
            TEST_CMD_NR => run(self, arg, selftest::MIN_SIZE, selftest::test_cmd),
            _ => Err(ENOTTY),
        }
    }
}

impl Iommufd {
    /// A new context, with no objects; `dev` is `/dev/iommu`'s misc device, if there is one;
    /// `vfio_container` if VFIO's own container makes it.
    pub(crate) fn new(
        dev: Option<ARef<kernel::device::Device>>,
        vfio_container: bool,
    ) -> Result<Pin<KBox<Self>>> {
        KBox::try_pin_init(
            try_pin_init!(Self {
                objects: Arc::pin_init(ObjectTable::new(), GFP_KERNEL_ACCOUNT)?,
                account_per_mm: Atomic::new(false),
                owners: OwnerCache::new(),
                compat_ioas <- new_mutex!(None),
                no_iommu_mode: Atomic::new(false),
                dev,
                mmaps <- MmapTable::new(),
                vfio_container,
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }
}

#[vtable]
impl MiscDevice for Iommufd {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Self::Ptr> {
        Iommufd::new(Some(misc.device().into()), false)
    }

    fn ioctl(me: Pin<&Self>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        me.get_ref().dispatch(cmd, arg)
    }

    fn mmap(me: Pin<&Self>, _file: &File, vma: &VmaNew) -> Result {
        me.mmaps.mmap(&me.objects, vma)
    }
}
