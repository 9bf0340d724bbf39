// SPDX-License-Identifier: GPL-2.0

//! VFIO's own container, `/dev/vfio/vfio` (`VFIO_CONTAINER`).
//!
//! Legacy VFIO users open a container, add groups to it (`VFIO_GROUP_SET_CONTAINER`), pick an
//! IOMMU backend (`VFIO_SET_IOMMU`: type1 or type1v2) and map memory for their devices' DMA
//! (`VFIO_IOMMU_MAP_DMA`, ...). Upstream has a separate mapping engine for this (the type1
//! driver); here the backend is iommufd's engine: the container owns an iommufd context of its
//! own, made when its first group arrives, whose compat IOAS holds the mappings. The groups'
//! devices bind to that context and attach to that IOAS, as devices of a group set to an
//! iommufd do; the container keeps the rules of upstream's container on top:
//!
//! - without a group it answers only the version and the extension queries: `VFIO_SET_IOMMU`
//!   needs a group, and everything else needs `VFIO_SET_IOMMU` (`EINVAL`);
//! - adding a group needs the group to be viable (`EPERM` if a kernel driver still does DMA
//!   with one of its devices);
//! - when its last group leaves, the container drops its context and with it every mapping,
//!   and is back where it started (the backend must be set again);
//! - no-IOMMU groups ([`crate::noiommu`]) need `CAP_SYS_RAWIO` and do not mix with the others
//!   (`EPERM`); a container of them has no context and only the `VFIO_NOIOMMU_IOMMU` backend,
//!   which answers every ioctl but the extension query with `ENOTTY`.

use kernel::{
    capability::{
        capable,
        Capability, //
    },
    fs::{
        File,
        LocalFile, //
    },
    iommu::group::Group as IommuGroup,
    iommufd::Ctx,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration,
        MiscFileType,
        MiscNode, //
    },
    new_mutex,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex,
        SetOnce, //
    },
    uapi,
    uapi_ioctl::{
        VFIO_CHECK_EXTENSION,
        VFIO_GET_API_VERSION,
        VFIO_SET_IOMMU, //
    },
};

/// `VFIO_MINOR` from `include/linux/miscdevice.h`.
const VFIO_MINOR: u32 = 196;

/// What the container's lock guards.
struct State {
    /// How many groups are in the container.
    groups: u32,
    /// The context the mappings live in, while the container has groups.
    ictx: Option<ARef<Ctx>>,
    /// Whether `VFIO_SET_IOMMU` chose the backend.
    iommu_set: bool,
    /// Whether the groups are no-IOMMU groups.
    noiommu: bool,
}

/// One open container.
#[pin_data]
pub(crate) struct Container {
    #[pin]
    state: Mutex<State>,
}

/// What tells container files from others, set when the node is registered.
static CONTAINER_FILES: SetOnce<MiscFileType<Container>> = SetOnce::new();

/// Registers `/dev/vfio/vfio` (world-accessible, as upstream: the groups carry the access
/// control).
pub(crate) fn register() -> impl PinInit<MiscDeviceRegistration<Container>, Error> {
    MiscDeviceRegistration::register_node(
        MiscDeviceOptions { name: c"vfio" },
        MiscNode {
            nodename: Some(c"vfio/vfio"),
            mode: 0o666,
            minor: Some(VFIO_MINOR),
        },
    )
}

/// Remembers what the container's files look like, for [`Container::of_file`].
pub(crate) fn set_file_type(files: MiscFileType<Container>) {
    CONTAINER_FILES.populate(files);
}

impl Container {
    /// The container of `file`, if it is an open container.
    pub(crate) fn of_file(file: &LocalFile) -> Option<Arc<Container>> {
        CONTAINER_FILES
            .as_ref()?
            .private_data(file)
            .map(|c| c.into())
    }

    /// Adds a group, whose IOMMU group is `iommu_group`, to the container, and returns the
    /// context its devices bind to (none for a no-IOMMU group, `noiommu`). `EPERM` if the
    /// group is not viable, or if it is a no-IOMMU group and the caller lacks
    /// `CAP_SYS_RAWIO`, or if it does not match the container's groups.
    pub(crate) fn add_group(
        &self,
        iommu_group: &IommuGroup,
        noiommu: bool,
    ) -> Result<Option<ARef<Ctx>>> {
        if noiommu && !capable(Capability::SYS_RAWIO) {
            return Err(EPERM);
        }
        let mut state = self.state.lock();
        if state.groups != 0 && state.noiommu != noiommu {
            return Err(EPERM);
        }
        if noiommu {
            state.noiommu = true;
            state.groups += 1;
            return Ok(None);
        }
        if iommu_group.dma_owner_claimed() {
            return Err(EPERM);
        }
        let ictx = match &state.ictx {
            Some(ictx) => ictx.clone(),
            None => {
                let ictx = Ctx::create()?;
                ictx.compat_ioas_create()?;
                ictx
            }
        };
        state.ictx = Some(ictx.clone());
        state.noiommu = false;
        state.groups += 1;
        Ok(Some(ictx))
    }

    /// A group left the container (its devices are closed); the last one takes the context,
    /// and so every mapping, with it.
    pub(crate) fn remove_group(&self) {
        let mut state = self.state.lock();
        state.groups -= 1;
        if state.groups == 0 {
            state.ictx = None;
            state.iommu_set = false;
            state.noiommu = false;
        }
    }

    /// `VFIO_CHECK_EXTENSION`: what the backend answers once there is one; before that, what
    /// the backends the container may still choose could offer: type1, type1v2 and unmapping
    /// everything for a container of groups with an IOMMU (0 for coherent DMA, which depends on
    /// the devices), `VFIO_NOIOMMU_IOMMU` while no-IOMMU mode is on for a container of
    /// no-IOMMU groups; both kinds while it has no group.
    fn check_extension(&self, extension: usize) -> Result<isize> {
        let state = self.state.lock();
        if let (true, Some(ictx)) = (state.iommu_set, &state.ictx) {
            return ictx.vfio_ioctl(VFIO_CHECK_EXTENSION, extension);
        }
        let iommu = state.groups == 0 || !state.noiommu;
        let noiommu = state.groups == 0 || state.noiommu;
        Ok(match u32::try_from(extension) {
            Ok(uapi::VFIO_TYPE1_IOMMU | uapi::VFIO_TYPE1v2_IOMMU | uapi::VFIO_UNMAP_ALL) => {
                isize::from(iommu)
            }
            Ok(uapi::VFIO_NOIOMMU_IOMMU) => isize::from(noiommu && crate::noiommu::enabled()),
            _ => 0,
        })
    }

    /// `VFIO_SET_IOMMU`: `EINVAL` without a group or once set; `ENODEV` for a backend the
    /// container's groups cannot use (type1 and type1v2 for groups with an IOMMU,
    /// `VFIO_NOIOMMU_IOMMU` for no-IOMMU groups while no-IOMMU mode is on), as upstream when
    /// no backend driver takes it.
    fn set_iommu(&self, backend: usize) -> Result<isize> {
        let mut state = self.state.lock();
        if state.groups == 0 || state.iommu_set {
            return Err(EINVAL);
        }
        let backend = u32::try_from(backend).map_err(|_| ENODEV)?;
        if state.noiommu {
            if backend != uapi::VFIO_NOIOMMU_IOMMU || !crate::noiommu::enabled() {
                return Err(ENODEV);
            }
            state.iommu_set = true;
            return Ok(0);
        }
        if backend != uapi::VFIO_TYPE1_IOMMU && backend != uapi::VFIO_TYPE1v2_IOMMU {
            return Err(ENODEV);
        }
        let ictx = state.ictx.clone().ok_or(EINVAL)?;
        ictx.vfio_ioctl(VFIO_SET_IOMMU, backend as usize)?;
        state.iommu_set = true;
        Ok(0)
    }

    /// Any other ioctl goes to the backend: `EINVAL` before there is one.
    fn backend_ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        let ictx = {
            let state = self.state.lock();
            match (&state.ictx, state.iommu_set) {
                (Some(ictx), true) => ictx.clone(),
                // The no-IOMMU backend maps nothing.
                (None, true) => return Err(ENOTTY),
                _ => return Err(EINVAL),
            }
        };
        // The backend answers `ENOTTY` for what it does not know; the container, `EINVAL`.
        match ictx.vfio_ioctl(cmd, arg) {
            Err(e) if e == ENOTTY => Err(EINVAL),
            other => other,
        }
    }
}

#[vtable]
impl MiscDevice for Container {
    type Ptr = Arc<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Self::Ptr> {
        Arc::pin_init(
            pin_init!(Self {
                state <- new_mutex!(State {
                    groups: 0,
                    ictx: None,
                    iommu_set: false,
                    noiommu: false,
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    fn ioctl(
        me: kernel::sync::ArcBorrow<'_, Self>,
        _file: &File,
        cmd: u32,
        arg: usize,
    ) -> Result<isize> {
        match cmd {
            VFIO_GET_API_VERSION => Ok(uapi::VFIO_API_VERSION as isize),
            VFIO_CHECK_EXTENSION => me.check_extension(arg),
            VFIO_SET_IOMMU => me.set_iommu(arg),
            _ => me.backend_ioctl(cmd, arg),
        }
    }
}
