// SPDX-License-Identifier: GPL-2.0

//! Byte-level access to the iommufd and VFIO uAPI structs.
//!
//! iommufd and VFIO copy their ioctl arguments to and from userspace as raw bytes. The structs
//! come from bindgen (`kernel::uapi`), which cannot derive [`FromBytes`] or [`AsBytes`]; this
//! module states, once, that the uAPI structs these drivers exchange qualify, so that the
//! drivers themselves need no `unsafe`. It also reads the size word that leads each of them.

use crate::{
    bindings,
    error::to_result,
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
};

/// Implements [`FromBytes`] and [`AsBytes`] for uAPI structs.
macro_rules! impl_uapi_bytes {
    ($($t:ident),* $(,)?) => {
        $(
            // SAFETY: The struct is made only of fixed-size integers (and arrays of them), so
            // every bit pattern is a valid value. The uAPI is defined with explicit padding
            // fields and no implicit holes (the layout test in tools/testing/uapi_layout checks
            // size and every offset against the upstream ABI), so every byte is initialised.
            unsafe impl FromBytes for uapi::$t {}
            // SAFETY: As above: no implicit padding, so all bytes are initialised.
            unsafe impl AsBytes for uapi::$t {}
        )*
    };
}

impl_uapi_bytes!(
    iommu_destroy,
    iommu_fault_alloc,
    iommu_hw_info,
    iommu_hwpt_alloc,
    iommu_hwpt_get_dirty_bitmap,
    iommu_hwpt_invalidate,
    iommu_hwpt_page_response,
    iommu_hwpt_pgfault,
    iommu_hwpt_set_dirty_tracking,
    iommu_ioas_change_process,
    iommu_hw_info__bindgen_ty_1,
    iommu_hw_queue_alloc,
    iommu_ioas_alloc,
    iommu_ioas_copy,
    iommu_ioas_allow_iovas,
    iommu_ioas_iova_ranges,
    iommu_ioas_map,
    iommu_ioas_map_file,
    iommu_ioas_unmap,
    iommu_iova_range,
    iommu_option,
    iommu_vdevice_alloc,
    iommu_veventq_alloc,
    iommu_vfio_ioas,
    iommu_viommu_alloc,
    iommufd_vevent_header,
    vfio_device_attach_iommufd_pt,
    vfio_device_bind_iommufd,
    vfio_device_detach_iommufd_pt,
    vfio_device_feature,
    vfio_device_info,
    vfio_info_cap_header,
    vfio_iommu_type1_dma_map,
    vfio_iommu_type1_dma_unmap,
    vfio_iommu_type1_info,
    vfio_iommu_type1_info_cap_iova_range,
    vfio_iommu_type1_info_dma_avail,
    vfio_iova_range,
    vfio_region_info,
);

/// Reads the `u32` at user address `addr` (a uAPI struct's leading size word) with one
/// `get_user()`, which costs less than a copy of four bytes on a path that runs once an ioctl.
/// `EFAULT` if it cannot be read.
pub fn read_user_u32(addr: usize) -> Result<u32> {
    let mut val = 0u32;
    // SAFETY: `val` is a valid place to store a `u32`; `addr` is used only as a user pointer,
    // which `get_user()` checks and reads with fault handling.
    to_result(unsafe { bindings::get_user_u32(&mut val, addr as *const u32) })
        .map_err(|_| EFAULT)?;
    Ok(val)
}

/// Reads the extensible struct `T` that userspace passed as `user_size` bytes at `addr`, as C's
/// `copy_struct_from_user()`: a shorter struct is zero-extended, a longer one must end in
/// zeroes (`E2BIG` otherwise); `EFAULT` if the memory cannot be read.
pub fn copy_struct_from_user<T: FromBytes + AsBytes + Zeroable>(
    addr: usize,
    user_size: usize,
) -> Result<T> {
    let mut val: T = pin_init::zeroed();
    let bytes = val.as_bytes_mut();
    let size = bytes.len();
    let copied = size.min(user_size);
    UserSlice::new(UserPtr::from_addr(addr), copied)
        .reader()
        .read_slice(&mut bytes[..copied])?;
    if user_size > size {
        // SAFETY: The range is only used as user memory, which `check_zeroed_user()` reads
        // with fault handling.
        let ret = unsafe {
            bindings::check_zeroed_user(addr.wrapping_add(size) as *const c_void, user_size - size)
        };
        match ret {
            1 => {}
            0 => return Err(E2BIG),
            e => return Err(Error::from_errno(e)),
        }
    }
    Ok(val)
}
