// SPDX-License-Identifier: GPL-2.0

//! Resetting a bound PCI function, for a driver that hands functions to someone else and must
//! give each new user a clean one, as VFIO does.
//!
//! The function's own reset methods (function level reset, PM reset, or a secondary bus reset
//! when it is alone on its bus) are reached through [`Device::try_reset_function`], which
//! saves and restores the function's config space around the reset.
//!
//! A function may also be reset with the others of its slot or of its whole bus (a *hot
//! reset*): [`Device::hot_reset_scope`] says which of the two the platform offers,
//! [`Device::hot_reset_affected`] lists the functions it reaches, and
//! [`Device::try_hot_reset`] does it, saving and restoring the config space of every function
//! reached.

use super::Device;
use crate::{
    bindings,
    device::Bound,
    error::to_result,
    prelude::*,
    sync::aref::ARef, //
};
use core::ptr::NonNull;

/// What a hot reset of a function reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetScope {
    /// The function's slot, and whatever sits below it.
    Slot,
    /// The function's whole bus, and whatever sits below it.
    Bus,
}

/// What [`Device::hot_reset_affected`] hands its bus walk.
struct Walk {
    /// The slot the walk keeps to, or null for the whole bus.
    slot: *mut bindings::pci_slot,
    found: KVec<ARef<Device>>,
    /// Set when a reference could not be kept (no memory): the walk stopped there.
    failed: bool,
}

/// Whether `pdev`, or the bridge above it on the slot's bus, sits in `slot`.
///
/// # Safety
///
/// `pdev` is a valid `struct pci_dev` and `slot` a valid `struct pci_slot`, both held by the
/// bus walk the caller is in.
unsafe fn below_slot(mut pdev: *mut bindings::pci_dev, slot: *mut bindings::pci_slot) -> bool {
    while !pdev.is_null() {
        // SAFETY: `pdev` is a valid function (the caller's, or a bridge above it, which the
        // walk keeps registered); `slot` is valid as the caller promises.
        unsafe {
            let bus = (*pdev).bus;
            if bus == (*slot).bus {
                return (*pdev).slot == slot;
            }
            pdev = (*bus).self_;
        }
    }
    false
}

/// The callback of `pci_walk_bus()` for [`Device::hot_reset_affected`]: takes a reference on
/// each function the reset reaches.
///
/// # Safety
///
/// `pdev` is a function `pci_walk_bus()` passes, `data` the [`Walk`] it was handed.
unsafe extern "C" fn collect(pdev: *mut bindings::pci_dev, data: *mut c_void) -> c_int {
    // SAFETY: `data` is the walk's `Walk`, borrowed by no one else during the walk.
    let walk = unsafe { &mut *data.cast::<Walk>() };
    // SAFETY: Both are held by the walk (`slot` by the function the walk started from).
    if !walk.slot.is_null() && !unsafe { below_slot(pdev, walk.slot) } {
        return 0;
    }
    // SAFETY: `pdev` is a valid function; the reference taken goes to the `ARef`.
    let found = unsafe {
        let ptr = bindings::pci_dev_get(pdev);
        // `Device` is transparent over `struct pci_dev`.
        NonNull::new(ptr.cast::<Device>()).map(|ptr| ARef::from_raw(ptr))
    };
    if let Some(Err(_)) = found.map(|dev| walk.found.push(dev, GFP_KERNEL)) {
        walk.failed = true;
        return ENOMEM.to_errno();
    }
    0
}

impl Device {
    /// The PCI domain (segment) of the function.
    pub fn domain_nr(&self) -> u32 {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`, whose bus outlives it.
        unsafe { bindings::pci_domain_nr((*self.as_raw()).bus) as u32 }
    }

    /// The number of the function's bus.
    pub fn bus_number(&self) -> u8 {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`, whose bus outlives it.
        unsafe { (*(*self.as_raw()).bus).number }
    }

    /// The function's device and function number (`devfn`).
    pub fn devfn(&self) -> u8 {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; `devfn` does not change.
        unsafe { (*self.as_raw()).devfn as u8 }
    }

    /// Whether the function sits on a root bus (no bridge above it).
    pub fn on_root_bus(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`, whose bus outlives it.
        unsafe { (*(*self.as_raw()).bus).parent.is_null() }
    }

    /// Whether the function is an SR-IOV virtual function.
    pub fn is_virtfn(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; the flag is set at enumeration.
        unsafe { (*self.as_raw()).is_virtfn() != 0 }
    }

    /// How a hot reset of the function would go: by its slot if the slot can be reset, else by
    /// its bus if the bus can, else `None` (upstream's `pci_probe_reset_slot()` and
    /// `pci_probe_reset_bus()`).
    pub fn hot_reset_scope(&self) -> Option<ResetScope> {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; probing takes a null slot and
        // only reads the slot and the bus.
        unsafe {
            let pdev = self.as_raw();
            if bindings::pci_probe_reset_slot((*pdev).slot) == 0 {
                Some(ResetScope::Slot)
            } else if bindings::pci_probe_reset_bus((*pdev).bus) == 0 {
                Some(ResetScope::Bus)
            } else {
                None
            }
        }
    }

    /// An address that names what a hot reset of the function reaches by `scope`: its slot or
    /// its bus. Functions that are reset together have the same one, so a driver can group them
    /// by it. Only compared, never dereferenced.
    pub fn hot_reset_key(&self, scope: ResetScope) -> usize {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; only the pointers are read.
        unsafe {
            let pdev = self.as_raw();
            match scope {
                ResetScope::Slot => (*pdev).slot as usize,
                ResetScope::Bus => (*pdev).bus as usize,
            }
        }
    }

    /// Every function a hot reset of this one by `scope` reaches, this one included, counted:
    /// the functions on its bus and below it, or for [`ResetScope::Slot`] those of them that
    /// sit in its slot or below it. What is found may change as soon as the bus walk ends
    /// (hotplug), as upstream.
    pub fn hot_reset_affected(&self, scope: ResetScope) -> Result<KVec<ARef<Device>>> {
        let pdev = self.as_raw();
        let mut walk = Walk {
            slot: match scope {
                // SAFETY: `pdev` is a valid `struct pci_dev`.
                ResetScope::Slot => unsafe { (*pdev).slot },
                ResetScope::Bus => core::ptr::null_mut(),
            },
            found: KVec::new(),
            failed: false,
        };
        // SAFETY: `pdev`'s bus is valid while `self` lives; `collect` matches the callback
        // type and gets `walk`, which outlives the walk; the walk holds the bus semaphore, so
        // the functions and slots `collect` looks at stay registered meanwhile.
        unsafe {
            bindings::pci_walk_bus(
                (*pdev).bus,
                Some(collect),
                core::ptr::from_mut(&mut walk).cast(),
            )
        };
        if walk.failed {
            return Err(ENOMEM);
        }
        Ok(walk.found)
    }
}

impl Device<Bound> {
    /// Turns bus mastering off.
    pub fn clear_master(&self) {
        // SAFETY: `self.as_raw()` is a valid, bound `struct pci_dev`.
        unsafe { bindings::pci_clear_master(self.as_raw()) };
    }

    /// Resets the function by the first method it has, its config space saved before and
    /// restored after. `ENOTTY` if it has none, `EAGAIN` if the function's device lock is
    /// taken (someone is binding or unbinding it), so that the caller never waits on it.
    pub fn try_reset_function(&self) -> Result {
        // SAFETY: `self.as_raw()` is a valid, bound `struct pci_dev`; the call only tries the
        // device lock, so it cannot deadlock with the driver core.
        to_result(unsafe { bindings::pci_try_reset_function(self.as_raw()) })
    }

    /// Hot-resets the function with every other one its slot or bus reset reaches (see
    /// [`Device::hot_reset_scope`]), their config space saved before and restored after
    /// (upstream's `pci_reset_bus()`). `ENOTTY` if neither can be reset, `EAGAIN` if the device
    /// lock of a function reached is taken: the call never waits on one.
    pub fn try_hot_reset(&self) -> Result {
        // SAFETY: `self.as_raw()` is a valid, bound `struct pci_dev`; the call only tries the
        // device locks of the functions it resets.
        to_result(unsafe { bindings::pci_reset_bus(self.as_raw()) })
    }
}

/// These run against QEMU's `edu` PCI device alone behind a PCIe root port (the project's test
/// VM); on a machine without it they log that and pass.
#[macros::kunit_tests(rust_pci_hot_reset)]
mod tests {
    use super::*;

    /// edu's bus can be reset, and a reset of it reaches edu alone.
    #[test]
    fn edu_bus_reset_reaches_edu_alone() -> Result {
        let Some(edu) = Device::find_by_ids(0x1234, 0x11e8) else {
            pr_info!("rust_pci_hot_reset: no edu device (1234:11e8), nothing to test\n");
            return Ok(());
        };
        assert!(!edu.on_root_bus());
        assert!(!edu.is_virtfn());
        assert_ne!(edu.bus_number(), 0);
        let scope = edu.hot_reset_scope().ok_or(ENOTTY)?;
        assert_ne!(edu.hot_reset_key(scope), 0);
        let found = edu.hot_reset_affected(scope)?;
        assert_eq!(found.len(), 1);
        assert!(core::ptr::eq::<Device>(&*found[0], &*edu));
        assert_eq!(found[0].devfn(), edu.devfn());
        assert_eq!(found[0].domain_nr(), edu.domain_nr());
        Ok(())
    }
}
