// SPDX-License-Identifier: GPL-2.0

//! The mock vIOMMU of the test ABI (`IOMMUFD_TEST`), `IOMMU_VIOMMU_TYPE_SELFTEST`.
//!
//! It behaves as upstream's selftest driver, so that tests can see what iommufd asked of a
//! vIOMMU driver:
//! - its driver data (`struct iommu_viommu_selftest`) is a loopback: `out_data` comes back as
//!   `in_data`, and so does the first word of two pages it offers userspace to map through the
//!   iommufd (see [`crate::mmap`]), at the `out_mmap_offset` and `out_mmap_length` it answers;
//! - cache invalidations (`IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST`) name a device by virtual id
//!   and zero one of its cache entries, or all, which `IOMMU_TEST_OP_DEV_CHECK_CACHE` reads back;
//! - it has `IOMMU_TEST_HW_QUEUE_MAX` hardware queues, made in order: queue `i` needs queue
//!   `i - 1`, which cannot be destroyed before it.

use crate::{
    context::Iommufd,
    object::Object,
    ucmd::{
        UserData,
        UserDataArray, //
    },
    viommu::Viommu,
};
use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    bindings, new_mutex,
    page::{
        Page,
        PAGE_SIZE, //
    },
    prelude::*,
    sync::Mutex,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

/// The number of hardware queues.
const QUEUES: usize = bindings::IOMMU_TEST_HW_QUEUE_MAX as usize;

/// The driver's part of a mock vIOMMU.
#[pin_data]
pub(crate) struct MockViommu {
    /// The object id of each hardware queue made.
    #[pin]
    queues: Mutex<[Option<u32>; QUEUES]>,
    /// The offset of the pages it offers to map, once made with driver data.
    #[pin]
    mmap_offset: Mutex<Option<u64>>,
}

impl MockViommu {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            queues <- new_mutex!([None; QUEUES]),
            mmap_offset <- new_mutex!(None),
        })
    }

    /// The driver data of `IOMMU_VIOMMU_ALLOC`, for the vIOMMU `owner` (object `id`, not yet
    /// published): answers `out_data` with `in_data`, and offers two pages to map, the first
    /// starting with `in_data`, whose offset and length it answers too; all within the length
    /// userspace gave. `EINVAL` for data too short to hold `out_data`. On failure nothing is
    /// left offered.
    pub(crate) fn init_data(
        &self,
        ictx: &Iommufd,
        id: u32,
        owner: Object,
        data: &UserData,
    ) -> Result {
        type Data = bindings::iommu_viommu_selftest;
        let out = offset_of!(Data, out_data);
        let ty = bindings::IOMMU_VIOMMU_TYPE_SELFTEST;
        let mut bytes: ViommuData = data.read(ty, out + size_of::<u32>())?;
        let in_data = u32_at(&bytes, offset_of!(Data, in_data)).to_ne_bytes();
        let mut pages = KVec::with_capacity(2, GFP_KERNEL_ACCOUNT)?;
        pages.push(
            Page::alloc_with(GFP_KERNEL_ACCOUNT, &in_data)?,
            GFP_KERNEL_ACCOUNT,
        )?;
        pages.push(
            Page::alloc_with(GFP_KERNEL_ACCOUNT, &[])?,
            GFP_KERNEL_ACCOUNT,
        )?;
        let length = (pages.len() * PAGE_SIZE) as u64;
        let offset = ictx.mmaps.insert(id, owner, pages)?;
        bytes[out..out + 4].copy_from_slice(&in_data);
        let at = offset_of!(Data, out_mmap_offset);
        bytes[at..at + 8].copy_from_slice(&offset.to_ne_bytes());
        let at = offset_of!(Data, out_mmap_length);
        bytes[at..at + 8].copy_from_slice(&length.to_ne_bytes());
        let len = (data.len as usize).min(bytes.len());
        let written = UserSlice::new(UserPtr::from_addr(data.uptr as usize), len)
            .writer()
            .write_slice(bytes.get(..len).ok_or(EINVAL)?);
        if let Err(e) = written {
            ictx.mmaps.remove(offset);
            return Err(e);
        }
        *self.mmap_offset.lock() = Some(offset);
        Ok(())
    }

    /// What the vIOMMU gives back when destroyed: the pages it offered to map (mappings keep
    /// theirs).
    pub(crate) fn release(&self, ictx: &Iommufd) {
        if let Some(offset) = self.mmap_offset.lock().take() {
            ictx.mmaps.remove(offset);
        }
    }

    /// Makes queue `index` (object `id`): `EINVAL` past the last queue, `EEXIST` if it exists,
    /// `EIO` if the queue before it does not. Queue `index - 1` is then in use by it.
    pub(crate) fn queue_init(&self, ictx: &Iommufd, index: u32, id: u32) -> Result {
        let mut queues = self.queues.lock();
        let i = index as usize;
        let slot = queues.get(i).ok_or(EINVAL)?;
        if slot.is_some() {
            return Err(EEXIST);
        }
        if let Some(prev) = i.checked_sub(1) {
            let prev_id = queues.get(prev).copied().flatten().ok_or(EIO)?;
            ictx.objects.add_user(prev_id)?;
        }
        if let Some(slot) = queues.get_mut(i) {
            *slot = Some(id);
        }
        Ok(())
    }

    /// Undoes [`MockViommu::queue_init`].
    pub(crate) fn queue_destroyed(&self, ictx: &Iommufd, index: u32) {
        let mut queues = self.queues.lock();
        let i = index as usize;
        if let Some(slot) = queues.get_mut(i) {
            *slot = None;
        }
        if let Some(prev) = i.checked_sub(1) {
            if let Some(prev_id) = queues.get(prev).copied().flatten() {
                ictx.objects.remove_user(prev_id);
            }
        }
    }
}

/// `struct iommu_viommu_selftest`, as bytes.
type ViommuData = [u8; size_of::<bindings::iommu_viommu_selftest>()];

/// Reads the `u32` at byte `at` of `bytes`; 0 past the end.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        b.copy_from_slice(src);
    }
    u32::from_ne_bytes(b)
}

/// `struct iommu_viommu_invalidate_selftest`, as bytes.
type InvalidateRequest = [u8; size_of::<bindings::iommu_viommu_invalidate_selftest>()];

/// Invalidations through a mock vIOMMU: all requests are read first (any error there is for
/// the whole array), then carried out in order until one fails: `EOPNOTSUPP` for unknown
/// flags, `EINVAL` for a cache id past the last or a virtual id no device has.
pub(crate) fn cache_invalidate(
    ictx: &Iommufd,
    viommu: &Viommu,
    array: &UserDataArray,
) -> (u32, Result) {
    let ty = bindings::IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST;
    // An empty array checks the type only.
    if array.entry_num == 0 && array.data_type == ty {
        return (0, Ok(()));
    }
    if array.data_type != ty || array.entry_num == 0 {
        return (0, Err(EINVAL));
    }
    let mut reqs = KVec::new();
    for i in 0..array.entry_num {
        let res = reqs
            .reserve(1, GFP_KERNEL)
            .map_err(Error::from)
            .and_then(|()| array.read::<InvalidateRequest>(i, ty, 1))
            .and_then(|req| reqs.push(req, GFP_KERNEL).map_err(Error::from));
        if let Err(e) = res {
            return (0, Err(e));
        }
    }
    let flags_at = offset_of!(bindings::iommu_viommu_invalidate_selftest, flags);
    let vdev_at = offset_of!(bindings::iommu_viommu_invalidate_selftest, vdev_id);
    let cache_at = offset_of!(bindings::iommu_viommu_invalidate_selftest, cache_id);
    let all = bindings::IOMMU_TEST_INVALIDATE_FLAG_ALL;
    let mut done = 0;
    for req in reqs.iter() {
        let flags = u32_at(&req[..], flags_at);
        let cache_id = u32_at(&req[..], cache_at);
        let res = if flags & !all != 0 {
            Err(EOPNOTSUPP)
        } else if cache_id > bindings::MOCK_DEV_CACHE_ID_MAX {
            Err(EINVAL)
        } else {
            viommu
                .find_dev(u64::from(u32_at(&req[..], vdev_at)))
                .and_then(|dev_id| ictx.objects.get_device(dev_id).ok())
                .and_then(|dev| {
                    let mock = dev.iommu().mock()?;
                    mock.invalidate_cache((flags & all == 0).then_some(cache_id));
                    Some(())
                })
                .ok_or(EINVAL)
        };
        if let Err(e) = res {
            return (done, Err(e));
        }
        done += 1;
    }
    (done, Ok(()))
}
