// SPDX-License-Identifier: GPL-2.0

//! What a PCI driver hears of errors the PCI core finds on its devices (AER, DPC and the
//! like) and what it answers, for [`super::Driver::error_detected`]: the state of the
//! device's link (C's `pci_channel_state_t`) and the driver's vote on recovery (C's
//! `pci_ers_result_t`).

use crate::bindings;

/// The state of a device's link when an error is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelState {
    /// I/O still works.
    Normal,
    /// I/O to the device is blocked until the link is reset.
    Frozen,
    /// The device is gone for good.
    PermFailure,
}

impl ChannelState {
    pub(super) fn from_raw(state: bindings::pci_channel_state_t) -> Self {
        match state {
            bindings::pci_channel_io_normal => Self::Normal,
            bindings::pci_channel_io_frozen => Self::Frozen,
            _ => Self::PermFailure,
        }
    }
}

/// A driver's answer to an error on its device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErsResult {
    /// The driver can recover without a reset.
    CanRecover,
    /// The driver needs the slot reset.
    NeedReset,
    /// The device cannot recover.
    Disconnect,
}

impl ErsResult {
    pub(super) fn into_raw(self) -> bindings::pci_ers_result_t {
        match self {
            Self::CanRecover => bindings::pci_ers_result_PCI_ERS_RESULT_CAN_RECOVER,
            Self::NeedReset => bindings::pci_ers_result_PCI_ERS_RESULT_NEED_RESET,
            Self::Disconnect => bindings::pci_ers_result_PCI_ERS_RESULT_DISCONNECT,
        }
    }
}
