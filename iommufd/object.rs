// SPDX-License-Identifier: GPL-2.0

//! The object table of one open `/dev/iommu`.
//!
//! Userspace names every iommufd object (IOAS, HWPT, device, ...) by a `u32` id from this
//! table. Ids are positive, handed out lowest-free-first (as upstream, so programs and tests
//! see the same ids), and never reused while the object is in the table.
//!
//! An object is created in two steps, so that a command which fails after its object exists
//! (for instance because the answer could not be copied to userspace) leaves nothing behind:
//! [`ObjectTable::reserve`] takes an id that lookups do not see yet, and the returned
//! [`NewObject`] either publishes the object or, when dropped, gives the id back.
//!
//! Objects that others depend on count those users; destroying such an object fails with
//! `EBUSY`. Short-lived references held by a running ioctl are plain `Arc` clones: destroying
//! an object removes it from the table at once and it is freed when the last ioctl using it
//! returns.
//!
//! Locking: `entries` is a leaf lock. Objects are dropped only after it is released.

use crate::{
    device::Device,
    fault::Fault,
    hw_pagetable::HwptPaging,
    ioas::Ioas,
    nested::HwptNested,
    veventq::Veventq,
    viommu::{
        HwQueue,
        Vdevice,
        Viommu, //
    },
};
use kernel::{
    new_mutex,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        Arc,
        Mutex, //
    },
};

/// Largest id: ids are positive `i32`s, as upstream.
const MAX_ID: u32 = i32::MAX as u32;

/// An object userspace can name by id.
#[derive(Clone)]
pub(crate) enum Object {
    Ioas(Arc<Ioas>),
    HwptPaging(Arc<HwptPaging>),
    HwptNested(Arc<HwptNested>),
    Device(Arc<Device>),
    Fault(Arc<Fault>),
    Viommu(Arc<Viommu>),
    Vdevice(Arc<Vdevice>),
    Veventq(Arc<Veventq>),
    HwQueue(Arc<HwQueue>),
    /// A mock device of the test ABI.
    #[cfg(CONFIG_IOMMUFD_TEST)]
    Selftest(Arc<crate::selftest::MockDevice>),
}

impl Object {
    /// Whether `self` and `other` are the same object, not merely of the same kind.
    pub(crate) fn is(&self, other: &Object) -> bool {
        self.addr() == other.addr()
    }

    /// The address of the object, which tells it from every other live one.
    fn addr(&self) -> *const u8 {
        match self {
            Object::Ioas(o) => Arc::as_ptr(o).cast(),
            Object::HwptPaging(o) => Arc::as_ptr(o).cast(),
            Object::HwptNested(o) => Arc::as_ptr(o).cast(),
            Object::Device(o) => Arc::as_ptr(o).cast(),
            Object::Fault(o) => Arc::as_ptr(o).cast(),
            Object::Viommu(o) => Arc::as_ptr(o).cast(),
            Object::Vdevice(o) => Arc::as_ptr(o).cast(),
            Object::Veventq(o) => Arc::as_ptr(o).cast(),
            Object::HwQueue(o) => Arc::as_ptr(o).cast(),
            #[cfg(CONFIG_IOMMUFD_TEST)]
            Object::Selftest(o) => Arc::as_ptr(o).cast(),
        }
    }
}

struct Entry {
    /// `None` while the object is being created.
    object: Option<Object>,
    /// Objects that depend on this one; it cannot be destroyed while there are any.
    users: u32,
}

/// The id-to-object map of one iommufd context.
#[pin_data]
pub(crate) struct ObjectTable {
    #[pin]
    entries: Mutex<RBTree<u32, Entry>>,
}

/// An id reserved for an object being created. Dropping it unpublished frees the id.
pub(crate) struct NewObject<'a> {
    table: &'a ObjectTable,
    id: u32,
    published: bool,
}

impl NewObject<'_> {
    /// The reserved id.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Makes `object` visible under the reserved id.
    pub(crate) fn publish(self, object: Object) {
        self.publish_with_users(object, 0);
    }

    /// Makes `object` visible under the reserved id, already in use by its creator (which must
    /// drop that use with [`ObjectTable::remove_user`]): userspace can never destroy it first.
    pub(crate) fn publish_in_use(self, object: Object) {
        self.publish_with_users(object, 1);
    }

    fn publish_with_users(mut self, object: Object, users: u32) {
        if let Some(entry) = self.table.entries.lock().get_mut(&self.id) {
            entry.object = Some(object);
            entry.users = users;
            self.published = true;
        }
    }
}

impl Drop for NewObject<'_> {
    fn drop(&mut self) {
        if !self.published {
            let node = self.table.entries.lock().remove_node(&self.id);
            drop(node);
        }
    }
}

/// The lowest id not among `ids`, which must be sorted.
fn lowest_free_id(ids: impl Iterator<Item = u32>) -> Option<u32> {
    let mut candidate = 1u32;
    for id in ids {
        if id > candidate {
            break;
        }
        if id == candidate {
            candidate = candidate.checked_add(1)?;
        }
    }
    (candidate <= MAX_ID).then_some(candidate)
}

impl ObjectTable {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            entries <- new_mutex!(RBTree::new()),
        })
    }

    /// Reserves the lowest free id for an object about to be created.
    pub(crate) fn reserve(&self) -> Result<NewObject<'_>> {
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let mut entries = self.entries.lock();
        let id = lowest_free_id(entries.keys().copied()).ok_or(EBUSY)?;
        entries.insert(node.into_node(
            id,
            Entry {
                object: None,
                users: 0,
            },
        ));
        Ok(NewObject {
            table: self,
            id,
            published: false,
        })
    }

    /// The published object with this id.
    pub(crate) fn get(&self, id: u32) -> Result<Object> {
        self.get_as(id, |object| Some(object.clone()))
    }

    /// What `pick` takes of the published object with this id, under the table's lock;
    /// `ENOENT` if there is no such object or `pick` takes nothing. (A lookup of one kind
    /// clones only the reference it keeps.)
    fn get_as<T>(&self, id: u32, pick: impl FnOnce(&Object) -> Option<T>) -> Result<T> {
        match self.entries.lock().get(&id) {
            Some(Entry {
                object: Some(object),
                ..
            }) => pick(object).ok_or(ENOENT),
            _ => Err(ENOENT),
        }
    }

    /// Runs `f` with the table locked if it holds no object (not even one being created);
    /// `EBUSY` otherwise.
    pub(crate) fn if_empty<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        let entries = self.entries.lock();
        if !entries.is_empty() {
            return Err(EBUSY);
        }
        Ok(f())
    }

    /// Whether the object with this id is `ioas` (without taking a reference to it).
    pub(crate) fn is_ioas(&self, id: u32, ioas: &Arc<Ioas>) -> bool {
        self.get_as(id, |object| match object {
            Object::Ioas(current) => Arc::ptr_eq(current, ioas).then_some(()),
            _ => None,
        })
        .is_ok()
    }

    /// The IOAS with this id; `ENOENT` if there is none or the id names another kind.
    pub(crate) fn get_ioas(&self, id: u32) -> Result<Arc<Ioas>> {
        self.get_as(id, |object| match object {
            Object::Ioas(ioas) => Some(ioas.clone()),
            _ => None,
        })
    }

    /// Every IOAS in the table.
    pub(crate) fn ioases(&self) -> Result<KVec<Arc<Ioas>>> {
        let mut out = KVec::new();
        for entry in self.entries.lock().values() {
            if let Some(Object::Ioas(ioas)) = &entry.object {
                out.push(ioas.clone(), GFP_KERNEL)?;
            }
        }
        Ok(out)
    }

    /// Whether a device in the table satisfies `pred`, which is asked outside the table's lock.
    pub(crate) fn any_device(&self, pred: impl Fn(&Device) -> bool) -> Result<bool> {
        let mut devices = KVec::new();
        for entry in self.entries.lock().values() {
            if let Some(Object::Device(dev)) = &entry.object {
                devices.push(dev.clone(), GFP_KERNEL)?;
            }
        }
        Ok(devices.iter().any(|dev| pred(dev)))
    }

    /// The device with this id; `ENOENT` if there is none or the id names another kind.
    pub(crate) fn get_device(&self, id: u32) -> Result<Arc<Device>> {
        self.get_as(id, |object| match object {
            Object::Device(dev) => Some(dev.clone()),
            _ => None,
        })
    }

    /// The paging HWPT with this id; `ENOENT` if there is none or the id names another kind.
    pub(crate) fn get_hwpt_paging(&self, id: u32) -> Result<Arc<HwptPaging>> {
        self.get_as(id, |object| match object {
            Object::HwptPaging(hwpt) => Some(hwpt.clone()),
            _ => None,
        })
    }

    /// Records that another object depends on object `id`, and returns it.
    pub(crate) fn add_user(&self, id: u32) -> Result<Object> {
        self.add_user_if(id, |object| Some(object.clone()))
    }

    /// Records that another object depends on object `id` if `pick` takes the object (returns
    /// `Some`), and returns what `pick` returned; `ENOENT` if there is no such object or
    /// `pick` refuses it.
    pub(crate) fn add_user_if<T>(
        &self,
        id: u32,
        pick: impl FnOnce(&Object) -> Option<T>,
    ) -> Result<T> {
        let mut entries = self.entries.lock();
        match entries.get_mut(&id) {
            Some(Entry {
                object: Some(object),
                users,
            }) => {
                let picked = pick(object).ok_or(ENOENT)?;
                *users = users.checked_add(1).ok_or(EOVERFLOW)?;
                Ok(picked)
            }
            _ => Err(ENOENT),
        }
    }

    /// Undoes one [`ObjectTable::add_user`].
    pub(crate) fn remove_user(&self, id: u32) {
        if let Some(entry) = self.entries.lock().get_mut(&id) {
            entry.users = entry.users.saturating_sub(1);
        }
    }

    /// Removes object `id` and returns it for the caller to release what it holds: `ENOENT` if
    /// there is none (or it is still being created), `EBUSY` if other objects depend on it.
    pub(crate) fn destroy(&self, id: u32) -> Result<Object> {
        let node = {
            let mut entries = self.entries.lock();
            match entries.get(&id) {
                Some(Entry {
                    object: Some(_),
                    users: 0,
                }) => entries.remove_node(&id),
                Some(Entry {
                    object: Some(_), ..
                }) => return Err(EBUSY),
                _ => return Err(ENOENT),
            }
        };
        // The entry is freed here, outside the lock.
        let (_, entry) = node.ok_or(ENOENT)?.to_key_value();
        entry.object.ok_or(ENOENT)
    }

    /// Takes object `id` out of the table but keeps its id taken, as a tombstone: lookups and
    /// destroys of it fail with `ENOENT`, and no new object gets the id while the context
    /// lives (upstream does this for a virtual device whose device went away, so that
    /// userspace cannot mistake a new object for it). Returns the object; `ENOENT` if there is
    /// none.
    pub(crate) fn tombstone(&self, id: u32) -> Result<Object> {
        let mut entries = self.entries.lock();
        let entry = entries.get_mut(&id).ok_or(ENOENT)?;
        entry.users = 0;
        entry.object.take().ok_or(ENOENT)
    }
}

#[kunit_tests(rust_iommufd_object)]
mod tests {
    use super::*;
    use kernel::alloc::KBox;

    fn table() -> Pin<KBox<ObjectTable>> {
        KBox::pin_init(ObjectTable::new(), GFP_KERNEL).expect("allocating a table")
    }

    fn new_ioas(t: &ObjectTable) -> u32 {
        let new = t.reserve().expect("reserve");
        let id = new.id();
        new.publish(Object::Ioas(Ioas::new().expect("ioas")));
        id
    }

    #[test]
    fn lowest_free_id_fills_gaps() {
        assert_eq!(lowest_free_id([].into_iter()), Some(1));
        assert_eq!(lowest_free_id([1, 2, 3].into_iter()), Some(4));
        assert_eq!(lowest_free_id([2, 3].into_iter()), Some(1));
        assert_eq!(lowest_free_id([1, 3, 4].into_iter()), Some(2));
        assert_eq!(lowest_free_id([MAX_ID - 1].into_iter()), Some(1));
    }

    #[test]
    fn ids_start_at_one_and_are_reused_after_destroy() {
        let t = table();
        assert_eq!(new_ioas(&t), 1);
        assert_eq!(new_ioas(&t), 2);
        assert_eq!(new_ioas(&t), 3);
        assert!(t.destroy(2).is_ok());
        assert_eq!(t.get(2).err(), Some(ENOENT));
        assert_eq!(new_ioas(&t), 2);
        assert_eq!(new_ioas(&t), 4);
    }

    #[test]
    fn reserved_ids_are_invisible_and_freed_on_drop() {
        let t = table();
        let new = t.reserve().expect("reserve");
        assert_eq!(new.id(), 1);
        assert_eq!(t.get(1).err(), Some(ENOENT));
        assert!(matches!(t.destroy(1), Err(e) if e == ENOENT));
        // A second reservation does not collide with the pending one.
        assert_eq!(new_ioas(&t), 2);
        drop(new);
        assert_eq!(new_ioas(&t), 1);
    }

    #[test]
    fn destroy_in_use_is_ebusy() {
        let t = table();
        let id = new_ioas(&t);
        assert!(t.add_user(id).is_ok());
        assert!(matches!(t.destroy(id), Err(e) if e == EBUSY));
        assert!(t.get(id).is_ok());
        t.remove_user(id);
        assert!(t.destroy(id).is_ok());
        assert!(matches!(t.destroy(id), Err(e) if e == ENOENT));
        assert_eq!(t.add_user(id).err(), Some(ENOENT));
    }

    #[test]
    fn destroyed_object_lives_while_referenced() {
        let t = table();
        let id = new_ioas(&t);
        let held = t.get(id).expect("get");
        assert!(t.destroy(id).is_ok());
        assert_eq!(t.get(id).err(), Some(ENOENT));
        drop(held);
    }
}
