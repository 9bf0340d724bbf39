// SPDX-License-Identifier: GPL-2.0

//! Device memory a process maps with `VM_PFNMAP`, looked up by physical address for DMA.
//!
//! A driver that lets a process `mmap()` device memory (VFIO's PCI BARs, for one) maps it
//! by page frame number: no `struct page` stands behind it, so it cannot be pinned like
//! process memory. VFIO's type1 backend still accepts such addresses in `VFIO_IOMMU_MAP_DMA`,
//! for peer-to-peer DMA between devices: it follows the process's page tables to the frames
//! and maps those, pinning and charging nothing. [`pfnmap_runs`] is that lookup. Nothing
//! holds the memory in place afterwards; as upstream, the caller trusts the process not to
//! hand over memory it does not own for the mapping's life.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h).

use crate::{
    alloc::KVVec,
    bindings,
    error::to_result,
    mm::{
        virt::flags,
        Mm,
        MmWithUser, //
        MmapReadGuard,
    },
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
};

/// Physically contiguous device memory behind part of a `VM_PFNMAP` mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfnRun {
    /// The physical address of the first page.
    pub phys: u64,
    /// How many pages.
    pub npages: usize,
}

/// Whether `uaddr` lies in a `VM_PFNMAP` mapping of `mm`.
pub fn is_pfnmap(mm: &Mm, uaddr: usize) -> bool {
    let Some(mm) = mm.mmget_not_zero() else {
        return false;
    };
    let guard = mm.mmap_read_lock();
    guard
        .vma_lookup(uaddr)
        .is_some_and(|vma| vma.flags() & flags::PFNMAP != 0)
}

/// The device memory behind the `npages` pages of `mm` from `uaddr` (a multiple of
/// `PAGE_SIZE`), in physically contiguous runs, in order.
///
/// Every page must be in a `VM_PFNMAP` mapping and be memory the kernel does not manage (no
/// `struct page`, or a reserved one), as type1 requires. A page the mapping has not faulted in
/// yet is faulted in first, for writing if `write`. `EFAULT` otherwise, or if `write` and a
/// page is mapped read-only; `ENOMEM` if the runs cannot be recorded.
pub fn pfnmap_runs(mm: &Mm, uaddr: usize, npages: usize, write: bool) -> Result<KVVec<PfnRun>> {
    if uaddr % PAGE_SIZE != 0 {
        return Err(EINVAL);
    }
    let mm = mm.mmget_not_zero().ok_or(EFAULT)?;
    let mut runs = KVVec::<PfnRun>::new();
    let mut done = 0;
    while done < npages {
        let addr = done
            .checked_mul(PAGE_SIZE)
            .and_then(|off| uaddr.checked_add(off))
            .ok_or(EFAULT)?;
        let (pfn, in_entry) = follow_pfn(&mm, &mm.mmap_read_lock(), addr, write)?;
        let n = in_entry.min(npages - done);
        let phys = (pfn as u64) << PAGE_SHIFT;
        match runs.last_mut() {
            Some(last) if last.phys + (last.npages * PAGE_SIZE) as u64 == phys => last.npages += n,
            _ => runs.push(PfnRun { phys, npages: n }, GFP_KERNEL_ACCOUNT)?,
        }
        done += n;
    }
    Ok(runs)
}

/// The page frame behind `addr`, in a `VM_PFNMAP` mapping of `mm` whose mmap lock `guard`
/// holds, and how many frames from it the same page-table entry maps (1 for a PTE, up to 512
/// for a PMD). Faults the page in once if it is not mapped yet.
fn follow_pfn(
    mm: &MmWithUser,
    guard: &MmapReadGuard<'_>,
    addr: usize,
    write: bool,
) -> Result<(usize, usize)> {
    // Faulting may drop and retake the mmap lock, after which the mapping is looked up again;
    // a bounded number of tries, so that a mapping that keeps changing cannot hold us here.
    for _ in 0..4 {
        let vma = guard.vma_lookup(addr).ok_or(EFAULT)?;
        if vma.flags() & flags::PFNMAP == 0 {
            return Err(EFAULT);
        }
        let mut args = bindings::follow_pfnmap_args {
            vma: vma.as_ptr(),
            address: addr,
            ..Default::default()
        };
        // SAFETY: `args.vma` is a live vma of `mm`, whose mmap lock `guard` holds for reading,
        // as the walk requires; `addr` is inside it.
        if unsafe { bindings::follow_pfnmap_start(&mut args) } == 0 {
            let (pfn, mask, writable) = (args.pfn, args.addr_mask, args.writable);
            // SAFETY: ends the walk that succeeded above, still under the same lock.
            unsafe { bindings::follow_pfnmap_end(&mut args) };
            if (write && !writable) || is_managed_memory(pfn) {
                return Err(EFAULT);
            }
            let end = (pfn | (!mask >> PAGE_SHIFT)) + 1;
            return Ok((pfn, end - pfn));
        }
        let mut unlocked = false;
        let mut fault = bindings::fault_flag_FAULT_FLAG_REMOTE;
        if write {
            fault |= bindings::fault_flag_FAULT_FLAG_WRITE;
        }
        // SAFETY: `guard` holds `mm`'s mmap lock for reading, as the call requires; it may drop
        // and retake the lock (saying so in `unlocked`), so `vma` is not used after it: the
        // next try looks the mapping up again.
        let rc = unsafe { bindings::fixup_user_fault(mm.as_raw(), addr, fault, &mut unlocked) };
        if !unlocked {
            to_result(rc)?;
        }
    }
    Err(EFAULT)
}

/// Whether page frame `pfn` is memory the kernel manages (a `struct page` that is not
/// reserved): such memory must be pinned, never mapped by its frame number.
fn is_managed_memory(pfn: usize) -> bool {
    // SAFETY: `pfn_valid` accepts any frame number.
    if !unsafe { bindings::pfn_valid(pfn) } {
        return false;
    }
    // SAFETY: a valid frame has a `struct page`, which lives as long as the memory map.
    !unsafe { bindings::PageReserved(bindings::pfn_to_page(pfn)) }
}
