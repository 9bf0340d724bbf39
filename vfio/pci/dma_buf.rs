// SPDX-License-Identifier: GPL-2.0

//! `VFIO_DEVICE_FEATURE_DMA_BUF`: slices of a memory BAR exported as a dma-buf, so that another
//! device can reach them by DMA (peer to peer): iommufd maps such a buffer into an IOAS with
//! `IOMMU_IOAS_MAP_FILE`, which is how iommufd offers what VFIO's type1 did with a BAR's
//! `mmap()`.
//!
//! The buffer holds the physical ranges of the slices. It does not keep the device open, and
//! the device does not keep it: each buffer is tied to a [`Revoker`] the device keeps, with
//! which the driver takes the memory away from every importer whenever the user may not reach
//! the BAR, as it zaps the BAR's mappings: memory decoding off, a reset (given back after it
//! if decoding is on), and for good when the device is closed (upstream's
//! `vfio_pci_dma_buf_move` and `vfio_pci_dma_buf_cleanup`). Importers by physical address take
//! only a buffer of one range, as upstream's private interconnect with iommufd; others get
//! `EOPNOTSUPP`. Without dma-bufs (`DMA_SHARED_BUFFER=n`) the feature is `ENOTTY`, as
//! upstream without `VFIO_PCI_DMABUF`.

use super::PciDevice;
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
use core::mem::size_of;
#[cfg(not(CONFIG_DMA_SHARED_BUFFER))]
use kernel::prelude::*;
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
use kernel::{
    dma_buf::{
        self,
        DmaBuf,
        Exporter,
        PhysRange,
        ResvGuard,
        Revoker, //
    },
    page::PAGE_SIZE,
    prelude::*,
    sync::Arc,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
    uapi_bytes::read_user_u32,
};

/// `struct vfio_device_feature_dma_buf` without its ranges.
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
const HEADER: usize = 4 * size_of::<u32>();
/// `struct vfio_region_dma_range`: offset and length.
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
const RANGE: usize = 2 * size_of::<u64>();
/// `DMA_IOVA_USE_SWIOTLB`: a length with this bit set is refused, as upstream.
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
const TOO_LONG: u64 = 1 << 63;

/// The exporter: the slices' physical ranges.
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
struct BarSlices {
    ranges: KVec<PhysRange>,
    revoker: Arc<Revoker>,
}

#[cfg(CONFIG_DMA_SHARED_BUFFER)]
impl Exporter for BarSlices {
    fn phys(&self, _resv: &ResvGuard<'_>) -> Result<PhysRange> {
        if self.revoker.revoked() {
            return Err(ENODEV);
        }
        match self.ranges[..] {
            [one] => Ok(one),
            _ => Err(EOPNOTSUPP),
        }
    }
}

/// The buffers exported from a device's BARs, for taking their memory away.
pub(super) struct DmaBufs {
    #[cfg(CONFIG_DMA_SHARED_BUFFER)]
    revokers: KVec<Arc<Revoker>>,
}

#[cfg(not(CONFIG_DMA_SHARED_BUFFER))]
impl DmaBufs {
    pub(super) fn new() -> Self {
        Self {}
    }

    pub(super) fn set_revoked(&mut self, _revoked: bool) {}

    pub(super) fn revoke_all(&mut self) {}
}

/// `VFIO_DEVICE_FEATURE_DMA_BUF` without dma-bufs: `ENOTTY`.
#[cfg(not(CONFIG_DMA_SHARED_BUFFER))]
pub(super) fn feature(_dev: &PciDevice, _flags: u32, _arg: usize, _argsz: usize) -> Result<isize> {
    Err(ENOTTY)
}

#[cfg(CONFIG_DMA_SHARED_BUFFER)]
impl DmaBufs {
    pub(super) fn new() -> Self {
        Self {
            revokers: KVec::new(),
        }
    }

    /// Takes the memory of every buffer away (`revoked`) or gives it back.
    pub(super) fn set_revoked(&mut self, revoked: bool) {
        self.revokers.retain(|r| !r.released());
        for r in self.revokers.iter() {
            r.set_revoked(revoked);
        }
    }

    /// Takes the memory of every buffer away for good: the device is closed.
    pub(super) fn revoke_all(&mut self) {
        self.set_revoked(true);
        self.revokers.clear();
    }
}

/// `VFIO_DEVICE_FEATURE_DMA_BUF` (only `GET`) with its data at `arg`, `argsz` bytes: a new
/// dma-buf over the ranges of memory BAR `region_index` and its file descriptor.
///
/// Errors as upstream: `EINVAL` for flags, no range, a range that is empty, not page aligned
/// or past the BAR, or lengths adding up to too much; `ENODEV` for a region that is not a
/// memory BAR; `EOVERFLOW` for a range whose address wraps.
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
pub(super) fn feature(dev: &PciDevice, flags: u32, arg: usize, argsz: usize) -> Result<isize> {
    if !crate::device::check_feature(flags, argsz, uapi::VFIO_DEVICE_FEATURE_GET, HEADER)? {
        return Ok(0);
    }
    let region_index = read_user_u32(arg)?;
    let open_flags = read_user_u32(arg + 4)?;
    let cmd_flags = read_user_u32(arg + 8)?;
    let nr_ranges = read_user_u32(arg + 12)? as usize;
    if nr_ranges == 0 || cmd_flags != 0 {
        return Err(EINVAL);
    }
    let bar = region_index as usize;
    if !matches!(dev.bars.get(bar), Some(Some(super::Mapped::Mem(_)))) {
        return Err(ENODEV);
    }
    // The ranges, read as a whole first, as upstream (which reads them past `argsz` too).
    let bytes = nr_ranges.checked_mul(RANGE).ok_or(EOVERFLOW)?;
    let mut raw = KVec::from_elem(0u8, bytes, GFP_KERNEL_ACCOUNT)?;
    UserSlice::new(UserPtr::from_addr(arg + HEADER), bytes)
        .reader()
        .read_slice(&mut raw)?;
    let range = |i: usize| {
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[at..at + 8]);
            u64::from_ne_bytes(b)
        };
        (word(i * RANGE), word(i * RANGE + 8))
    };
    let page = PAGE_SIZE as u64;
    let mut total = 0u64;
    for i in 0..nr_ranges {
        let (offset, length) = range(i);
        if length == 0 || offset % page != 0 || length % page != 0 {
            return Err(EINVAL);
        }
        total = total.checked_add(length).ok_or(EINVAL)?;
    }
    if total & TOO_LONG != 0 {
        return Err(EINVAL);
    }
    let (start, len) = (dev.bar_start[bar], dev.bar_len(bar));
    let mut ranges = KVec::with_capacity(nr_ranges, GFP_KERNEL_ACCOUNT)?;
    for i in 0..nr_ranges {
        let (offset, length) = range(i);
        let addr = start.checked_add(offset).ok_or(EOVERFLOW)?;
        let end = addr.checked_add(length).ok_or(EOVERFLOW)?;
        if end > start + len {
            return Err(EINVAL);
        }
        ranges.push(PhysRange { addr, len: length }, GFP_KERNEL_ACCOUNT)?;
    }
    let revoker = Revoker::new()?;
    let slices = BarSlices {
        ranges,
        revoker: revoker.clone(),
    };
    let size = usize::try_from(total).map_err(|_| EINVAL)?;
    let buf = dma_buf::export_revocable(slices, size, open_flags, &revoker)?;
    {
        // As the BAR is now: no importer can attach before the descriptor exists.
        let mem = dev.mem.lock();
        revoker.set_revoked(!mem.open());
        let mut bufs = dev.dma_bufs.lock();
        bufs.revokers.retain(|r| !r.released());
        bufs.revokers.push(revoker, GFP_KERNEL_ACCOUNT)?;
    }
    Ok(DmaBuf::into_fd(buf, open_flags)? as isize)
}
