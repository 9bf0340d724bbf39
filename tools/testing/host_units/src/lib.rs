// SPDX-License-Identifier: GPL-2.0

//! The modules of ours that use no kernel API (plain `core`), compiled on the host so that
//! their unit tests run with `cargo test`, in seconds and with overflow checks, before any
//! kernel is built. Each is included from its place in the tree; the kernel builds the same
//! file, where `cfg(test)` is never set and the tests drop out.
#![no_std]

/// vfio-pci's config space virtualization (`vfio/pci/config.rs`); the driver is its user, so
/// what only the driver calls is dead code here.
#[allow(dead_code)]
#[path = "../../../../vfio/pci/config.rs"]
mod pci_config;
