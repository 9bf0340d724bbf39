// SPDX-License-Identifier: GPL-2.0

//! The legacy INTx interrupt of a PCI function, and its masking through the INTx disable bit
//! of the command register (PCI 2.3), for a driver that hands the interrupt on instead of
//! serving it, as VFIO does.
//!
//! Such a driver cannot silence the device itself when the level-triggered line fires: it
//! masks INTx at the function ([`Device::check_and_mask_intx`]), tells whoever serves the
//! device, and unmasks once told the device was served ([`Device::check_and_unmask_intx`]).
//! Masking at the function, not at the interrupt controller, is what lets the line be shared.
//! A function that cannot mask INTx itself (before PCI 2.3, or with masking broken) gets its
//! line to itself instead ([`Intx::request_exclusive`]), masked at the interrupt controller
//! ([`Device::mask_intx_line`]). Like [`super::Vectors`], [`Intx`] is owned by the driver's
//! device state, on the promise to drop it before the function is unbound.
//!
//! A line held alone is masked at once, not lazily (`IRQ_DISABLE_UNLAZY` while it is held).
//! Lazily, the controller would still deliver the interrupt the end of the handler raises again
//! while the device holds its level, and a delivery late enough to follow the device being
//! served and the line unmasked would reach the handler as an interrupt that is no longer
//! there.

use super::{
    vectors::register_owned,
    Device, //
};
use crate::{
    bindings,
    device::Bound,
    irq::{
        Flags,
        Handler,
        Registration, //
    },
    prelude::*,
};

/// `IRQ_NOTCONNECTED`: the function's pin is routed nowhere.
const IRQ_NOTCONNECTED: u32 = 1 << 31;

/// `IRQ_DISABLE_UNLAZY`, as `irq_modify_status()` takes it.
const DISABLE_UNLAZY: crate::ffi::c_ulong = bindings::IRQ_DISABLE_UNLAZY as crate::ffi::c_ulong;

impl Device {
    /// Whether INTx can be masked at this function through the command register's INTx
    /// disable bit (and no quirk marked that broken).
    pub fn intx_mask_supported(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; the flag is set during
        // enumeration, before any driver sees the function.
        unsafe { (*self.as_raw()).broken_intx_masking() == 0 }
    }

    /// Masks INTx at the function if it has an interrupt pending and INTx is not masked yet:
    /// whether it did, i.e. whether the pending interrupt is this function's.
    pub fn check_and_mask_intx(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; the call takes `pci_lock`
        // itself and may run in interrupt context.
        unsafe { bindings::pci_check_and_mask_intx(self.as_raw()) }
    }

    /// Unmasks INTx at the function unless it has an interrupt pending: whether it did. If it
    /// did not, INTx stays masked and the pending interrupt is still to be served.
    pub fn check_and_unmask_intx(&self) -> bool {
        // SAFETY: As for `check_and_mask_intx`.
        unsafe { bindings::pci_check_and_unmask_intx(self.as_raw()) }
    }

    /// Sets the command register's INTx disable bit to `!enable`.
    pub fn set_intx(&self, enable: bool) {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        unsafe { bindings::pci_intx(self.as_raw(), enable.into()) }
    }

    /// The interrupt the function's INTx pin is routed to, if any.
    fn intx_irq(&self) -> Option<u32> {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`, whose `irq` is set when it is
        // enabled and stays as it is while it is bound.
        let irq = unsafe { (*self.as_raw()).irq };
        (irq != 0 && irq != IRQ_NOTCONNECTED).then_some(irq)
    }

    /// Masks the function's INTx line at the interrupt controller, without waiting for a
    /// handler that runs (so also from the handler itself): for a driver that holds the line
    /// alone ([`Intx::request_exclusive`]). Each call must be matched by one
    /// [`Device::unmask_intx_line`]; the kernel warns about an unmatched unmask.
    pub fn mask_intx_line(&self) {
        if let Some(irq) = self.intx_irq() {
            // SAFETY: Any interrupt number may be passed; an unknown one is ignored.
            unsafe { bindings::disable_irq_nosync(irq) };
        }
    }

    /// Undoes one [`Device::mask_intx_line`]. A level still asserted fires again at once.
    pub fn unmask_intx_line(&self) {
        if let Some(irq) = self.intx_irq() {
            // SAFETY: As for `mask_intx_line`.
            unsafe { bindings::enable_irq(irq) };
        }
    }
}

/// A handler of type `T` on the INTx line of a function, requested shared.
///
/// # Invariants
///
/// The function stays bound while `self` lives (the promise of [`Intx::request`]).
pub struct Intx<T: Handler + 'static> {
    registration: Pin<KBox<Registration<'static, T>>>,
    /// The line, if held alone: `IRQ_DISABLE_UNLAZY` is set on it until `self` is dropped.
    exclusive: Option<u32>,
}

impl<T: Handler + 'static> Intx<T> {
    /// Requests the function's INTx line, shared, with `handler` on it under `name`. `ENODEV`
    /// if the function's pin is routed to no interrupt.
    ///
    /// The handler shares the line with other devices': it must tell its own interrupts from
    /// theirs, with [`Device::check_and_mask_intx`] for one.
    ///
    /// # Safety
    ///
    /// The caller drops the result before `pdev`'s driver is unbound.
    pub unsafe fn request(
        pdev: &Device<Bound>,
        name: &'static CStr,
        handler: impl PinInit<T, Error> + 'static,
    ) -> Result<Self> {
        // SAFETY: The caller's promise.
        unsafe { Self::request_flags(pdev, name, handler, Flags::SHARED, false) }
    }

    /// Requests the function's INTx line for `handler` alone, under `name`, unmasked at the
    /// interrupt controller if `enabled`, else masked as by one [`Device::mask_intx_line`].
    /// `EBUSY` if another handler has the line; `ENODEV` if the pin is routed nowhere.
    ///
    /// Every interrupt on the line is the function's: the handler masks it with
    /// [`Device::mask_intx_line`] until the device is served.
    ///
    /// # Safety
    ///
    /// The caller drops the result before `pdev`'s driver is unbound.
    pub unsafe fn request_exclusive(
        pdev: &Device<Bound>,
        name: &'static CStr,
        handler: impl PinInit<T, Error> + 'static,
        enabled: bool,
    ) -> Result<Self> {
        let flags = if enabled {
            Flags::TRIGGER_NONE
        } else {
            Flags::NO_AUTOEN
        };
        // SAFETY: The caller's promise.
        unsafe { Self::request_flags(pdev, name, handler, flags, true) }
    }

    /// # Safety
    ///
    /// As for [`Intx::request`].
    unsafe fn request_flags(
        pdev: &Device<Bound>,
        name: &'static CStr,
        handler: impl PinInit<T, Error> + 'static,
        flags: Flags,
        exclusive: bool,
    ) -> Result<Self> {
        let irq = pdev.intx_irq().ok_or(ENODEV)?;
        // SAFETY: `pdev` is bound and `irq` is its INTx interrupt; the registration is kept in
        // `self` and dropped with it, never forgotten, and the caller promised to drop `self`
        // before the function is unbound.
        let registration = unsafe { register_owned(pdev, irq, flags, name, handler) }?;
        let exclusive = exclusive.then_some(irq);
        if let Some(irq) = exclusive {
            // SAFETY: `irq` is a valid interrupt, requested without `SHARED` just above: no
            // other handler is on it to depend on its flags.
            unsafe { bindings::irq_modify_status(irq, 0, DISABLE_UNLAZY) };
        }
        // INVARIANT: The caller promised to drop `self` before the function is unbound.
        Ok(Self {
            registration,
            exclusive,
        })
    }

    /// The handler.
    pub fn handler(&self) -> &T {
        self.registration.handler()
    }
}

impl<T: Handler + 'static> Drop for Intx<T> {
    fn drop(&mut self) {
        if let Some(irq) = self.exclusive {
            // SAFETY: `irq` is the line `self` holds alone (its registration is dropped after
            // this); the flag is given back before the line is freed.
            unsafe { bindings::irq_modify_status(irq, DISABLE_UNLAZY, 0) };
        }
    }
}
