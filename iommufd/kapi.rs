// SPDX-License-Identifier: GPL-2.0

//! The device kAPI for other modules: the C functions of `include/linux/iommufd.h` that VFIO
//! calls (`iommufd_ctx_from_file`, `iommufd_device_bind`, `iommufd_device_attach`, ...).
//!
//! Modules cannot call each other's Rust functions, so iommufd offers what upstream offers,
//! under the same names and signatures: `kapi_exports.c` exports them, and the kernel crate's
//! `kernel::iommufd` wraps them for Rust callers. They are thin: each turns its pointers back
//! into the objects of this crate and calls the device kAPI of [`crate::device`].
//!
//! A `struct iommufd_ctx *` is the `struct file *` of an open `/dev/iommu`, whose reference
//! count is the context's (as upstream, where a context reference is a file reference); its
//! [`Iommufd`] is the file's private data. A `struct iommufd_device *` is a [`KapiDevice`]:
//! the device object and a reference on the context's file. This file is FFI glue: the raw
//! pointers it receives are only turned into references here.

use crate::{context::Iommufd, device::Device, hw_domain::HwDevice};
use core::ptr::NonNull;
use kernel::{
    bindings,
    fs::File,
    miscdevice::MiscFileType,
    prelude::*,
    sync::{
        aref::{
            ARef,
            AlwaysRefCounted, //
        },
        Arc,
        SetOnce, //
    },
};

/// What tells `/dev/iommu` files from others, and the misc device of the node (`None` without
/// `/dev/iommu`), set when the module loads.
static IOMMUFD_FILES: SetOnce<(MiscFileType<Iommufd>, Option<ARef<kernel::device::Device>>)> =
    SetOnce::new();

/// Remembers what `/dev/iommu`'s files look like (see [`MiscFileType`]), and its device.
pub(crate) fn set_file_type(
    files: MiscFileType<Iommufd>,
    dev: Option<ARef<kernel::device::Device>>,
) {
    IOMMUFD_FILES.populate((files, dev));
}

/// The context of `file`, if it is an open `/dev/iommu`.
fn context(file: &File) -> Option<Pin<&Iommufd>> {
    IOMMUFD_FILES.as_ref()?.0.private_data(file)
}

/// `iommufd_ctx_create()`: a new context that no open of `/dev/iommu` made, with a reference
/// for the caller: VFIO's own container keeps its mappings in one. Not in upstream, whose
/// container has an engine of its own.
#[no_mangle]
extern "C" fn iommufd_ctx_create() -> *mut bindings::iommufd_ctx {
    let create = || -> Result<ARef<File>> {
        let (files, dev) = IOMMUFD_FILES.as_ref().ok_or(ENODEV)?;
        files.new_file(c"[iommufd]", Iommufd::new(dev.clone(), true)?)
    };
    match create() {
        Ok(file) => ARef::into_raw(file).as_ptr().cast(),
        Err(e) => e.to_ptr(),
    }
}

/// `iommufd_vfio_compat_ioctl()`: a VFIO container ioctl (`VFIO_SET_IOMMU`,
/// `VFIO_IOMMU_MAP_DMA`, ...) on the context, as if issued on its file; `ENOTTY` for others.
/// Not in upstream: VFIO's own container passes its ioctls on with it.
#[no_mangle]
extern "C" fn iommufd_vfio_compat_ioctl(
    ictx: *mut bindings::iommufd_ctx,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: The caller holds a reference on the context.
    let file = unsafe { ctx_file(ictx) };
    let result = context(file)
        .ok_or(EBADFD)
        .and_then(|ictx| crate::vfio_compat::ioctl(&ictx, cmd, arg));
    match result {
        Ok(v) => v as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// The file behind a context pointer.
///
/// # Safety
///
/// `ictx` is a context pointer this file handed out (a `/dev/iommu` file), on which the caller
/// holds a reference for `'a`.
unsafe fn ctx_file<'a>(ictx: *mut bindings::iommufd_ctx) -> &'a File {
    // SAFETY: As the caller promises, a valid file with a reference held.
    unsafe { File::from_raw_file(ictx.cast()) }
}

/// `iommufd_ctx_from_file()`: the context of `file`, with a reference for the caller;
/// `EBADFD` if `file` is not an open `/dev/iommu`.
#[no_mangle]
extern "C" fn iommufd_ctx_from_file(file: *mut bindings::file) -> *mut bindings::iommufd_ctx {
    // SAFETY: The caller passes a valid file it holds a reference on.
    let file = unsafe { File::from_raw_file(file) };
    if context(file).is_none() {
        return EBADFD.to_ptr();
    }
    let file: ARef<File> = file.into();
    ARef::into_raw(file).as_ptr().cast()
}

/// `iommufd_ctx_from_fd()`: as [`iommufd_ctx_from_file`] for the file of `fd`; `EBADF` if
/// `fd` is not open.
#[no_mangle]
extern "C" fn iommufd_ctx_from_fd(fd: c_int) -> *mut bindings::iommufd_ctx {
    let Ok(fd) = u32::try_from(fd) else {
        return EBADF.to_ptr();
    };
    let Ok(file) = kernel::fs::LocalFile::fget(fd) else {
        return EBADF.to_ptr();
    };
    // The reference `fget` took is dropped with `file`; the context takes its own.
    iommufd_ctx_from_file(file.as_ptr())
}

/// `iommufd_ctx_get()`: one more reference on the context.
#[no_mangle]
extern "C" fn iommufd_ctx_get(ictx: *mut bindings::iommufd_ctx) {
    // SAFETY: The caller holds a reference on the context.
    unsafe { ctx_file(ictx) }.inc_ref();
}

/// `iommufd_ctx_put()`: gives back a reference on the context.
#[no_mangle]
extern "C" fn iommufd_ctx_put(ictx: *mut bindings::iommufd_ctx) {
    if let Some(file) = NonNull::new(ictx.cast::<File>()) {
        // SAFETY: The caller gives back a reference it holds on the context's file.
        unsafe { File::dec_ref(file) };
    }
}

/// `iommufd_ctx_has_group()`: whether a device of the IOMMU group `group` is bound to `ictx`,
/// which then owns the group's DMA (VFIO asks it before a hot reset of devices the caller has
/// not bound). False for a null context or group.
#[no_mangle]
extern "C" fn iommufd_ctx_has_group(
    ictx: *mut bindings::iommufd_ctx,
    group: *mut bindings::iommu_group,
) -> bool {
    if ictx.is_null() || group.is_null() {
        return false;
    }
    // SAFETY: The caller holds a reference on the context.
    let file = unsafe { ctx_file(ictx) };
    context(file).is_some_and(|ictx| {
        ictx.objects
            .any_device(|dev| dev.iommu().in_iommu_group(group))
            .unwrap_or(false)
    })
}

/// What a `struct iommufd_device *` points to.
struct KapiDevice {
    /// The device object in the context.
    dev: Arc<Device>,
    /// The context's file: a bound device holds a reference on its context.
    file: ARef<File>,
}

impl KapiDevice {
    /// The device behind a device pointer.
    ///
    /// # Safety
    ///
    /// `idev` came from [`iommufd_device_bind`] and is not unbound yet; the caller serialises
    /// its calls on it, as upstream asks.
    unsafe fn from_raw<'a>(idev: *mut bindings::iommufd_device) -> &'a Self {
        // SAFETY: As the caller promises, a live `KapiDevice`.
        unsafe { &*idev.cast::<Self>() }
    }

    /// The context the device is bound to.
    fn ictx(&self) -> Result<Pin<&Iommufd>> {
        context(&self.file).ok_or(EBADFD)
    }
}

/// `iommufd_device_bind()`: binds `dev` to `ictx` (claiming its DMA for that context) and
/// writes its id to `id`.
#[no_mangle]
extern "C" fn iommufd_device_bind(
    ictx: *mut bindings::iommufd_ctx,
    dev: *mut bindings::device,
    id: *mut u32,
) -> *mut bindings::iommufd_device {
    // SAFETY: The caller holds a reference on `ictx` and on `dev` for the call.
    let (file, dev) = unsafe { (ctx_file(ictx), kernel::device::Device::from_raw(dev)) };
    let bind = || -> Result<KBox<KapiDevice>> {
        let ictx = context(file).ok_or(EBADFD)?;
        let slot = KBox::new_uninit(GFP_KERNEL_ACCOUNT)?;
        let source = HwDevice::new(dev, &*ictx)?;
        let dev = Device::bind(&ictx, source)?;
        Ok(KBox::write(
            slot,
            KapiDevice {
                dev,
                file: file.into(),
            },
        ))
    };
    match bind() {
        Ok(idev) => {
            // SAFETY: The caller passes a pointer it may write to.
            unsafe { *id = idev.dev.id };
            KBox::into_raw(idev).cast()
        }
        Err(e) => e.to_ptr(),
    }
}

/// `iommufd_device_unbind()`: detaches the device from everything, removes its object and gives
/// its DMA back.
#[no_mangle]
extern "C" fn iommufd_device_unbind(idev: *mut bindings::iommufd_device) {
    // SAFETY: The caller gives back a device `iommufd_device_bind` made, once.
    let idev = unsafe { KBox::from_raw(idev.cast::<KapiDevice>()) };
    if let Ok(ictx) = idev.ictx() {
        idev.dev.unbind(&ictx);
    }
}

/// `iommufd_device_attach()`: attaches PASID `pasid` (`IOMMU_NO_PASID` for none) to the IOAS
/// or HWPT `*pt_id`, and writes back the id of the HWPT used.
#[no_mangle]
extern "C" fn iommufd_device_attach(
    idev: *mut bindings::iommufd_device,
    pasid: u32,
    pt_id: *mut u32,
) -> c_int {
    // SAFETY: The caller passes a bound device and a valid `pt_id`.
    let (idev, pt) = unsafe { (KapiDevice::from_raw(idev), &mut *pt_id) };
    let attach = || {
        let ictx = idev.ictx()?;
        if pasid == kernel::iommufd::NO_PASID {
            idev.dev.attach(&ictx, *pt)
        } else {
            idev.dev.pasid_attach(&ictx, pasid, *pt)
        }
    };
    respond(attach(), pt)
}

/// `iommufd_device_replace()`: moves attached PASID `pasid` to `*pt_id` in one step.
#[no_mangle]
extern "C" fn iommufd_device_replace(
    idev: *mut bindings::iommufd_device,
    pasid: u32,
    pt_id: *mut u32,
) -> c_int {
    // SAFETY: The caller passes a bound device and a valid `pt_id`.
    let (idev, pt) = unsafe { (KapiDevice::from_raw(idev), &mut *pt_id) };
    let replace = || {
        let ictx = idev.ictx()?;
        if pasid == kernel::iommufd::NO_PASID {
            idev.dev.replace(&ictx, *pt)
        } else {
            idev.dev.pasid_replace(&ictx, pasid, *pt)
        }
    };
    respond(replace(), pt)
}

/// Writes the HWPT id of a successful attach or replace back, and returns the errno.
fn respond(result: Result<u32>, pt_id: &mut u32) -> c_int {
    match result {
        Ok(hwpt_id) => {
            *pt_id = hwpt_id;
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_device_detach()`: detaches PASID `pasid`, if attached.
#[no_mangle]
extern "C" fn iommufd_device_detach(idev: *mut bindings::iommufd_device, pasid: u32) {
    // SAFETY: The caller passes a bound device.
    let idev = unsafe { KapiDevice::from_raw(idev) };
    if let Ok(ictx) = idev.ictx() {
        if pasid == kernel::iommufd::NO_PASID {
            idev.dev.detach(&ictx);
        } else {
            idev.dev.pasid_detach(&ictx, pasid);
        }
    }
}

/// `iommufd_device_to_ictx()`: the context the device is bound to (no new reference).
#[no_mangle]
extern "C" fn iommufd_device_to_ictx(
    idev: *mut bindings::iommufd_device,
) -> *mut bindings::iommufd_ctx {
    // SAFETY: The caller passes a bound device.
    let idev = unsafe { KapiDevice::from_raw(idev) };
    idev.file.as_ptr().cast()
}

/// `iommufd_device_to_id()`: the device's id in its context.
#[no_mangle]
extern "C" fn iommufd_device_to_id(idev: *mut bindings::iommufd_device) -> u32 {
    // SAFETY: The caller passes a bound device.
    unsafe { KapiDevice::from_raw(idev) }.dev.id
}

/// `iommufd_vfio_compat_ioas_create()`: gives the context a compat IOAS, unless it has one,
/// for a VFIO group set to it.
#[no_mangle]
extern "C" fn iommufd_vfio_compat_ioas_create(ictx: *mut bindings::iommufd_ctx) -> c_int {
    // SAFETY: The caller holds a reference on the context.
    let file = unsafe { ctx_file(ictx) };
    match context(file)
        .ok_or(EBADFD)
        .and_then(|ictx| ictx.compat_ioas_create())
    {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_vfio_compat_ioas_get_id()`: writes the id of the context's compat IOAS to
/// `out_ioas_id`; `ENODEV` if it has none.
#[no_mangle]
extern "C" fn iommufd_vfio_compat_ioas_get_id(
    ictx: *mut bindings::iommufd_ctx,
    out_ioas_id: *mut u32,
) -> c_int {
    // SAFETY: The caller holds a reference on the context.
    let file = unsafe { ctx_file(ictx) };
    match context(file)
        .ok_or(EBADFD)
        .and_then(|ictx| ictx.compat_ioas_id())
    {
        Ok(id) => {
            // SAFETY: The caller passes a pointer it may write to.
            unsafe { *out_ioas_id = id };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_vfio_compat_set_no_iommu()`: puts the context in no-IOMMU mode, for a VFIO group
/// of devices no IOMMU translates; `EINVAL` if it has a compat IOAS.
#[no_mangle]
extern "C" fn iommufd_vfio_compat_set_no_iommu(ictx: *mut bindings::iommufd_ctx) -> c_int {
    // SAFETY: The caller holds a reference on the context.
    let file = unsafe { ctx_file(ictx) };
    match context(file)
        .ok_or(EBADFD)
        .and_then(|ictx| ictx.set_no_iommu())
    {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
