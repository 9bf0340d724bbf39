// SPDX-License-Identifier: GPL-2.0

//! `IOMMU_TEST_CMD`: the test ABI of `CONFIG_IOMMUFD_TEST`.
//!
//! The kernel's own iommufd selftests (tools/testing/selftests/iommu) drive the subsystem
//! through this ioctl: they make mock devices with mock IOMMU domains, reserve IOVA, and read
//! back what the engine did to the domains and to the pages. It speaks the ABI of
//! drivers/iommu/iommufd/iommufd_test.h exactly, so those tests build and run unmodified.
//!
//! The command is one struct with a union of per-operation arguments. It is handled here as
//! bytes, with every field located by `offset_of!` on the bindgen types of that header, so
//! there is no union access and no `unsafe`.

use crate::{
    access::Access,
    context::Iommufd,
    device::{
        AllocatedDomain,
        Device,
        DeviceIommu,
        HwInfo, //
    },
    fault::PageRequest,
    hw_pagetable::{
        Hwpt,
        HwptPaging, //
    },
    io_pagetable::{
        AccessUser,
        IoPagetable, //
    },
    mock_domain::MockDomain,
    mock_nested::MockNested,
    nested::AllocatedNested,
    object::Object,
    range_map::Range,
    ucmd::{
        UserCmd,
        UserData, //
    },
};
use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    alloc::KVVec,
    anon_file::AnonFile,
    bindings,
    dma_buf::{
        self,
        ContiguousMemory,
        DmaBuf,
        Exporter,
        PhysRange,
        ResvGuard, //
    },
    fs::file::FileDescriptorReservation,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::{
            ordering::Relaxed,
            Atomic, //
        },
        Arc,
        Mutex, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
    user_pin::inspect_user_page,
};

/// The command as bytes.
pub(crate) type TestCmd = [u8; size_of::<bindings::iommu_test_cmd>()];

/// Where the mandatory part of the command ends.
pub(crate) const MIN_SIZE: usize = offset_of!(bindings::iommu_test_cmd, last) + size_of::<u32>();

/// Where the per-operation union starts.
const ARGS: usize = offset_of!(bindings::iommu_test_cmd, __bindgen_anon_1);

type AddReserved = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_1;
type MockDomainOut = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_2;
type MockDomainFlags = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_3;
type MockDomainReplace = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_4;
type CheckMap = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_5;
type CheckRefs = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_6;
type CheckDevCache = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_16;
type CreateAccess = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_7;
type DestroyAccessPages = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_8;
type AccessPagesArgs = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_9;
type AccessRwArgs = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_10;
type AccessReplaceIoas = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_12;
type Dirty = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_13;
type CheckIotlb = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_14;
type TriggerIopf = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_15;
type TriggerVevent = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_17;
type PasidAttach = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_18;
type PasidCheck = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_21;
type DmabufGet = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_22;
type DmabufRevoke = bindings::iommu_test_cmd__bindgen_ty_1__bindgen_ty_23;

/// Reads the `u32` at byte `at` of the command.
fn u32_at(cmd: &TestCmd, at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&cmd[at..at + 4]);
    u32::from_ne_bytes(b)
}

/// Reads the `u64` at byte `at` of the command.
fn u64_at(cmd: &TestCmd, at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&cmd[at..at + 8]);
    u64::from_ne_bytes(b)
}

/// Writes the `u32` at byte `at` of the command.
fn set_u32(cmd: &mut TestCmd, at: usize, v: u32) {
    cmd[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

/// Writes the `u64` at byte `at` of the command.
fn set_u64(cmd: &mut TestCmd, at: usize, v: u64) {
    cmd[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// The byte offset of field `$f` of union member type `$t`.
macro_rules! arg {
    ($t:ty, $f:ident) => {
        ARGS + offset_of!($t, $f)
    };
}

/// The mock IOMMU of one mock device.
#[pin_data]
pub(crate) struct MockIommu {
    /// `MOCK_FLAGS_DEVICE_*`.
    flags: u32,
    /// The device's cache entries, which invalidations through a vIOMMU change.
    #[pin]
    cache: Mutex<[u32; bindings::MOCK_DEV_CACHE_NUM as usize]>,
    /// Armed by attaching PASID 1024, so that the next change of it fails (`ENOMEM`), as
    /// upstream's mock does to test that a failed replace leaves the PASID as it was.
    pasid_1024_fail: Atomic<bool>,
}

impl MockIommu {
    /// Zeroes cache entry `id` of the device, or all of them for `None`; an `id` past the
    /// last changes nothing.
    pub(crate) fn invalidate_cache(&self, id: Option<u32>) {
        let mut cache = self.cache.lock();
        match id {
            Some(id) => {
                if let Some(entry) = cache.get_mut(id as usize) {
                    *entry = 0;
                }
            }
            None => *cache = [0; bindings::MOCK_DEV_CACHE_NUM as usize],
        }
    }
}

impl DeviceIommu for MockIommu {
    fn hw_info(&self, data_type: u32) -> Result<HwInfo> {
        if data_type != uapi::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_DEFAULT
            && data_type != bindings::IOMMU_HW_INFO_TYPE_SELFTEST
        {
            return Err(EOPNOTSUPP);
        }
        // struct iommu_test_hw_info: flags, then the register value.
        let mut data = KVec::with_capacity(8, GFP_KERNEL)?;
        data.extend_from_slice(&0u32.to_ne_bytes(), GFP_KERNEL)?;
        data.extend_from_slice(
            &bindings::IOMMU_HW_INFO_SELFTEST_REGVAL.to_ne_bytes(),
            GFP_KERNEL,
        )?;
        let mut capabilities =
            u64::from(uapi::iommufd_hw_capabilities_IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED);
        if self.flags & bindings::MOCK_FLAGS_DEVICE_NO_DIRTY == 0 {
            capabilities |= u64::from(uapi::iommufd_hw_capabilities_IOMMU_HW_CAP_DIRTY_TRACKING);
        }
        let max_pasid_log2 = if self.flags & bindings::MOCK_FLAGS_DEVICE_PASID != 0 {
            bindings::MOCK_PASID_WIDTH as u8
        } else {
            0
        };
        Ok(HwInfo {
            data_type: bindings::IOMMU_HW_INFO_TYPE_SELFTEST,
            data,
            capabilities,
            max_pasid_log2,
        })
    }

    fn mock(&self) -> Option<&MockIommu> {
        Some(self)
    }

    fn viommu_type(&self, viommu_type: u32) -> bool {
        viommu_type == bindings::IOMMU_VIOMMU_TYPE_SELFTEST
    }

    fn alloc_domain(&self) -> Result<AllocatedDomain> {
        let mock = MockDomain::new_default()?;
        Ok(AllocatedDomain {
            domain: mock.clone(),
            mock: Some(mock),
        })
    }

    /// As upstream's mock: dirty tracking (`EOPNOTSUPP` for a device without it), the nest
    /// parent and PASID flags, and `IOMMU_HWPT_DATA_SELFTEST` data choosing the page table
    /// (`MOCK_IOMMUPT_DEFAULT` or `MOCK_IOMMUPT_HUGE`).
    fn alloc_domain_flags(&self, flags: u32, data: &UserData) -> Result<AllocatedDomain> {
        let dirty = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
        let valid = dirty
            | uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_NEST_PARENT
            | uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_PASID;
        if flags & !valid != 0 || (flags & dirty != 0 && !self.dirty_tracking()) {
            return Err(EOPNOTSUPP);
        }
        let huge = if data.len == 0 {
            false
        } else {
            if data.data_type != bindings::IOMMU_HWPT_DATA_SELFTEST {
                return Err(EOPNOTSUPP);
            }
            type Config = [u8; size_of::<bindings::iommu_hwpt_selftest>()];
            let iotlb = offset_of!(bindings::iommu_hwpt_selftest, iotlb);
            let config: Config =
                data.read(bindings::IOMMU_HWPT_DATA_SELFTEST, iotlb + size_of::<u32>())?;
            let at = offset_of!(bindings::iommu_hwpt_selftest, pagetable_type);
            match config.get(at..at + 4).map(|b| [b[0], b[1], b[2], b[3]]) {
                Some(b) if u32::from_ne_bytes(b) == bindings::MOCK_IOMMUPT_DEFAULT => false,
                Some(b) if u32::from_ne_bytes(b) == bindings::MOCK_IOMMUPT_HUGE => true,
                _ => return Err(EOPNOTSUPP),
            }
        };
        let mock = MockDomain::new_paging(huge, flags & dirty != 0)?;
        Ok(AllocatedDomain {
            domain: mock.clone(),
            mock: Some(mock),
        })
    }

    fn dirty_tracking(&self) -> bool {
        self.flags & bindings::MOCK_FLAGS_DEVICE_NO_DIRTY == 0
    }

    /// Any mock domain, but one that tracks dirty pages only for a device that can
    /// (`MOCK_FLAGS_DEVICE_NO_DIRTY`), as upstream's mock.
    fn check_domain(&self, hwpt: &Hwpt) -> Result {
        let mock = match hwpt {
            Hwpt::Paging(hwpt) => {
                hwpt.mock.is_some() && (self.dirty_tracking() || !hwpt.domain.dirty_capable())
            }
            Hwpt::Nested(hwpt) => hwpt.mock.is_some(),
        };
        if mock {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }

    fn nesting(&self) -> bool {
        true
    }

    /// Only `IOMMU_HWPT_ALLOC_PASID` among the flags, as upstream's mock.
    fn alloc_nested(
        &self,
        parent: &HwptPaging,
        flags: u32,
        data: &UserData,
    ) -> Result<AllocatedNested> {
        if parent.mock.is_none() {
            return Err(EINVAL);
        }
        if flags & !uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_PASID != 0 {
            return Err(EOPNOTSUPP);
        }
        let mock = MockNested::from_user(data)?;
        Ok(AllocatedNested {
            domain: mock.clone(),
            mock: Some(mock),
        })
    }

    fn user_pasid_table(&self) -> bool {
        true
    }

    fn pasid_ops(&self) -> bool {
        true
    }

    fn max_pasids(&self) -> u32 {
        if self.flags & bindings::MOCK_FLAGS_DEVICE_PASID != 0 {
            1 << bindings::MOCK_PASID_WIDTH
        } else {
            0
        }
    }

    /// Every domain is accepted, except that PASID 1024 fails every second change to a
    /// domain, counting from its attachment; blocking it disarms that.
    fn set_dev_pasid(&self, pasid: u32, hwpt: Option<&Hwpt>) -> Result {
        if pasid == 1024 {
            if hwpt.is_none() {
                self.pasid_1024_fail.store(false, Relaxed);
            } else if self.pasid_1024_fail.load(Relaxed) {
                self.pasid_1024_fail.store(false, Relaxed);
                return Err(ENOMEM);
            } else {
                self.pasid_1024_fail.store(true, Relaxed);
            }
        }
        Ok(())
    }
}

/// A mock device made by `IOMMU_TEST_OP_MOCK_DOMAIN`: the test's handle (a selftest object)
/// on a device bound to the iommufd.
pub(crate) struct MockDevice {
    pub(crate) dev: Arc<Device>,
}

/// What destroying a mock device's selftest object releases: the device's binding.
pub(crate) fn release(ictx: &Iommufd, mock: &MockDevice) {
    mock.dev.unbind(ictx);
}

/// `IOMMU_TEST_CMD`.
pub(crate) fn test_cmd(ictx: &Iommufd, mut ucmd: UserCmd<TestCmd>) -> Result<isize> {
    let op = u32_at(&ucmd.cmd, offset_of!(bindings::iommu_test_cmd, op));
    let id = u32_at(&ucmd.cmd, offset_of!(bindings::iommu_test_cmd, id));
    let cmd = &ucmd.cmd;
    match op {
        bindings::IOMMU_TEST_OP_ADD_RESERVED => {
            let start = u64_at(cmd, arg!(AddReserved, start));
            let length = u64_at(cmd, arg!(AddReserved, length));
            let last = start
                .checked_add(length.checked_sub(1).ok_or(EINVAL)?)
                .ok_or(EOVERFLOW)?;
            let ioas = ictx.objects.get_ioas(id)?;
            // Reserved by the test itself, as upstream (no owner that could release it).
            ioas.iopt.reserve(Range { start, last }, 0)?;
            Ok(0)
        }
        bindings::IOMMU_TEST_OP_MOCK_DOMAIN | bindings::IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS => {
            let flags = if op == bindings::IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS {
                u32_at(cmd, arg!(MockDomainFlags, dev_flags))
            } else {
                0
            };
            mock_domain(ictx, &mut ucmd, id, flags)
        }
        bindings::IOMMU_TEST_OP_MD_CHECK_MAP => check_map(
            ictx,
            id,
            u64_at(cmd, arg!(CheckMap, iova)),
            u64_at(cmd, arg!(CheckMap, length)),
            u64_at(cmd, arg!(CheckMap, uptr)),
        ),
        bindings::IOMMU_TEST_OP_MD_CHECK_REFS => check_refs(
            u64_at(cmd, arg!(CheckRefs, uptr)),
            u64_at(cmd, arg!(CheckRefs, length)),
            u32_at(cmd, arg!(CheckRefs, refs)),
        ),
        bindings::IOMMU_TEST_OP_DEV_CHECK_CACHE => {
            let dev = ictx.objects.get_device(id)?;
            let mock = dev.iommu().mock().ok_or(EINVAL)?;
            let index = u32_at(cmd, arg!(CheckDevCache, id)) as usize;
            let expected = u32_at(cmd, arg!(CheckDevCache, cache));
            let cached = mock.cache.lock().get(index).copied();
            match cached {
                Some(v) if v == expected => Ok(0),
                _ => Err(EINVAL),
            }
        }
        bindings::IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE => {
            let Object::Selftest(mock) = ictx.objects.get(id)? else {
                return Err(ENOENT);
            };
            let hwpt_id = mock
                .dev
                .replace(ictx, u32_at(cmd, arg!(MockDomainReplace, pt_id)))?;
            set_u32(&mut ucmd.cmd, arg!(MockDomainReplace, pt_id), hwpt_id);
            ucmd.respond()?;
            Ok(0)
        }
        bindings::IOMMU_TEST_OP_MD_CHECK_IOTLB => {
            let Object::HwptNested(hwpt) = ictx.objects.get(id)? else {
                return Err(ENOENT);
            };
            let mock = hwpt.mock.as_ref().ok_or(EINVAL)?;
            let expected = u32_at(cmd, arg!(CheckIotlb, iotlb));
            match mock.iotlb(u32_at(cmd, arg!(CheckIotlb, id))) {
                Some(v) if v == expected => Ok(0),
                _ => Err(EINVAL),
            }
        }
        bindings::IOMMU_TEST_OP_DIRTY => mark_dirty(ictx, &mut ucmd, id),
        bindings::IOMMU_TEST_OP_TRIGGER_IOPF => trigger_iopf(ictx, cmd),
        bindings::IOMMU_TEST_OP_TRIGGER_VEVENT => trigger_vevent(ictx, cmd),
        bindings::IOMMU_TEST_OP_PASID_ATTACH
        | bindings::IOMMU_TEST_OP_PASID_REPLACE
        | bindings::IOMMU_TEST_OP_PASID_DETACH
        | bindings::IOMMU_TEST_OP_PASID_CHECK_HWPT => pasid_op(ictx, &mut ucmd, op, id),
        bindings::IOMMU_TEST_OP_CREATE_ACCESS => create_access(ictx, &mut ucmd, id),
        bindings::IOMMU_TEST_OP_ACCESS_PAGES => access_pages(&mut ucmd, id),
        bindings::IOMMU_TEST_OP_DESTROY_ACCESS_PAGES => {
            destroy_access_pages(id, u32_at(cmd, arg!(DestroyAccessPages, access_pages_id)))
        }
        bindings::IOMMU_TEST_OP_ACCESS_RW => access_rw(cmd, id),
        bindings::IOMMU_TEST_OP_ACCESS_REPLACE_IOAS => {
            let test = AnonFile::get::<TestAccess>(id)?;
            test.access
                .set_ioas(u32_at(cmd, arg!(AccessReplaceIoas, ioas_id)))?;
            Ok(0)
        }
        // Upstream limits the temporary batch memory of its engine with this, to test batches
        // that split; ours keeps no temporary memory that grows with a mapping, so there is
        // nothing to limit and the request succeeds as upstream's does.
        bindings::IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT => Ok(0),
        bindings::IOMMU_TEST_OP_DMABUF_GET => dmabuf_get(
            u32_at(cmd, arg!(DmabufGet, length)),
            u32_at(cmd, arg!(DmabufGet, open_flags)),
        ),
        bindings::IOMMU_TEST_OP_DMABUF_REVOKE => dmabuf_revoke(
            u32_at(cmd, arg!(DmabufRevoke, dmabuf_fd)) as i32,
            u32_at(cmd, arg!(DmabufRevoke, revoked)) != 0,
        ),
        _ => Err(EOPNOTSUPP),
    }
}

/// `IOMMU_TEST_OP_MOCK_DOMAIN(_FLAGS)`: makes a mock device, binds it and attaches it to `pt_id`;
/// answers with the ids of the selftest object, the HWPT and the device, in that order of
/// creation (as upstream, which tests may rely on).
fn mock_domain(
    ictx: &Iommufd,
    ucmd: &mut UserCmd<TestCmd>,
    pt_id: u32,
    flags: u32,
) -> Result<isize> {
    let valid = bindings::MOCK_FLAGS_DEVICE_NO_DIRTY | bindings::MOCK_FLAGS_DEVICE_PASID;
    if flags & !valid != 0 {
        return Err(EINVAL);
    }
    let new = ictx.objects.reserve()?;
    let source: Arc<dyn DeviceIommu> = Arc::pin_init(
        pin_init!(MockIommu {
            flags,
            cache <- new_mutex!(
                [bindings::IOMMU_TEST_DEV_CACHE_DEFAULT; bindings::MOCK_DEV_CACHE_NUM as usize]
            ),
            pasid_1024_fail: Atomic::new(false),
        }),
        GFP_KERNEL_ACCOUNT,
    )?;
    let dev = Device::bind(ictx, source)?;
    let hwpt_id = match dev.attach(ictx, pt_id) {
        Ok(id) => id,
        Err(e) => {
            dev.unbind(ictx);
            return Err(e);
        }
    };
    set_u32(&mut ucmd.cmd, arg!(MockDomainOut, out_stdev_id), new.id());
    set_u32(&mut ucmd.cmd, arg!(MockDomainOut, out_hwpt_id), hwpt_id);
    set_u32(&mut ucmd.cmd, arg!(MockDomainOut, out_idev_id), dev.id);
    if let Err(e) = ucmd.respond() {
        dev.unbind(ictx);
        return Err(e);
    }
    let mock = Arc::new(MockDevice { dev }, GFP_KERNEL_ACCOUNT)?;
    new.publish(Object::Selftest(mock));
    Ok(0)
}

/// `IOMMU_TEST_OP_TRIGGER_VEVENT`: mock device `dev_id` reports an event (its virtual id) to
/// the vIOMMU of the nested HWPT it is attached to: `ENOENT` if it is attached to none, or the
/// errors of reporting (`EOPNOTSUPP` if the vIOMMU has no event queue of the type).
fn trigger_vevent(ictx: &Iommufd, cmd: &TestCmd) -> Result<isize> {
    let dev = ictx
        .objects
        .get_device(u32_at(cmd, arg!(TriggerVevent, dev_id)))?;
    if dev.iommu().mock().is_none() {
        return Err(EINVAL);
    }
    let (virt_id, viommu) = dev.attached_viommu().ok_or(ENOENT)?;
    // struct iommu_viommu_event_selftest: the virtual id, as 32 bits.
    let event = (virt_id as u32).to_ne_bytes();
    viommu.report_event(bindings::IOMMU_VEVENTQ_TYPE_SELFTEST, &event)?;
    Ok(0)
}

/// The `IOMMU_TEST_OP_PASID_*` operations on mock device `id`: attach, replace or detach a
/// PASID (answering with the HWPT used), or check what is attached to one (`EINVAL` if not the
/// HWPT given, 0 for none). PASID 0 stands for the device's RID, as in upstream's kAPI.
fn pasid_op(ictx: &Iommufd, ucmd: &mut UserCmd<TestCmd>, op: u32, id: u32) -> Result<isize> {
    let Object::Selftest(mock) = ictx.objects.get(id)? else {
        return Err(ENOENT);
    };
    let cmd = &ucmd.cmd;
    let pasid = u32_at(cmd, arg!(PasidAttach, pasid));
    let pt_id = u32_at(cmd, arg!(PasidAttach, pt_id));
    let dev = &mock.dev;
    let rid = pasid == 0;
    let hwpt_id = match op {
        bindings::IOMMU_TEST_OP_PASID_ATTACH if rid => dev.attach(ictx, pt_id)?,
        bindings::IOMMU_TEST_OP_PASID_ATTACH => dev.pasid_attach(ictx, pasid, pt_id)?,
        bindings::IOMMU_TEST_OP_PASID_REPLACE if rid => dev.replace(ictx, pt_id)?,
        bindings::IOMMU_TEST_OP_PASID_REPLACE => dev.pasid_replace(ictx, pasid, pt_id)?,
        bindings::IOMMU_TEST_OP_PASID_DETACH => {
            if rid {
                dev.detach(ictx);
            } else {
                dev.pasid_detach(ictx, pasid);
            }
            return Ok(0);
        }
        _ => {
            let expected = u32_at(cmd, arg!(PasidCheck, hwpt_id));
            let attached = if rid {
                dev.hwpt_id()
            } else {
                dev.pasid_hwpt(pasid)
            };
            return match attached {
                Some(h) if h == expected => Ok(0),
                None if expected == 0 => Ok(0),
                _ => Err(EINVAL),
            };
        }
    };
    set_u32(&mut ucmd.cmd, arg!(PasidAttach, pt_id), hwpt_id);
    if let Err(e) = ucmd.respond() {
        // An attachment userspace was not told of is undone; a replacement stays, as upstream.
        if op == bindings::IOMMU_TEST_OP_PASID_ATTACH {
            if rid {
                dev.detach(ictx);
            } else {
                dev.pasid_detach(ictx, pasid);
            }
        }
        return Err(e);
    }
    Ok(0)
}

/// The most pages one `IOMMU_TEST_OP_DIRTY` takes: a 16 MiB bitmap, as upstream.
const DIRTY_MAX_BITS: u64 = (16 << 20) * 8;

/// `IOMMU_TEST_OP_DIRTY`: a device wrote to the pages of paging HWPT `id` whose bits are set
/// in the user's bitmap (bit `n`: `page_size` bytes at `iova + n * page_size`); answers with
/// how many bits were set. The mock domain marks each page holding such an address dirty as
/// a whole. `EINVAL` for a zero, misaligned or missing argument and while the HWPT does not
/// track dirty pages, `EOVERFLOW` past [`DIRTY_MAX_BITS`], as upstream.
fn mark_dirty(ictx: &Iommufd, ucmd: &mut UserCmd<TestCmd>, id: u32) -> Result<isize> {
    let cmd = &ucmd.cmd;
    let iova = u64_at(cmd, arg!(Dirty, iova));
    let length = u64_at(cmd, arg!(Dirty, length));
    let page_size = u64_at(cmd, arg!(Dirty, page_size));
    let uptr = u64_at(cmd, arg!(Dirty, uptr));
    if page_size == 0
        || length == 0
        || iova % page_size != 0
        || length % page_size != 0
        || uptr == 0
    {
        return Err(EINVAL);
    }
    let bits = length / page_size;
    if bits > DIRTY_MAX_BITS {
        return Err(EOVERFLOW);
    }
    let mock = mock_of(ictx, id)?;
    if !mock.tracking() {
        return Err(EINVAL);
    }
    // Read as bytes: bit `n` is bit `n % 8` of byte `n / 8` of a little-endian `u64` array.
    let mut map = KVVec::from_elem(0u8, bits.div_ceil(8) as usize, GFP_KERNEL_ACCOUNT)?;
    UserSlice::new(UserPtr::from_addr(uptr as usize), map.len())
        .reader()
        .read_slice(&mut map)?;
    let byte = |n: u64| map.get((n / 8) as usize).copied().unwrap_or(0);
    let bit = |n: u64| byte(n) & (1 << (n % 8)) != 0;
    // Runs of set bits, each marked in one walk of the table.
    let mut count = 0u64;
    let mut n = 0;
    while n < bits {
        if n % 8 == 0 && byte(n) == 0 {
            n += 8;
            continue;
        }
        if !bit(n) {
            n += 1;
            continue;
        }
        let first = n;
        while n < bits && bit(n) {
            n += 1;
        }
        count += n - first;
        mock.mark_dirty(iova + first * page_size, (n - first) * page_size);
    }
    set_u64(&mut ucmd.cmd, arg!(Dirty, out_nr_dirty), count);
    ucmd.respond()?;
    Ok(0)
}

/// `IOMMU_TEST_OP_TRIGGER_IOPF`: mock device `dev_id` faults, as a last-page request with
/// the given PASID (none if 0), group, permissions and address. Succeeds whether or not a fault
/// queue took the request, as upstream.
fn trigger_iopf(ictx: &Iommufd, cmd: &TestCmd) -> Result<isize> {
    let dev = ictx
        .objects
        .get_device(u32_at(cmd, arg!(TriggerIopf, dev_id)))?;
    if dev.iommu().mock().is_none() {
        return Err(EINVAL);
    }
    let pasid = u32_at(cmd, arg!(TriggerIopf, pasid));
    let mut flags = uapi::iommu_hwpt_pgfault_flags_IOMMU_PGFAULT_FLAGS_LAST_PAGE;
    if pasid != 0 {
        flags |= uapi::iommu_hwpt_pgfault_flags_IOMMU_PGFAULT_FLAGS_PASID_VALID;
    }
    // Lost requests are the device's business: it is told, and the mock ignores it.
    let _ = dev.report_fault(PageRequest {
        flags,
        pasid,
        grpid: u32_at(cmd, arg!(TriggerIopf, grpid)),
        perm: u32_at(cmd, arg!(TriggerIopf, perm)),
        addr: u64_at(cmd, arg!(TriggerIopf, addr)),
    });
    Ok(0)
}

/// The mock domain of HWPT `id`: `ENOENT` if `id` is not a paging HWPT, `EINVAL` if its domain
/// is not a mock one.
fn mock_of(ictx: &Iommufd, id: u32) -> Result<Arc<MockDomain>> {
    ictx.objects.get_hwpt_paging(id)?.mock.clone().ok_or(EINVAL)
}

/// `IOMMU_TEST_OP_MD_CHECK_MAP`: checks that `[iova, iova + length)` of mock HWPT `id` maps the
/// memory at user address `uptr`, page by page of the domain; `EINVAL` if not.
fn check_map(ictx: &Iommufd, id: u32, iova: u64, length: u64, uptr: u64) -> Result<isize> {
    let mock = mock_of(ictx, id)?;
    let step = crate::domain::Domain::min_page_size(&*mock);
    if iova % step != 0 || length % step != 0 || uptr % step != 0 {
        return Err(EINVAL);
    }
    uptr.checked_add(length).ok_or(EINVAL)?;
    let mut done = 0;
    while done < length {
        let user = uptr + done;
        let (page, _) = inspect_user_page(user as usize)?;
        let expected = page + user % PAGE_SIZE as u64;
        match mock.translate(iova + done) {
            Some((phys, _)) if phys == expected => {}
            _ => return Err(EINVAL),
        }
        done += step;
    }
    Ok(0)
}

/// `IOMMU_TEST_OP_MD_CHECK_REFS`: checks that each page of `[uptr, uptr + length)` (not of a
/// large folio) has `refs` long-term pins; `EIO` if not.
fn check_refs(uptr: u64, length: u64, refs: u32) -> Result<isize> {
    let page = PAGE_SIZE as u64;
    if length % page != 0 || uptr % page != 0 {
        return Err(EINVAL);
    }
    uptr.checked_add(length).ok_or(EINVAL)?;
    let mut done = 0;
    while done < length {
        if let (_, Some(pins)) = inspect_user_page((uptr + done) as usize)? {
            if pins != refs {
                return Err(EIO);
            }
        }
        done += page;
    }
    Ok(0)
}

/// A pin an access object holds for the test.
struct AccessItem {
    id: u32,
    iova: u64,
    length: u64,
}

/// The pins of one test access object; it drops those an unmap reaches, as a driver must.
#[pin_data]
struct AccessPins {
    /// The pins, and the id the next one gets.
    #[pin]
    items: Mutex<(KVec<AccessItem>, u32)>,
}

impl AccessUser for AccessPins {
    fn unmap(&self, iopt: &IoPagetable, iova: u64, length: u64) {
        let last = iova.saturating_add(length.saturating_sub(1));
        let mut guard = self.items.lock();
        guard.0.retain(|item| {
            let item_last = item.iova + (item.length - 1);
            if iova > item_last || last < item.iova {
                return true;
            }
            iopt.access_unpin(item.iova, item.length, false);
            false
        });
    }
}

/// A test access object: what its file descriptor stands for.
struct TestAccess {
    access: Arc<Access>,
    pins: Arc<AccessPins>,
}

impl Drop for TestAccess {
    fn drop(&mut self) {
        let mut guard = self.pins.items.lock();
        for item in guard.0.drain_all() {
            self.access.unpin_pages(item.iova, item.length);
        }
        drop(guard);
        self.access.detach();
    }
}

/// `IOMMU_TEST_OP_CREATE_ACCESS`: an access object on IOAS `ioas_id`, as a file descriptor.
fn create_access(ictx: &Iommufd, ucmd: &mut UserCmd<TestCmd>, ioas_id: u32) -> Result<isize> {
    let flags = u32_at(&ucmd.cmd, arg!(CreateAccess, flags));
    let needs_pin = bindings::MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES;
    if flags & !needs_pin != 0 {
        return Err(EOPNOTSUPP);
    }
    let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let pins = Arc::pin_init(
        pin_init!(AccessPins {
            items <- new_mutex!((KVec::new(), 0)),
        }),
        GFP_KERNEL_ACCOUNT,
    )?;
    let user: Arc<dyn AccessUser> = pins.clone();
    let access = Access::attach(&ictx.objects, ioas_id, user, flags & needs_pin != 0)?;
    let test = Arc::new(TestAccess { access, pins }, GFP_KERNEL_ACCOUNT)?;
    let file = AnonFile::create(c"[iommufd_test_staccess]", test, bindings::O_RDWR)?;
    set_u32(
        &mut ucmd.cmd,
        arg!(CreateAccess, out_access_fd),
        fd.reserved_fd(),
    );
    // On failure the file, and with it the access, goes away.
    ucmd.respond()?;
    fd.fd_install(file);
    Ok(0)
}

/// `IOMMU_TEST_OP_ACCESS_PAGES`: pins `[iova, iova + length)` through access object `fd`,
/// checks that the pages are those at user address `uptr` (`EBADE` if not; no check for a
/// zero `uptr`) and answers with the pin's id.
fn access_pages(ucmd: &mut UserCmd<TestCmd>, fd: u32) -> Result<isize> {
    let cmd = &ucmd.cmd;
    let flags = u32_at(cmd, arg!(AccessPagesArgs, flags));
    let iova = u64_at(cmd, arg!(AccessPagesArgs, iova));
    let length = u64_at(cmd, arg!(AccessPagesArgs, length));
    let uptr = u64_at(cmd, arg!(AccessPagesArgs, uptr));
    if length > 16 * 1024 * 1024 {
        return Err(ENOMEM);
    }
    if flags & !(bindings::MOCK_FLAGS_ACCESS_WRITE | bindings::MOCK_FLAGS_ACCESS_SYZ) != 0 {
        return Err(EOPNOTSUPP);
    }
    let test = AnonFile::get::<TestAccess>(fd)?;
    if !test.access.pins() {
        return Err(EOPNOTSUPP);
    }
    let mut guard = test.pins.items.lock();
    guard.0.reserve(1, GFP_KERNEL_ACCOUNT)?;
    let write = flags & bindings::MOCK_FLAGS_ACCESS_WRITE != 0;
    let phys = test.access.pin_pages(iova, length, write)?;
    let id = guard.1;
    let res = check_pages(uptr, iova, &phys).and_then(|()| {
        set_u32(
            &mut ucmd.cmd,
            arg!(AccessPagesArgs, out_access_pages_id),
            id,
        );
        ucmd.respond()
    });
    if let Err(e) = res {
        test.access.unpin_pages(iova, length);
        return Err(e);
    }
    guard.1 = id.wrapping_add(1);
    guard
        .0
        .push(AccessItem { id, iova, length }, GFP_KERNEL_ACCOUNT)?;
    Ok(0)
}

/// Checks that `phys` are the pages of the user memory at `uptr`, which corresponds to `iova`
/// (`EBADE` if not); a zero `uptr` skips the check.
fn check_pages(uptr: u64, iova: u64, phys: &[u64]) -> Result {
    if uptr == 0 {
        return Ok(());
    }
    let page = PAGE_SIZE as u64;
    let mut user = uptr.checked_sub(iova & (page - 1)).ok_or(EFAULT)?;
    for &p in phys {
        if inspect_user_page(user as usize)?.0 != p {
            return Err(EBADE);
        }
        user = user.wrapping_add(page);
    }
    Ok(())
}

/// `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES`: drops pin `item` of access object `fd`.
fn destroy_access_pages(fd: u32, item: u32) -> Result<isize> {
    let test = AnonFile::get::<TestAccess>(fd)?;
    let mut guard = test.pins.items.lock();
    let i = guard.0.iter().position(|it| it.id == item).ok_or(ENOENT)?;
    let it = guard.0.remove(i).map_err(|_| ENOENT)?;
    test.access.unpin_pages(it.iova, it.length);
    Ok(0)
}

/// `IOMMU_TEST_OP_ACCESS_RW`: copies between the user buffer at `uptr` and the IOAS memory at
/// `iova` through access object `fd`.
fn access_rw(cmd: &TestCmd, fd: u32) -> Result<isize> {
    let iova = u64_at(cmd, arg!(AccessRwArgs, iova));
    let length = u64_at(cmd, arg!(AccessRwArgs, length));
    let uptr = u64_at(cmd, arg!(AccessRwArgs, uptr));
    let flags = u32_at(cmd, arg!(AccessRwArgs, flags));
    if length > 16 * 1024 * 1024 {
        return Err(ENOMEM);
    }
    let known = bindings::MOCK_ACCESS_RW_WRITE
        | bindings::MOCK_ACCESS_RW_SLOW_PATH
        | bindings::MOCK_FLAGS_ACCESS_SYZ;
    if flags & !known != 0 {
        return Err(EOPNOTSUPP);
    }
    let test = AnonFile::get::<TestAccess>(fd)?;
    let write = flags & bindings::MOCK_ACCESS_RW_WRITE != 0;
    let slow = flags & bindings::MOCK_ACCESS_RW_SLOW_PATH != 0;
    let len = length as usize;
    let mut buf = KVVec::with_capacity(len, GFP_KERNEL_ACCOUNT)?;
    buf.resize(len, 0u8, GFP_KERNEL_ACCOUNT)?;
    let user = UserSlice::new(UserPtr::from_addr(uptr as usize), len);
    if write {
        user.reader().read_slice(&mut buf)?;
        test.access.rw(iova, &mut buf, true, slow)?;
    } else {
        test.access.rw(iova, &mut buf, false, slow)?;
        user.writer().write_slice(&buf)?;
    }
    Ok(0)
}

/// The test ABI's dma-buf exporter (also the KUnit tests'): zeroed kernel memory, which the
/// test can revoke.
pub(crate) struct TestDmaBuf {
    pub(crate) memory: ContiguousMemory,
    /// Read and written under the buffer's reservation lock.
    revoked: Atomic<bool>,
}

impl TestDmaBuf {
    /// An exporter of `len` bytes, not revoked.
    pub(crate) fn new(len: usize) -> Result<Self> {
        Ok(Self {
            memory: ContiguousMemory::new(len, GFP_KERNEL)?,
            revoked: Atomic::new(false),
        })
    }

    /// Revokes (or restores) `buf` and tells its importers; `EOPNOTSUPP` if this type did not
    /// export it.
    pub(crate) fn set_revoked(buf: &DmaBuf, revoked: bool) -> Result {
        let test = buf.exporter::<Self>().ok_or(EOPNOTSUPP)?;
        let resv = buf.lock();
        test.revoked.store(revoked, Relaxed);
        resv.invalidate_mappings();
        Ok(())
    }
}

impl Exporter for TestDmaBuf {
    fn phys(&self, _resv: &ResvGuard<'_>) -> Result<PhysRange> {
        if self.revoked.load(Relaxed) {
            return Err(ENODEV);
        }
        Ok(self.memory.phys())
    }
}

/// `IOMMU_TEST_OP_DMABUF_GET`: exports `length` bytes (rounded up to pages, at most 512
/// pages) of kernel memory as a dma-buf and returns a new fd for it. (Upstream 7.3 returns 0
/// after installing the fd, which its own test does not expect; we return the fd.)
fn dmabuf_get(length: u32, open_flags: u32) -> Result<isize> {
    let page = PAGE_SIZE as u64;
    let len = u64::from(length).div_ceil(page) * page;
    if len == 0 || len > page * 512 {
        return Err(EINVAL);
    }
    let len = len as usize;
    let buf = dma_buf::export(TestDmaBuf::new(len)?, len, open_flags)?;
    Ok(DmaBuf::into_fd(buf, open_flags)? as isize)
}

/// `IOMMU_TEST_OP_DMABUF_REVOKE`: revokes (or restores) a buffer of [`dmabuf_get`] and tells
/// its importers. `EOPNOTSUPP` for another exporter's buffer.
fn dmabuf_revoke(fd: i32, revoked: bool) -> Result<isize> {
    TestDmaBuf::set_revoked(&*DmaBuf::get(fd)?, revoked)?;
    Ok(0)
}
