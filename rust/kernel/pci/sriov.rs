// SPDX-License-Identifier: GPL-2.0

//! SR-IOV seen from the driver of a physical function (PF): enabling and disabling its virtual
//! functions (VFs) when userspace writes `sriov_numvfs` (the driver's `sriov_configure`),
//! telling PFs and VFs apart, and steering the VFs a PF creates to a driver of its choosing.
//!
//! Why steering: a driver that hands its PF to someone else, as VFIO does, cannot let the VFs
//! it creates be probed by whatever host driver matches their IDs, since their PF is no longer
//! the kernel's. [`VfDriverOverride`] watches the PCI bus while it lives and gives each new VF
//! of its PF a `driver_override` before the VF is probed, as upstream's vfio-pci does.
//!
//! Without `CONFIG_PCI_IOV` no function is a PF or a VF, and enabling VFs fails with `ENODEV`.

use super::Device;
use crate::{
    bindings,
    device::{
        Bound,
        Core, //
    },
    error::to_result,
    prelude::*,
    str::CStr,
    sync::aref::ARef,
    types::Opaque, //
};

impl Device {
    /// Whether the function is an SR-IOV physical function (it has the SR-IOV capability and
    /// the kernel set it up).
    pub fn is_physfn(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; the flag is set at enumeration.
        unsafe { (*self.as_raw()).is_physfn() != 0 }
    }

    /// The physical function of a virtual function; `None` for any other function.
    pub fn physfn(&self) -> Option<&Device> {
        if !self.is_virtfn() {
            return None;
        }
        // SAFETY: `self.as_raw()` is a valid VF, which holds a reference on its PF from before
        // it is added until it is released: the PF outlives the borrow of `self`.
        Some(unsafe { &*bindings::pci_physfn(self.as_raw()).cast::<Device>() })
    }

    /// How many VFs the function has enabled (0 for a function that is not a PF).
    pub fn num_vf(&self) -> u16 {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        let n = unsafe { bindings::pci_num_vf(self.as_raw()) };
        u16::try_from(n).unwrap_or(0)
    }
}

impl Device<Core<'_>> {
    /// Enables `nr` VFs of this PF, which the PCI core then adds (and probes) before returning;
    /// `ENODEV` without SR-IOV, and the PCI core's errors (`EBUSY` with VFs already enabled,
    /// `EINVAL` for more than the function offers, `ENOMEM` without room for their BARs).
    pub fn enable_sriov(&self, nr: u16) -> Result {
        // SAFETY: `self.as_raw()` is a valid function whose device lock the caller holds
        // (`Core`), as enabling VFs requires.
        to_result(unsafe { bindings::pci_enable_sriov(self.as_raw(), nr.into()) })
    }

    /// Disables the VFs of this PF, removing them (and unbinding their drivers) first; nothing
    /// if it has none.
    pub fn disable_sriov(&self) {
        // SAFETY: As for `enable_sriov`.
        unsafe { bindings::pci_disable_sriov(self.as_raw()) }
    }
}

/// While alive, gives each VF of one PF that appears on the PCI bus the `driver_override` of
/// a chosen driver before it is probed, and warns when such a VF is bound to another driver
/// than its PF's (upstream vfio-pci's bus notifier).
///
/// # Invariants
///
/// `nb` is registered on the PCI bus's notifier chain, with [`Self::notify`] as its callback,
/// from [`VfDriverOverride::new`] until `drop`.
#[pin_data(PinnedDrop)]
pub struct VfDriverOverride {
    pf: ARef<Device>,
    driver: &'static CStr,
    #[pin]
    nb: Opaque<bindings::notifier_block>,
}

// SAFETY: The notifier block is touched only by the notifier chain, under its own lock; the
// rest is a reference-counted device and a static string.
unsafe impl Send for VfDriverOverride {}
// SAFETY: As for `Send`: `&self` reads only the device and the string.
unsafe impl Sync for VfDriverOverride {}

impl VfDriverOverride {
    /// Steers the VFs of `pf` added from now on to the driver named `driver`.
    pub fn new(pf: &Device<Bound>, driver: &'static CStr) -> impl PinInit<Self, Error> {
        let pf: &Device = pf;
        let pf: ARef<Device> = pf.into();
        try_pin_init!(Self {
            pf,
            driver,
            // Last: once registered, the callback may run and reads the fields above.
            nb <- Opaque::try_ffi_init(|nb: *mut bindings::notifier_block| {
                // SAFETY: `nb` may be written and stays pinned for as long as `Self` lives;
                // the PCI bus type is static. Registered here, it is unregistered in `drop`
                // (or not at all if registering fails).
                unsafe {
                    nb.write(bindings::notifier_block {
                        notifier_call: Some(Self::notify),
                        next: core::ptr::null_mut(),
                        priority: 0,
                    });
                    to_result(bindings::bus_register_notifier(
                        &raw const bindings::pci_bus_type,
                        nb,
                    ))
                }
            }),
        })
    }

    /// The notifier's callback, for every device event on the PCI bus.
    ///
    /// # Safety
    ///
    /// Called by the PCI bus's notifier chain with `nb` of a live `Self` and `data` a device
    /// of the PCI bus, held for the call.
    unsafe extern "C" fn notify(
        nb: *mut bindings::notifier_block,
        action: c_ulong,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: `nb` is the `nb` field of a live, pinned `Self` (the chain unregisters it
        // before `Self` goes).
        let this = unsafe { &*crate::container_of!(Opaque::cast_from(nb), Self, nb) };
        // SAFETY: Every device of the PCI bus is the `dev` of a `struct pci_dev`, held by the
        // chain for the call; `Device` is transparent over `struct pci_dev`.
        let vf = unsafe {
            &*crate::container_of!(data.cast::<bindings::device>(), bindings::pci_dev, dev)
                .cast::<Device>()
        };
        if !vf.physfn().is_some_and(|pf| core::ptr::eq(pf, &*this.pf)) {
            return 0;
        }
        let dev: &crate::device::Device = vf.as_ref();
        if action == bindings::bus_notifier_event_BUS_NOTIFY_ADD_DEVICE as c_ulong {
            dev_info!(
                this.pf.as_ref(),
                "Captured SR-IOV VF {} driver_override\n",
                dev.name()
            );
            let name = this.driver.to_bytes();
            // SAFETY: `dev` is valid for the call and `name` is `name.len()` bytes long.
            let ret = unsafe {
                bindings::__device_set_driver_override(
                    dev.as_raw(),
                    name.as_ptr().cast(),
                    name.len(),
                )
            };
            if ret != 0 {
                dev_warn!(this.pf.as_ref(), "VF {}: no driver_override\n", dev.name());
            }
        } else if action == bindings::bus_notifier_event_BUS_NOTIFY_BOUND_DRIVER as c_ulong {
            // SAFETY: Both devices are valid (the VF for the call, the PF by the reference
            // `Self` holds); a bound VF's driver is set, the PF's read once.
            let (vf_driver, pf_driver) =
                unsafe { ((*dev.as_raw()).driver, (*this.pf.as_ref().as_raw()).driver) };
            if !vf_driver.is_null() && vf_driver != pf_driver {
                dev_warn!(
                    this.pf.as_ref(),
                    "VF {} bound to another driver than its PF's\n",
                    dev.name()
                );
            }
        }
        0
    }
}

#[pinned_drop]
impl PinnedDrop for VfDriverOverride {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the invariants `nb` is registered on the PCI bus's chain; unregistering
        // waits for callbacks that are running.
        unsafe {
            bindings::bus_unregister_notifier(&raw const bindings::pci_bus_type, self.nb.get())
        };
    }
}
