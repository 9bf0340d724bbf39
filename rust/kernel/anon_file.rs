// SPDX-License-Identifier: GPL-2.0

//! Files without an inode of their own, whose only state is a Rust object.
//!
//! Some drivers hand userspace a file descriptor that stands for a kernel object (an event
//! queue, a test handle), and take the descriptor back later as an argument. An [`AnonFile`]
//! is such a file: it owns an `Arc<T>`, dropped when the last reference to the file goes, and
//! [`AnonFile::get`] turns a descriptor back into the object after checking that the file is
//! one of these, holding a `T`.
//!
//! C header: [`include/linux/anon_inodes.h`](srctree/include/linux/anon_inodes.h).

use crate::{
    bindings,
    error::from_err_ptr,
    fs::{
        file::LocalFile,
        File, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        Arc, //
    },
};
use core::{
    any::Any,
    ffi::c_void,
    ptr::NonNull, //
};

/// What a file's `private_data` points to: the object, typed at run time.
type Payload = KBox<dyn Any + Send + Sync>;

/// The file operations of every [`AnonFile`]; its address identifies them.
struct Fops(bindings::file_operations);

// SAFETY: the table is never written after initialisation; the C side only reads it.
unsafe impl Sync for Fops {}

static FOPS: Fops = Fops(bindings::file_operations {
    release: Some(release),
    ..pin_init::zeroed()
});

/// Frees the payload when the file's last reference goes.
///
/// # Safety
///
/// Called by the VFS with a file made by [`AnonFile::create`].
unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
    // SAFETY: `private_data` is the `KBox<Payload>` leaked in `create`, released once, here.
    drop(unsafe { KBox::from_raw((*file).private_data.cast::<Payload>()) });
    0
}

/// Files that hold an `Arc<T>`.
pub struct AnonFile;

impl AnonFile {
    /// A new file named `name` (as `/proc/*/fd` shows it, in brackets by convention) holding
    /// `data`, opened with `flags` (`O_RDWR`, ...).
    pub fn create<T: Send + Sync + 'static>(
        name: &'static CStr,
        data: Arc<T>,
        flags: u32,
    ) -> Result<ARef<File>> {
        let payload: Payload = KBox::new(data, GFP_KERNEL)?;
        let raw = KBox::into_raw(KBox::new(payload, GFP_KERNEL)?);
        // SAFETY: `name` and `FOPS` are static; `raw` becomes the file's `private_data`, which
        // `release` frees.
        let file = unsafe {
            bindings::anon_inode_getfile(
                name.as_char_ptr(),
                &FOPS.0,
                raw.cast::<c_void>(),
                flags as i32,
            )
        };
        match from_err_ptr(file) {
            Ok(file) => {
                // SAFETY: `anon_inode_getfile` returned a file with one reference, ours now;
                // `File` is a transparent wrapper of `struct file`.
                Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) })
            }
            Err(e) => {
                // SAFETY: the file was not made, so nothing else owns `raw`.
                drop(unsafe { KBox::from_raw(raw) });
                Err(e)
            }
        }
    }

    /// The `Arc<T>` behind file descriptor `fd` of the current process; `EBADF` if `fd` is not
    /// open, or is not an [`AnonFile`] holding a `T`.
    pub fn get<T: Send + Sync + 'static>(fd: u32) -> Result<Arc<T>> {
        let file = LocalFile::fget(fd).map_err(|_| EBADF)?;
        let raw = file.as_ptr();
        // SAFETY: `file` holds a reference, so `raw` is a valid file while we look at it.
        if !core::ptr::eq(unsafe { (*raw).f_op }, &FOPS.0) {
            return Err(EBADF);
        }
        // SAFETY: the file is an `AnonFile` (its operations are ours), so `private_data` is a
        // `Payload`, alive while the file is, which our reference keeps.
        let payload = unsafe { &*(*raw).private_data.cast::<Payload>() };
        payload.downcast_ref::<Arc<T>>().cloned().ok_or(EBADF)
    }
}
