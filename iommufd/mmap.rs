// SPDX-License-Identifier: GPL-2.0

//! Regions of driver memory userspace maps through `/dev/iommu` (upstream's `mt_mmap`).
//!
//! An IOMMU driver may give a vIOMMU's owner pages to map, for example a queue the hardware
//! reads: the driver offers them here and tells userspace, in its answer to the ioctl that made
//! the object, the offset and length to pass to `mmap()` on the iommufd. Only that exact offset
//! and length map the region (`ENXIO` otherwise), only shared (`EINVAL`) and not executable
//! (`EPERM`), as upstream; and as upstream's, the mapping is an I/O one, whose pages cannot be
//! pinned.
//!
//! While any mapping of a region lives, the object that owns it counts one more user, so it
//! cannot be destroyed (`EBUSY`). Each mapping holds the iommufd's file too, so the iommufd
//! outlives its mappings; closing the file and unmapping may come in either order.
//!
//! Offsets are given out as upstream does: the lowest free range of the file's offsets, from
//! the second page on, so that 0 never names a region.
//!
//! Lock order: the mmap lock of the process, then the region list, then the object table.

use crate::object::{
    Object,
    ObjectTable, //
};
use kernel::{
    mm::virt::{
        flags,
        VmaNew,
        VmaPages, //
    },
    new_mutex,
    page::{
        Page,
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
};

/// A region userspace can map.
struct Region {
    /// Where it starts in the file, in pages.
    start: usize,
    /// The object that owns it.
    owner_id: u32,
    owner: Object,
    pages: Arc<KVec<Page>>,
}

impl Region {
    /// One past its last page in the file.
    fn end(&self) -> usize {
        self.start + self.pages.len()
    }
}

/// The regions of one iommufd, by offset.
#[pin_data]
pub(crate) struct MmapTable {
    /// Sorted by `start`; few (one per vIOMMU that offers memory at most), so a list will do.
    #[pin]
    regions: Mutex<KVec<Region>>,
}

/// What a mapping of a region holds, in each of its VMAs: the region's pages, and one use of
/// its owner, given back when the last VMA of the mapping goes.
struct MappingHold {
    pages: Arc<KVec<Page>>,
    objects: Arc<ObjectTable>,
    owner_id: u32,
}

impl VmaPages for MappingHold {
    fn pages(&self) -> &[Page] {
        &self.pages
    }
}

impl Drop for MappingHold {
    fn drop(&mut self) {
        self.objects.remove_user(self.owner_id);
    }
}

impl MmapTable {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            regions <- new_mutex!(KVec::new()),
        })
    }

    /// Offers `pages` (at least one) for userspace to map, owned by `owner` (object
    /// `owner_id`), and returns the offset of the region in the file, in bytes. Undone by
    /// [`MmapTable::remove`] when the owner goes.
    pub(crate) fn insert(&self, owner_id: u32, owner: Object, pages: KVec<Page>) -> Result<u64> {
        if pages.is_empty() {
            return Err(EINVAL);
        }
        let pages = Arc::new(pages, GFP_KERNEL_ACCOUNT)?;
        let mut regions = self.regions.lock();
        regions.reserve(1, GFP_KERNEL_ACCOUNT)?;
        // The lowest gap from page 1 on that fits.
        let mut start = 1usize;
        let mut at = regions.len();
        for (i, r) in regions.iter().enumerate() {
            if r.start >= start.saturating_add(pages.len()) {
                at = i;
                break;
            }
            start = start.max(r.end());
        }
        if start.saturating_add(pages.len()) > usize::MAX >> PAGE_SHIFT {
            return Err(ENOSPC);
        }
        let offset = (start << PAGE_SHIFT) as u64;
        let region = Region {
            start,
            owner_id,
            owner,
            pages,
        };
        regions
            .insert_within_capacity(at, region)
            .map_err(|_| ENOMEM)?;
        Ok(offset)
    }

    /// Takes the region at `offset` (in bytes) away; mappings of it keep their pages.
    pub(crate) fn remove(&self, offset: u64) {
        let start = (offset >> PAGE_SHIFT) as usize;
        let removed = {
            let mut regions = self.regions.lock();
            match regions.iter().position(|r| r.start == start) {
                Some(i) => regions.remove(i).ok(),
                None => None,
            }
        };
        // The owner and the pages are dropped outside the lock.
        drop(removed);
    }

    /// The `mmap()` of the iommufd whose objects are `objects`: maps the region that starts at
    /// the VMA's offset and is exactly as long, and counts its owner as used by the mapping.
    pub(crate) fn mmap(&self, objects: &Arc<ObjectTable>, vma: &VmaNew) -> Result {
        if vma.flags() & flags::SHARED == 0 {
            return Err(EINVAL);
        }
        if vma.flags() & flags::EXEC != 0 {
            return Err(EPERM);
        }
        let length = vma.end() - vma.start();
        let hold = {
            let regions = self.regions.lock();
            let region = regions
                .iter()
                .find(|r| r.start == vma.pgoff())
                .filter(|r| r.pages.len() * PAGE_SIZE == length)
                .ok_or(ENXIO)?;
            // Not if the owner is on its way out of the table.
            objects
                .add_user_if(region.owner_id, |o| o.is(&region.owner).then_some(()))
                .map_err(|_| ENXIO)?;
            MappingHold {
                pages: region.pages.clone(),
                objects: objects.clone(),
                owner_id: region.owner_id,
            }
        };
        // From here on, dropping `hold` gives the use back.
        let hold = Arc::new(hold, GFP_KERNEL)?;
        // As upstream's, an I/O mapping: its pages cannot be pinned (so not mapped into an IOAS).
        vma.map_pages_io(hold)
    }
}
