// SPDX-License-Identifier: GPL-2.0

//! iommufd: the IOMMU userspace API, `/dev/iommu`.
//!
//! A drop-in replacement, in Rust, for the C iommufd of Linux 7.3, with the same uAPI.
//! Each open of `/dev/iommu` is an [`context::Iommufd`] holding a table of objects (IOASes
//! today) that userspace creates, names by id and destroys with ioctls. Other modules (VFIO)
//! bind devices through the C functions of [`kapi`].

// The paths that IOMMU drivers call into (fault and vEVENT reports, the access kAPI, hardware
// queues' mmaps, user data of nested domains) have the mock IOMMU of `IOMMUFD_TEST` as their
// only caller until a Rust IOMMU driver or the C exports for them exist: without it they are
// dead code, not a mistake.
#![cfg_attr(not(CONFIG_IOMMUFD_TEST), allow(dead_code))]

#[cfg(not(CONFIG_IOMMUFD))]
use kernel::miscdevice::MiscFileType;
#[cfg(CONFIG_IOMMUFD)]
use kernel::miscdevice::{
    MiscDeviceOptions,
    MiscDeviceRegistration,
    MiscNode, //
};
use kernel::prelude::*;

mod access;
mod context;
mod device;
mod domain;
mod fault;
mod hw_domain;
mod hw_pagetable;
mod io_pagetable;
mod ioas;
mod kapi;
mod mmap;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod mock_domain;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod mock_nested;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod mock_viommu;
mod nested;
mod object;
mod one_or_vec;
mod pages;
mod range_map;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod selftest;
mod ucmd;
mod veventq;
mod vfio_compat;
mod viommu;

module! {
    type: IommufdModule,
    name: "iommufd",
    authors: ["The iommufd-rs developers"],
    description: "IOMMU userspace API (/dev/iommu)",
    license: "GPL",
}

#[pin_data]
struct IommufdModule {
    /// `/dev/iommu`; without it (`IOMMUFD=n`, `IOMMUFD_ENGINE` for VFIO), the module offers
    /// VFIO's container the engine through the kAPI alone.
    #[cfg(CONFIG_IOMMUFD)]
    #[pin]
    _dev: MiscDeviceRegistration<context::Iommufd>,
    /// `/dev/vfio/vfio`, where iommufd stands in for VFIO's container.
    #[cfg(CONFIG_IOMMUFD_VFIO_CONTAINER)]
    #[pin]
    _vfio: MiscDeviceRegistration<context::Iommufd>,
}

/// `VFIO_MINOR` from `include/linux/miscdevice.h`.
#[cfg(CONFIG_IOMMUFD_VFIO_CONTAINER)]
const VFIO_MINOR: u32 = 196;

impl kernel::InPlaceModule for IommufdModule {
    #[cfg(CONFIG_IOMMUFD)]
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let node = MiscNode {
            mode: 0o660,
            ..MiscNode::DEFAULT
        };
        try_pin_init!(Self {
            _dev <- MiscDeviceRegistration::register_node(MiscDeviceOptions { name: c"iommu" }, node),
            // World-accessible, as VFIO's own container: the groups carry the access control.
            #[cfg(CONFIG_IOMMUFD_VFIO_CONTAINER)]
            _vfio <- MiscDeviceRegistration::register_node(
                MiscDeviceOptions { name: c"vfio" },
                MiscNode {
                    nodename: Some(c"vfio/vfio"),
                    mode: 0o666,
                    minor: Some(VFIO_MINOR),
                },
            ),
        })
        .pin_chain(|this| {
            // Before VFIO can be handed a `/dev/iommu` file.
            let files = this._dev.file_type();
            #[cfg(CONFIG_IOMMUFD_VFIO_CONTAINER)]
            let files = files.with_node(&this._vfio);
            kapi::set_file_type(files, Some(this._dev.device().into()));
            Ok(())
        })
    }

    #[cfg(not(CONFIG_IOMMUFD))]
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        kapi::set_file_type(MiscFileType::unregistered(), None);
        try_pin_init!(Self {})
    }
}
