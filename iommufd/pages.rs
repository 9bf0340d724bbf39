// SPDX-License-Identifier: GPL-2.0

//! The user memory behind mapped areas.
//!
//! `IOMMU_IOAS_MAP` makes one [`Pages`] for the user range it maps; `IOMMU_IOAS_COPY` makes new
//! areas, possibly in another IOAS, that share the `Pages` of existing ones instead of
//! looking the memory up again. So a `Pages` lives as long as any area uses it.
//!
//! Pinning the memory, and charging it to `RLIMIT_MEMLOCK`, happens here once something needs
//! the pages themselves (an IOMMU domain or an emulated device); an IOAS with neither only
//! records the range, as upstream.

use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    sync::Arc, //
};

/// A page-aligned range of user memory.
pub(crate) struct Pages {
    /// User address of the first page.
    uptr: u64,
    /// Whether devices may write to the memory.
    writable: bool,
}

impl Pages {
    /// The pages holding `length` bytes at user address `uptr`, and the offset of `uptr` in
    /// the first of them.
    pub(crate) fn user(uptr: u64, length: u64, writable: bool) -> Result<(Arc<Self>, u64)> {
        let page = PAGE_SIZE as u64;
        uptr.checked_add(length).ok_or(EOVERFLOW)?;
        if length == 0 || length > u64::MAX - page {
            return Err(EINVAL);
        }
        let offset = uptr % page;
        let pages = Arc::new(
            Self {
                uptr: uptr - offset,
                writable,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok((pages, offset))
    }

    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// The user address `offset` bytes into these pages.
    pub(crate) fn user_address(&self, offset: u64) -> u64 {
        self.uptr + offset
    }
}
