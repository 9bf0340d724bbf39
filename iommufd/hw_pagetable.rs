// SPDX-License-Identifier: GPL-2.0

//! Hardware page tables (HWPTs): IOMMU domains as iommufd objects.
//!
//! A paging HWPT is one IOMMU domain kept in step with one IOAS: while it lives the IOAS maps
//! every area into its domain (see [`crate::io_pagetable`]). Devices attach to HWPTs. Attaching
//! a device to an IOAS instead makes an *automatic* HWPT, or reuses one of that IOAS's that the
//! device accepts; an automatic HWPT goes away with its last device.
//!
//! Ownership: the object table and every attached device hold an `Arc` of the HWPT; the HWPT
//! holds its IOAS and, through the table's user count, keeps the IOAS from being destroyed.
//! Dropping the last reference takes the domain out of the IOAS.

use crate::{
    context::Iommufd,
    domain::Domain,
    ioas::Ioas,
    object::Object, //
};
use kernel::{
    prelude::*,
    sync::Arc, //
};

/// A paging HWPT.
pub(crate) struct HwptPaging {
    pub(crate) ioas: Arc<Ioas>,
    pub(crate) ioas_id: u32,
    pub(crate) domain: Arc<dyn Domain>,
    /// Made by attaching a device to the IOAS rather than by userspace.
    pub(crate) auto_domain: bool,
    /// The mock domain behind `domain`, for the test ABI's checks.
    #[cfg(CONFIG_IOMMUFD_TEST)]
    pub(crate) mock: Option<Arc<crate::mock_domain::MockDomain>>,
}

impl HwptPaging {
    /// Makes a HWPT for `domain` over the IOAS `ioas_id` and publishes it: the IOAS fills the
    /// domain with its areas first, and the IOAS counts the HWPT as a user. Returns its id.
    pub(crate) fn create(
        ictx: &Iommufd,
        ioas_id: u32,
        domain: Arc<dyn Domain>,
        auto_domain: bool,
        #[cfg(CONFIG_IOMMUFD_TEST)] mock: Option<Arc<crate::mock_domain::MockDomain>>,
    ) -> Result<(u32, Arc<Self>)> {
        let new = ictx.objects.reserve()?;
        let Object::Ioas(ioas) = ictx.objects.add_user(ioas_id)? else {
            ictx.objects.remove_user(ioas_id);
            return Err(ENOENT);
        };
        let hwpt = ioas
            .iopt
            .add_domain(domain.clone())
            .and_then(|()| {
                Arc::new(
                    Self {
                        ioas: ioas.clone(),
                        ioas_id,
                        domain: domain.clone(),
                        auto_domain,
                        #[cfg(CONFIG_IOMMUFD_TEST)]
                        mock,
                    },
                    GFP_KERNEL_ACCOUNT,
                )
                .inspect_err(|_| ioas.iopt.remove_domain(&domain))
                .map_err(Error::from)
            })
            .inspect_err(|_| ictx.objects.remove_user(ioas_id))?;
        let id = new.id();
        new.publish(Object::HwptPaging(hwpt.clone()));
        Ok((id, hwpt))
    }
}

impl Drop for HwptPaging {
    fn drop(&mut self) {
        self.ioas.iopt.remove_domain(&self.domain);
    }
}

/// What destroying HWPT `hwpt` (already out of the table) releases: its hold on the IOAS.
pub(crate) fn release(ictx: &Iommufd, hwpt: &HwptPaging) {
    ictx.objects.remove_user(hwpt.ioas_id);
}
