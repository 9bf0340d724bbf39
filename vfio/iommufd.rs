// SPDX-License-Identifier: GPL-2.0

//! The binding of a physical device to its user's iommufd (upstream's
//! `vfio_iommufd_physical_*`): what the default iommufd callbacks of
//! [`crate::device::VfioDeviceOps`] do for a device whose own DMA goes through the IOMMU.
//!
//! Everything here runs under the device set's lock, which is why it takes `&mut self`.

use kernel::{
    device::Device,
    iommufd::{
        BoundDevice,
        Ctx,
        NO_PASID, //
    },
    prelude::*,
};

/// A device's binding to an iommufd and what it is attached to there.
pub(crate) struct PhysicalBinding {
    bound: Option<BoundDevice>,
    /// Whether the device's requests without a PASID are attached.
    attached: bool,
    /// The PASIDs attached.
    pasids: KVec<u32>,
}

impl PhysicalBinding {
    /// Not bound.
    pub(crate) fn new() -> Self {
        Self {
            bound: None,
            attached: false,
            pasids: KVec::new(),
        }
    }

    /// Binds `dev` to `ictx` and returns its id there (see [`BoundDevice::bind`] for the
    /// errors).
    pub(crate) fn bind(&mut self, dev: &Device, ictx: &Ctx) -> Result<u32> {
        let bound = BoundDevice::bind(ictx, dev)?;
        let id = bound.id();
        *self = Self {
            bound: Some(bound),
            attached: false,
            pasids: KVec::new(),
        };
        Ok(id)
    }

    /// Detaches every PASID and the device, then unbinds it.
    pub(crate) fn unbind(&mut self) {
        if let Some(bound) = self.bound.as_mut() {
            for pasid in self.pasids.drain_all() {
                bound.detach(pasid);
            }
            if self.attached {
                bound.detach(NO_PASID);
            }
        }
        self.attached = false;
        self.bound = None;
    }

    /// The binding, if the device is bound.
    pub(crate) fn device(&self) -> Option<&BoundDevice> {
        self.bound.as_ref()
    }

    /// The bound device: `EINVAL` if not bound (not reached: the core binds first).
    fn bound(&mut self) -> Result<&mut BoundDevice> {
        self.bound.as_mut().ok_or(EINVAL)
    }

    /// Attaches the device, or moves it if attached, to `pt_id`; returns the HWPT's id.
    pub(crate) fn attach(&mut self, pt_id: u32) -> Result<u32> {
        let attached = self.attached;
        let bound = self.bound()?;
        let hwpt = if attached {
            bound.replace(NO_PASID, pt_id)?
        } else {
            bound.attach(NO_PASID, pt_id)?
        };
        self.attached = true;
        Ok(hwpt)
    }

    /// Detaches the device, if attached.
    pub(crate) fn detach(&mut self) {
        if !self.attached {
            return;
        }
        if let Some(bound) = self.bound.as_mut() {
            bound.detach(NO_PASID);
        }
        self.attached = false;
    }

    /// Attaches PASID `pasid`, or moves it if attached, to `pt_id`; returns the HWPT's id.
    pub(crate) fn pasid_attach(&mut self, pasid: u32, pt_id: u32) -> Result<u32> {
        if self.pasids.contains(&pasid) {
            return self.bound()?.replace(pasid, pt_id);
        }
        self.pasids.reserve(1, GFP_KERNEL)?;
        let hwpt = self.bound()?.attach(pasid, pt_id)?;
        self.pasids.push(pasid, GFP_KERNEL)?;
        Ok(hwpt)
    }

    /// Detaches PASID `pasid`, if attached.
    pub(crate) fn pasid_detach(&mut self, pasid: u32) {
        let Some(i) = self.pasids.iter().position(|p| *p == pasid) else {
            return;
        };
        if let Some(bound) = self.bound.as_mut() {
            bound.detach(pasid);
        }
        let _ = self.pasids.remove(i);
    }
}
