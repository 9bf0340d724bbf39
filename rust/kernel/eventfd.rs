// SPDX-License-Identifier: GPL-2.0

//! Eventfd contexts (`include/linux/eventfd.h`): the counter behind an eventfd file, which
//! kernel code signals and userspace reads or polls. VFIO drivers signal one per interrupt
//! userspace asked for (`VFIO_DEVICE_SET_IRQS`).

use crate::{
    bindings,
    error::from_err_ptr,
    prelude::*, //
};
use core::ptr::NonNull;

/// A reference on the eventfd context of a file that userspace handed in by descriptor.
///
/// # Invariants
///
/// `ctx` is a valid eventfd context on which this object holds a reference.
pub struct EventFd {
    ctx: NonNull<bindings::eventfd_ctx>,
}

// SAFETY: An eventfd context is reference counted and may be signalled and released from any
// thread.
unsafe impl Send for EventFd {}
// SAFETY: Signalling takes the context's own lock; nothing else is shared.
unsafe impl Sync for EventFd {}

impl EventFd {
    /// The eventfd context of file descriptor `fd`: `EBADF` if `fd` is not open, `EINVAL` if
    /// it is not an eventfd.
    pub fn from_fd(fd: i32) -> Result<Self> {
        // SAFETY: `eventfd_ctx_fdget` takes any integer and returns a context with a reference
        // for the caller, or an error pointer.
        let ctx = from_err_ptr(unsafe { bindings::eventfd_ctx_fdget(fd) })?;
        // INVARIANT: A valid context with the reference just taken.
        Ok(Self {
            ctx: NonNull::new(ctx).ok_or(EINVAL)?,
        })
    }

    /// Adds one to the counter and wakes up its readers and pollers. May be called from hard
    /// interrupt context.
    pub fn signal(&self) {
        // SAFETY: By the invariants `ctx` is valid.
        unsafe { bindings::eventfd_signal_mask(self.ctx.as_ptr(), 0) }
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: By the invariants we hold a reference, given back here.
        unsafe { bindings::eventfd_ctx_put(self.ctx.as_ptr()) }
    }
}
