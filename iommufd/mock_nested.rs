// SPDX-License-Identifier: GPL-2.0

//! The mock nested domain of the test ABI (`IOMMUFD_TEST`).
//!
//! It stands for a stage-1 table and the IOTLB that caches it: userspace describes it with
//! `struct iommu_hwpt_selftest`, whose `iotlb` value fills every one of its
//! `MOCK_NESTED_DOMAIN_IOTLB_NUM` IOTLB entries. `IOMMU_HWPT_INVALIDATE` with requests of type
//! `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST` zeroes entries (one by id, or all with
//! `IOMMU_TEST_INVALIDATE_FLAG_ALL`), and `IOMMU_TEST_OP_MD_CHECK_IOTLB` reads them back, so
//! tests can see which requests the kernel carried out.

use crate::{
    nested::NestedDomain,
    ucmd::{
        UserData,
        UserDataArray, //
    },
};
use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    bindings, new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
};

/// The number of IOTLB entries.
const IOTLB_NUM: usize = bindings::MOCK_NESTED_DOMAIN_IOTLB_NUM as usize;

/// `struct iommu_hwpt_selftest`, as bytes.
type Config = [u8; size_of::<bindings::iommu_hwpt_selftest>()];
/// `struct iommu_hwpt_invalidate_selftest`, as bytes.
type InvalidateRequest = [u8; size_of::<bindings::iommu_hwpt_invalidate_selftest>()];

/// Reads the `u32` at byte `at` of `bytes`; 0 past the end.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        b.copy_from_slice(src);
    }
    u32::from_ne_bytes(b)
}

/// One invalidation request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request {
    /// `IOMMU_TEST_INVALIDATE_FLAG_*`.
    pub(crate) flags: u32,
    pub(crate) iotlb_id: u32,
}

/// A mock nested domain.
#[pin_data]
pub(crate) struct MockNested {
    #[pin]
    iotlb: Mutex<[u32; IOTLB_NUM]>,
}

impl MockNested {
    /// A domain from the driver data `data` (`IOMMU_HWPT_DATA_SELFTEST`): `EOPNOTSUPP` for
    /// another type, or the errors of reading it.
    pub(crate) fn from_user(data: &UserData) -> Result<Arc<Self>> {
        if data.data_type != bindings::IOMMU_HWPT_DATA_SELFTEST {
            return Err(EOPNOTSUPP);
        }
        let iotlb = offset_of!(bindings::iommu_hwpt_selftest, iotlb);
        let config: Config =
            data.read(bindings::IOMMU_HWPT_DATA_SELFTEST, iotlb + size_of::<u32>())?;
        Self::new(u32_at(&config, iotlb))
    }

    /// A domain whose every IOTLB entry holds `iotlb`.
    pub(crate) fn new(iotlb: u32) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                iotlb <- new_mutex!([iotlb; IOTLB_NUM]),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// IOTLB entry `id`; `None` past the last.
    pub(crate) fn iotlb(&self, id: u32) -> Option<u32> {
        self.iotlb.lock().get(id as usize).copied()
    }

    /// Carries out `num` requests, which `request` reads one by one, until one fails: `EOPNOTSUPP`
    /// for unknown flags, `EINVAL` for an entry that does not exist, or `request`'s error.
    /// Returns how many were carried out, and the failure.
    pub(crate) fn invalidate(
        &self,
        num: u32,
        mut request: impl FnMut(u32) -> Result<Request>,
    ) -> (u32, Result) {
        let all = bindings::IOMMU_TEST_INVALIDATE_FLAG_ALL;
        for i in 0..num {
            let res = request(i).and_then(|req| {
                if req.flags & !all != 0 {
                    return Err(EOPNOTSUPP);
                }
                let mut iotlb = self.iotlb.lock();
                // The id must name an entry even when all are invalidated.
                let entry = iotlb.get_mut(req.iotlb_id as usize).ok_or(EINVAL)?;
                if req.flags & all == 0 {
                    *entry = 0;
                } else {
                    *iotlb = [0; IOTLB_NUM];
                }
                Ok(())
            });
            if let Err(e) = res {
                return (i, Err(e));
            }
        }
        (num, Ok(()))
    }
}

impl NestedDomain for MockNested {
    /// Takes requests of type `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST` only (`EINVAL`).
    fn cache_invalidate_user(&self, array: &UserDataArray) -> (u32, Result) {
        let data_type = bindings::IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
        if array.data_type != data_type {
            return (0, Err(EINVAL));
        }
        let id = offset_of!(bindings::iommu_hwpt_invalidate_selftest, iotlb_id);
        let flags = offset_of!(bindings::iommu_hwpt_invalidate_selftest, flags);
        // Each request is read before the IOTLB is locked.
        self.invalidate(array.entry_num, |i| {
            let req: InvalidateRequest = array.read(i, data_type, id + size_of::<u32>())?;
            Ok(Request {
                flags: u32_at(&req, flags),
                iotlb_id: u32_at(&req, id),
            })
        })
    }
}

#[kunit_tests(rust_iommufd_mock_nested)]
mod tests {
    use super::*;

    const DEFAULT: u32 = bindings::IOMMU_TEST_IOTLB_DEFAULT;

    fn entries(d: &MockNested) -> [u32; IOTLB_NUM] {
        let mut out = [0; IOTLB_NUM];
        for (i, e) in out.iter_mut().enumerate() {
            *e = d.iotlb(i as u32).unwrap_or(u32::MAX);
        }
        out
    }

    fn reqs(list: &[(u32, u32)]) -> impl FnMut(u32) -> Result<Request> + '_ {
        |i| {
            let &(flags, iotlb_id) = list.get(i as usize).ok_or(EFAULT)?;
            Ok(Request { flags, iotlb_id })
        }
    }

    #[test]
    fn new_fills_every_entry() {
        let d = MockNested::new(DEFAULT).expect("domain");
        assert_eq!(entries(&d), [DEFAULT; IOTLB_NUM]);
        assert_eq!(d.iotlb(IOTLB_NUM as u32), None);
    }

    #[test]
    fn requests_run_in_order_until_one_fails() {
        let d = MockNested::new(DEFAULT).expect("domain");
        // The second request has unknown flags: the first is done, and counted.
        let (done, res) = d.invalidate(2, reqs(&[(0, 0), (0xffff_ffff, 1)]));
        assert_eq!(done, 1);
        assert_eq!(res.err(), Some(EOPNOTSUPP));
        assert_eq!(entries(&d), [0, DEFAULT, DEFAULT, DEFAULT]);
        // An id past the last entry.
        let (done, res) = d.invalidate(2, reqs(&[(0, 1), (0, IOTLB_NUM as u32)]));
        assert_eq!(done, 1);
        assert_eq!(res.err(), Some(EINVAL));
        assert_eq!(entries(&d), [0, 0, DEFAULT, DEFAULT]);
        // A request that cannot be read stops the rest.
        let (done, res) = d.invalidate(3, reqs(&[(0, 2)]));
        assert_eq!(done, 1);
        assert_eq!(res.err(), Some(EFAULT));
        assert_eq!(entries(&d), [0, 0, 0, DEFAULT]);
    }

    #[test]
    fn flag_all_clears_every_entry_but_needs_a_valid_id() {
        let d = MockNested::new(DEFAULT).expect("domain");
        let all = bindings::IOMMU_TEST_INVALIDATE_FLAG_ALL;
        let (done, res) = d.invalidate(1, reqs(&[(all, IOTLB_NUM as u32)]));
        assert_eq!(done, 0);
        assert_eq!(res.err(), Some(EINVAL));
        assert_eq!(entries(&d), [DEFAULT; IOTLB_NUM]);
        let (done, res) = d.invalidate(1, reqs(&[(all, 2)]));
        assert_eq!(done, 1);
        assert!(res.is_ok());
        assert_eq!(entries(&d), [0; IOTLB_NUM]);
    }

    #[test]
    fn no_requests_is_success() {
        let d = MockNested::new(DEFAULT).expect("domain");
        let (done, res) = d.invalidate(0, reqs(&[]));
        assert_eq!(done, 0);
        assert!(res.is_ok());
        assert_eq!(entries(&d), [DEFAULT; IOTLB_NUM]);
    }
}
