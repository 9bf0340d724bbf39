// SPDX-License-Identifier: GPL-2.0

//! A VFIO driver for tests (`VFIO_TEST_DRIVER`): a PCI driver named `vfio-test` that takes a
//! device only when userspace points it there through `driver_override` (the tests use QEMU's
//! `edu`), and registers it as a VFIO device with no regions and no interrupts. It exists so that the kselftests can drive the
//! VFIO core (the cdev, binding, attaching, the open count) on a real device behind a real IOMMU
//! before vfio-pci exists.
//!
//! `VFIO_DEVICE_GET_INFO` answers honestly: no flags (it offers none of vfio-pci's regions, so
//! it does not claim to be a PCI device), no regions, no interrupts. One private ioctl,
//! [`VFIO_TEST_DRIVER_COUNTS`], reports how often the core called `open_device` and
//! `close_device`, so that tests can check the first-open and last-close accounting; another,
//! [`VFIO_TEST_DRIVER_SET_OPEN`], how many devices of its device set are open (the driver puts
//! all its devices in one set, as functions that share a bus reset).

use crate::device::{
    answer_device_info,
    Registration,
    VfioDevice,
    VfioDeviceOps, //
};
use core::mem::size_of;
use kernel::{
    device::{
        Bound,
        Core,
        Device, //
    },
    ioctl::_IO,
    new_mutex, pci,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
    uapi_ioctl::VFIO_DEVICE_GET_INFO,
};

/// `_IO(VFIO_TYPE, VFIO_BASE + 100)`: writes two `u32`s to the argument, the number of
/// `open_device` and of `close_device` calls since the driver took the device.
pub(crate) const VFIO_TEST_DRIVER_COUNTS: u32 = _IO(uapi::VFIO_TYPE as u32, uapi::VFIO_BASE + 100);

/// `_IO(VFIO_TYPE, VFIO_BASE + 101)`: returns how many devices of the device's set are open.
pub(crate) const VFIO_TEST_DRIVER_SET_OPEN: u32 =
    _IO(uapi::VFIO_TYPE as u32, uapi::VFIO_BASE + 101);

/// The open and close counts.
#[derive(Default)]
struct Counts {
    opens: u32,
    closes: u32,
}

/// The driver's side of one device.
#[pin_data]
struct TestDevice {
    #[pin]
    counts: Mutex<Counts>,
}

impl VfioDeviceOps for TestDevice {
    fn open_device(&self, _vdev: &VfioDevice, _dev: &Device<Bound>) -> Result {
        self.counts.lock().opens += 1;
        Ok(())
    }

    fn close_device(&self, _vdev: &VfioDevice, _dev: &Device<Bound>) {
        self.counts.lock().closes += 1;
    }

    fn ioctl(&self, vdev: &VfioDevice, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            VFIO_TEST_DRIVER_SET_OPEN => Ok(vdev.set.lock().open_count() as isize),
            VFIO_DEVICE_GET_INFO => answer_device_info(arg, 0, 0, 0),
            VFIO_TEST_DRIVER_COUNTS => {
                let counts = {
                    let c = self.counts.lock();
                    [c.opens, c.closes]
                };
                UserSlice::new(UserPtr::from_addr(arg), size_of::<[u32; 2]>())
                    .writer()
                    .write(&counts)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}

/// The PCI driver.
pub(crate) struct TestDriver;

kernel::pci_device_table!(
    PCI_TABLE,
    <TestDriver as pci::Driver>::IdInfo,
    // Any device, but only when its `driver_override` names this driver (as vfio-pci's table).
    [(pci::DeviceId::from_class(0, 0).override_only(), ())]
);

impl pci::Driver for TestDriver {
    type IdInfo = ();
    type Data<'bound> = Registration;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;
    const DRIVER_MANAGED_DMA: bool = true;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        let ops = Arc::pin_init(
            pin_init!(TestDevice {
                counts <- new_mutex!(Counts::default()),
            }),
            GFP_KERNEL,
        )?;
        // As functions that share a bus reset: all its devices in one set.
        let set_id = core::ptr::from_ref(&PCI_TABLE) as usize;
        let reg = Registration::new(pdev.as_ref(), ops, Some(set_id))?;
        dev_info!(pdev, "vfio-test: vfio{}\n", reg.device().index);
        Ok(reg)
    }
}
