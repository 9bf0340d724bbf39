// SPDX-License-Identifier: GPL-2.0

//! The functions KVM calls on VFIO files (`vfio_file_is_valid`, `vfio_file_set_kvm`,
//! `vfio_file_enforced_coherent`, `vfio_file_iommu_group`, `vfio_file_is_group`).
//!
//! kvm-vfio (`virt/kvm/vfio.c`, C) is handed group and device files by the VMM
//! (`KVM_DEV_VFIO_FILE_ADD`) and reaches VFIO through `symbol_get()`, by these names and with
//! the signatures of `include/linux/vfio.h`; `kvm_exports.c` exports them. A file is a group file
//! or a device file when its operations are those of the group nodes or of the device files
//! (the cdev's and those the group hands out share them), as upstream compares `f_op`. This
//! file is FFI glue: the raw pointers it receives are only turned into references here.

use crate::device_file;
use kernel::{bindings, ffi::c_void, fs::File};

#[cfg(CONFIG_VFIO_GROUP)]
use crate::group;

/// The file behind a pointer KVM passes.
///
/// # Safety
///
/// `file` is a valid file the caller holds a reference on for `'a`.
unsafe fn file<'a>(file: *mut bindings::file) -> &'a File {
    // SAFETY: As the caller promises; no `fdget_pos` region of it is active in this call.
    unsafe { File::from_raw_file(file) }
}

/// Whether `file` is a group file.
fn is_group(file: &File) -> bool {
    #[cfg(CONFIG_VFIO_GROUP)]
    return group::of_file(file).is_some();
    #[cfg(not(CONFIG_VFIO_GROUP))]
    {
        let _ = file;
        false
    }
}

/// `vfio_file_is_valid()`: whether `file` is a VFIO group or device file.
#[no_mangle]
extern "C" fn vfio_file_is_valid(file: *mut bindings::file) -> bool {
    // SAFETY: KVM passes a file it holds.
    let file = unsafe { self::file(file) };
    is_group(file) || device_file::of_file(file).is_some()
}

/// `vfio_file_is_group()`: whether `file` is a VFIO group file.
#[cfg(CONFIG_VFIO_GROUP)]
#[no_mangle]
extern "C" fn vfio_file_is_group(file: *mut bindings::file) -> bool {
    // SAFETY: The caller passes a file it holds.
    is_group(unsafe { self::file(file) })
}

/// `vfio_file_enforced_coherent()`: whether the DMA of the devices behind `file` is always
/// cache coherent (the IOMMU ignores no-snoop); if not, KVM lets the guest flush caches
/// (`wbinvd`). True for a file that is neither, as upstream.
#[no_mangle]
extern "C" fn vfio_file_enforced_coherent(file: *mut bindings::file) -> bool {
    use kernel::iommu::device::{capable, Cap};
    // SAFETY: KVM passes a file it holds.
    let file = unsafe { self::file(file) };
    #[cfg(CONFIG_VFIO_GROUP)]
    if let Some(group) = group::of_file(file) {
        return group.enforced_coherent();
    }
    match device_file::of_file(file) {
        Some(df) => capable(df.device.parent(), Cap::EnforceCacheCoherency),
        None => true,
    }
}

/// `vfio_file_set_kvm()`: links the KVM instance `kvm` (null to unlink) to `file`, a group or
/// a device file. Only kept: no driver uses a KVM instance yet.
#[no_mangle]
extern "C" fn vfio_file_set_kvm(file: *mut bindings::file, kvm: *mut c_void) {
    // SAFETY: KVM passes a file it holds.
    let file = unsafe { self::file(file) };
    #[cfg(CONFIG_VFIO_GROUP)]
    if let Some(group) = group::of_file(file) {
        group.state.lock().kvm = kvm as usize;
    }
    if let Some(df) = device_file::of_file(file) {
        df.set_kvm(kvm as usize);
    }
}

/// `vfio_file_iommu_group()`: the IOMMU group of a group file, with a reference, for KVM's
/// sPAPR TCE code; null elsewhere, as upstream.
#[no_mangle]
extern "C" fn vfio_file_iommu_group(file: *mut bindings::file) -> *mut bindings::iommu_group {
    #[cfg(all(CONFIG_SPAPR_TCE_IOMMU, CONFIG_VFIO_GROUP))]
    {
        // SAFETY: KVM passes a file it holds.
        if let Some(group) = group::of_file(unsafe { self::file(file) }) {
            let iommu_group = group.iommu_group().clone();
            let raw = iommu_group.as_raw();
            // The reference goes to the caller.
            core::mem::forget(iommu_group);
            return raw;
        }
    }
    let _ = file;
    core::ptr::null_mut()
}
