// SPDX-License-Identifier: GPL-2.0

//! Low power for an open function: the `VFIO_DEVICE_FEATURE_LOW_POWER_*` device features, over
//! runtime PM (upstream's `vfio_pci_runtime_pm_entry` and its kin).
//!
//! A function bound to vfio-pci runtime suspends while nobody has it open (the PCI core puts it
//! in D3hot where it can; `power/control` in sysfs may forbid it). Its user holds it active:
//! opening takes a runtime PM usage count ([`Power::Awake`]) and every ioctl takes one more
//! while it runs (the VFIO core, see `VfioDeviceOps::runtime_pm`). Entering low power gives the
//! open's count back, so that the function suspends once the ioctl returns, and takes the BARs
//! away from the user as turning memory decoding off does: mappings fault `SIGBUS`, dma-bufs
//! over them are revoked, and region accesses fail with `EIO` once the function is in D3.
//!
//! Low power ends with `LOW_POWER_EXIT`, at close, or, for a user who gave a wake-up eventfd,
//! at the first resume: any ioctl, or the PCI core waking the function, signals the eventfd
//! and ends it. INTx in use is masked while the function is suspended, as upstream. With the
//! `disable_idle_d3` parameter set when a function is bound, it never suspends.
//!
//! The user may also move the function between D0 and D3hot themselves, by writing the power
//! state of its PM capability ([`set_user_state`]): in D3hot the BARs are taken away as in
//! low power, and a function that loses its config space on the way back to D0 (no
//! `NoSoftRst`) gets it written back. It is back in D0 before it suspends, resets or closes.

use super::PciDevice;
use crate::device::{
    check_feature,
    VfioDevice, //
};
use kernel::{
    device::{
        Bound,
        Device, //
    },
    eventfd::EventFd,
    pci::{
        self,
        SavedState, //
    },
    pm_runtime::Usage,
    prelude::*,
    sync::atomic::Relaxed,
    uaccess::UserSlice,
    uapi, //
};

extern "C" {
    fn vfio_pci_disable_idle_d3() -> bool;
}

/// A count that keeps a function being bound active for as long as it is bound, if the
/// `disable_idle_d3` parameter (`pci_param.c`) says so, as upstream's.
pub(super) fn idle_hold(dev: &Device) -> Option<Usage> {
    // SAFETY: Reads a module parameter; no arguments.
    let hold = unsafe { vfio_pci_disable_idle_d3() };
    hold.then(|| Usage::get_noresume(dev))
}

/// What decides whether the user may reach the BARs, under `PciDevice::mem` (upstream's
/// `memory_lock` guards the same).
pub(super) struct Gate {
    /// Memory decoding, as the last write of the virtual command register left it.
    pub(super) decoding: bool,
    /// The user's hold on the function's power.
    power: Power,
    /// The user put the function in D3hot.
    d3: bool,
    /// The config space saved on the way to D3hot, for a function that loses it there.
    saved: Option<SavedState>,
}

/// Where an open function's power stands.
enum Power {
    /// Not open: the function may suspend.
    Closed,
    /// Open and held active by the open's usage count.
    Awake(Usage),
    /// Open, in low power, with the eventfd to signal when it wakes up, if the user gave one.
    Low(Option<EventFd>),
}

impl Gate {
    pub(super) const fn new() -> Self {
        Self {
            decoding: false,
            power: Power::Closed,
            d3: false,
            saved: None,
        }
    }

    /// Whether the user's mappings of the BARs may fault in and dma-bufs may reach them.
    pub(super) fn open(&self) -> bool {
        self.decoding && !self.d3 && !matches!(self.power, Power::Low(_))
    }

    /// The function was opened, resumed and held by `usage`, which is kept until close.
    pub(super) fn opened(&mut self, usage: Usage) {
        self.power = Power::Awake(usage);
    }

    /// The function is closing: low power ends. The count held for the user is returned, to
    /// be dropped once the function is left as the next user should find it.
    pub(super) fn closing(&mut self) -> Option<Usage> {
        match core::mem::replace(&mut self.power, Power::Closed) {
            Power::Awake(usage) => Some(usage),
            _ => None,
        }
    }

    /// Ends low power, if the function is in it, with a new count for the user (upstream's
    /// `__vfio_pci_runtime_pm_exit`); the wake-up eventfd, if there was one, is returned.
    pub(super) fn exit(&mut self, dev: &Device) -> Option<EventFd> {
        if !matches!(self.power, Power::Low(_)) {
            return None;
        }
        match core::mem::replace(&mut self.power, Power::Awake(Usage::get_noresume(dev))) {
            Power::Low(wake) => wake,
            _ => None,
        }
    }
}

/// `struct vfio_device_low_power_entry_with_wakeup`: `wakeup_eventfd` and `reserved`.
const WAKEUP_ENTRY_SIZE: usize = 8;

/// The low-power features: `ENOTTY` for any other.
pub(super) fn feature(
    pci: &PciDevice,
    vdev: &VfioDevice,
    flags: u32,
    arg: usize,
    argsz: usize,
) -> Result<isize> {
    let set = uapi::VFIO_DEVICE_FEATURE_SET;
    match flags & uapi::VFIO_DEVICE_FEATURE_MASK {
        uapi::VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY => {
            if !check_feature(flags, argsz, set, 0)? {
                return Ok(0);
            }
            enter(pci, vdev, None)
        }
        uapi::VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP => {
            if !check_feature(flags, argsz, set, WAKEUP_ENTRY_SIZE)? {
                return Ok(0);
            }
            let mut entry = [0u8; WAKEUP_ENTRY_SIZE];
            UserSlice::new(UserPtr::from_addr(arg), WAKEUP_ENTRY_SIZE)
                .reader()
                .read_slice(&mut entry)?;
            let [a, b, c, d, ..] = entry;
            let fd = i32::from_ne_bytes([a, b, c, d]);
            if fd < 0 {
                return Err(EINVAL);
            }
            enter(pci, vdev, Some(EventFd::from_fd(fd)?))
        }
        uapi::VFIO_DEVICE_FEATURE_LOW_POWER_EXIT => {
            if !check_feature(flags, argsz, set, 0)? {
                return Ok(0);
            }
            let mut gate = pci.mem.lock();
            gate.exit(vdev.parent());
            pci.restore_bars(&gate);
            Ok(0)
        }
        _ => Err(ENOTTY),
    }
}

/// Enters low power: `EINVAL` if the function is in low power already. The count given back
/// here lets it suspend when the ioctl's own count goes.
fn enter(pci: &PciDevice, vdev: &VfioDevice, wake: Option<EventFd>) -> Result<isize> {
    let mut gate = pci.mem.lock();
    if !matches!(gate.power, Power::Awake(_)) {
        return Err(EINVAL);
    }
    pci.withdraw_bars(vdev);
    if let Power::Awake(usage) = core::mem::replace(&mut gate.power, Power::Low(wake)) {
        usage.put_noidle();
    }
    Ok(0)
}

/// The user wrote D`state` into the PM capability (upstream's `vfio_lock_and_set_power_state`):
/// for D3hot the BARs are taken away first; they come back with D0.
pub(super) fn set_user_state(
    pci: &PciDevice,
    vdev: &VfioDevice,
    pdev: &pci::Device<Bound>,
    state: u8,
) {
    let mut gate = pci.mem.lock();
    if state >= 3 {
        pci.withdraw_bars(vdev);
    }
    set_state(pci, pdev, &mut gate, state);
    pci.restore_bars(&gate);
}

/// Moves the function to D`state`, with `gate` (`PciDevice::mem`) held, saving its config space
/// on the way to D3hot and writing it back on the way to D0 if it does not keep it there
/// (upstream's `vfio_pci_set_power_state`). A PF with VFs stays in D0, which they need
/// (upstream's `EBUSY`, which a config write does not report).
pub(super) fn set_state(pci: &PciDevice, pdev: &pci::Device<Bound>, gate: &mut Gate, state: u8) {
    if state > 0 && pdev.num_vf() > 0 {
        return;
    }
    let was_d3 = pdev.in_d3();
    let saved = match !pci.keeps_state && !was_d3 && state >= 3 {
        true => pdev.save_state(),
        false => None,
    };
    if pdev.set_power_state(state).is_ok() {
        if pdev.in_d3() {
            if saved.is_some() {
                gate.saved = saved;
            }
        } else if let Some(saved) = gate.saved.take().filter(|_| was_d3) {
            pdev.restore_state(saved);
        }
    }
    gate.d3 = pdev.in_d3();
}

/// The PCI core is suspending the function: it is brought back to D0 if its user left it in
/// D3hot, for the PCI core to take it down its own way, and INTx in use is masked, to be
/// unmasked at resume (upstream's `vfio_pci_core_runtime_suspend`).
pub(super) fn runtime_suspend(pci: &PciDevice, pdev: &pci::Device<Bound>) {
    set_state(pci, pdev, &mut pci.mem.lock(), 0);
    pci.pm_intx_masked.store(pci.intx.mask(), Relaxed);
}

/// The PCI core resumed the function: a user in low power with a wake-up eventfd is told and
/// leaves low power; INTx masked at suspend is unmasked.
pub(super) fn runtime_resume(pci: &PciDevice, dev: &Device) {
    {
        let mut gate = pci.mem.lock();
        if let Power::Low(Some(_)) = gate.power {
            if let Some(wake) = gate.exit(dev) {
                wake.signal();
            }
            pci.restore_bars(&gate);
        }
    }
    if pci.pm_intx_masked.xchg(false, Relaxed) {
        pci.intx.unmask();
    }
}
