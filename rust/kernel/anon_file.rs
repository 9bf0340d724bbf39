// SPDX-License-Identifier: GPL-2.0

//! Files without an inode of their own, whose only state is a Rust object.
//!
//! Some drivers hand userspace a file descriptor that stands for a kernel object (an event
//! queue, a test handle), and take the descriptor back later as an argument. An [`AnonFile`]
//! is such a file: it owns an `Arc<T>`, dropped when the last reference to the file goes, and
//! [`AnonFile::get`] turns a descriptor back into the object after checking that the file is
//! one of these, holding a `T`.
//!
//! A file made by [`AnonFile::create`] does nothing but hold its object: reading or writing it
//! fails as for any file without those operations. One made by [`AnonFile::create_with_ops`]
//! is also read, written and polled through the object's [`AnonFileOps`], as an event queue
//! that userspace reads events from and writes answers to.
//!
//! C header: [`include/linux/anon_inodes.h`](srctree/include/linux/anon_inodes.h).

use crate::{
    bindings,
    error::from_err_ptr,
    ffi::c_char,
    fs::{
        file::LocalFile,
        File, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        poll::PollTable,
        Arc, //
    },
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader,
        UserSliceWriter, //
    },
};
use core::{
    any::Any,
    ffi::c_void,
    ptr::NonNull, //
};

/// What a file's `private_data` points to: the object, and the operations it answers.
type Payload = KBox<dyn Object>;

/// The object of a file, typed at run time.
trait Object: Send + Sync {
    /// The `Arc<T>` the file holds, for [`AnonFile::get`] to downcast.
    fn arc(&self) -> &(dyn Any + Send + Sync);

    /// How the file is read, written and polled.
    fn ops(&self) -> &dyn AnonFileOps;
}

/// What `poll()` reports of a file that cannot block: readable and writable.
pub const DEFAULT_POLLMASK: u32 =
    bindings::POLLIN | bindings::POLLOUT | bindings::POLLRDNORM | bindings::POLLWRNORM;

/// The operations of a file made by [`AnonFile::create`]: the defaults.
struct NoOps;

impl AnonFileOps for NoOps {}

/// The object of a file made by [`AnonFile::create`].
struct Plain<T>(Arc<T>);

impl<T: Send + Sync + 'static> Object for Plain<T> {
    fn arc(&self) -> &(dyn Any + Send + Sync) {
        &self.0
    }

    fn ops(&self) -> &dyn AnonFileOps {
        &NoOps
    }
}

/// The object of a file made by [`AnonFile::create_with_ops`].
struct WithOps<T>(Arc<T>);

impl<T: AnonFileOps> Object for WithOps<T> {
    fn arc(&self) -> &(dyn Any + Send + Sync) {
        &self.0
    }

    fn ops(&self) -> &dyn AnonFileOps {
        &*self.0
    }
}

/// How a file made by [`AnonFile::create_with_ops`] is read, written and polled.
///
/// Reads and writes get the caller's buffer and the file position the call is at (the one
/// `pread()`/`pwrite()` gives, or the file's own, which nothing here moves).
pub trait AnonFileOps: Send + Sync + 'static {
    /// `read()`: fills `writer` and returns how many bytes it wrote.
    fn read(&self, _writer: &mut UserSliceWriter, _pos: i64) -> Result<usize> {
        Err(EINVAL)
    }

    /// `write()`: consumes `reader` and returns how many bytes it took.
    fn write(&self, _reader: &mut UserSliceReader, _pos: i64) -> Result<usize> {
        Err(EINVAL)
    }

    /// `poll()`: registers `table` with what wakes pollers of `file` (see
    /// [`PollTable::register_wait`]) and returns the `POLL*` events ready now.
    fn poll(&self, _file: &File, _table: PollTable<'_>) -> u32 {
        DEFAULT_POLLMASK
    }
}

/// The file operations of every [`AnonFile`] of one kind; their address identifies them.
struct Fops(bindings::file_operations);

// SAFETY: the tables are never written after initialisation; the C side only reads them.
unsafe impl Sync for Fops {}

/// Files that only hold their object.
static FOPS: Fops = Fops(bindings::file_operations {
    release: Some(release),
    ..pin_init::zeroed()
});

/// Files read, written and polled through their object.
static FOPS_RW: Fops = Fops(bindings::file_operations {
    read: Some(read),
    write: Some(write),
    poll: Some(poll),
    release: Some(release),
    ..pin_init::zeroed()
});

/// The object of `file`.
///
/// # Safety
///
/// `file` is a live file made by [`AnonFile::create`] or [`AnonFile::create_with_ops`], and
/// stays alive for `'a`.
unsafe fn object<'a>(file: *const bindings::file) -> &'a dyn Object {
    // SAFETY: by the caller's guarantee `private_data` is the `Payload` leaked in `create`,
    // freed only by `release`, after the file's last use.
    unsafe { &**(*file).private_data.cast::<Payload>() }
}

/// The position a read or write is at; `ppos` is null for stream files, which have none.
///
/// # Safety
///
/// `ppos` is null or valid for reads.
unsafe fn position(ppos: *const bindings::loff_t) -> i64 {
    if ppos.is_null() {
        0
    } else {
        // SAFETY: not null, so valid by the caller's guarantee.
        unsafe { *ppos }
    }
}

/// Converts a read or write result to what the VFS expects.
fn to_ssize(res: Result<usize>) -> isize {
    match res {
        Ok(n) => isize::try_from(n).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the VFS with a file made by [`AnonFile::create_with_ops`], a user buffer of
/// `count` bytes and a null or valid `ppos`.
unsafe extern "C" fn read(
    file: *mut bindings::file,
    buf: *mut c_char,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    let mut writer = UserSlice::new(UserPtr::from_ptr(buf.cast::<c_void>()), count).writer();
    // SAFETY: the VFS holds a reference to `file` for the call; `ppos` is null or valid.
    let (object, pos) = unsafe { (object(file), position(ppos)) };
    to_ssize(object.ops().read(&mut writer, pos))
}

/// # Safety
///
/// Called by the VFS with a file made by [`AnonFile::create_with_ops`], a user buffer of
/// `count` bytes and a null or valid `ppos`.
unsafe extern "C" fn write(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    let mut reader =
        UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast::<c_void>()), count).reader();
    // SAFETY: the VFS holds a reference to `file` for the call; `ppos` is null or valid.
    let (object, pos) = unsafe { (object(file), position(ppos)) };
    to_ssize(object.ops().write(&mut reader, pos))
}

/// # Safety
///
/// Called by the VFS with a file made by [`AnonFile::create_with_ops`] and a null or valid
/// poll table.
unsafe extern "C" fn poll(
    file: *mut bindings::file,
    table: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    // SAFETY: the VFS holds a reference to `file` for the call (and `poll` takes no file
    // position, so there is no `fdget_pos` to synchronise with), and `table` is null or valid
    // for it.
    let (object, file_ref, table) = unsafe {
        (
            object(file),
            File::from_raw_file(file),
            PollTable::from_raw(table),
        )
    };
    object.ops().poll(file_ref, table)
}

/// Frees the payload when the file's last reference goes.
///
/// # Safety
///
/// Called by the VFS with a file made by [`AnonFile::create`] or
/// [`AnonFile::create_with_ops`].
unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
    // SAFETY: `private_data` is the `KBox<Payload>` leaked in `create`, released once, here.
    drop(unsafe { KBox::from_raw((*file).private_data.cast::<Payload>()) });
    0
}

/// Files that hold an `Arc<T>`.
pub struct AnonFile;

impl AnonFile {
    /// A new file named `name` (as `/proc/*/fd` shows it, in brackets by convention) holding
    /// `data`, opened with `flags` (`O_RDWR`, ...). It cannot be read, written or polled.
    pub fn create<T: Send + Sync + 'static>(
        name: &'static CStr,
        data: Arc<T>,
        flags: u32,
    ) -> Result<ARef<File>> {
        Self::make(name, KBox::new(Plain(data), GFP_KERNEL)?, &FOPS, flags)
    }

    /// A new file like those of [`AnonFile::create`], read, written and polled through `data`.
    pub fn create_with_ops<T: AnonFileOps>(
        name: &'static CStr,
        data: Arc<T>,
        flags: u32,
    ) -> Result<ARef<File>> {
        Self::make(name, KBox::new(WithOps(data), GFP_KERNEL)?, &FOPS_RW, flags)
    }

    fn make(
        name: &'static CStr,
        payload: Payload,
        fops: &'static Fops,
        flags: u32,
    ) -> Result<ARef<File>> {
        let raw = KBox::into_raw(KBox::new(payload, GFP_KERNEL)?);
        // SAFETY: `name` and `fops` are static; `raw` becomes the file's `private_data`, which
        // `release` frees.
        let file = unsafe {
            bindings::anon_inode_getfile(
                name.as_char_ptr(),
                &fops.0,
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
        let fops = unsafe { (*raw).f_op };
        if !core::ptr::eq(fops, &FOPS.0) && !core::ptr::eq(fops, &FOPS_RW.0) {
            return Err(EBADF);
        }
        // SAFETY: the file is an `AnonFile` (its operations are ours), alive while our
        // reference is.
        let object = unsafe { object(raw) };
        object.arc().downcast_ref::<Arc<T>>().cloned().ok_or(EBADF)
    }
}
