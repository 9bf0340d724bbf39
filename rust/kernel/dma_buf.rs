// SPDX-License-Identifier: GPL-2.0

//! DMA-buf: buffers shared between drivers through file descriptors.
//!
//! An *exporter* owns the memory and hands userspace a file descriptor for it; an *importer*
//! given that descriptor attaches to the buffer and maps it for its device. This module covers
//! the part of the protocol that moves memory by physical address, without scatterlists:
//!
//! - [`export`] makes a buffer whose exporter is a Rust object implementing [`Exporter`]; it
//!   lives until the last reference to the buffer goes. [`DmaBuf::exporter`] finds the object
//!   again from a buffer, if it is one of that type.
//! - [`export_revocable`] does the same and ties the buffer to a [`Revoker`]: the exporter's
//!   owner (a device driver, whose device memory the buffer is) keeps it to take the memory
//!   away from every importer and give it back ([`Revoker::set_revoked`]) for as long as the
//!   buffer lives, without keeping the buffer alive.
//! - [`PhysAttachment`] is a pinned, dynamic attachment of an importer that maps the buffer's
//!   physical range itself (iommufd maps it into IOMMU domains). Only buffers exported from
//!   Rust speak this private interconnect; others are refused with `EOPNOTSUPP`. The exporter
//!   may take the memory away at any time by setting its own state and calling
//!   [`ResvGuard::invalidate_mappings`], which calls [`Importer::invalidate`] on every
//!   importer: they must stop using the range before returning.
//!
//! Locking: every exporter and importer callback here runs with the buffer's reservation lock
//! held ([`DmaBuf::lock`]); an importer's own locks nest inside it.
//!
//! C headers: [`include/linux/dma-buf.h`](srctree/include/linux/dma-buf.h),
//! [`include/linux/dma-resv.h`](srctree/include/linux/dma-resv.h).

use crate::{
    alloc::{
        flags::__GFP_ZERO,
        Flags,
        KBox,
        KVec, //
    },
    bindings,
    device::Device,
    error::from_err_ptr,
    prelude::*,
    sync::{
        aref::{
            ARef,
            AlwaysRefCounted, //
        },
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc, Mutex,
    },
    types::Opaque,
};
use core::{
    any::TypeId,
    ffi::c_void,
    ptr::NonNull, //
};

/// A physically contiguous range: `len` bytes at physical address `addr`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PhysRange {
    /// The physical address of the first byte.
    pub addr: u64,
    /// The length in bytes.
    pub len: u64,
}

/// A DMA-buf (`struct dma_buf`).
///
/// # Invariants
///
/// The buffer is valid: its file holds a reference for every [`ARef<DmaBuf>`], and a `&DmaBuf`
/// only exists while one is held.
#[repr(transparent)]
pub struct DmaBuf(Opaque<bindings::dma_buf>);

// SAFETY: a buffer is reference counted through its file, which any thread may take and drop.
unsafe impl Send for DmaBuf {}
// SAFETY: the shared methods read fields that never change (`size`, `ops`, `priv`) or take the
// reservation lock.
unsafe impl Sync for DmaBuf {}

// SAFETY: `get_file`/`dma_buf_put` take and drop a reference on the buffer's file, which keeps
// the buffer alive.
unsafe impl AlwaysRefCounted for DmaBuf {
    fn inc_ref(&self) {
        // SAFETY: the buffer and its file are valid (type invariant).
        unsafe { bindings::get_file((*self.as_raw()).file) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up a reference it holds.
        unsafe { bindings::dma_buf_put(obj.cast::<bindings::dma_buf>().as_ptr()) };
    }
}

impl DmaBuf {
    fn as_raw(&self) -> *mut bindings::dma_buf {
        self.0.get()
    }

    /// The buffer behind file descriptor `fd` of the current process: `EBADF` if `fd` is not
    /// open, `EINVAL` if it is not a DMA-buf.
    pub fn get(fd: i32) -> Result<ARef<Self>> {
        // SAFETY: `dma_buf_get` takes any value; on success it returns a buffer with a
        // reference for us.
        let raw = from_err_ptr(unsafe { bindings::dma_buf_get(fd) })?;
        let raw = NonNull::new(raw.cast::<Self>()).ok_or(EINVAL)?;
        // SAFETY: the reference taken above is handed over.
        Ok(unsafe { ARef::from_raw(raw) })
    }

    /// The size of the buffer in bytes, fixed for its lifetime.
    pub fn size(&self) -> u64 {
        // SAFETY: the buffer is valid and `size` never changes.
        unsafe { (*self.as_raw()).size as u64 }
    }

    /// The header of a buffer exported by [`export`]; `None` for other exporters.
    fn header(&self) -> Option<&Header> {
        // SAFETY: the buffer is valid; `ops` and `priv` never change after export.
        let (ops, data) = unsafe { ((*self.as_raw()).ops, (*self.as_raw()).priv_) };
        if !core::ptr::eq(ops, &RUST_EXPORTER_OPS) {
            return None;
        }
        // SAFETY: buffers with these ops are made by `export`, whose `priv` is an
        // `Exported<T>` starting with its `Header`, freed only on release (after the last
        // reference, so not while `self` is borrowed).
        Some(unsafe { &*data.cast::<Header>() })
    }

    /// The exporter of this buffer, if [`export`] made it with an exporter of type `T`.
    pub fn exporter<T: Exporter>(&self) -> Option<&T> {
        let header = self.header()?;
        if header.type_id != TypeId::of::<T>() {
            return None;
        }
        let exported = core::ptr::from_ref(header).cast::<Exported<T>>();
        // SAFETY: the type id says the header starts an `Exported<T>` (`repr(C)`, header
        // first), which lives as long as the buffer.
        Some(unsafe { &(*exported).data })
    }

    /// Takes the buffer's reservation lock, which orders exporter and importer callbacks.
    pub fn lock(&self) -> ResvGuard<'_> {
        // SAFETY: the buffer and its reservation object are valid; a NULL acquire context
        // takes the lock alone, which cannot fail with `EDEADLK`.
        unsafe { bindings::dma_resv_lock((*self.as_raw()).resv, core::ptr::null_mut()) };
        ResvGuard { buf: self }
    }

    /// Installs the buffer in a new file descriptor of the current process, with `O_CLOEXEC`
    /// if `flags` has it, and returns it. The descriptor keeps the buffer's reference.
    pub fn into_fd(this: ARef<Self>, flags: u32) -> Result<u32> {
        // SAFETY: the buffer is valid; on success its reference moves to the new descriptor.
        let fd = unsafe { bindings::dma_buf_fd(this.as_raw(), flags as i32) };
        if fd < 0 {
            return Err(Error::from_errno(fd));
        }
        core::mem::forget(this);
        Ok(fd as u32)
    }
}

/// The reservation lock of a buffer, held; dropping it unlocks.
pub struct ResvGuard<'a> {
    buf: &'a DmaBuf,
}

impl ResvGuard<'_> {
    /// Tells every importer that the buffer's memory moves or goes away: each dynamic
    /// importer's [`Importer::invalidate`] runs before this returns.
    pub fn invalidate_mappings(&self) {
        // SAFETY: the buffer is valid and its reservation lock is held (by `self`).
        unsafe { bindings::dma_buf_invalidate_mappings(self.buf.as_raw()) };
    }
}

impl Drop for ResvGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the lock was taken in `DmaBuf::lock` and is released once, here.
        unsafe { bindings::dma_resv_unlock((*self.buf.as_raw()).resv) };
    }
}

/// The exporter of a buffer made by [`export`].
pub trait Exporter: Send + Sync + 'static {
    /// The buffer's memory for an importer that maps it by physical address, called with the
    /// reservation lock held. An error (`ENODEV` for memory taken away, ...) fails the
    /// attachment.
    fn phys(&self, resv: &ResvGuard<'_>) -> Result<PhysRange>;
}

/// What every exported object starts with: how to reach it without knowing its type.
#[repr(C)]
struct Header {
    type_id: TypeId,
    phys: unsafe fn(*const Header, &ResvGuard<'_>) -> Result<PhysRange>,
    release: unsafe fn(*mut Header),
    /// The revoker of a buffer made by [`export_revocable`], told of the release.
    revoker: Option<Arc<Revoker>>,
}

#[repr(C)]
struct Exported<T> {
    header: Header,
    data: T,
}

impl<T: Exporter> Exported<T> {
    /// # Safety
    ///
    /// `header` starts a live `Exported<T>`.
    unsafe fn phys(header: *const Header, resv: &ResvGuard<'_>) -> Result<PhysRange> {
        // SAFETY: by the function's safety requirement.
        unsafe { (*header.cast::<Self>()).data.phys(resv) }
    }

    /// # Safety
    ///
    /// `header` starts an `Exported<T>` made by [`export`], which nothing uses any more.
    unsafe fn release(header: *mut Header) {
        // SAFETY: it was allocated as a `KBox<Self>` and is given back once.
        let exported = unsafe { KBox::from_raw(header.cast::<Self>()) };
        if let Some(revoker) = &exported.header.revoker {
            // From here on the revoker no longer reaches the buffer, which is freed next.
            *revoker.buf.lock() = None;
        }
        drop(exported);
    }
}

/// `map_dma_buf`: only the physical-address interconnect is offered.
///
/// # Safety
///
/// Called by the dma-buf core only; touches none of its arguments.
unsafe extern "C" fn map_dma_buf(
    _attach: *mut bindings::dma_buf_attachment,
    _dir: bindings::dma_data_direction,
) -> *mut bindings::sg_table {
    EOPNOTSUPP.to_ptr()
}

/// `unmap_dma_buf`: nothing is ever mapped.
///
/// # Safety
///
/// Called by the dma-buf core only; touches none of its arguments.
unsafe extern "C" fn unmap_dma_buf(
    _attach: *mut bindings::dma_buf_attachment,
    _sgt: *mut bindings::sg_table,
    _dir: bindings::dma_data_direction,
) {
}

/// `release`: the last reference is gone; frees the exporter.
///
/// # Safety
///
/// `buf` is a buffer made by [`export`], released once by the dma-buf core after its last
/// reference went.
unsafe extern "C" fn release(buf: *mut bindings::dma_buf) {
    // SAFETY: the buffer was made by `export`: `priv` is an exported object's header, and the
    // core calls this once, after every other use.
    unsafe {
        let header = (*buf).priv_.cast::<Header>();
        ((*header).release)(header);
    }
}

/// The operations of every buffer exported from Rust; their address identifies such buffers.
static RUST_EXPORTER_OPS: bindings::dma_buf_ops = bindings::dma_buf_ops {
    map_dma_buf: Some(map_dma_buf),
    unmap_dma_buf: Some(unmap_dma_buf),
    release: Some(release),
    // SAFETY: every other member is an optional function pointer, for which zero is `None`.
    ..unsafe { core::mem::zeroed() }
};

/// Exports `exporter` as a buffer of `size` bytes whose file is opened with `flags`
/// (`O_CLOEXEC`, `O_RDWR`, ...). The exporter lives until the buffer's last reference goes.
pub fn export<T: Exporter>(exporter: T, size: usize, flags: u32) -> Result<ARef<DmaBuf>> {
    export_with(exporter, size, flags, None)
}

/// Exports `exporter` as [`export`] does, tied to `revoker`, which must not be tied to another
/// buffer yet (`EBUSY`). The exporter's [`Exporter::phys`] should refuse the memory while
/// [`Revoker::revoked`] says so.
pub fn export_revocable<T: Exporter>(
    exporter: T,
    size: usize,
    flags: u32,
    revoker: &Arc<Revoker>,
) -> Result<ARef<DmaBuf>> {
    let mut tied = revoker.buf.lock();
    if tied.is_some() || revoker.used.load(Relaxed) {
        return Err(EBUSY);
    }
    let buf = export_with(exporter, size, flags, Some(revoker.clone()))?;
    // The buffer cannot be released before this: its only reference is `buf`.
    *tied = NonNull::new(buf.as_raw());
    revoker.used.store(true, Relaxed);
    drop(tied);
    Ok(buf)
}

fn export_with<T: Exporter>(
    exporter: T,
    size: usize,
    flags: u32,
    revoker: Option<Arc<Revoker>>,
) -> Result<ARef<DmaBuf>> {
    let exported = KBox::new(
        Exported {
            header: Header {
                type_id: TypeId::of::<T>(),
                phys: Exported::<T>::phys,
                release: Exported::<T>::release,
                revoker,
            },
            data: exporter,
        },
        GFP_KERNEL,
    )?;
    let data = KBox::into_raw(exported);
    let info = bindings::dma_buf_export_info {
        exp_name: crate::str::as_char_ptr_in_const_context(c"rust"),
        owner: core::ptr::null_mut(),
        ops: &RUST_EXPORTER_OPS,
        size,
        flags: flags as i32,
        resv: core::ptr::null_mut(),
        priv_: data.cast::<c_void>(),
    };
    // SAFETY: `info` is complete; on success the buffer owns `data` and frees it through
    // `release`. Built-in code has no module to pin (`owner` NULL).
    let raw = match from_err_ptr(unsafe { bindings::dma_buf_export(&info) }) {
        Ok(raw) => raw,
        Err(e) => {
            // SAFETY: the export failed, so `data` is still ours.
            drop(unsafe { KBox::from_raw(data) });
            return Err(e);
        }
    };
    let raw = NonNull::new(raw.cast::<DmaBuf>()).ok_or(EINVAL)?;
    // SAFETY: a new buffer comes with one reference, handed over here.
    Ok(unsafe { ARef::from_raw(raw) })
}

/// A handle on a buffer made by [`export_revocable`] that does not keep it alive: whoever owns
/// the memory behind the buffer takes it away from every importer, or gives it back, with
/// [`Revoker::set_revoked`], as long as the buffer lives; after its release that only records
/// the state.
///
/// # Invariants
///
/// `buf` is the tied buffer until its release, which sets it to `None` (under the lock) before
/// the buffer is freed.
#[pin_data]
pub struct Revoker {
    #[pin]
    buf: Mutex<Option<NonNull<bindings::dma_buf>>>,
    /// Whether the memory is taken away; written with the buffer's reservation lock held.
    revoked: Atomic<bool>,
    /// Whether a buffer was ever tied to this revoker.
    used: Atomic<bool>,
}

// SAFETY: the buffer pointer is only used under the lock, while the buffer lives (invariant);
// the rest is atomic.
unsafe impl Send for Revoker {}
// SAFETY: as for `Send`.
unsafe impl Sync for Revoker {}

impl Revoker {
    /// A revoker with no buffer yet, its memory not revoked.
    pub fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                buf <- crate::new_mutex!(None),
                revoked: Atomic::new(false),
                used: Atomic::new(false),
            }),
            GFP_KERNEL,
        )
    }

    /// Whether the memory is taken away: for the exporter's [`Exporter::phys`], which runs
    /// with the reservation lock held, under which this changes.
    pub fn revoked(&self) -> bool {
        self.revoked.load(Relaxed)
    }

    /// Whether the buffer was released (or never made).
    pub fn released(&self) -> bool {
        self.buf.lock().is_none()
    }

    /// Takes the memory away from every importer (`revoked`), each of which stops using it
    /// before this returns ([`Importer::invalidate`]), or lets new attachments have it again.
    pub fn set_revoked(&self, revoked: bool) {
        let buf = self.buf.lock();
        let Some(raw) = *buf else {
            self.revoked.store(revoked, Relaxed);
            return;
        };
        // SAFETY: while `buf` is locked and holds the buffer, its release cannot finish, so the
        // buffer and its reservation object are valid (invariant); a NULL acquire context
        // takes the lock alone.
        unsafe { bindings::dma_resv_lock((*raw.as_ptr()).resv, core::ptr::null_mut()) };
        if self.revoked.load(Relaxed) != revoked {
            self.revoked.store(revoked, Relaxed);
            if revoked {
                // SAFETY: as above, with the reservation lock held.
                unsafe { bindings::dma_buf_invalidate_mappings(raw.as_ptr()) };
            }
        }
        // SAFETY: taken above.
        unsafe { bindings::dma_resv_unlock((*raw.as_ptr()).resv) };
    }
}

/// An importer of buffers by physical address.
pub trait Importer: Send + Sync + 'static {
    /// The buffer's memory is going away or moving: every use of the physical range must stop
    /// before this returns. Called with the reservation lock held.
    fn invalidate(&self);
}

/// The importer operations of importers of type `I`.
struct ImporterOps<I>(core::marker::PhantomData<I>);

impl<I: Importer> ImporterOps<I> {
    const OPS: bindings::dma_buf_attach_ops = bindings::dma_buf_attach_ops {
        allow_peer2peer: true,
        invalidate_mappings: Some(Self::invalidate),
    };

    /// # Safety
    ///
    /// `attach` is an attachment made by [`PhysAttachment::new`] with these ops, not yet
    /// detached; the dma-buf core calls this with the buffer's reservation lock held.
    unsafe extern "C" fn invalidate(attach: *mut bindings::dma_buf_attachment) {
        // SAFETY: attachments with these ops are made by `PhysAttachment::new`, whose
        // `importer_priv` is an `Arc<I>` held until after the detach.
        let importer = unsafe { &*(*attach).importer_priv.cast::<I>() };
        importer.invalidate();
    }
}

/// A pinned dynamic attachment of `importer` to a buffer exported by [`export`], with the
/// buffer's physical range. Dropping it unpins and detaches.
///
/// # Invariants
///
/// `attach` is an attachment of `buf` made with [`ImporterOps<I>`] and `importer` as its
/// private data, pinned.
pub struct PhysAttachment<I: Importer> {
    attach: NonNull<bindings::dma_buf_attachment>,
    buf: ARef<DmaBuf>,
    importer: Arc<I>,
    phys: PhysRange,
}

// SAFETY: the attachment is only used under the buffer's reservation lock; `buf` and
// `importer` are thread safe.
unsafe impl<I: Importer> Send for PhysAttachment<I> {}
// SAFETY: the shared methods only read immutable fields.
unsafe impl<I: Importer> Sync for PhysAttachment<I> {}

impl<I: Importer> PhysAttachment<I> {
    /// Attaches `importer` to `buf` as `dev`, pins the buffer and reads its physical range,
    /// which `f` sees first with the reservation lock still held: from then on
    /// [`Importer::invalidate`] may run. `EOPNOTSUPP` for a buffer not exported from Rust,
    /// or the exporter's error.
    pub fn new(
        buf: ARef<DmaBuf>,
        dev: &Device,
        importer: Arc<I>,
        f: impl FnOnce(&I, PhysRange),
    ) -> Result<Self> {
        let header = buf.header().ok_or(EOPNOTSUPP)?;
        // SAFETY: the buffer and device are valid; `importer` outlives the attachment (it is
        // dropped after the detach), and the ops are a constant.
        let raw = from_err_ptr(unsafe {
            bindings::dma_buf_dynamic_attach(
                buf.as_raw(),
                dev.as_raw(),
                &ImporterOps::<I>::OPS,
                Arc::as_ptr(&importer).cast_mut().cast::<c_void>(),
            )
        })?;
        let attach = NonNull::new(raw).ok_or(EINVAL)?;
        let resv = buf.lock();
        // SAFETY: `attach` is a dynamic attachment of `buf`, whose lock is held.
        let mut res = crate::error::to_result(unsafe { bindings::dma_buf_pin(attach.as_ptr()) });
        let mut phys = PhysRange { addr: 0, len: 0 };
        if res.is_ok() {
            // SAFETY: `header` starts the buffer's exported object.
            res = unsafe { (header.phys)(header, &resv) }.map(|p| phys = p);
            if res.is_ok() {
                f(&importer, phys);
            } else {
                // SAFETY: pinned above, with the lock held.
                unsafe { bindings::dma_buf_unpin(attach.as_ptr()) };
            }
        }
        drop(resv);
        if let Err(e) = res {
            // SAFETY: `attach` is an attachment of `buf`, no longer pinned.
            unsafe { bindings::dma_buf_detach(buf.as_raw(), attach.as_ptr()) };
            return Err(e);
        }
        Ok(Self {
            attach,
            buf,
            importer,
            phys,
        })
    }

    /// The buffer's physical range, as it was when attached.
    pub fn phys(&self) -> PhysRange {
        self.phys
    }

    /// The importer.
    pub fn importer(&self) -> &Arc<I> {
        &self.importer
    }
}

impl<I: Importer> Drop for PhysAttachment<I> {
    fn drop(&mut self) {
        let resv = self.buf.lock();
        // SAFETY: the attachment is pinned (type invariant) and the lock is held.
        unsafe { bindings::dma_buf_unpin(self.attach.as_ptr()) };
        drop(resv);
        // SAFETY: the attachment is one of `buf`'s, used no more; the importer is dropped
        // after this, so `invalidate` never sees it freed.
        unsafe { bindings::dma_buf_detach(self.buf.as_raw(), self.attach.as_ptr()) };
    }
}

/// Zeroed, physically contiguous kernel memory, for exporters of plain memory (test
/// exporters, for example).
pub struct ContiguousMemory {
    mem: KVec<u8>,
    len: usize,
}

impl ContiguousMemory {
    /// `len` zeroed bytes; `EINVAL` for none, `ENOMEM` past what one allocation can hold.
    pub fn new(len: usize, flags: Flags) -> Result<Self> {
        if len == 0 {
            return Err(EINVAL);
        }
        Ok(Self {
            mem: KVec::with_capacity(len, flags | __GFP_ZERO)?,
            len,
        })
    }

    /// Where the memory is.
    pub fn phys(&self) -> PhysRange {
        // SAFETY: `mem` is a live kmalloc allocation, which is in the kernel's linear map and
        // physically contiguous.
        let addr = unsafe { bindings::virt_to_phys(self.mem.as_ptr().cast_mut().cast()) };
        PhysRange {
            addr,
            len: self.len as u64,
        }
    }
}
