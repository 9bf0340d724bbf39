// SPDX-License-Identifier: GPL-2.0

//! The argument of an iommufd ioctl.
//!
//! Every iommufd ioctl passes a pointer to a struct whose first `u32` is the struct's size as
//! userspace knows it. That lets the uAPI grow: an older program passes a shorter struct (the
//! missing fields read as zero), a newer one a longer struct (accepted only if the part this
//! kernel does not know is all zero, so nothing the caller asked for is silently ignored).
//! The answer is written back over the same struct, truncated to the caller's size.

use core::mem::size_of;
use kernel::{
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader, //
    },
};

/// A `T` of all zeroes, built on the stack. `EINVAL` for a type larger than any uAPI struct.
pub(crate) fn zeroed<T: FromBytes>() -> Result<T> {
    const ZEROES: [u8; 256] = [0; 256];
    ZEROES
        .get(..size_of::<T>())
        .and_then(T::from_bytes_copy)
        .ok_or(EINVAL)
}

/// The unit in which the caller's tail is checked.
const WORD: usize = size_of::<usize>();

/// A decoded iommufd command of type `T`, and where its answer goes.
pub(crate) struct UserCmd<T> {
    /// The command, as the kernel's struct.
    pub(crate) cmd: T,
    arg: usize,
    user_size: usize,
}

impl<T: FromBytes + AsBytes> UserCmd<T> {
    /// Reads the command at `arg`, of `user_size` bytes as its first word (already read by
    /// the caller) says, whose mandatory fields end at byte `min_size`.
    ///
    /// Errors: `EFAULT` for unreadable memory, `EINVAL` if the caller's struct is shorter than
    /// `min_size`, `E2BIG` if it is longer than `T` and the extra bytes are not zero.
    pub(crate) fn read(arg: usize, user_size: usize, min_size: usize) -> Result<Self> {
        if user_size < min_size {
            return Err(EINVAL);
        }
        let mut cmd: T = zeroed()?;
        let bytes = cmd.as_bytes_mut();
        let copied = bytes.len().min(user_size);
        let mut reader = UserSlice::new(UserPtr::from_addr(arg), user_size).reader();
        reader.read_slice(&mut bytes[..copied])?;
        check_zero_tail(reader, arg.wrapping_add(copied))?;
        Ok(Self {
            cmd,
            arg,
            user_size,
        })
    }

    /// Writes back only bytes `offset..offset + len` of the command (for commands whose
    /// answer is one field), within the size the caller gave.
    pub(crate) fn respond_part(&self, offset: usize, len: usize) -> Result {
        let bytes = self.cmd.as_bytes();
        let end = offset
            .saturating_add(len)
            .min(bytes.len())
            .min(self.user_size);
        let part = bytes.get(offset..end).ok_or(EINVAL)?;
        UserSlice::new(
            UserPtr::from_addr(self.arg.wrapping_add(offset)),
            part.len(),
        )
        .writer()
        .write_slice(part)
    }

    /// Writes the command back, truncated to the size the caller gave.
    pub(crate) fn respond(&self) -> Result {
        let bytes = self.cmd.as_bytes();
        let len = bytes.len().min(self.user_size);
        UserSlice::new(UserPtr::from_addr(self.arg), len)
            .writer()
            .write_slice(&bytes[..len])
    }
}

/// Fails with `E2BIG` unless everything left in `reader`, which starts at user address `addr`,
/// is zero.
///
/// As upstream's `check_zeroed_user()`, the tail is read a naturally aligned word at a time, so
/// a nonzero byte is found (`E2BIG`) before an unmapped page that follows it (`EFAULT`).
fn check_zero_tail(mut reader: UserSliceReader, addr: usize) -> Result {
    let mut word = [0u8; WORD];
    let mut n = (WORD - addr % WORD).min(reader.len());
    while n > 0 {
        reader.read_slice(&mut word[..n])?;
        if word[..n].iter().any(|&b| b != 0) {
            return Err(E2BIG);
        }
        n = reader.len().min(WORD);
    }
    Ok(())
}

/// Driver data userspace passes along with a command, in a layout of its `data_type`
/// (upstream's `struct iommu_user_data`): `IOMMU_HWPT_ALLOC`'s, for instance.
pub(crate) struct UserData {
    pub(crate) data_type: u32,
    pub(crate) uptr: u64,
    pub(crate) len: u32,
}

impl UserData {
    /// Reads the data as a `T` of type `data_type` whose first version ended at byte
    /// `min_len` (upstream's `iommu_copy_struct_from_user()`): `EINVAL` for another type or
    /// for a length below `min_len` or above `T`'s, `EFAULT` if unreadable. Data shorter than
    /// `T` (an older layout) reads as if zero-extended.
    pub(crate) fn read<T: FromBytes + AsBytes>(&self, data_type: u32, min_len: usize) -> Result<T> {
        let len = self.len as usize;
        if self.data_type != data_type || len < min_len || len > size_of::<T>() {
            return Err(EINVAL);
        }
        let mut out: T = zeroed()?;
        let head = out.as_bytes_mut().get_mut(..len).ok_or(EINVAL)?;
        UserSlice::new(UserPtr::from_addr(self.uptr as usize), len)
            .reader()
            .read_slice(head)?;
        Ok(out)
    }
}

/// An array of driver data userspace passes along with a command, `entry_num` entries of
/// `entry_len` bytes each, in a layout of its `data_type` (upstream's
/// `struct iommu_user_data_array`): `IOMMU_HWPT_INVALIDATE`'s requests.
pub(crate) struct UserDataArray {
    pub(crate) data_type: u32,
    pub(crate) uptr: u64,
    pub(crate) entry_len: u32,
    pub(crate) entry_num: u32,
}

impl UserDataArray {
    /// Reads entry `index` as [`UserData::read`] reads one (upstream's
    /// `iommu_copy_struct_from_user_array()`); `EINVAL` past the end.
    pub(crate) fn read<T: FromBytes + AsBytes>(
        &self,
        index: u32,
        data_type: u32,
        min_len: usize,
    ) -> Result<T> {
        if index >= self.entry_num {
            return Err(EINVAL);
        }
        UserData {
            data_type: self.data_type,
            uptr: self
                .uptr
                .wrapping_add(u64::from(self.entry_len) * u64::from(index)),
            len: self.entry_len,
        }
        .read(data_type, min_len)
    }
}
