// SPDX-License-Identifier: GPL-2.0

//! Capability checks of the current task.
//!
//! C header: [`include/linux/capability.h`](srctree/include/linux/capability.h).

use crate::bindings;

/// A POSIX capability, as in `include/uapi/linux/capability.h`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Capability(u32);

impl Capability {
    /// Lock memory beyond `RLIMIT_MEMLOCK` (`CAP_IPC_LOCK`).
    pub const IPC_LOCK: Self = Self(bindings::CAP_IPC_LOCK);
    /// Override resource limits (`CAP_SYS_RESOURCE`).
    pub const SYS_RESOURCE: Self = Self(bindings::CAP_SYS_RESOURCE);
    /// System administration (`CAP_SYS_ADMIN`).
    pub const SYS_ADMIN: Self = Self(bindings::CAP_SYS_ADMIN);
    /// Raw I/O: port access, devices no IOMMU protects (`CAP_SYS_RAWIO`).
    pub const SYS_RAWIO: Self = Self(bindings::CAP_SYS_RAWIO);
}

/// Whether the current task has `cap` in its effective set, against the initial user
/// namespace. As with C's `capable()`, a successful check marks the task as having used a
/// privilege (`PF_SUPERPRIV`) and may be audited.
pub fn capable(cap: Capability) -> bool {
    // SAFETY: `capable()` takes any capability number and only inspects the current task's
    // credentials; the constants above are valid capability numbers.
    unsafe { bindings::capable(cap.0 as crate::ffi::c_int) }
}
