// SPDX-License-Identifier: GPL-2.0

//! VFIO: the framework that lets userspace drive devices directly, with DMA confined by the
//! IOMMU.
//!
//! A drop-in replacement, in Rust, for the C VFIO of Linux 7.3, with the same uAPI. Userspace
//! reaches devices through the legacy group and container nodes (`/dev/vfio/$GROUP`,
//! `/dev/vfio/vfio`) or through per-device cdevs bound to an iommufd. This first step provides
//! the container node.

use kernel::prelude::*;

#[cfg(CONFIG_VFIO_CONTAINER)]
mod container;

module! {
    type: VfioModule,
    name: "vfio",
    authors: ["The iommufd-rs developers"],
    description: "VFIO userspace driver framework",
    license: "GPL",
}

#[pin_data]
struct VfioModule {
    #[cfg(CONFIG_VFIO_CONTAINER)]
    #[pin]
    _container: kernel::miscdevice::MiscDeviceRegistration<container::Container>,
}

impl kernel::InPlaceModule for VfioModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            #[cfg(CONFIG_VFIO_CONTAINER)]
            _container <- container::register(),
        })
    }
}
