// SPDX-License-Identifier: GPL-2.0

//! Eventfd contexts (`include/linux/eventfd.h`): the counter behind an eventfd file, which
//! kernel code signals and userspace reads or polls. VFIO drivers signal one per interrupt
//! userspace asked for (`VFIO_DEVICE_SET_IRQS`), and watch one that userspace signals to have
//! an interrupt unmasked ([`Watch`]).

use crate::{
    bindings,
    error::from_err_ptr,
    fs::LocalFile,
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
    types::Opaque, //
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

/// What a [`Watch`] calls when its eventfd is signalled.
pub trait Notify: Send + Sync {
    /// The eventfd was signalled (its count is consumed). Called with the eventfd's wait queue
    /// locked and interrupts off, so it must not sleep nor signal an eventfd (the kernel
    /// refuses to signal one from another's wake-up): defer that to a work item.
    fn notify(&self);
}

/// `EPOLLIN` and `EPOLLHUP`, as the wake-up key of an eventfd carries them.
const EPOLLIN: usize = 0x1;
const EPOLLHUP: usize = 0x10;

/// A callback on the signals of an eventfd that userspace (or KVM, through its resampling
/// irqfd) writes to: what VFIO's `virqfd` is. The eventfd's count is consumed at each signal,
/// and [`Notify::notify`] runs; a signal pending when the watch is made counts too. Dropping
/// the watch takes it off the eventfd (waiting out a callback that runs). Closing the eventfd
/// does not end the watch; it only marks it hung up ([`Watch::hung_up`]).
///
/// # Invariants
///
/// `wait` is on the wait queue of `ctx` from [`Watch::new`] until `drop`, and its `func` is
/// [`Watch::wake`] for this `N`.
#[pin_data(PinnedDrop)]
pub struct Watch<N: Notify> {
    #[pin]
    wait: Opaque<bindings::wait_queue_entry>,
    #[pin]
    table: Opaque<bindings::poll_table_struct>,
    ctx: EventFd,
    hung_up: Atomic<bool>,
    notify: N,
}

// SAFETY: The wait queue entry is only touched under the eventfd's wait queue lock, the rest is
// `Send` (`N` by its bound) or atomic.
unsafe impl<N: Notify> Send for Watch<N> {}
// SAFETY: As for `Send`; `&self` gives only atomic and `Sync` access.
unsafe impl<N: Notify> Sync for Watch<N> {}

impl<N: Notify> Watch<N> {
    /// Watches the eventfd of file descriptor `fd`, calling `notify` at each signal: `EBADF` if
    /// `fd` is not open, `EINVAL` if it is not an eventfd.
    pub fn new(fd: i32, notify: N) -> Result<Pin<KBox<Self>>> {
        let file = LocalFile::fget(u32::try_from(fd).map_err(|_| EBADF)?).map_err(|_| EBADF)?;
        // SAFETY: `file` is a valid file, held for the call; the context comes with a
        // reference for the caller, or the call fails.
        let ctx = from_err_ptr(unsafe { bindings::eventfd_ctx_fileget(file.as_ptr()) })?;
        // INVARIANT: A valid context with the reference just taken.
        let ctx = EventFd {
            ctx: NonNull::new(ctx).ok_or(EINVAL)?,
        };
        // Found before the watch is made: once made, its entry must be queued, since dropping
        // it takes the entry off the queue.
        // SAFETY: `file` is a valid file, held for the call; its operations never change.
        let poll = unsafe { (*(*file.as_ptr()).f_op).poll }.ok_or(EINVAL)?;
        let watch = KBox::pin_init(
            pin_init!(Self {
                wait <- Opaque::ffi_init(|wait: *mut bindings::wait_queue_entry| {
                    // SAFETY: `wait` may be written; a wait entry whose wake-up function is
                    // `wake` (upstream's `init_waitqueue_func_entry`), put on the queue below.
                    unsafe {
                        (*wait).flags = 0;
                        (*wait).private = core::ptr::null_mut();
                        (*wait).func = Some(Self::wake);
                    }
                }),
                table <- Opaque::ffi_init(|table: *mut bindings::poll_table_struct| {
                    // SAFETY: `table` may be written; a poll table asking for every event,
                    // whose queueing function puts `wait` on the queue polled (upstream's
                    // `init_poll_funcptr`).
                    unsafe {
                        (*table)._qproc = Some(Self::queue);
                        (*table)._key = !0;
                    }
                }),
                ctx,
                hung_up: Atomic::new(false),
                notify,
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        // SAFETY: `file` is an eventfd (its context was found), whose `poll` queues `wait` on
        // the context's wait queue through `table`, both pinned in `watch`: the invariant holds
        // from here on.
        let events = unsafe { poll(file.as_ptr(), watch.table.get()) };
        // A signal before the watch was on the queue.
        if events as usize & EPOLLIN != 0 {
            watch.notify.notify();
        }
        Ok(watch)
    }

    /// Whether the eventfd was closed (by every holder of its file).
    pub fn hung_up(&self) -> bool {
        self.hung_up.load(Relaxed)
    }

    /// The poll table's queueing function: puts `wait` on the eventfd's wait queue.
    ///
    /// # Safety
    ///
    /// Called by the eventfd's `poll` with `table` of a live `Self` and the context's queue.
    unsafe extern "C" fn queue(
        _file: *mut bindings::file,
        head: *mut bindings::wait_queue_head,
        table: *mut bindings::poll_table_struct,
    ) {
        // SAFETY: `table` is the `table` field of a live `Self`, pinned.
        let watch = unsafe {
            &*table
                .byte_sub(core::mem::offset_of!(Self, table))
                .cast::<Self>()
        };
        // SAFETY: `head` is a live wait queue and `wait` an initialised entry, on no queue yet.
        unsafe { bindings::add_wait_queue(head, watch.wait.get()) };
    }

    /// The wait entry's wake-up function, with the queue locked.
    ///
    /// # Safety
    ///
    /// Called by the wait queue with `wait` of a live `Self` (on the queue by the invariants).
    unsafe extern "C" fn wake(
        wait: *mut bindings::wait_queue_entry,
        _mode: c_uint,
        _flags: c_int,
        key: *mut c_void,
    ) -> c_int {
        // SAFETY: `wait` is the `wait` field of a live `Self`, which stays alive while the
        // entry is on the queue, whose lock the caller holds.
        let watch = unsafe {
            &*wait
                .byte_sub(core::mem::offset_of!(Self, wait))
                .cast::<Self>()
        };
        let events = key as usize;
        if events & EPOLLIN != 0 {
            let mut count = 0u64;
            // SAFETY: The context is valid (invariants of `EventFd`) and its wait queue locked,
            // as the call requires.
            unsafe { bindings::eventfd_ctx_do_read(watch.ctx.ctx.as_ptr(), &mut count) };
            watch.notify.notify();
        }
        if events & EPOLLHUP != 0 {
            watch.hung_up.store(true, Relaxed);
        }
        0
    }
}

#[pinned_drop]
impl<N: Notify> PinnedDrop for Watch<N> {
    fn drop(self: Pin<&mut Self>) {
        let mut count = 0u64;
        // SAFETY: By the invariants `wait` is on the context's queue; removing it takes the
        // queue's lock, so no wake-up runs after this.
        unsafe {
            bindings::eventfd_ctx_remove_wait_queue(
                self.ctx.ctx.as_ptr(),
                self.wait.get(),
                &mut count,
            )
        };
    }
}
