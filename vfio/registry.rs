// SPDX-License-Identifier: GPL-2.0

//! What all VFIO devices share: the numbers `vfioN` (lowest free first, as upstream's IDA);
//! with `VFIO_DEVICE_CDEV` the `vfio-dev` class and the character device numbers of the nodes;
//! with `VFIO_GROUP` the `vfio` class, the numbers of the group nodes and the groups themselves.
//!
//! Drivers register devices from their probe, where they cannot reach the module's state, so
//! the state is reached through a static set once at module init. The module's [`Core`] guard
//! empties it at module exit (giving the class and the numbers back); registering after that
//! fails with `ENODEV`.

#[cfg(any(CONFIG_VFIO_DEVICE_CDEV, CONFIG_VFIO_GROUP))]
use kernel::cdev::{
    ChrdevRegion,
    Class, //
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex,
        SetOnce, //
    },
};

/// How many minors the cdevs and the group nodes may use: all of them, as upstream
/// (`MINORMASK + 1`).
#[cfg(any(CONFIG_VFIO_DEVICE_CDEV, CONFIG_VFIO_GROUP))]
const MINORS: u32 = 1 << 20;

/// A set of numbers handed out lowest free first (what upstream uses an IDA for).
#[derive(Default)]
pub(crate) struct Ids(KVec<bool>);

impl Ids {
    /// The lowest free number, now taken.
    pub(crate) fn alloc(&mut self) -> Result<u32> {
        let index = match self.0.iter().position(|used| !used) {
            Some(i) => {
                self.0[i] = true;
                i
            }
            None => {
                self.0.push(true, GFP_KERNEL)?;
                self.0.len() - 1
            }
        };
        u32::try_from(index).map_err(|_| ENOSPC)
    }

    /// Gives `id` back.
    pub(crate) fn free(&mut self, id: u32) {
        if let Some(used) = self.0.get_mut(id as usize) {
            *used = false;
        }
    }
}

/// The groups and what their nodes need (`VFIO_GROUP`).
#[cfg(CONFIG_VFIO_GROUP)]
pub(crate) struct Groups {
    /// The class `vfio`, whose devices have their nodes in `/dev/vfio`.
    pub(crate) class: Arc<Class>,
    /// The device numbers of the nodes.
    pub(crate) region: ChrdevRegion,
    /// Which minors of `region` are in use.
    pub(crate) minors: Ids,
    /// The groups that have devices.
    pub(crate) entries: KVec<crate::group::Entry>,
}

/// The shared state while the module is loaded.
struct Shared {
    /// Which indices are in use.
    used: Ids,
    #[cfg(CONFIG_VFIO_DEVICE_CDEV)]
    class: Arc<Class>,
    #[cfg(CONFIG_VFIO_DEVICE_CDEV)]
    region: ChrdevRegion,
    #[cfg(CONFIG_VFIO_GROUP)]
    groups: Groups,
    /// The device sets drivers gave an id.
    sets: KVec<Arc<crate::device_set::DeviceSet>>,
    /// The PFs with VFs that vfio-pci enabled.
    #[cfg(CONFIG_VFIO_PCI)]
    sriov_pfs: KVec<crate::pci::sriov::EnabledPf>,
}

/// The slot of the shared state.
#[pin_data]
struct Slot {
    #[pin]
    shared: Mutex<Option<Shared>>,
}

static SLOT: SetOnce<Arc<Slot>> = SetOnce::new();

/// Runs `f` on the shared state: `ENODEV` if the module is not (or no longer) set up.
fn with_shared<R>(f: impl FnOnce(&mut Shared) -> Result<R>) -> Result<R> {
    let slot = SLOT.as_ref().ok_or(ENODEV)?;
    let mut guard = slot.shared.lock();
    match &mut *guard {
        Some(shared) => f(shared),
        None => Err(ENODEV),
    }
}

/// The module's hold on the shared state: sets it up, and tears it down when dropped.
pub(crate) struct Registry;

impl Registry {
    /// Sets the shared state up.
    pub(crate) fn new() -> Result<Self> {
        let shared = Shared {
            used: Ids::default(),
            #[cfg(CONFIG_VFIO_DEVICE_CDEV)]
            class: Class::register(c"vfio-dev", c"vfio/devices")?,
            #[cfg(CONFIG_VFIO_DEVICE_CDEV)]
            region: ChrdevRegion::alloc(MINORS, c"vfio-dev")?,
            #[cfg(CONFIG_VFIO_GROUP)]
            groups: Groups {
                class: Class::register(c"vfio", c"vfio")?,
                region: ChrdevRegion::alloc(MINORS, c"vfio")?,
                minors: Ids::default(),
                entries: KVec::new(),
            },
            sets: KVec::new(),
            #[cfg(CONFIG_VFIO_PCI)]
            sriov_pfs: KVec::new(),
        };
        match SLOT.as_ref() {
            Some(slot) => *slot.shared.lock() = Some(shared),
            None => {
                let slot = Arc::pin_init(
                    pin_init!(Slot {
                        shared <- new_mutex!(Some(shared)),
                    }),
                    GFP_KERNEL,
                )?;
                SLOT.populate(slot);
            }
        }
        Ok(Self)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(slot) = SLOT.as_ref() {
            let shared = slot.shared.lock().take();
            drop(shared);
        }
    }
}

/// The number of a registered device, given back on drop.
pub(crate) struct Index(u32);

impl Index {
    /// The lowest free number.
    pub(crate) fn alloc() -> Result<Self> {
        with_shared(|shared| Ok(Self(shared.used.alloc()?)))
    }

    /// The number.
    pub(crate) fn get(&self) -> u32 {
        self.0
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        let _ = with_shared(|shared| {
            shared.used.free(self.0);
            Ok(())
        });
    }
}

/// The `vfio-dev` class and the device number of index `index`: `ENOSPC` past the minors.
#[cfg(CONFIG_VFIO_DEVICE_CDEV)]
pub(crate) fn cdev_class_and_devt(index: u32) -> Result<(Arc<Class>, u32)> {
    with_shared(|shared| {
        Ok((
            shared.class.clone(),
            shared.region.devt(index).ok_or(ENOSPC)?,
        ))
    })
}

/// Runs `f` on the groups, under the registry's lock: `ENODEV` if the module is not set up.
#[cfg(CONFIG_VFIO_GROUP)]
pub(crate) fn with_groups<R>(f: impl FnOnce(&mut Groups) -> Result<R>) -> Result<R> {
    with_shared(|shared| f(&mut shared.groups))
}

/// Runs `f` on the device sets that have an id, under the registry's lock: `ENODEV` if the
/// module is not set up.
pub(crate) fn with_sets<R>(
    f: impl FnOnce(&mut KVec<Arc<crate::device_set::DeviceSet>>) -> Result<R>,
) -> Result<R> {
    with_shared(|shared| f(&mut shared.sets))
}

/// Runs `f` on the PFs with VFs that vfio-pci enabled, under the registry's lock: `ENODEV` if
/// the module is not set up.
#[cfg(CONFIG_VFIO_PCI)]
pub(crate) fn with_sriov_pfs<R>(
    f: impl FnOnce(&mut KVec<crate::pci::sriov::EnabledPf>) -> Result<R>,
) -> Result<R> {
    with_shared(|shared| f(&mut shared.sriov_pfs))
}
