// SPDX-License-Identifier: GPL-2.0

//! The iommufd kernel API for drivers that give devices to userspace (VFIO).
//!
//! Userspace hands such a driver an iommufd (an open `/dev/iommu`); the driver binds its device
//! to it, which claims the device's DMA for that iommufd and gives the device an id there, and
//! then attaches it to the IOASes and HWPTs userspace names. These are the functions of
//! `include/linux/iommufd.h`, exported by the iommufd module, wrapped so that the driver
//! cannot use a context it gave back or a device it unbound.
//!
//! Every function here is `#[inline]`: the kernel crate is built in, iommufd may be a module,
//! and only the (modular) caller may refer to iommufd's symbols.
//!
//! C header: [`include/linux/iommufd.h`](srctree/include/linux/iommufd.h).

use crate::{
    bindings,
    device::Device,
    error::{
        from_err_ptr,
        to_result, //
    },
    fs::LocalFile,
    prelude::*,
    sync::aref::{
        ARef,
        AlwaysRefCounted, //
    },
    types::Opaque,
};
use core::ptr::NonNull;

// Exported by iommufd for VFIO's container; not in `include/linux/iommufd.h`, as upstream's
// container has an engine of its own.
extern "C" {
    fn iommufd_ctx_create() -> *mut bindings::iommufd_ctx;
    fn iommufd_vfio_compat_ioctl(
        ictx: *mut bindings::iommufd_ctx,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long;
}

/// The PASID of a device's requests without a PASID (`IOMMU_NO_PASID`).
pub const NO_PASID: u32 = 0;

/// An iommufd context (`struct iommufd_ctx`): an open `/dev/iommu`, counted.
#[repr(transparent)]
pub struct Ctx(Opaque<bindings::iommufd_ctx>);

// SAFETY: iommufd contexts are used from any thread; their reference count is atomic.
unsafe impl Send for Ctx {}
// SAFETY: As for `Send`.
unsafe impl Sync for Ctx {}

// SAFETY: `iommufd_ctx_get` and `iommufd_ctx_put` keep the context's reference count, and a
// context stays alive while it has references.
unsafe impl AlwaysRefCounted for Ctx {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: `self` is a live context.
        unsafe { bindings::iommufd_ctx_get(self.as_raw()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives back a reference it holds.
        unsafe { bindings::iommufd_ctx_put(obj.cast().as_ptr()) };
    }
}

impl Ctx {
    /// The context of `file`, counted: `EBADFD` if `file` is not an open `/dev/iommu`.
    #[inline]
    pub fn from_file(file: &LocalFile) -> Result<ARef<Self>> {
        // SAFETY: `file` is a valid file, held by the caller for the duration of the call.
        let ptr = from_err_ptr(unsafe { bindings::iommufd_ctx_from_file(file.as_ptr()) })?;
        // SAFETY: On success the context comes with a reference for the caller, which the
        // `ARef` takes; `Self` is transparent over `struct iommufd_ctx`.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(ptr.cast())) })
    }

    /// The raw context.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::iommufd_ctx {
        self.0.get()
    }

    /// A new context of its own, which no `/dev/iommu` open made: where VFIO's container keeps
    /// its mappings.
    #[inline]
    pub fn create() -> Result<ARef<Self>> {
        // SAFETY: No arguments; the function returns a counted context or an error pointer.
        let ptr = from_err_ptr(unsafe { iommufd_ctx_create() })?;
        // SAFETY: On success the context comes with a reference for the caller, which the
        // `ARef` takes; `Self` is transparent over `struct iommufd_ctx`.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(ptr.cast())) })
    }

    /// A VFIO container ioctl (`VFIO_SET_IOMMU`, `VFIO_IOMMU_MAP_DMA`, ...) on the context's
    /// compat IOAS, with the caller's argument: what the ioctl returns.
    #[inline]
    pub fn vfio_ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        // SAFETY: `self` is a live context; `arg` is the user's argument, which iommufd reads
        // and writes only through the user-copy functions.
        let ret = unsafe { iommufd_vfio_compat_ioctl(self.as_raw(), cmd, arg as c_ulong) };
        if ret < 0 {
            Err(Error::from_errno(ret as c_int))
        } else {
            Ok(ret as isize)
        }
    }

    /// Gives the context a *compat IOAS* (the IOAS VFIO's container ioctls act on), unless it
    /// has one: what a VFIO group set to this context needs.
    #[inline]
    pub fn compat_ioas_create(&self) -> Result {
        // SAFETY: `self` is a live context.
        to_result(unsafe { bindings::iommufd_vfio_compat_ioas_create(self.as_raw()) })
    }

    /// Puts the context in no-IOMMU mode, for a VFIO group of devices no IOMMU translates:
    /// `EINVAL` if it has a compat IOAS. The container ioctls then offer only
    /// `VFIO_NOIOMMU_IOMMU`, and no compat IOAS can be made.
    #[inline]
    pub fn set_no_iommu(&self) -> Result {
        // SAFETY: `self` is a live context.
        to_result(unsafe { bindings::iommufd_vfio_compat_set_no_iommu(self.as_raw()) })
    }

    /// Whether a device of `group` is bound to the context, which then owns the group's DMA.
    #[inline]
    pub fn has_group(&self, group: &crate::iommu::group::Group) -> bool {
        // SAFETY: `self` is a live context and `group` a live group.
        unsafe { bindings::iommufd_ctx_has_group(self.as_raw(), group.as_raw()) }
    }

    /// The id of the context's compat IOAS: `ENODEV` if it has none (any more).
    #[inline]
    pub fn compat_ioas_id(&self) -> Result<u32> {
        let mut id = 0;
        // SAFETY: `self` is a live context; `id` may be written.
        to_result(unsafe { bindings::iommufd_vfio_compat_ioas_get_id(self.as_raw(), &mut id) })?;
        Ok(id)
    }
}

/// A device bound to an iommufd (`struct iommufd_device`): its DMA is claimed for that
/// iommufd, and it has an id there. Dropping it unbinds it (detaching it first if needed).
///
/// # Invariants
///
/// `raw` is a device bound with `iommufd_device_bind()` and not yet unbound.
pub struct BoundDevice {
    raw: NonNull<bindings::iommufd_device>,
}

// SAFETY: A bound device may be used and unbound from any thread; `&mut self` serialises the
// calls that change it, as iommufd asks of its callers.
unsafe impl Send for BoundDevice {}
// SAFETY: The `&self` methods only read what does not change after binding.
unsafe impl Sync for BoundDevice {}

impl BoundDevice {
    /// Binds `dev` to `ctx`: `EINVAL` if its IOMMU cannot make its DMA cache-coherent,
    /// `ENODEV` without an IOMMU, `EPERM` if its group is bound to another iommufd or owned
    /// otherwise, `EBUSY` if a kernel driver uses its group's DMA.
    #[inline]
    pub fn bind(ctx: &Ctx, dev: &Device) -> Result<Self> {
        let mut id = 0;
        // SAFETY: `ctx` and `dev` are live; `id` may be written.
        let raw = from_err_ptr(unsafe {
            bindings::iommufd_device_bind(ctx.as_raw(), dev.as_raw(), &mut id)
        })?;
        // INVARIANT: Just bound.
        Ok(Self {
            // SAFETY: On success the pointer is not null.
            raw: unsafe { NonNull::new_unchecked(raw) },
        })
    }

    /// The device's id in its iommufd.
    #[inline]
    pub fn id(&self) -> u32 {
        // SAFETY: By the invariants the device is bound.
        unsafe { bindings::iommufd_device_to_id(self.raw.as_ptr()) }
    }

    /// The context the device is bound to.
    #[inline]
    pub fn ctx(&self) -> &Ctx {
        // SAFETY: A bound device holds a reference on its context, so the context lives at
        // least as long as `self`; `Ctx` is transparent over `struct iommufd_ctx`.
        unsafe { &*bindings::iommufd_device_to_ictx(self.raw.as_ptr()).cast::<Ctx>() }
    }

    /// Attaches PASID `pasid` of the device ([`NO_PASID`] for its requests without one) to
    /// `pt_id`, an IOAS or a HWPT, and returns the id of the HWPT it uses. `EBUSY` if it is
    /// attached there already (see [`BoundDevice::replace`]).
    #[inline]
    pub fn attach(&mut self, pasid: u32, pt_id: u32) -> Result<u32> {
        let mut id = pt_id;
        // SAFETY: By the invariants the device is bound; `id` may be written.
        to_result(unsafe { bindings::iommufd_device_attach(self.raw.as_ptr(), pasid, &mut id) })?;
        Ok(id)
    }

    /// Moves attached PASID `pasid` of the device to `pt_id` in one step, and returns the id of
    /// the HWPT it now uses.
    #[inline]
    pub fn replace(&mut self, pasid: u32, pt_id: u32) -> Result<u32> {
        let mut id = pt_id;
        // SAFETY: By the invariants the device is bound; `id` may be written.
        to_result(unsafe { bindings::iommufd_device_replace(self.raw.as_ptr(), pasid, &mut id) })?;
        Ok(id)
    }

    /// Detaches PASID `pasid` of the device.
    #[inline]
    pub fn detach(&mut self, pasid: u32) {
        // SAFETY: By the invariants the device is bound.
        unsafe { bindings::iommufd_device_detach(self.raw.as_ptr(), pasid) };
    }
}

impl Drop for BoundDevice {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the invariants the device is bound; it is unbound once, here.
        unsafe { bindings::iommufd_device_unbind(self.raw.as_ptr()) };
    }
}
