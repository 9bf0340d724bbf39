// SPDX-License-Identifier: GPL-2.0

//! VFIO: the framework that lets userspace drive devices directly, with DMA confined by the
//! IOMMU.
//!
//! A drop-in replacement, in Rust, for the C VFIO of Linux 7.3, with the same uAPI. Userspace
//! reaches devices through the legacy group and container nodes (`/dev/vfio/$GROUP`,
//! `/dev/vfio/vfio`) or through per-device cdevs bound to an iommufd: the driver API
//! ([`device`]), the device files ([`device_file`]) of both ways in, the device cdevs
//! ([`cdev`]), the groups ([`group`]) and the container ([`container`]). Devices bind to
//! iommufd through its C kAPI ([`iommufd`]); the container keeps its mappings in an iommufd
//! context, so one engine serves both. KVM reaches VFIO files through [`kvm`].

// Without a driver (vfio-pci, the test driver) the driver API is unused.
#![cfg_attr(
    not(any(CONFIG_VFIO_TEST_DRIVER, CONFIG_VFIO_PCI)),
    allow(dead_code, reason = "the API drivers use; no driver is built")
)]

use kernel::prelude::*;

#[cfg(CONFIG_VFIO_DEVICE_CDEV)]
mod cdev;
#[cfg(CONFIG_VFIO_CONTAINER)]
mod container;
mod device;
mod device_file;
mod device_set;
#[cfg(CONFIG_VFIO_GROUP)]
mod group;
mod iommufd;
mod kvm;
#[cfg(CONFIG_VFIO_GROUP)]
mod noiommu;
#[cfg(CONFIG_VFIO_PCI)]
mod pci;
mod registry;
#[cfg(CONFIG_VFIO_TEST_DRIVER)]
mod test_driver;

module! {
    type: VfioModule,
    name: "vfio",
    authors: ["The iommufd-rs developers"],
    description: "VFIO userspace driver framework",
    license: "GPL",
    // vfio-pci is built into this module (see `pci`): `modprobe vfio-pci` loads it.
    alias: ["vfio-pci"],
    imports_ns: ["IOMMUFD", "IOMMUFD_VFIO"],
}

#[pin_data]
struct VfioModule {
    // Field order matters: the drivers' devices go before the registry.
    #[cfg(CONFIG_VFIO_PCI)]
    #[pin]
    _pci_driver: kernel::driver::Registration<kernel::pci::Adapter<pci::VfioPciDriver>>,
    #[cfg(CONFIG_VFIO_TEST_DRIVER)]
    #[pin]
    _test_driver: kernel::driver::Registration<kernel::pci::Adapter<test_driver::TestDriver>>,
    #[cfg(CONFIG_VFIO_CONTAINER)]
    #[pin]
    _container: kernel::miscdevice::MiscDeviceRegistration<container::Container>,
    _registry: registry::Registry,
}

impl kernel::InPlaceModule for VfioModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let _ = module;
        try_pin_init!(Self {
            _registry: registry::Registry::new()?,
            #[cfg(CONFIG_VFIO_CONTAINER)]
            _container <- container::register(),
            #[cfg(CONFIG_VFIO_TEST_DRIVER)]
            _test_driver <- kernel::driver::Registration::new(c"vfio-test", module),
            #[cfg(CONFIG_VFIO_PCI)]
            _pci_driver <- kernel::driver::Registration::new(c"vfio-pci", module),
        })
        .pin_chain(|_this| {
            #[cfg(CONFIG_VFIO_CONTAINER)]
            container::set_file_type(_this._container.file_type());
            Ok(())
        })
    }
}
