// SPDX-License-Identifier: GPL-2.0

//! Character devices with a device of their own in a class.
//!
//! Some subsystems give each of their devices a character device node together with a
//! `struct device` in a class of their own, a child of the device it stands for: VFIO's
//! `/dev/vfio/devices/vfioN`, whose `dev` file userspace finds under
//! `/sys/class/vfio-dev/vfioN/` and under the parent's `vfio-dev/vfioN/`. This module has the
//! three pieces: [`Class`] (`class_register`), [`ChrdevRegion`] (`alloc_chrdev_region`) and
//! [`CdevDevice`] (`cdev_device_add`), whose open files are driven by a [`CdevFile`].
//!
//! C headers: [`include/linux/cdev.h`](srctree/include/linux/cdev.h),
//! [`include/linux/device/class.h`](srctree/include/linux/device/class.h).

use crate::{
    bindings,
    device::Device,
    error::{
        from_err_ptr,
        to_result,
        VTABLE_DEFAULT_ERROR, //
    },
    fs::{
        File,
        LocalFile, //
    },
    mm::virt::{
        SharedMapping,
        VmaNew, //
    },
    module::this_module,
    prelude::*,
    str::CStr,
    sync::{
        aref::ARef,
        Arc, //
    },
    types::{
        ForeignOwnable,
        Opaque, //
    },
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader,
        UserSliceWriter, //
    },
};
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

/// `FMODE_PREAD` and `FMODE_PWRITE` of `include/linux/fs.h`, which bindgen does not see
/// through their `__force` casts.
const FMODE_PREAD: u32 = 1 << 3;
const FMODE_PWRITE: u32 = 1 << 4;

/// A device class (`struct class`), `/sys/class/<name>`, whose devices get their nodes in a
/// subdirectory of `/dev`.
///
/// # Invariants
///
/// `raw` is a registered class whose `devnode` callback is [`Class::devnode`].
#[pin_data(PinnedDrop)]
pub struct Class {
    node_dir: &'static CStr,
    #[pin]
    raw: Opaque<bindings::class>,
}

// SAFETY: The class is only read after registration; the C core serialises its own state.
unsafe impl Send for Class {}
// SAFETY: As for `Send`.
unsafe impl Sync for Class {}

impl Class {
    /// Registers the class `name`; the nodes of its devices are `/dev/<node_dir>/<device name>`.
    pub fn register(name: &'static CStr, node_dir: &'static CStr) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                node_dir,
                raw <- Opaque::try_ffi_init(move |slot: *mut bindings::class| {
                    // SAFETY: `slot` may be written; a zeroed class is a valid one to fill.
                    unsafe {
                        slot.write(pin_init::zeroed());
                        (*slot).name = name.as_char_ptr();
                        (*slot).devnode = Some(Self::devnode);
                    }
                    // SAFETY: `slot` holds a class with a name and is pinned: it is
                    // unregistered in `drop` before its memory goes.
                    to_result(unsafe { bindings::class_register(slot) })
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// The node of a device of the class: `<node_dir>/<device name>`, allocated for the caller.
    ///
    /// # Safety
    ///
    /// Called by the driver core with a device of a [`Class`].
    unsafe extern "C" fn devnode(dev: *const bindings::device, _mode: *mut u16) -> *mut c_char {
        // SAFETY: `dev` is a valid device of a class, which the caller keeps alive.
        let class = unsafe { (*dev).class };
        // SAFETY: By the invariants, this callback is only installed in the `raw` field of a
        // `Class`, which lives at least as long as its devices (each `CdevDevice` holds it).
        let this = unsafe { &*crate::container_of!(Opaque::cast_from(class), Self, raw) };
        // SAFETY: Both strings are valid and NUL-terminated; `kasprintf` returns a kmalloc'ed
        // string (or null), which the caller frees.
        unsafe {
            bindings::kasprintf(
                bindings::GFP_KERNEL,
                c"%s/%s".as_char_ptr(),
                this.node_dir.as_char_ptr(),
                bindings::dev_name(dev),
            )
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Class {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the invariants the class is registered; no device of it is left, as each
        // holds a reference on the class.
        unsafe { bindings::class_unregister(self.raw.get()) };
    }
}

/// A range of character device numbers with a dynamically allocated major
/// (`alloc_chrdev_region`), given back on drop.
pub struct ChrdevRegion {
    base: u32,
    count: u32,
}

impl ChrdevRegion {
    /// Allocates `count` minors (starting at 0) of a new major, shown as `name` in
    /// `/proc/devices`.
    pub fn alloc(count: u32, name: &'static CStr) -> Result<Self> {
        let mut base = 0;
        // SAFETY: `base` may be written; `name` is static.
        to_result(unsafe {
            bindings::alloc_chrdev_region(&mut base, 0, count, name.as_char_ptr())
        })?;
        Ok(Self { base, count })
    }

    /// The device number of minor `index` of the region, if it has that many.
    pub fn devt(&self, index: u32) -> Option<u32> {
        (index < self.count).then(|| self.base + index)
    }
}

impl Drop for ChrdevRegion {
    fn drop(&mut self) {
        // SAFETY: The region was allocated in `alloc` and is given back once.
        unsafe { bindings::unregister_chrdev_region(self.base, self.count) };
    }
}

/// The operations of the open files of a [`CdevDevice`].
#[vtable]
pub trait CdevFile: Sized {
    /// What each device carries, handed to every open of its node.
    type Data: Send + Sync;

    /// What an open file holds.
    type Ptr: ForeignOwnable + Send + Sync;

    /// Opens the node of the device whose data is `data`; the result is the file's private data.
    fn open(data: &Self::Data, file: &File) -> Result<Self::Ptr>;

    /// The address space the file's mappings go in, if the file shares one with others
    /// ([`SharedMapping`]), so that they can all be zapped together: it becomes the file's
    /// `f_mapping` once opened, before the file can be mapped. It must live as long as the
    /// file's private data, which the lifetime ensures.
    fn shared_mapping<'a>(
        _this: <Self::Ptr as ForeignOwnable>::Borrowed<'a>,
    ) -> Option<&'a SharedMapping> {
        None
    }

    /// The last reference to the file went.
    fn release(this: Self::Ptr, _file: &File) {
        drop(this);
    }

    /// `ioctl()`.
    fn ioctl(
        _this: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _cmd: u32,
        _arg: usize,
    ) -> Result<isize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `read()` at `*pos` into `buf`: returns how much was read, and moves `*pos` as the file
    /// wants. The file is a [`LocalFile`]: the read may run inside the caller's `fdget_pos()`.
    fn read(
        _this: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &LocalFile,
        _buf: &mut UserSliceWriter,
        _pos: &mut i64,
    ) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `write()` at `*pos` from `buf`: returns how much was written. The file is a
    /// [`LocalFile`], as for [`CdevFile::read`].
    fn write(
        _this: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &LocalFile,
        _buf: &mut UserSliceReader,
        _pos: &mut i64,
    ) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `mmap()`, as for a misc device.
    fn mmap(
        _this: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _vma: &VmaNew,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// What a [`CdevDevice`] allocates: the device, its cdev, its class and its data. The device's
/// reference count governs it: it is freed by the device's release callback.
#[repr(C)]
struct Node<T: CdevFile> {
    dev: Opaque<bindings::device>,
    cdev: Opaque<bindings::cdev>,
    class: Arc<Class>,
    data: T::Data,
}

/// A device of a [`Class`] with a character device node, a child of another device:
/// `cdev_device_add()`. Dropping it removes the device and the node; files still open keep the
/// data alive until they are closed.
///
/// # Invariants
///
/// `node` points to a `Node<T>` whose device and cdev were added with `cdev_device_add()`, and
/// this holds the reference `device_initialize()` gave.
pub struct CdevDevice<T: CdevFile> {
    node: NonNull<Node<T>>,
}

// SAFETY: The node is only shared read-only, and `T::Data` is `Send + Sync`.
unsafe impl<T: CdevFile> Send for CdevDevice<T> {}
// SAFETY: As for `Send`.
unsafe impl<T: CdevFile> Sync for CdevDevice<T> {}

impl<T: CdevFile> CdevDevice<T> {
    /// Adds a device named `name` of `class`, a child of `parent` (or of nothing, for a device
    /// that stands for no other, as VFIO's groups), with the node of device number `devt`
    /// (from a [`ChrdevRegion`]), carrying `data`.
    pub fn register(
        class: &Arc<Class>,
        parent: Option<&Device>,
        devt: u32,
        name: &CStr,
        data: T::Data,
    ) -> Result<Self> {
        let node = KBox::new(
            Node::<T> {
                dev: Opaque::zeroed(),
                cdev: Opaque::zeroed(),
                class: class.clone(),
                data,
            },
            GFP_KERNEL,
        )?;
        let node = KBox::into_raw(node);
        // SAFETY: `node` was just allocated and is not moved again.
        let (dev, cdev) = unsafe {
            (
                Opaque::cast_into(&raw const (*node).dev),
                Opaque::cast_into(&raw const (*node).cdev),
            )
        };
        // SAFETY: `dev` is zeroed memory for a device. From here on the device's reference
        // count owns `node`: it is freed by `release_node`, after the last `put_device()`.
        unsafe {
            bindings::device_initialize(dev);
            (*dev).release = Some(Self::release_node);
            (*dev).class = class.raw.get();
            (*dev).parent = parent.map_or(core::ptr::null_mut(), Device::as_raw);
            (*dev).devt = devt;
        }
        let put = |e: Error| {
            // SAFETY: Drops the reference of `device_initialize()`, which frees `node`.
            unsafe { bindings::put_device(dev) };
            e
        };
        // SAFETY: `dev` is initialised; `name` is a valid string, formatted with "%s".
        to_result(unsafe { bindings::dev_set_name(dev, c"%s".as_char_ptr(), name.as_char_ptr()) })
            .map_err(put)?;
        // SAFETY: `cdev` is zeroed memory for a cdev; the table is static.
        unsafe {
            bindings::cdev_init(cdev, CdevVTable::<T>::build());
            (*cdev).owner = this_module::<T::OwnerModule>().as_ptr();
        }
        // SAFETY: Both are initialised and belong together in `node`.
        to_result(unsafe { bindings::cdev_device_add(cdev, dev) }).map_err(put)?;
        // INVARIANT: Added, and the reference of `device_initialize()` is ours.
        Ok(Self {
            // SAFETY: `KBox::into_raw` does not return null.
            node: unsafe { NonNull::new_unchecked(node) },
        })
    }

    /// The data the device carries.
    pub fn data(&self) -> &T::Data {
        // SAFETY: By the invariants the node is alive while `self` holds its reference.
        unsafe { &(*self.node.as_ptr()).data }
    }

    /// The device in the class.
    pub fn device(&self) -> &Device {
        // SAFETY: The device is alive while `self` holds its reference.
        unsafe { Device::from_raw(Opaque::cast_into(&raw const (*self.node.as_ptr()).dev)) }
    }

    /// A file of the kind the node opens, which no node opened: an anonymous file named `name`
    /// (`anon_inode_getfile()`) with the node's file operations, owning `this` as its private
    /// data, open for reading and writing at any position (`pread()`, `pwrite()`). Its
    /// [`CdevFile::release`] runs when its last reference goes. For a subsystem that hands out
    /// the same files through another way in, as VFIO's group hands out device files.
    pub fn new_file(name: &'static CStr, this: T::Ptr) -> Result<ARef<File>> {
        let data = this.into_foreign();
        // SAFETY: `name` and the table are static; `data` becomes the file's private data,
        // given back by the table's `release` (or below, if no file was made).
        let file = unsafe {
            bindings::anon_inode_getfile_fmode(
                name.as_char_ptr(),
                CdevVTable::<T>::build(),
                data,
                bindings::O_RDWR as i32,
                FMODE_PREAD | FMODE_PWRITE,
            )
        };
        match from_err_ptr(file) {
            Ok(file) => {
                // SAFETY: The file was just made with `data` as its private data, and nobody
                // else has it yet.
                unsafe { CdevVTable::<T>::share_mapping(file) };
                // SAFETY: `anon_inode_getfile_fmode` returned a file with one reference, which
                // the `ARef` takes; `File` is transparent over `struct file`.
                Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast())) })
            }
            Err(e) => {
                // SAFETY: No file was made, so `data` is still ours, from `into_foreign` above.
                drop(unsafe { T::Ptr::from_foreign(data) });
                Err(e)
            }
        }
    }

    /// The private data of `file` if it is an open file of a node of this kind (or one made by
    /// [`CdevDevice::new_file`]), `None` for any other file: how C code tells its files apart by
    /// `f_op`. Borrowed for as long as the caller holds `file`, which keeps it from release.
    pub fn file_data(file: &LocalFile) -> Option<<T::Ptr as ForeignOwnable>::Borrowed<'_>> {
        let raw = file.as_ptr();
        // SAFETY: `file` is a valid file; its `f_op` and `private_data` may be read.
        let (fops, private) = unsafe { ((*raw).f_op, (*raw).private_data) };
        // A node's file gets its private data when `open` returns, before any file descriptor
        // of it exists; `null` until then.
        if !core::ptr::eq(fops, CdevVTable::<T>::build()) || private.is_null() {
            return None;
        }
        // SAFETY: The file is one of ours whose open completed, so its private data came from
        // `into_foreign`; it is only given back in `release`, which cannot run while `file` is
        // held.
        Some(unsafe { <T::Ptr as ForeignOwnable>::borrow(private) })
    }

    /// Frees the node of a device whose last reference went.
    ///
    /// # Safety
    ///
    /// Called by the driver core with the device of a `Node<T>`.
    unsafe extern "C" fn release_node(dev: *mut bindings::device) {
        // SAFETY: `dev` is the first field of a `Node<T>` (`repr(C)`) allocated by `register`.
        let node = unsafe { crate::container_of!(Opaque::cast_from(dev), Node<T>, dev) };
        // SAFETY: This is the last reference: nothing uses the node any more.
        drop(unsafe { KBox::from_raw(node.cast_mut()) });
    }
}

impl<T: CdevFile> Drop for CdevDevice<T> {
    fn drop(&mut self) {
        let node = self.node.as_ptr();
        // SAFETY: By the invariants the device and cdev were added, and are removed once here;
        // then our reference goes. Open files keep theirs through the cdev.
        unsafe {
            let dev = Opaque::cast_into(&raw const (*node).dev);
            bindings::cdev_device_del(Opaque::cast_into(&raw const (*node).cdev), dev);
            bindings::put_device(dev);
        }
    }
}

/// The file operations of the nodes of [`CdevDevice<T>`].
struct CdevVTable<T: CdevFile>(PhantomData<T>);

impl<T: CdevFile> CdevVTable<T> {
    const VTABLE: bindings::file_operations = bindings::file_operations {
        open: Some(Self::open),
        release: Some(Self::release),
        unlocked_ioctl: if T::HAS_IOCTL {
            Some(Self::ioctl)
        } else {
            None
        },
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: if T::HAS_IOCTL {
            bindings::compat_ptr_ioctl
        } else {
            None
        },
        read: if T::HAS_READ { Some(Self::read) } else { None },
        write: if T::HAS_WRITE {
            Some(Self::write)
        } else {
            None
        },
        mmap: if T::HAS_MMAP { Some(Self::mmap) } else { None },
        owner: this_module::<T::OwnerModule>().as_ptr(),
        ..pin_init::zeroed()
    };

    const fn build() -> &'static bindings::file_operations {
        &Self::VTABLE
    }

    /// # Safety
    ///
    /// Called by `chrdev_open()` for a file of the cdev of a `Node<T>`.
    unsafe extern "C" fn open(inode: *mut bindings::inode, raw_file: *mut bindings::file) -> c_int {
        // SAFETY: `chrdev_open()` set `i_cdev` and holds a reference on the cdev, whose parent
        // is the node's device: the node is alive.
        let node = unsafe {
            &*crate::container_of!(
                Opaque::cast_from((*inode).__bindgen_anon_5.i_cdev),
                Node<T>,
                cdev
            )
        };
        // SAFETY: The file is valid for the duration of the call; no fdget_pos region is active.
        let file = unsafe { File::from_raw_file(raw_file) };
        match T::open(&node.data, file) {
            Ok(ptr) => {
                // SAFETY: The open call of a file owns its private data.
                unsafe { (*raw_file).private_data = ptr.into_foreign() };
                // SAFETY: The file is opened, so its private data came from `into_foreign` and
                // is only given back in `release`; nothing has mapped the file yet.
                unsafe { Self::share_mapping(raw_file) };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// Makes the file's `f_mapping` the [`CdevFile::shared_mapping`] of its private data, if
    /// it has one.
    ///
    /// # Safety
    ///
    /// `file` is a file whose private data came from `into_foreign` (which `release` gives back)
    /// and that nothing mapped yet.
    unsafe fn share_mapping(file: *mut bindings::file) {
        // SAFETY: As the caller promises; the borrow ends before `release` can run.
        let this = unsafe { Self::data(file) };
        if let Some(mapping) = T::shared_mapping(this) {
            // SAFETY: Nothing maps the file yet, so no vma is linked in its old address space.
            // The new one lives as long as the private data (the lifetime of `shared_mapping`),
            // which is until `release`: past every vma of the file, which each hold the file.
            unsafe { (*file).f_mapping = mapping.as_raw() };
        }
    }

    /// # Safety
    ///
    /// Called once for a file that `open` opened.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: The release call owns the private data, which `open` set.
        let ptr = unsafe { <T::Ptr as ForeignOwnable>::from_foreign((*file).private_data) };
        // SAFETY: The file is valid for the duration of the call.
        T::release(ptr, unsafe { File::from_raw_file(file) });
        0
    }

    /// The private data of `file`.
    ///
    /// # Safety
    ///
    /// `file` is a file that `open` opened (or [`CdevDevice::new_file`] made) and that is not
    /// being released, for `'a`.
    unsafe fn data<'a>(file: *mut bindings::file) -> <T::Ptr as ForeignOwnable>::Borrowed<'a> {
        // SAFETY: Between open and release the private data came from `into_foreign`.
        unsafe { <T::Ptr as ForeignOwnable>::borrow((*file).private_data) }
    }

    /// The private data and the file, for an operation that runs outside any `fdget_pos()`
    /// (`ioctl()`, `mmap()`).
    ///
    /// # Safety
    ///
    /// As for [`Self::data`], and no `fdget_pos()` of the file is active without its lock.
    unsafe fn borrow<'a>(
        file: *mut bindings::file,
    ) -> (<T::Ptr as ForeignOwnable>::Borrowed<'a>, &'a File) {
        // SAFETY: As the caller promises; the file, held by the caller of the operation, is
        // valid.
        unsafe { (Self::data(file), File::from_raw_file(file)) }
    }

    /// The private data and the file, for `read()` and `write()`, which run inside the
    /// caller's `fdget_pos()`.
    ///
    /// # Safety
    ///
    /// As for [`Self::data`]; any `fdget_pos()` of the file without its lock is this thread's.
    unsafe fn borrow_local<'a>(
        file: *mut bindings::file,
    ) -> (<T::Ptr as ForeignOwnable>::Borrowed<'a>, &'a LocalFile) {
        // SAFETY: As the caller promises; the file, held by the caller of the operation, is
        // valid.
        unsafe { (Self::data(file), LocalFile::from_raw_file(file)) }
    }

    /// # Safety
    ///
    /// A file operation of a file that `open` opened.
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: As the caller promises; `ioctl()` takes the file with `fdget()`, not
        // `fdget_pos()`.
        let (this, file) = unsafe { Self::borrow(file) };
        match T::ioctl(this, file, cmd, arg) {
            Ok(ret) => ret as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }

    /// # Safety
    ///
    /// A file operation of a file that `open` opened; `pos` is valid.
    unsafe extern "C" fn read(
        file: *mut bindings::file,
        buf: *mut c_char,
        count: usize,
        pos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: As the caller promises; the VFS's `fdget_pos()` is this thread's.
        let (this, file) = unsafe { Self::borrow_local(file) };
        let mut writer = UserSlice::new(UserPtr::from_ptr(buf.cast()), count).writer();
        // SAFETY: `pos` is valid for the call.
        let pos = unsafe { &mut *pos };
        match T::read(this, file, &mut writer, pos) {
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// A file operation of a file that `open` opened; `pos` is valid.
    unsafe extern "C" fn write(
        file: *mut bindings::file,
        buf: *const c_char,
        count: usize,
        pos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: As the caller promises; the VFS's `fdget_pos()` is this thread's.
        let (this, file) = unsafe { Self::borrow_local(file) };
        let mut reader = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
        // SAFETY: `pos` is valid for the call.
        let pos = unsafe { &mut *pos };
        match T::write(this, file, &mut reader, pos) {
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// A file operation of a file that `open` opened; `vma` is being set up for it.
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: As the caller promises; `mmap()` does not use `fdget_pos()`.
        let (this, file) = unsafe { Self::borrow(file) };
        // SAFETY: The VMA is undergoing its initial setup.
        let vma = unsafe { VmaNew::from_raw(vma) };
        match T::mmap(this, file, vma) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}
