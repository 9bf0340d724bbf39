// SPDX-License-Identifier: GPL-2.0

//! SR-IOV through vfio-pci: a PF in userspace's hands may enable VFs (`sriov_numvfs`, when the
//! `enable_sriov` parameter allows it), and the VF token ties the users of those VFs to the
//! PF's user.
//!
//! Why a token: a PF's user can disrupt its VFs (reset them, deny them service, read what
//! passes through them), so a VF's user must show that they trust it. The token is a UUID the
//! PF's user sets (`VFIO_DEVICE_FEATURE_PCI_VF_TOKEN`, or the token given when opening the PF
//! while no VF is open) and that the VFs' users must present to open a VF: after the device
//! name for `VFIO_GROUP_GET_DEVICE_FD` (`"0000:01:10.0 vf_token=<uuid>"`), or with
//! `VFIO_DEVICE_BIND_FLAG_TOKEN` when binding the cdev. While a VF is open, reopening the PF
//! needs the token too. The rules and errnos are upstream's.
//!
//! Only VFs that vfio-pci enabled take part: they get `driver_override=vfio-pci` as they
//! appear ([`VfDriverOverride`]) and find their PF's token at probe, in the registry's list of
//! PFs with VFs enabled. A PF keeps its token from probe to unbind, whoever opens it.

use crate::device::check_feature;
use kernel::{
    device::Core,
    new_mutex,
    pci::{
        self,
        VfDriverOverride, //
    },
    pm_runtime::Usage,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
    uaccess::UserPtr,
    uapi,
    uuid::{
        self,
        Uuid, //
    },
};

extern "C" {
    fn vfio_pci_enable_sriov() -> bool;
}

/// The token of a PF and how many of its VFs are open (upstream's `vfio_pci_vf_token`).
struct TokenState {
    uuid: Uuid,
    users: u32,
}

/// A PF's VF token, shared by the PF and the VFs it enabled.
#[pin_data]
pub(super) struct VfToken {
    #[pin]
    state: Mutex<TokenState>,
}

/// A PF with VFs enabled through vfio-pci, in the registry's list.
pub(crate) struct EnabledPf {
    pf: ARef<pci::Device>,
    token: Arc<VfToken>,
    /// Steers the VFs to vfio-pci while they exist.
    _steer: Pin<KBox<VfDriverOverride>>,
    /// Keeps the PF active while it has VFs, which it could not serve in D3 (upstream takes
    /// the same count in `vfio_pci_core_sriov_configure`).
    _awake: Usage,
}

/// What SR-IOV makes of a function bound to vfio-pci.
pub(super) enum Role {
    /// A PF: the token of its VFs.
    Pf(Arc<VfToken>),
    /// A VF that vfio-pci enabled: its PF's token.
    Vf(Arc<VfToken>),
    /// Any other function, VFs of a PF that vfio-pci did not enable among them.
    Other,
}

impl Role {
    /// A PF whose token is `uuid`.
    fn new_pf(uuid: Uuid) -> Result<Self> {
        let token = Arc::pin_init(
            pin_init!(VfToken {
                state <- new_mutex!(TokenState { uuid, users: 0 }),
            }),
            GFP_KERNEL,
        )?;
        Ok(Self::Pf(token))
    }

    /// The role of `pdev`, at probe: a PF gets a new random token.
    pub(super) fn probe(pdev: &pci::Device) -> Result<Self> {
        if pdev.is_physfn() {
            return Self::new_pf(Uuid::generate());
        }
        let Some(pf) = pdev.physfn() else {
            return Ok(Self::Other);
        };
        crate::registry::with_sriov_pfs(|pfs| {
            Ok(match pfs.iter().find(|e| core::ptr::eq(&*e.pf, pf)) {
                Some(enabled) => Self::Vf(enabled.token.clone()),
                None => Self::Other,
            })
        })
    }

    /// Checks the token a user gave to open the function, or its absence (upstream's
    /// `vfio_pci_core_match_token_uuid`): a VF of ours needs its PF's token (`EACCES`), a
    /// PF needs its token while a VF is open (`EACCES`) and otherwise takes the one given as
    /// its new token; any other function takes none (`EINVAL`).
    pub(super) fn check_token(&self, token: Option<&Uuid>) -> Result {
        match (self, token) {
            (Self::Vf(_), None) => Err(EACCES),
            (Self::Vf(pf), Some(uuid)) => match pf.state.lock().uuid == *uuid {
                true => Ok(()),
                false => Err(EACCES),
            },
            (Self::Pf(own), token) => {
                let mut state = own.state.lock();
                match token {
                    _ if state.users == 0 => {
                        if let Some(uuid) = token {
                            state.uuid = *uuid;
                        }
                        Ok(())
                    }
                    Some(uuid) if state.uuid == *uuid => Ok(()),
                    _ => Err(EACCES),
                }
            }
            (Self::Other, None) => Ok(()),
            (Self::Other, Some(_)) => Err(EINVAL),
        }
    }

    /// A VF of ours was opened (`true`) or closed (`false`): its PF counts it.
    pub(super) fn vf_opened(&self, open: bool) {
        if let Self::Vf(pf) = self {
            let mut state = pf.state.lock();
            state.users = match open {
                true => state.users + 1,
                false => state.users.saturating_sub(1),
            };
        }
    }

    /// `VFIO_DEVICE_FEATURE_PCI_VF_TOKEN`: sets a PF's token (only `SET`, so that a user cannot
    /// learn the token of the one before). `ENOTTY` for a function that is not a PF, then
    /// upstream's errnos.
    pub(super) fn feature(&self, flags: u32, arg: usize, argsz: usize) -> Result<isize> {
        let Self::Pf(own) = self else {
            return Err(ENOTTY);
        };
        if !check_feature(flags, argsz, uapi::VFIO_DEVICE_FEATURE_SET, 16)? {
            return Ok(0);
        }
        let uuid = Uuid::from_user(UserPtr::from_addr(arg))?;
        own.state.lock().uuid = uuid;
        Ok(0)
    }
}

/// Reads what follows a device's name in a `VFIO_GROUP_GET_DEVICE_FD` name (upstream's
/// `vfio_pci_core_match`): `None` if the name goes on without a space (another device's name),
/// else the token of its `vf_token=<uuid>` option if any; `EINVAL` for a malformed token or any
/// other or repeated option. Without groups only the KUnit test reads names.
#[cfg_attr(not(CONFIG_VFIO_GROUP), allow(dead_code))]
pub(super) fn name_options(mut rest: &[u8]) -> Option<Result<Option<Uuid>>> {
    const VF_TOKEN: &[u8] = b"vf_token=";
    if !rest.is_empty() && rest[0] != b' ' {
        return None;
    }
    let mut token = None;
    Some(loop {
        match rest {
            [] => break Ok(token),
            [b' ', tail @ ..] => rest = tail,
            _ if token.is_none() && rest.starts_with(VF_TOKEN) => {
                rest = &rest[VF_TOKEN.len()..];
                match Uuid::parse(rest) {
                    Ok(uuid) => token = Some(uuid),
                    Err(e) => break Err(e),
                }
                rest = &rest[uuid::STRING_LEN..];
            }
            _ => break Err(EINVAL),
        }
    })
}

/// The PCI core's `sriov_configure` for a PF bound to vfio-pci (upstream's
/// `vfio_pci_core_sriov_configure`): enables `nr` VFs, steered to vfio-pci and tied to `token`,
/// or disables them for 0. `ENOENT` unless the `enable_sriov` parameter is set; `EINVAL` if
/// they are enabled already; then the PCI core's errors.
pub(super) fn configure(pdev: &pci::Device<Core<'_>>, role: &Role, nr: u16) -> Result<u16> {
    // SAFETY: Reads a module parameter; no arguments.
    if !unsafe { vfio_pci_enable_sriov() } {
        return Err(ENOENT);
    }
    if nr == 0 {
        disable(pdev);
        return Ok(0);
    }
    let Role::Pf(token) = role else {
        return Err(EINVAL);
    };
    let pf: &pci::Device = pdev;
    let enabled = EnabledPf {
        pf: pf.into(),
        token: token.clone(),
        _steer: KBox::pin_init(VfDriverOverride::new(pdev, c"vfio-pci"), GFP_KERNEL)?,
        _awake: Usage::resume_and_get(pdev.as_ref())?,
    };
    crate::registry::with_sriov_pfs(|pfs| {
        if pfs.iter().any(|e| core::ptr::eq(&*e.pf, pf)) {
            return Err(EINVAL);
        }
        pfs.push(enabled, GFP_KERNEL)?;
        Ok(())
    })?;
    // Not under the registry's lock: the VFs are probed (and registered) before this returns.
    if let Err(e) = pdev.enable_sriov(nr) {
        forget(pdev);
        return Err(e);
    }
    Ok(nr)
}

/// Disables the VFs of `pdev` if it has any, and stops steering them; for 0 VFs and at unbind.
pub(super) fn disable(pdev: &pci::Device<Core<'_>>) {
    if pdev.num_vf() > 0 {
        pdev.disable_sriov();
    }
    forget(pdev);
}

/// Takes `pdev` off the list of PFs with VFs enabled, if it is there.
fn forget(pdev: &pci::Device) {
    let gone = crate::registry::with_sriov_pfs(|pfs| {
        Ok(pfs
            .iter()
            .position(|e| core::ptr::eq(&*e.pf, pdev))
            .and_then(|i| pfs.remove(i).ok()))
    });
    // Dropped outside the registry's lock: it unregisters from the bus's notifier chain.
    drop(gone);
}

#[kunit_tests(rust_vfio_pci_sriov)]
mod tests {
    use super::*;

    const UUID: &[u8] = b"52ac9bff-3a88-4fbd-901a-0d767c3b6c97";

    fn token() -> Uuid {
        Uuid::parse(UUID).unwrap()
    }

    #[test]
    fn name_options_as_upstream() {
        assert_eq!(name_options(b""), Some(Ok(None)));
        assert_eq!(name_options(b"   "), Some(Ok(None)));
        assert_eq!(name_options(b"0"), None);
        assert_eq!(name_options(b".1"), None);
        let with = |pre: &[u8], post: &[u8]| {
            let mut name = KVec::new();
            name.extend_from_slice(pre, GFP_KERNEL).unwrap();
            name.extend_from_slice(UUID, GFP_KERNEL).unwrap();
            name.extend_from_slice(post, GFP_KERNEL).unwrap();
            name_options(&name)
        };
        assert_eq!(with(b" vf_token=", b""), Some(Ok(Some(token()))));
        assert_eq!(with(b"  vf_token=", b"  "), Some(Ok(Some(token()))));
        // Repeated, unknown, glued on or short: refused.
        assert_eq!(with(b" vf_token=", b" vf_token=x"), Some(Err(EINVAL)));
        assert_eq!(with(b" vf_token=", b"x"), Some(Err(EINVAL)));
        assert_eq!(with(b" foo=1 vf_token=", b""), Some(Err(EINVAL)));
        assert_eq!(name_options(b" vf_token=52ac9bff"), Some(Err(EINVAL)));
    }

    #[test]
    fn token_rules_as_upstream() {
        let pf = Role::new_pf(Uuid::default()).unwrap();
        let Role::Pf(shared) = &pf else {
            unreachable!()
        };
        let vf = Role::Vf(shared.clone());
        // No VF open: the PF opens without a token, or takes the one given.
        assert_eq!(pf.check_token(None), Ok(()));
        assert_eq!(pf.check_token(Some(&token())), Ok(()));
        // A VF needs that token.
        assert_eq!(vf.check_token(None), Err(EACCES));
        assert_eq!(vf.check_token(Some(&Uuid::default())), Err(EACCES));
        assert_eq!(vf.check_token(Some(&token())), Ok(()));
        // With a VF open, the PF needs it too, and keeps it.
        vf.vf_opened(true);
        assert_eq!(pf.check_token(None), Err(EACCES));
        assert_eq!(pf.check_token(Some(&Uuid::default())), Err(EACCES));
        assert_eq!(pf.check_token(Some(&token())), Ok(()));
        vf.vf_opened(false);
        assert_eq!(pf.check_token(Some(&Uuid::default())), Ok(()));
        assert_eq!(vf.check_token(Some(&token())), Err(EACCES));
        // Other functions take none.
        assert_eq!(Role::Other.check_token(None), Ok(()));
        assert_eq!(Role::Other.check_token(Some(&token())), Err(EINVAL));
    }
}
