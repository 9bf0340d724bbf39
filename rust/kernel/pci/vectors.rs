// SPDX-License-Identifier: GPL-2.0

//! MSI and MSI-X vectors of a PCI function with a handler on each, owned by a driver object
//! instead of borrowed from the `&Device<Bound>` of a callback.
//!
//! [`super::Device::alloc_irq_vectors`] ties the vectors to a borrow of the bound device,
//! which suits drivers that set up their interrupts in probe. A VFIO driver sets them up and
//! tears them down whenever userspace asks (`VFIO_DEVICE_SET_IRQS`), long after probe, and
//! keeps them in its device state; it can promise, instead of a borrow, to drop them before
//! the function is unbound (VFIO waits for every user to go before a device's driver lets go
//! of it). [`Vectors::alloc`] takes that promise.

use super::Device;
use crate::{
    bindings,
    device::Bound,
    irq::{
        Flags,
        Handler,
        IrqRequest,
        Registration, //
    },
    prelude::*,
    sync::aref::ARef, //
};

/// The kind of message-signalled vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorType {
    /// MSI.
    Msi,
    /// MSI-X.
    MsiX,
}

/// Vectors of one function, each with an optional handler of type `T`.
///
/// With MSI-X, vectors may be added while it is enabled ([`Vectors::alloc_at`]) where the
/// function's interrupt domain allows it ([`Device::msix_can_alloc_dyn`]): a VFIO user sets
/// up vectors one by one as its guest unmasks them, and needs not disable MSI-X for each.
///
/// # Invariants
///
/// Vectors of type `kind` are allocated on `pdev` (`count` of them by `pci_alloc_irq_vectors`,
/// and any that `alloc_at` added), and `pdev` stays bound while `self` lives (the promise of
/// [`Vectors::alloc`]); `handlers` has an entry for each vector allocated (and maybe more).
pub struct Vectors<T: Handler + 'static> {
    pdev: ARef<Device>,
    count: u32,
    kind: VectorType,
    handlers: KVec<Option<Pin<KBox<Registration<'static, T>>>>>,
}

impl Device {
    /// Whether MSI-X vectors of the function can be allocated while MSI-X is enabled (its
    /// interrupt domain supports it), for [`Vectors::alloc_at`].
    pub fn msix_can_alloc_dyn(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        unsafe { bindings::pci_msix_can_alloc_dyn(self.as_raw()) }
    }
}

impl<T: Handler + 'static> Vectors<T> {
    /// Allocates exactly `count` vectors of type `kind` on `pdev`, with no handlers.
    ///
    /// # Safety
    ///
    /// The caller drops the result before `pdev`'s driver is unbound.
    pub unsafe fn alloc(pdev: &Device<Bound>, count: u32, kind: VectorType) -> Result<Self> {
        if count == 0 {
            return Err(EINVAL);
        }
        let mut handlers = KVec::with_capacity(count as usize, GFP_KERNEL)?;
        for _ in 0..count {
            handlers.push(None, GFP_KERNEL)?;
        }
        // SAFETY: `pdev` is a bound PCI function.
        let ret = unsafe {
            let kind = match kind {
                VectorType::Msi => bindings::PCI_IRQ_MSI,
                VectorType::MsiX => bindings::PCI_IRQ_MSIX,
            };
            bindings::pci_alloc_irq_vectors(pdev.as_raw(), count, count, kind)
        };
        crate::error::to_result(ret)?;
        // INVARIANT: `count` vectors were allocated (min and max were both `count`); the caller
        // promised to drop `self` before the function is unbound.
        Ok(Self {
            pdev: pdev.into(),
            count,
            kind,
            handlers,
        })
    }

    /// Allocates MSI-X vector `index` with MSI-X enabled, if it is not allocated yet; it stays
    /// until `self` is dropped. `EINVAL` for MSI, `ENOTSUPP` where the domain cannot (see
    /// [`Device::msix_can_alloc_dyn`]), or the PCI core's errors (`EINVAL` past the table).
    pub fn alloc_at(&mut self, index: u32) -> Result {
        if self.kind != VectorType::MsiX {
            return Err(EINVAL);
        }
        while self.handlers.len() <= index as usize {
            self.handlers.push(None, GFP_KERNEL)?;
        }
        // SAFETY: By the invariants `pdev` is bound with MSI-X enabled.
        if unsafe { bindings::pci_irq_vector(self.pdev.as_raw(), index) } > 0 {
            return Ok(());
        }
        if !self.pdev.msix_can_alloc_dyn() {
            return Err(ENOTSUPP);
        }
        // SAFETY: As above; no affinity is asked for.
        let map = unsafe {
            bindings::pci_msix_alloc_irq_at(self.pdev.as_raw(), index, core::ptr::null())
        };
        // INVARIANT: The vector is allocated and has an entry in `handlers`.
        crate::error::to_result(map.index)
    }

    /// How many vectors were allocated at first.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// Whether there are none (never: at least one is allocated).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Registers `handler` on vector `index` under `name`, replacing the handler there (which
    /// is unregistered first, so the vector is never handled twice): `EINVAL` for a vector
    /// that is not allocated. On failure the vector is left without a handler.
    pub fn set_handler(
        &mut self,
        index: u32,
        name: &'static CStr,
        handler: impl PinInit<T, Error> + 'static,
    ) -> Result {
        let slot = self.handlers.get_mut(index as usize).ok_or(EINVAL)?;
        *slot = None;
        // SAFETY: By the invariants `pdev` is bound; an index without a vector is `EINVAL`.
        let irq = unsafe { bindings::pci_irq_vector(self.pdev.as_raw(), index) };
        let irq = u32::try_from(irq).map_err(|_| Error::from_errno(irq))?;
        // SAFETY: By the invariants `pdev` is bound, `irq` is one of its vectors and `self`
        // is dropped before the function is unbound; the registration is kept in `handlers`
        // and dropped (never forgotten) by `clear_handler`, `set_handler` or `drop`.
        *slot =
            Some(unsafe { register_owned(&self.pdev, irq, Flags::TRIGGER_NONE, name, handler) }?);
        Ok(())
    }

    /// The handler on vector `index`, if any.
    pub fn handler(&self, index: u32) -> Option<&T> {
        self.handlers
            .get(index as usize)?
            .as_ref()
            .map(|r| r.handler())
    }

    /// Unregisters the handler on vector `index`, if any, waiting for it to finish running.
    pub fn clear_handler(&mut self, index: u32) {
        if let Some(slot) = self.handlers.get_mut(index as usize) {
            *slot = None;
        }
    }
}

/// Registers `handler` on interrupt `irq` of `pdev`, for an owner that outlives any borrow of
/// the bound device: the registration borrows the device as bound for `'static`, on the
/// promises below instead of a borrow.
///
/// # Safety
///
/// `pdev` is bound, `irq` is one of its interrupts, and the caller drops the registration,
/// never forgetting it, before `pdev`'s driver is unbound.
pub(super) unsafe fn register_owned<T: Handler + 'static>(
    pdev: &Device,
    irq: u32,
    flags: Flags,
    name: &'static CStr,
    handler: impl PinInit<T, Error> + 'static,
) -> Result<Pin<KBox<Registration<'static, T>>>> {
    let dev: &crate::device::Device = pdev.as_ref();
    // SAFETY: The caller promised that `pdev` is bound and stays so while the registration
    // lives: the `'static` borrow of it as a bound device is never outlived in fact.
    let bound: &'static crate::device::Device<Bound> =
        unsafe { &*core::ptr::from_ref(dev.as_bound()) };
    // SAFETY: `irq` is an interrupt of `bound`, which is bound.
    let request = unsafe { IrqRequest::new(bound, irq) };
    // SAFETY: The caller drops the registration and never forgets it.
    KBox::pin_init(
        unsafe { Registration::new(request, flags, name, handler) },
        GFP_KERNEL,
    )
}

impl<T: Handler + 'static> Drop for Vectors<T> {
    fn drop(&mut self) {
        // The handlers go first: vectors are freed with no handler left on them.
        self.handlers.clear();
        // SAFETY: By the invariants the vectors are allocated on `pdev`, which is bound.
        unsafe { bindings::pci_free_irq_vectors(self.pdev.as_raw()) };
    }
}
