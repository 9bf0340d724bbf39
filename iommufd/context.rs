// SPDX-License-Identifier: GPL-2.0

//! One open `/dev/iommu`: its objects and the ioctl dispatch.
//!
//! Every iommufd ioctl number is `_IO(';', nr)`: the struct size travels inside the struct, not
//! in the number. Dispatch therefore goes by `nr`, then checks the whole number, then reads the
//! struct with the extensible-struct rules of [`UserCmd`].

use crate::{
    ioas,
    object::ObjectTable,
    ucmd::UserCmd, //
};
use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    fs::File,
    ioctl::{
        _IO,
        _IOC_NR, //
    },
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi, //
};

/// The state behind one open file of `/dev/iommu`.
#[pin_data]
pub(crate) struct Iommufd {
    #[pin]
    pub(crate) objects: ObjectTable,
}

/// One past the last command number of upstream's ioctl table. Numbers from there on are not
/// iommufd commands: no argument is read for them.
#[cfg(not(CONFIG_IOMMUFD_TEST))]
const CMD_END: u32 = uapi::IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA + 1;
#[cfg(CONFIG_IOMMUFD_TEST)]
const CMD_END: u32 = uapi::IOMMUFD_CMD_BASE + 0x20 + 1;

const fn iommufd_cmd(nr: u32) -> u32 {
    _IO(uapi::IOMMUFD_TYPE as u32, nr)
}

/// Reads the command struct `T` (mandatory fields ending at `min_size`) and runs `f` on it.
fn run<T: FromBytes + AsBytes>(
    ictx: &Iommufd,
    arg: usize,
    min_size: usize,
    f: fn(&Iommufd, UserCmd<T>) -> Result<isize>,
) -> Result<isize> {
    f(ictx, UserCmd::read(arg, min_size)?)
}

/// `IOMMU_DESTROY`: removes any object by id.
fn destroy_ioctl(ictx: &Iommufd, ucmd: UserCmd<uapi::iommu_destroy>) -> Result<isize> {
    ictx.objects.destroy(ucmd.cmd.id)?;
    Ok(0)
}

impl Iommufd {
    fn dispatch(&self, cmd: u32, arg: usize) -> Result<isize> {
        let nr = _IOC_NR(cmd);
        if !(uapi::IOMMUFD_CMD_BASE..CMD_END).contains(&nr) {
            return Err(ENOTTY);
        }
        // As upstream: the size word is read before the number is validated further, so a
        // bad pointer is EFAULT for any number in iommufd's range.
        UserSlice::new(UserPtr::from_addr(arg), size_of::<u32>())
            .reader()
            .read::<u32>()?;
        if cmd != iommufd_cmd(nr) {
            return Err(ENOTTY);
        }
        match nr {
            uapi::IOMMUFD_CMD_DESTROY => run(
                self,
                arg,
                offset_of!(uapi::iommu_destroy, id) + size_of::<u32>(),
                destroy_ioctl,
            ),
            uapi::IOMMUFD_CMD_IOAS_ALLOC => run(
                self,
                arg,
                offset_of!(uapi::iommu_ioas_alloc, out_ioas_id) + size_of::<u32>(),
                ioas::alloc_ioctl,
            ),
            _ => Err(ENOTTY),
        }
    }
}

#[vtable]
impl MiscDevice for Iommufd {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Self::Ptr> {
        KBox::try_pin_init(
            try_pin_init!(Self {
                objects <- ObjectTable::new(),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    fn ioctl(me: Pin<&Self>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        me.get_ref().dispatch(cmd, arg)
    }
}
