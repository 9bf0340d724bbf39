// SPDX-License-Identifier: GPL-2.0

//! Universally unique identifiers (C's `uuid_t`): made at random, or read from their text
//! form, as userspace hands them to drivers (VFIO's VF tokens, for one).
//!
//! The text form is the usual 36 characters, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, with hex
//! digits of either case, read in the byte order written (as C's `uuid_parse()`).

use crate::{
    bindings,
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};

/// The length of a UUID's text form (C's `UUID_STRING_LEN`).
pub const STRING_LEN: usize = 36;

/// A UUID: 16 bytes, in the order of its text form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// A random (version 4) UUID (C's `uuid_gen()`).
    pub fn generate() -> Self {
        let mut uuid = bindings::uuid_t::default();
        // SAFETY: `uuid` is a `uuid_t` the call may write.
        unsafe { bindings::uuid_gen(&mut uuid) };
        Self(uuid.b)
    }

    /// The 16 bytes of a UUID at `ptr` in userspace: `EFAULT` if they cannot be read.
    pub fn from_user(ptr: UserPtr) -> Result<Self> {
        let mut uuid = Self::default();
        UserSlice::new(ptr, uuid.0.len())
            .reader()
            .read_slice(&mut uuid.0)?;
        Ok(uuid)
    }

    /// Reads the text form at the start of `text` (whatever follows its 36 characters is left
    /// alone): `EINVAL` if `text` is shorter or is not a UUID there.
    pub fn parse(text: &[u8]) -> Result<Self> {
        let text = text.get(..STRING_LEN).ok_or(EINVAL)?;
        let mut digits = text
            .iter()
            .enumerate()
            .filter(|&(i, _)| !matches!(i, 8 | 13 | 18 | 23));
        if [8, 13, 18, 23].iter().any(|&i| text[i] != b'-') {
            return Err(EINVAL);
        }
        let mut uuid = [0u8; 16];
        for byte in &mut uuid {
            let (Some((_, &hi)), Some((_, &lo))) = (digits.next(), digits.next()) else {
                return Err(EINVAL);
            };
            *byte = (hex(hi).ok_or(EINVAL)? << 4) | hex(lo).ok_or(EINVAL)?;
        }
        Ok(Self(uuid))
    }
}

/// The value of one hex digit.
fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[macros::kunit_tests(rust_uuid)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_cases_in_text_order() {
        let uuid = Uuid::parse(b"52ac9bff-3a88-4fbd-901a-0D767C3B6C97").unwrap();
        let want = [
            0x52, 0xac, 0x9b, 0xff, 0x3a, 0x88, 0x4f, 0xbd, 0x90, 0x1a, 0x0d, 0x76, 0x7c, 0x3b,
            0x6c, 0x97,
        ];
        assert_eq!(uuid, Uuid(want));
        // What follows the 36 characters is the caller's.
        assert_eq!(
            Uuid::parse(b"52ac9bff-3a88-4fbd-901a-0d767c3b6c97 x").unwrap(),
            uuid
        );
    }

    #[test]
    fn refuses_what_is_not_a_uuid() {
        for bad in [
            &b""[..],
            b"52ac9bff-3a88-4fbd-901a-0d767c3b6c9",
            b"52ac9bff-3a88-4fbd-901a-0d767c3b6c9g",
            b"52ac9bff 3a88-4fbd-901a-0d767c3b6c97",
            b"52ac9bff-3a884-fbd-901a-0d767c3b6c97",
            b"+2ac9bff-3a88-4fbd-901a-0d767c3b6c97",
        ] {
            assert_eq!(Uuid::parse(bad), Err(EINVAL));
        }
    }

    #[test]
    fn generates_random_version_4() {
        let (a, b) = (Uuid::generate(), Uuid::generate());
        assert_ne!(a, b);
        assert_eq!(a.0[6] >> 4, 4);
        assert_eq!(a.0[8] >> 6, 0b10);
    }
}
