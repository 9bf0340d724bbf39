// SPDX-License-Identifier: GPL-2.0

//! What all VFIO devices share: the numbers `vfioN` (lowest free first, as upstream's IDA), and
//! with `VFIO_DEVICE_CDEV` the `vfio-dev` class and the character device numbers of the nodes.
//!
//! Drivers register devices from their probe, where they cannot reach the module's state, so
//! the state is reached through a static set once at module init. The module's [`Core`] guard
//! empties it at module exit (giving the class and the numbers back); registering after that
//! fails with `ENODEV`.

#[cfg(CONFIG_VFIO_DEVICE_CDEV)]
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

/// How many minors the cdevs may use: all of them, as upstream (`MINORMASK + 1`).
#[cfg(CONFIG_VFIO_DEVICE_CDEV)]
const MINORS: u32 = 1 << 20;

/// The shared state while the module is loaded.
struct Shared {
    /// Which indices are in use.
    used: KVec<bool>,
    #[cfg(CONFIG_VFIO_DEVICE_CDEV)]
    class: Arc<Class>,
    #[cfg(CONFIG_VFIO_DEVICE_CDEV)]
    region: ChrdevRegion,
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
            used: KVec::new(),
            #[cfg(CONFIG_VFIO_DEVICE_CDEV)]
            class: Class::register(c"vfio-dev", c"vfio/devices")?,
            #[cfg(CONFIG_VFIO_DEVICE_CDEV)]
            region: ChrdevRegion::alloc(MINORS, c"vfio-dev")?,
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
        with_shared(|shared| {
            let index = match shared.used.iter().position(|used| !used) {
                Some(i) => {
                    shared.used[i] = true;
                    i
                }
                None => {
                    shared.used.push(true, GFP_KERNEL)?;
                    shared.used.len() - 1
                }
            };
            Ok(Self(u32::try_from(index).map_err(|_| ENOSPC)?))
        })
    }

    /// The number.
    pub(crate) fn get(&self) -> u32 {
        self.0
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        let _ = with_shared(|shared| {
            if let Some(used) = shared.used.get_mut(self.0 as usize) {
                *used = false;
            }
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
