// SPDX-License-Identifier: GPL-2.0

//! Real devices behind a hardware IOMMU, and the IOMMU domains the engine fills for them.
//!
//! A device VFIO hands to userspace sits behind an IOMMU driver of the C IOMMU core (VT-d,
//! AMD-Vi, SMMUv3). Binding it to an iommufd claims its DMA ([`DmaOwner`]), so that the kernel's
//! DMA API lets go of its group; its HWPTs are paging domains of that driver
//! ([`PagingDomain`]), which the engine fills like any other [`Domain`], and attaching the device
//! points its group at one of them. What `IOMMU_GET_HW_INFO` reports comes from the driver.
//!
//! Every mapping is made cache-coherent (`IOMMU_CACHE`): userspace has no way to flush CPU
//! caches for a device, so, as upstream, only devices whose IOMMU can do that are bound.

use crate::{
    device::{
        AllocatedDomain,
        DeviceIommu,
        HwInfo, //
    },
    domain::Domain,
    hw_pagetable::Hwpt,
    io_pagetable::Prot,
    range_map::Range,
    ucmd::UserData,
};
use kernel::{
    device::Device,
    iommu::{
        device::{
            self as iommu_device,
            Cap, //
        },
        domain::{
            prot,
            PagingDomain, //
        },
        group::{
            DmaOwner,
            Group, //
        },
    },
    iova_bitmap::IovaBitmap,
    new_mutex,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
    uapi,
};

/// A paging domain of a hardware IOMMU driver, as the engine drives it.
pub(crate) struct HwDomain {
    domain: Arc<PagingDomain>,
    /// Whether the IOMMU makes every DMA through the domain cache-coherent, no-snoop requests
    /// included (upstream's `enforce_cache_coherency` of a HWPT).
    coherent: bool,
}

impl HwDomain {
    /// A new domain for `dev` with `IOMMU_HWPT_ALLOC_*` `flags`. If the device's IOMMU can
    /// enforce cache coherency, the domain does (asked before anything is mapped, as upstream).
    pub(crate) fn new(dev: &Device, flags: u32) -> Result<Arc<Self>> {
        let domain = PagingDomain::with_flags(dev, flags)?;
        if domain.pgsize_bitmap() == 0 {
            return Err(EINVAL);
        }
        let coherent = iommu_device::capable(dev, Cap::EnforceCacheCoherency)
            && domain.enforce_cache_coherency();
        let domain = Arc::new(domain, GFP_KERNEL_ACCOUNT)?;
        Ok(Arc::new(Self { domain, coherent }, GFP_KERNEL_ACCOUNT)?)
    }

    /// Whether the domain enforces cache coherency.
    #[cfg_attr(
        not(CONFIG_KUNIT),
        expect(dead_code, reason = "VFIO reports it to KVM")
    )]
    pub(crate) fn coherent(&self) -> bool {
        self.coherent
    }
}

impl Domain for HwDomain {
    fn pgsize_bitmap(&self) -> u64 {
        self.domain.pgsize_bitmap()
    }

    fn aperture(&self) -> Range {
        let a = self.domain.aperture();
        Range {
            start: a.start,
            last: a.last,
        }
    }

    /// One `iommu_map()` for the whole run: the core cuts it into the largest pages that fit,
    /// and unmaps what it mapped if it fails part way.
    fn map(&self, iova: u64, phys: u64, length: u64, prot: Prot) -> Result {
        let mut p = prot::CACHE;
        if prot.read {
            p |= prot::READ;
        }
        if prot.write {
            p |= prot::WRITE;
        }
        self.domain.map(iova, phys, length, p, GFP_KERNEL_ACCOUNT)
    }

    fn unmap(&self, iova: u64, length: u64) {
        let done = self.domain.unmap(iova, length);
        if done != length {
            pr_warn!(
                "iommufd: unmapping {:#x}+{:#x} from a hardware domain unmapped {:#x}\n",
                iova,
                length,
                done
            );
        }
    }

    fn dirty_capable(&self) -> bool {
        self.domain.dirty_tracking()
    }

    fn set_dirty_tracking(&self, enable: bool) -> Result {
        self.domain.set_dirty_tracking(enable)
    }

    fn read_and_clear_dirty(
        &self,
        iova: u64,
        length: u64,
        no_clear: bool,
        bitmap: Option<&mut IovaBitmap>,
    ) -> Result {
        self.domain
            .read_and_clear_dirty(iova, length, no_clear, bitmap)
    }

    fn iommu_domain(&self) -> Option<&Arc<PagingDomain>> {
        Some(&self.domain)
    }
}

/// A real device bound to an iommufd: its DMA is claimed while it is bound.
#[pin_data]
pub(crate) struct HwDevice {
    dev: ARef<Device>,
    /// The claim, and the domain attached through it.
    #[pin]
    owner: Mutex<DmaOwner>,
}

impl HwDevice {
    /// Claims the DMA of `dev` for `owner` (the iommufd it is bound to: devices of one group
    /// must all be bound to the same one): `EINVAL` if its IOMMU cannot make DMA
    /// cache-coherent, `ENODEV` without an IOMMU, `EPERM` if another owner has the group,
    /// `EBUSY` if a kernel driver uses it.
    pub(crate) fn new<T: ?Sized>(dev: &Device, owner: &T) -> Result<Arc<Self>> {
        if !iommu_device::capable(dev, Cap::CacheCoherency) {
            return Err(EINVAL);
        }
        // As upstream: a device whose DMA could raise interrupts it was not given is not handed
        // to userspace. (Upstream's `allow_unsafe_interrupts` override is not offered.)
        if !Group::of(dev)?.has_isolated_msi() {
            return Err(EPERM);
        }
        let owner = DmaOwner::claim(dev, owner)?;
        Arc::pin_init(
            try_pin_init!(Self {
                dev: dev.into(),
                owner <- new_mutex!(owner),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    fn allocated(domain: Arc<HwDomain>) -> AllocatedDomain {
        AllocatedDomain {
            domain,
            #[cfg(CONFIG_IOMMUFD_TEST)]
            mock: None,
        }
    }

    /// Attaches `domain`'s hardware domain to the device's group, replacing what is there, or
    /// blocks the group's DMA for `None`: `EINVAL` for a domain of no hardware IOMMU.
    fn attach(&self, domain: Option<&dyn Domain>) -> Result {
        let mut owner = self.owner.lock();
        match domain {
            Some(domain) => owner.attach(domain.iommu_domain().ok_or(EINVAL)?),
            None => {
                owner.detach();
                Ok(())
            }
        }
    }
}

impl DeviceIommu for HwDevice {
    fn in_iommu_group(&self, group: *const kernel::bindings::iommu_group) -> bool {
        Group::of(&self.dev).is_ok_and(|own| own.as_raw().cast_const() == group)
    }

    fn alloc_domain(&self) -> Result<AllocatedDomain> {
        Ok(Self::allocated(HwDomain::new(&self.dev, 0)?))
    }

    /// The flags go to the driver, which refuses what it does not have; no driver data yet.
    fn alloc_domain_flags(&self, flags: u32, data: &UserData) -> Result<AllocatedDomain> {
        let dirty = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
        let valid = dirty
            | uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_NEST_PARENT
            | uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_PASID;
        if flags & !valid != 0 || data.len != 0 || (flags & dirty != 0 && !self.dirty_tracking()) {
            return Err(EOPNOTSUPP);
        }
        Ok(Self::allocated(HwDomain::new(&self.dev, flags)?))
    }

    fn dirty_tracking(&self) -> bool {
        iommu_device::capable(&self.dev, Cap::DirtyTracking)
    }

    /// A paging domain of the device's IOMMU driver; one with dirty tracking only if the
    /// device's IOMMU tracks dirty pages. The driver may still refuse the domain when the device
    /// is attached (a domain of another IOMMU instance it cannot share, say).
    fn check_domain(&self, hwpt: &Hwpt) -> Result {
        match hwpt {
            Hwpt::Paging(hwpt)
                if hwpt
                    .domain
                    .iommu_domain()
                    .is_some_and(|d| d.is_from_driver_of(&self.dev))
                    && (self.dirty_tracking() || !hwpt.domain.dirty_capable()) =>
            {
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    fn max_pasids(&self) -> u32 {
        iommu_device::max_pasids(&self.dev)
    }

    fn attach_domain(&self, hwpt: Option<&Hwpt>) -> Result {
        match hwpt {
            Some(Hwpt::Paging(hwpt)) => self.attach(Some(&*hwpt.domain)),
            Some(Hwpt::Nested(_)) => Err(EINVAL),
            None => self.attach(None),
        }
    }

    /// The driver's data, and the capabilities the core knows, as upstream's
    /// `iommufd_get_hw_info()`.
    fn hw_info(&self, data_type: u32) -> Result<HwInfo> {
        let info = iommu_device::hw_info(&self.dev, data_type)?;
        let mut capabilities = 0;
        if self.dirty_tracking() {
            capabilities |= u64::from(uapi::iommufd_hw_capabilities_IOMMU_HW_CAP_DIRTY_TRACKING);
        }
        if !iommu_device::capable(&self.dev, Cap::PciAtsSupported) {
            capabilities |=
                u64::from(uapi::iommufd_hw_capabilities_IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED);
        }
        let max_pasid_log2 = match self.max_pasids() {
            0 => 0,
            n => n.ilog2() as u8,
        };
        Ok(HwInfo {
            data_type: info.data_type,
            data: info.data,
            capabilities,
            max_pasid_log2,
        })
    }
}

/// These run against QEMU's `edu` PCI device behind emulated VT-d (the project's test VM); on
/// a machine without it they log that and pass.
#[kunit_tests(rust_iommufd_hw_domain)]
mod tests {
    use super::*;
    use crate::domain::Run;
    use kernel::{
        bindings,
        pci, //
    };

    const RW: Prot = Prot {
        read: true,
        write: true,
    };
    const SZ_4K: u64 = 0x1000;
    const SZ_2M: u64 = 0x20_0000;

    /// QEMU's `edu` device, which no driver takes.
    fn edu() -> Option<ARef<pci::Device>> {
        let dev = pci::Device::find_by_ids(0x1234, 0x11e8);
        if dev.is_none() {
            pr_info!("rust_iommufd_hw_domain: no edu device (1234:11e8), nothing to test\n");
        }
        dev
    }

    fn phys_of(domain: &dyn Domain, iova: u64) -> u64 {
        domain.iommu_domain().map_or(0, |d| d.iova_to_phys(iova))
    }

    #[test]
    fn domain_through_the_trait() -> Result {
        let Some(pdev) = edu() else { return Ok(()) };
        let dev: &Device = (*pdev).as_ref();
        let cookie = 0u8;
        let hw = HwDevice::new(dev, &cookie)?;
        let allocated = hw.alloc_domain()?;
        let domain = &*allocated.domain;
        hw.attach(Some(domain))?;
        let ap = domain.aperture();
        assert!(ap.start < ap.last);
        assert_eq!(domain.min_page_size(), SZ_4K);

        // A run of four pages, and one of 2 MiB + 4 KiB (a 2 MiB page and a 4 KiB one, where
        // the IOMMU has 2 MiB pages).
        let iova = ap.start + SZ_2M;
        let phys = 0x4000_0000;
        domain.map(iova, phys, 4 * SZ_4K, RW)?;
        assert_eq!(phys_of(domain, iova + 0x2010), phys + 0x2010);
        let big = ap.start + 4 * SZ_2M;
        let big_len = SZ_2M + SZ_4K;
        domain.map(big, phys + SZ_2M, big_len, RW)?;
        assert_eq!(phys_of(domain, big + 0x1_2345), phys + SZ_2M + 0x1_2345);
        assert_eq!(phys_of(domain, big + SZ_2M), phys + 2 * SZ_2M);
        domain.unmap(big, big_len);
        domain.unmap(iova, 4 * SZ_4K);
        assert_eq!(phys_of(domain, iova), 0);
        assert_eq!(phys_of(domain, big), 0);
        assert_eq!(phys_of(domain, big + SZ_2M), 0);

        // A batch whose last run is misaligned: the runs before it are unmapped again.
        let runs = [
            Run {
                iova,
                phys,
                length: SZ_4K,
            },
            Run {
                iova: iova + SZ_4K,
                phys: phys + 0x10_0000,
                length: 2 * SZ_4K,
            },
            Run {
                iova: iova + 3 * SZ_4K,
                phys: phys + 0x800,
                length: SZ_4K,
            },
        ];
        assert!(domain.map_runs(&runs, RW).is_err());
        for n in 0..4 {
            assert_eq!(phys_of(domain, iova + n * SZ_4K), 0);
        }
        // Outside the aperture, and across its end.
        if ap.last < u64::MAX {
            assert!(domain.map(ap.last + 1, phys, SZ_4K, RW).is_err());
            assert!(domain
                .map(ap.last + 1 - SZ_4K, phys, 2 * SZ_4K, RW)
                .is_err());
            assert_eq!(phys_of(domain, ap.last + 1 - SZ_4K), 0);
        }
        // Both runs map, then go.
        domain.map_runs(&runs[..2], RW)?;
        assert_eq!(phys_of(domain, iova + 2 * SZ_4K), phys + 0x10_1000);
        domain.unmap(iova, 3 * SZ_4K);
        assert_eq!(phys_of(domain, iova + SZ_4K), 0);

        hw.attach(None)?;
        drop(allocated);
        Ok(())
    }

    #[test]
    fn device_iommu_of_a_real_device() -> Result {
        let Some(pdev) = edu() else { return Ok(()) };
        let dev: &Device = (*pdev).as_ref();
        let cookie = 0u8;
        let hw = HwDevice::new(dev, &cookie)?;
        // Another owner cannot have the device while it is bound.
        assert_eq!(HwDevice::new(dev, &1u8).err(), Some(EPERM));

        let info = hw.hw_info(uapi::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_DEFAULT)?;
        pr_info!(
            "rust_iommufd_hw_domain: hw_info type {}, {} bytes, capabilities {:#x}, max_pasid_log2 {}\n",
            info.data_type,
            info.data.len(),
            info.capabilities,
            info.max_pasid_log2
        );
        assert_ne!(
            info.data_type,
            uapi::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_DEFAULT
        );
        if info.data_type == uapi::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_INTEL_VTD {
            assert_eq!(
                info.data.len(),
                core::mem::size_of::<bindings::iommu_hw_info_vtd>()
            );
            assert_eq!(hw.hw_info(0xdead).err(), Some(EOPNOTSUPP));
        }

        // Domains: a plain one; flags the driver refuses; dirty tracking as the device has it.
        let plain = hw.alloc_domain()?;
        assert!(!plain.domain.dirty_capable());
        let none = UserData {
            data_type: 0,
            uptr: 0,
            len: 0,
        };
        assert!(hw.alloc_domain_flags(1 << 30, &none).is_err());
        let dirty = uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
        match hw.alloc_domain_flags(dirty, &none) {
            Ok(d) => assert!(hw.dirty_tracking() && d.domain.dirty_capable()),
            Err(e) => assert!(!hw.dirty_tracking() && e == EOPNOTSUPP),
        }
        assert_eq!(plain.domain.set_dirty_tracking(true), Err(EOPNOTSUPP));
        let d = HwDomain::new(dev, 0)?;
        pr_info!(
            "rust_iommufd_hw_domain: domain enforces cache coherency: {}\n",
            d.coherent()
        );

        // Attach, replace, detach through the trait's attachment hook's worker.
        let other = hw.alloc_domain()?;
        hw.attach(Some(&*plain.domain))?;
        hw.attach(Some(&*other.domain))?;
        hw.attach(None)?;
        Ok(())
    }
}
