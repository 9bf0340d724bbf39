// SPDX-License-Identifier: GPL-2.0

//! Device sets: the devices a reset reaches together.
//!
//! Some devices cannot be reset alone: the functions of a PCI slot or bus without function
//! level reset go through a reset together. A driver that has such devices registers them
//! with the same set id (an address standing for what they share; vfio-pci passes its slot
//! or bus, as upstream's `vfio_assign_device_set`), and they share one [`DeviceSet`]. A device
//! registered without an id is a set of its own.
//!
//! The set's lock orders the opens and closes of all its devices: the first-open and
//! last-close callbacks run under it, so a driver holding it (through [`DeviceSet::lock`])
//! sees every member's open state stand still, which is what a bus reset needs to check that
//! nobody else has a member open.
//!
//! Lock order: the registry, then a set's lock, then its devices' `state`.

use crate::device::VfioDevice;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex,
        MutexGuard, //
    },
};

/// What a set's lock guards.
pub(crate) struct Members {
    /// The registered devices of the set.
    pub(crate) devices: KVec<Arc<VfioDevice>>,
    /// Devices that hold the set: registered, or registering.
    users: u32,
}

/// Devices that reset together.
#[pin_data]
pub(crate) struct DeviceSet {
    /// The id the driver gave, or `None` for a device of its own.
    id: Option<usize>,
    /// The set's lock.
    #[pin]
    members: Mutex<Members>,
}

/// The locked set: its members' opens and closes wait until it is dropped.
pub(crate) type SetGuard<'a> = MutexGuard<'a, Members>;

impl DeviceSet {
    /// Locks the set: its members' opens and closes wait until the guard is dropped.
    pub(crate) fn lock(&self) -> SetGuard<'_> {
        self.members.lock()
    }

    /// Adds a registered device to the set [`get`] returned for it.
    pub(crate) fn add(&self, device: &Arc<VfioDevice>) -> Result {
        Ok(self
            .members
            .lock()
            .devices
            .push(device.clone(), GFP_KERNEL)?)
    }
}

impl Members {
    /// How many devices of the set are open.
    pub(crate) fn open_count(&self) -> usize {
        self.devices.iter().filter(|d| d.is_open()).count()
    }
}

/// The set of id `id` (a new one of its own for `None`), for a device about to register,
/// which joins it with [`DeviceSet::add`] and leaves it with [`put`].
pub(crate) fn get(id: Option<usize>) -> Result<Arc<DeviceSet>> {
    let new = || {
        Arc::pin_init(
            pin_init!(DeviceSet {
                id,
                members <- new_mutex!(Members {
                    devices: KVec::new(),
                    users: 1,
                }),
            }),
            GFP_KERNEL,
        )
    };
    let Some(key) = id else {
        return new();
    };
    crate::registry::with_sets(|sets| {
        if let Some(set) = sets.iter().find(|s| s.id == Some(key)) {
            set.members.lock().users += 1;
            return Ok(set.clone());
        }
        sets.reserve(1, GFP_KERNEL)?;
        let set = new()?;
        sets.push(set.clone(), GFP_KERNEL)?;
        Ok(set)
    })
}

/// Takes `device` out of `set` (if it was added); the set goes with its last user.
pub(crate) fn put(set: &Arc<DeviceSet>, device: Option<&Arc<VfioDevice>>) {
    let leave = |set: &DeviceSet| {
        let mut members = set.members.lock();
        if let Some(device) = device {
            members.devices.retain(|d| !Arc::ptr_eq(d, device));
        }
        members.users -= 1;
        members.users == 0
    };
    if set.id.is_none() {
        leave(set);
        return;
    }
    let _ = crate::registry::with_sets(|sets| {
        if leave(set) {
            sets.retain(|s| !Arc::ptr_eq(s, set));
        }
        Ok(())
    });
}
