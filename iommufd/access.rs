// SPDX-License-Identifier: GPL-2.0

//! The access kAPI: emulated devices reading, writing and pinning IOAS memory.
//!
//! A device with no IOMMU of its own (a VFIO mdev, a vhost backend, the test ABI's access
//! objects) still does "DMA" to IOVAs userspace mapped in an IOAS: the kernel driver reads and
//! writes the memory behind an IOVA, or pins its pages for a while. An [`Access`] attaches such
//! a device to one IOAS. The IOAS tells its user (an [`AccessUser`]) before it unmaps memory the
//! device may have pinned, and waits until the pins are dropped.
//!
//! An access keeps its IOAS from being destroyed (it counts as a user of the IOAS object) until
//! it is detached; detaching is the driver's job, when its device goes.

use crate::{
    io_pagetable::AccessUser,
    ioas::Ioas,
    object::{
        Object,
        ObjectTable, //
    },
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
};

/// An emulated device's access to an IOAS.
#[pin_data]
pub(crate) struct Access {
    objects: Arc<ObjectTable>,
    user: Arc<dyn AccessUser>,
    /// Whether the device pins pages (then mappings must be page aligned).
    pins: bool,
    /// The IOAS and its id, while attached.
    #[pin]
    ioas: Mutex<Option<(u32, Arc<Ioas>)>>,
}

impl Access {
    /// A new access for `user`, attached to IOAS `ioas_id` of `objects`.
    pub(crate) fn attach(
        objects: &Arc<ObjectTable>,
        ioas_id: u32,
        user: Arc<dyn AccessUser>,
        pins: bool,
    ) -> Result<Arc<Self>> {
        let access = Arc::pin_init(
            pin_init!(Self {
                objects: objects.clone(),
                user,
                pins,
                ioas <- new_mutex!(None),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        access.set_ioas(ioas_id)?;
        Ok(access)
    }

    /// Moves the access to IOAS `ioas_id`, or attaches it if it has none. The device must hold
    /// no pins. On failure the access stays where it was.
    pub(crate) fn set_ioas(&self, ioas_id: u32) -> Result {
        let mut cur = self.ioas.lock();
        let Object::Ioas(ioas) = self.objects.add_user(ioas_id)? else {
            self.objects.remove_user(ioas_id);
            return Err(ENOENT);
        };
        if let Err(e) = ioas.iopt.add_access(self.user.clone(), self.pins) {
            self.objects.remove_user(ioas_id);
            return Err(e);
        }
        if let Some((old_id, old)) = cur.replace((ioas_id, ioas)) {
            old.iopt.remove_access(&self.user);
            self.objects.remove_user(old_id);
        }
        Ok(())
    }

    /// Detaches the access from its IOAS. The device must have dropped its pins.
    pub(crate) fn detach(&self) {
        if let Some((id, ioas)) = self.ioas.lock().take() {
            ioas.iopt.remove_access(&self.user);
            self.objects.remove_user(id);
        }
    }

    /// Whether the device pins pages.
    pub(crate) fn pins(&self) -> bool {
        self.pins
    }

    fn ioas(&self) -> Result<Arc<Ioas>> {
        self.ioas
            .lock()
            .as_ref()
            .map(|(_, ioas)| ioas.clone())
            .ok_or(ENOENT)
    }

    /// Pins the memory behind `[iova, iova + length)` and returns the physical address of
    /// each page, for a device that pins (`EINVAL` otherwise).
    pub(crate) fn pin_pages(&self, iova: u64, length: u64, write: bool) -> Result<KVec<u64>> {
        if !self.pins {
            return Err(EINVAL);
        }
        self.ioas()?.iopt.access_pin(iova, length, write, false)
    }

    /// Drops the pins of an earlier [`Access::pin_pages`] of the same range.
    pub(crate) fn unpin_pages(&self, iova: u64, length: u64) {
        if let Ok(ioas) = self.ioas() {
            ioas.iopt.access_unpin(iova, length, false);
        }
    }

    /// Copies between `buf` and the memory behind `iova` (into the memory when `write`);
    /// `slow` skips the copy through the current process's view (see
    /// [`crate::io_pagetable::IoPagetable::access_rw`]).
    pub(crate) fn rw(&self, iova: u64, buf: &mut [u8], write: bool, slow: bool) -> Result {
        self.ioas()?.iopt.access_rw(iova, buf, write, slow)
    }
}
