// SPDX-License-Identifier: GPL-2.0

//! Runtime power management of devices.
//!
//! C header: [`include/linux/pm_runtime.h`](srctree/include/linux/pm_runtime.h)
//!
//! The PM core keeps a device active while its usage count is above zero; once the count drops
//! to zero and runtime PM is allowed for the device, the PM core may suspend it (a PCI device's
//! state is saved and it goes to D3hot if it can) until someone resumes it again. A [`Usage`]
//! is one such count, given back when it is dropped, so that a driver cannot forget to give
//! back what it took. Bus abstractions move the counts a bus hands to drivers themselves.
//!
//! Without `CONFIG_PM` all of this does nothing, and devices stay active.

use crate::{
    bindings,
    device::Device,
    error::to_result,
    prelude::*,
    sync::aref::ARef, //
};

/// One runtime PM usage count of a device: while it exists the device does not suspend.
///
/// Dropping it gives the count back with `pm_runtime_put()`, which lets the device suspend
/// (asynchronously) if that was the last one.
pub struct Usage {
    dev: ARef<Device>,
    /// Whether giving the count back lets the device suspend now (see [`Usage::put_noidle`]).
    idle: bool,
}

impl Usage {
    /// Resumes `dev` if it is suspended and takes a count (`pm_runtime_resume_and_get()`);
    /// fails with the error of the resume, without a count.
    pub fn resume_and_get(dev: &Device) -> Result<Self> {
        // SAFETY: `dev.as_raw()` is a valid `struct device`; on failure the call gives back
        // the count it took.
        to_result(unsafe { bindings::pm_runtime_resume_and_get(dev.as_raw()) })?;
        Ok(Self {
            dev: dev.into(),
            idle: true,
        })
    }

    /// Takes a count without resuming `dev` (`pm_runtime_get_noresume()`): it stays as it is
    /// until someone resumes it.
    pub fn get_noresume(dev: &Device) -> Self {
        // SAFETY: `dev.as_raw()` is a valid `struct device`.
        unsafe { bindings::pm_runtime_get_noresume(dev.as_raw()) };
        Self {
            dev: dev.into(),
            idle: true,
        }
    }

    /// Gives the count back without letting the device suspend now
    /// (`pm_runtime_put_noidle()`): it suspends when the last other count is put.
    pub fn put_noidle(mut self) {
        self.idle = false;
    }
}

impl Drop for Usage {
    fn drop(&mut self) {
        let dev = self.dev.as_raw();
        // SAFETY: `dev` is a valid `struct device`, and this gives back the count `self` holds.
        unsafe {
            match self.idle {
                true => bindings::pm_runtime_put(dev),
                false => bindings::pm_runtime_put_noidle(dev),
            }
        };
    }
}

/// Resumes `dev` if it is suspended, without taking a count (`pm_runtime_resume()`).
pub fn resume(dev: &Device) -> Result {
    // SAFETY: `dev.as_raw()` is a valid `struct device`.
    let ret = unsafe { bindings::pm_runtime_resume(dev.as_raw()) };
    to_result(ret.min(0))
}
