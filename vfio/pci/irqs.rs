// SPDX-License-Identifier: GPL-2.0

//! vfio-pci's interrupts: `VFIO_DEVICE_GET_IRQ_INFO` and `VFIO_DEVICE_SET_IRQS` for INTx,
//! MSI, MSI-X and the device request, each delivered to userspace through an eventfd, with
//! upstream's argument checks and errnos (`vfio_set_irqs_validate_and_prepare` and
//! `vfio_pci_set_irqs_ioctl`).
//!
//! A function uses INTx, MSI or MSI-X (or none) at a time: the first trigger given for an
//! index allocates that many vectors (or requests the INTx line), each with a handler that
//! signals its eventfd; `count == 0` with no data turns the index off again, and so does the
//! last close. The request index is one eventfd, signalled when the device is being
//! unregistered while in use.
//!
//! INTx is level-triggered and possibly shared, so its handler masks it at the function (the
//! command register's INTx disable bit) before it signals; the user unmasks it with
//! `VFIO_IRQ_SET_ACTION_UNMASK` once it has served the device. The masked state is an
//! [`IntxLine`] of its own, under a spinlock that keeps interrupts off, because the handler,
//! `SET_IRQS` and userspace's writes of INTx disable in the virtual command register all
//! change it. Only functions that can mask INTx that way (PCI 2.3) offer it: upstream also
//! serves the others by disabling the interrupt at the controller, which needs an exclusive
//! line. The user may also unmask through an eventfd of its own, which KVM's resampling irqfd
//! signals when the guest acknowledges the interrupt (upstream's virqfd): a
//! [`kernel::eventfd::Watch`] unmasks at each signal and, if the device still has the
//! interrupt pending, has a work item signal the trigger again (no eventfd may be signalled
//! from another's wake-up). Not offered yet: the error index; its uses fail.
//!
//! Lock order: an unmask eventfd's wait queue, then the INTx `state`; the trigger's lock is
//! never taken with `state` held, since signalling the trigger takes an eventfd's wait queue
//! lock (of the same class).

use super::config::PciConfig;
use core::mem::size_of;
use kernel::{
    device::Bound,
    eventfd::{
        EventFd,
        Notify,
        Watch, //
    },
    irq::{
        Handler,
        IrqReturn, //
    },
    new_mutex, new_spinlock_irq,
    pci::{
        self,
        Intx,
        VectorType,
        Vectors, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex,
        SpinLockIrq, //
    },
    transmute::AsBytes,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
    uapi_bytes::read_user_u32,
    workqueue::{
        self,
        impl_has_work,
        new_work,
        Work,
        WorkItem, //
    },
};

/// `offsetofend(struct vfio_irq_info, count)`.
const IRQ_INFO_SIZE: usize = 16;
/// `offsetofend(struct vfio_irq_set, count)`: the header before the data.
const IRQ_SET_SIZE: usize = 20;

/// The interrupt hardware of a function, read at probe.
#[derive(Clone, Copy, Default)]
pub(super) struct IrqCaps {
    /// Whether the function has an INTx pin the driver can mask at the function.
    pub(super) intx: bool,
    /// Vectors the MSI capability offers (0 without one).
    pub(super) msi: u32,
    /// Entries of the MSI-X table (0 without one).
    pub(super) msix: u32,
    /// The BAR that holds the MSI-X table, if the function has one.
    pub(super) msix_bar: Option<u8>,
    /// Whether MSI-X vectors can be added while MSI-X is enabled (upstream's `has_dyn_msix`):
    /// `VFIO_DEVICE_SET_IRQS` then takes eventfds for vectors past those it enabled, and the
    /// index's info leaves out `VFIO_IRQ_INFO_NORESIZE`.
    pub(super) dyn_msix: bool,
}

/// What one vector does when it fires: signal the user's eventfd.
pub(super) struct Trigger {
    eventfd: EventFd,
}

impl Handler for Trigger {
    fn handle(&self) -> IrqReturn {
        self.eventfd.signal();
        IrqReturn::Handled
    }
}

/// What the INTx handler, `SET_IRQS` and config writes share about INTx.
#[derive(Default)]
struct IntxState {
    /// The line is requested (`Irqs::intx` is set).
    enabled: bool,
    /// INTx is masked: by the handler until the user unmasks it, or by the user.
    masked: bool,
    /// The line is the function's alone and masked at the interrupt controller, as for a
    /// function that cannot mask INTx itself (upstream's `!pci_2_3`); else it is masked at
    /// the function and may be shared.
    exclusive: bool,
}

/// A function's INTx, as its handler, `SET_IRQS` and the virtual command register see it.
#[pin_data]
pub(super) struct IntxLine {
    pdev: ARef<pci::Device>,
    #[pin]
    state: SpinLockIrq<IntxState>,
    /// Signalled for each interrupt; never locked with `state` held.
    #[pin]
    trigger: SpinLockIrq<Option<EventFd>>,
    /// Signals the trigger again for an unmask eventfd that found the interrupt still pending.
    #[pin]
    resend: Work<IntxLine>,
}

impl_has_work! {
    impl HasWork<Self> for IntxLine { self.resend }
}

impl WorkItem for IntxLine {
    type Pointer = Arc<IntxLine>;

    fn run(this: Arc<IntxLine>) {
        this.signal();
    }
}

impl IntxLine {
    pub(super) fn new(pdev: ARef<pci::Device>) -> impl PinInit<Self> {
        pin_init!(Self {
            pdev,
            state <- new_spinlock_irq!(IntxState::default()),
            trigger <- new_spinlock_irq!(None),
            resend <- new_work!("IntxLine::resend"),
        })
    }

    /// The line fired: if it is this function's interrupt, mask it and tell the user.
    fn handle(&self) -> IrqReturn {
        let ours = {
            let mut state = self.state.lock();
            let ours = if state.exclusive {
                // Every interrupt on the line is the function's.
                if !state.masked {
                    self.pdev.mask_intx_line();
                }
                true
            } else {
                // Not masked yet, and pending at this function: the line may be shared.
                state.enabled && !state.masked && self.pdev.check_and_mask_intx()
            };
            state.masked |= ours;
            ours
        };
        if !ours {
            return IrqReturn::None;
        }
        self.signal();
        IrqReturn::Handled
    }

    /// Masks INTx at the function if it is in use; whether it was unmasked until now
    /// (upstream's `__vfio_pci_intx_mask`).
    pub(super) fn mask(&self) -> bool {
        let mut state = self.state.lock();
        if state.enabled && !state.masked {
            if state.exclusive {
                self.pdev.mask_intx_line();
            } else {
                self.pdev.set_intx(false);
            }
            state.masked = true;
            return true;
        }
        false
    }

    /// Unmasks INTx at the function, unless the device has an interrupt pending, which is
    /// then signalled again (upstream's `vfio_pci_intx_unmask`).
    pub(super) fn unmask(&self) {
        if self.unmask_pending() {
            self.signal();
        }
    }

    /// Unmasks INTx at the function if it is in use and masked; whether the device still has
    /// the interrupt pending, which keeps it masked (upstream's
    /// `vfio_pci_intx_unmask_handler`).
    fn unmask_pending(&self) -> bool {
        let mut state = self.state.lock();
        if state.enabled && state.masked {
            if state.exclusive {
                // An interrupt still pending fires again at once, and is signalled then.
                self.pdev.unmask_intx_line();
                state.masked = false;
            } else {
                state.masked = !self.pdev.check_and_unmask_intx();
            }
            return state.masked;
        }
        false
    }

    /// Signals the trigger as if the line had fired (loopback).
    fn signal(&self) {
        if let Some(trigger) = &*self.trigger.lock() {
            trigger.signal();
        }
    }

    /// Replaces the trigger; the old one is returned, to be dropped outside the lock.
    fn set_trigger(&self, trigger: Option<EventFd>) -> Option<EventFd> {
        core::mem::replace(&mut *self.trigger.lock(), trigger)
    }

    /// Marks the line in use, masked or not as `masked` says: at the function, or, if
    /// `exclusive`, by the request of the line (see [`IntxState::exclusive`]).
    fn enable(&self, masked: bool, exclusive: bool, trigger: Option<EventFd>) {
        drop(self.set_trigger(trigger));
        let mut state = self.state.lock();
        state.enabled = true;
        state.masked = masked;
        state.exclusive = exclusive;
        if !exclusive {
            self.pdev.set_intx(!masked);
        }
    }

    /// Marks the line unused; the trigger is returned, to be dropped outside the lock.
    fn disable(&self) -> Option<EventFd> {
        {
            let mut state = self.state.lock();
            state.enabled = false;
            state.masked = false;
        }
        self.set_trigger(None)
    }
}

/// What an unmask eventfd does at each signal: unmask INTx, and if the device still has the
/// interrupt pending, have the trigger signalled again from a work item (upstream's virqfd
/// with `vfio_pci_intx_unmask_handler` and `vfio_send_intx_eventfd`).
pub(super) struct UnmaskOnSignal(Arc<IntxLine>);

impl Notify for UnmaskOnSignal {
    fn notify(&self) {
        if self.0.unmask_pending() {
            // (Already queued: the signal it will send covers this one too.)
            let _ = workqueue::system().enqueue(self.0.clone());
        }
    }
}

/// The handler on the INTx line.
pub(super) struct IntxHandler(Arc<IntxLine>);

impl Handler for IntxHandler {
    fn handle(&self) -> IrqReturn {
        self.0.handle()
    }
}

/// The interrupts the user set up.
#[derive(Default)]
pub(super) struct Irqs {
    /// The MSI or MSI-X vectors in use, with the index they belong to.
    vectors: Option<(u32, Vectors<Trigger>)>,
    /// The INTx line, while INTx is in use.
    intx: Option<Intx<IntxHandler>>,
    /// The eventfd whose signals unmask INTx, if the user gave one; it goes with INTx.
    unmask: Option<Pin<KBox<Watch<UnmaskOnSignal>>>>,
    /// The device request eventfd.
    request: Option<EventFd>,
}

/// The error eventfd, signalled when the PCI core reports an error on the function (AER): a
/// lock of its own, taken after `Irqs`'s and with nothing else held, since the PCI core
/// reports errors while walking its bus (`pci_bus_sem`), which setting a power state takes
/// under the config and `mem` locks.
#[pin_data]
pub(super) struct ErrTrigger {
    #[pin]
    eventfd: Mutex<Option<EventFd>>,
}

impl ErrTrigger {
    pub(super) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            eventfd <- new_mutex!(None),
        })
    }

    /// The PCI core found an error on the function: signal the user's error eventfd, if they
    /// gave one.
    pub(super) fn signal(&self) {
        if let Some(e) = &*self.eventfd.lock() {
            e.signal();
        }
    }
}

/// The fields of `struct vfio_irq_set` before its data.
struct SetHeader {
    argsz: u32,
    flags: u32,
    index: u32,
    start: u32,
    count: u32,
}

/// Reads `n` native-endian `u32`s at `addr` of userspace.
fn read_u32s<const N: usize>(addr: usize) -> Result<[u32; N]> {
    let mut words = [0u32; N];
    for (i, w) in words.iter_mut().enumerate() {
        *w = read_user_u32(addr + i * size_of::<u32>())?;
    }
    Ok(words)
}

impl Irqs {
    /// How many interrupts index `index` has (upstream's `vfio_pci_get_irq_count`).
    fn count(caps: &IrqCaps, index: u32) -> u32 {
        match index {
            uapi::VFIO_PCI_INTX_IRQ_INDEX => caps.intx.into(),
            uapi::VFIO_PCI_MSI_IRQ_INDEX => caps.msi,
            uapi::VFIO_PCI_MSIX_IRQ_INDEX => caps.msix,
            uapi::VFIO_PCI_REQ_IRQ_INDEX | uapi::VFIO_PCI_ERR_IRQ_INDEX => 1,
            _ => 0,
        }
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO`.
    pub(super) fn info(caps: &IrqCaps, arg: usize) -> Result<isize> {
        let [argsz, _flags, index, _count] = read_u32s::<4>(arg)?;
        if (argsz as usize) < IRQ_INFO_SIZE || index >= uapi::VFIO_PCI_NUM_IRQS {
            return Err(EINVAL);
        }
        let mut flags = uapi::VFIO_IRQ_INFO_EVENTFD;
        if index == uapi::VFIO_PCI_INTX_IRQ_INDEX {
            flags |= uapi::VFIO_IRQ_INFO_MASKABLE | uapi::VFIO_IRQ_INFO_AUTOMASKED;
        } else if index != uapi::VFIO_PCI_MSIX_IRQ_INDEX || !caps.dyn_msix {
            flags |= uapi::VFIO_IRQ_INFO_NORESIZE;
        }
        let info = [argsz, flags, index, Self::count(caps, index)];
        UserSlice::new(UserPtr::from_addr(arg), IRQ_INFO_SIZE)
            .writer()
            .write_slice(AsBytes::as_bytes(&info))?;
        Ok(0)
    }

    /// `VFIO_DEVICE_SET_IRQS`, with the function's `config` to keep the virtual MSI
    /// capability in step, and its INTx `line`.
    pub(super) fn set(
        &mut self,
        pdev: &pci::Device<Bound>,
        caps: &IrqCaps,
        config: &mut PciConfig,
        line: &Arc<IntxLine>,
        err: &ErrTrigger,
        arg: usize,
    ) -> Result<isize> {
        let [argsz, flags, index, start, count] = read_u32s::<5>(arg)?;
        let hdr = SetHeader {
            argsz,
            flags,
            index,
            start,
            count,
        };
        let data = Self::validate(caps, &hdr, arg)?;
        let action = hdr.flags & uapi::VFIO_IRQ_SET_ACTION_TYPE_MASK;
        let data = Data::new(hdr.flags, &data);
        match (hdr.index, action) {
            (uapi::VFIO_PCI_INTX_IRQ_INDEX, a) if a == uapi::VFIO_IRQ_SET_ACTION_TRIGGER => {
                self.set_intx_trigger(pdev, config, line, &hdr, data)?
            }
            (uapi::VFIO_PCI_INTX_IRQ_INDEX, a)
                if a == uapi::VFIO_IRQ_SET_ACTION_MASK || a == uapi::VFIO_IRQ_SET_ACTION_UNMASK =>
            {
                if self.intx.is_none() || hdr.start != 0 || hdr.count != 1 {
                    return Err(EINVAL);
                }
                if let Data::Eventfds(fds) = data {
                    // Masking through an eventfd: upstream has none either.
                    if a == uapi::VFIO_IRQ_SET_ACTION_MASK {
                        return Err(ENOTTY);
                    }
                    self.set_unmask_eventfd(line, first_fd(fds)?)?;
                    return Ok(0);
                }
                let act = data.fires(0);
                if act && a == uapi::VFIO_IRQ_SET_ACTION_MASK {
                    line.mask();
                } else if act {
                    line.unmask();
                }
            }
            (uapi::VFIO_PCI_MSI_IRQ_INDEX | uapi::VFIO_PCI_MSIX_IRQ_INDEX, a)
                if a == uapi::VFIO_IRQ_SET_ACTION_TRIGGER =>
            {
                self.set_msi_trigger(pdev, caps, config, &hdr, data)?
            }
            (i @ (uapi::VFIO_PCI_REQ_IRQ_INDEX | uapi::VFIO_PCI_ERR_IRQ_INDEX), a)
                if a == uapi::VFIO_IRQ_SET_ACTION_TRIGGER =>
            {
                if hdr.start != 0 || hdr.count > 1 {
                    return Err(EINVAL);
                }
                match i {
                    uapi::VFIO_PCI_REQ_IRQ_INDEX => {
                        set_single_trigger(&mut self.request, hdr.count, data)?
                    }
                    _ => set_single_trigger(&mut err.eventfd.lock(), hdr.count, data)?,
                }
            }
            // Masking MSI vectors, and masking the request or error index: no handler, as
            // upstream.
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }

    /// Upstream's `vfio_set_irqs_validate_and_prepare`: the header's checks, then the data
    /// the flags call for, read from after the header.
    fn validate(caps: &IrqCaps, hdr: &SetHeader, arg: usize) -> Result<KVec<u8>> {
        let known = uapi::VFIO_IRQ_SET_DATA_TYPE_MASK | uapi::VFIO_IRQ_SET_ACTION_TYPE_MASK;
        if (hdr.argsz as usize) < IRQ_SET_SIZE
            || hdr.index >= uapi::VFIO_PCI_NUM_IRQS
            || hdr.count >= u32::MAX - hdr.start
            || hdr.flags & !known != 0
        {
            return Err(EINVAL);
        }
        let num = Self::count(caps, hdr.index);
        if hdr.start >= num || hdr.start + hdr.count > num {
            return Err(EINVAL);
        }
        let size = match hdr.flags & uapi::VFIO_IRQ_SET_DATA_TYPE_MASK {
            uapi::VFIO_IRQ_SET_DATA_NONE => 0,
            uapi::VFIO_IRQ_SET_DATA_BOOL => size_of::<u8>(),
            uapi::VFIO_IRQ_SET_DATA_EVENTFD => size_of::<i32>(),
            _ => return Err(EINVAL),
        };
        // Action flags other than exactly one are refused as upstream refuses them: by
        // finding no handler (`ENOTTY`) in `set`, once the data was checked.
        let len = hdr.count as usize * size;
        if (hdr.argsz as usize - IRQ_SET_SIZE) < len {
            return Err(EINVAL);
        }
        let mut data = KVec::from_elem(0u8, len, GFP_KERNEL)?;
        UserSlice::new(UserPtr::from_addr(arg + IRQ_SET_SIZE), len)
            .reader()
            .read_slice(&mut data)?;
        Ok(data)
    }

    /// Upstream's `vfio_pci_set_intx_trigger`.
    fn set_intx_trigger(
        &mut self,
        pdev: &pci::Device<Bound>,
        config: &PciConfig,
        line: &Arc<IntxLine>,
        hdr: &SetHeader,
        data: Data<'_>,
    ) -> Result {
        if self.intx.is_some() && hdr.count == 0 && matches!(data, Data::None) {
            self.disable_intx(line);
            return Ok(());
        }
        if self.vectors.is_some() || hdr.start != 0 || hdr.count != 1 {
            return Err(EINVAL);
        }
        if let Data::Eventfds(fds) = data {
            let fd = first_fd(fds)?;
            let trigger = if fd >= 0 {
                Some(EventFd::from_fd(fd)?)
            } else {
                None
            };
            if self.intx.is_some() {
                drop(line.set_trigger(trigger));
                return Ok(());
            }
            // Masked from the start if the user set INTx disable in the command register.
            let masked = config.intx_disabled();
            let exclusive = !intx_maskable(pdev);
            line.enable(masked, exclusive, trigger);
            let handler = Ok(IntxHandler(line.clone()));
            // SAFETY: The line lives in the device's `Irqs`, which `close_device` empties
            // before the last user is gone, and VFIO unregisters the device (waiting for its
            // users) before the driver lets go of the function.
            let intx = unsafe {
                match exclusive {
                    true => Intx::request_exclusive(pdev, c"vfio-intx", handler, !masked),
                    false => Intx::request(pdev, c"vfio-intx", handler),
                }
            };
            match intx {
                Ok(intx) => self.intx = Some(intx),
                Err(e) => {
                    drop(line.disable());
                    return Err(e);
                }
            }
            return Ok(());
        }
        if self.intx.is_none() {
            return Err(EINVAL);
        }
        if data.fires(0) {
            line.signal();
        }
        Ok(())
    }

    /// Lets go of the INTx line: the unmask eventfd and the handler go first, then the state
    /// they used.
    fn disable_intx(&mut self, line: &IntxLine) {
        self.unmask = None;
        if self.intx.take().is_some() {
            drop(line.disable());
        }
    }

    /// Unmasks INTx at each signal of eventfd `fd` from now on, or no longer for a negative
    /// `fd` (upstream's `vfio_pci_set_intx_unmask` with `vfio_virqfd_enable`/`disable`):
    /// `EBUSY` while another eventfd does it (one the user closed no longer counts), `EBADF`
    /// for a descriptor that is not open, `EINVAL` for one that is not an eventfd.
    fn set_unmask_eventfd(&mut self, line: &Arc<IntxLine>, fd: i32) -> Result {
        if fd < 0 {
            self.unmask = None;
            return Ok(());
        }
        // The descriptor's errors come first, as upstream.
        drop(EventFd::from_fd(fd)?);
        if self.unmask.as_ref().is_some_and(|watch| !watch.hung_up()) {
            return Err(EBUSY);
        }
        self.unmask = None;
        self.unmask = Some(Watch::new(fd, UnmaskOnSignal(line.clone()))?);
        Ok(())
    }

    /// Upstream's `vfio_pci_set_msi_trigger`.
    fn set_msi_trigger(
        &mut self,
        pdev: &pci::Device<Bound>,
        caps: &IrqCaps,
        config: &mut PciConfig,
        hdr: &SetHeader,
        data: Data<'_>,
    ) -> Result {
        let active = self.vectors.as_ref().map(|(index, _)| *index);
        if active == Some(hdr.index) && hdr.count == 0 && matches!(data, Data::None) {
            self.disable(config);
            return Ok(());
        }
        if active.is_some_and(|index| index != hdr.index) || self.intx.is_some() {
            return Err(EINVAL);
        }
        if let Data::Eventfds(fds) = data {
            let newly = active.is_none();
            if newly {
                self.enable(pdev, config, hdr.index, hdr.start + hdr.count)?;
            }
            let set = self.set_block(hdr.start, fds, caps.dyn_msix);
            if set.is_err() && newly {
                self.disable(config);
            }
            return set;
        }
        let Some((_, vectors)) = self.vectors.as_ref() else {
            return Err(EINVAL);
        };
        // Loopback: signal the eventfds as if the vectors had fired.
        for i in 0..hdr.count {
            let fire = data.fires(i as usize);
            if let Some(trigger) = vectors.handler(hdr.start + i).filter(|_| fire) {
                trigger.eventfd.signal();
            }
        }
        Ok(())
    }

    /// Allocates `nvec` vectors for `index`; `ENOSPC` if the function cannot have them all.
    fn enable(
        &mut self,
        pdev: &pci::Device<Bound>,
        config: &mut PciConfig,
        index: u32,
        nvec: u32,
    ) -> Result {
        let kind = if index == uapi::VFIO_PCI_MSIX_IRQ_INDEX {
            VectorType::MsiX
        } else {
            VectorType::Msi
        };
        // SAFETY: The vectors live in the device's `Irqs`, which `close_device` empties before
        // the last user is gone, and VFIO unregisters the device (waiting for its users)
        // before the driver lets go of the function.
        let vectors = unsafe { Vectors::alloc(pdev, nvec, kind) }.map_err(|_| ENOSPC)?;
        if kind == VectorType::Msi {
            // log2 of the vectors, rounded up, for the virtual MSI capability.
            config.set_msi_state(true, (nvec.next_power_of_two().trailing_zeros()) as u8);
        }
        self.vectors = Some((index, vectors));
        Ok(())
    }

    /// Gives each vector from `start` the eventfd of its descriptor, or none for -1; on an
    /// error, the vectors set by this call are left without one, as upstream. With `grow`, an
    /// MSI-X vector past those enabled is allocated first (and stays until MSI-X is off).
    fn set_block(&mut self, start: u32, fds: &[u8], grow: bool) -> Result {
        let Some((index, vectors)) = self.vectors.as_mut() else {
            return Err(EINVAL);
        };
        let grow = grow && *index == uapi::VFIO_PCI_MSIX_IRQ_INDEX;
        for (j, fd) in fds.chunks_exact(size_of::<i32>()).enumerate() {
            let fd = first_fd(fd)?;
            let vector = start + j as u32;
            let set = if fd < 0 {
                vectors.clear_handler(vector);
                Ok(())
            } else {
                EventFd::from_fd(fd).and_then(|eventfd| {
                    if grow {
                        vectors.alloc_at(vector)?;
                    }
                    // (a value is its own initializer, given as a `Result`)
                    vectors.set_handler(vector, c"vfio-msi", Ok(Trigger { eventfd }))
                })
            };
            if let Err(e) = set {
                for k in 0..j as u32 {
                    vectors.clear_handler(start + k);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Turns MSI or MSI-X off: the handlers go, then the vectors.
    pub(super) fn disable(&mut self, config: &mut PciConfig) {
        self.vectors = None;
        config.set_msi_state(false, 0);
    }

    /// The last user is gone: every interrupt goes.
    pub(super) fn close(&mut self, config: &mut PciConfig, line: &IntxLine, err: &ErrTrigger) {
        self.disable(config);
        self.disable_intx(line);
        self.request = None;
        drop(err.eventfd.lock().take());
    }

    /// The device is being unregistered while in use: signal the user's request eventfd.
    /// Whether there was one.
    pub(super) fn request(&self) -> bool {
        self.request.as_ref().inspect(|e| e.signal()).is_some()
    }
}

/// The data of a `VFIO_DEVICE_SET_IRQS`, by its type.
#[derive(Clone, Copy)]
enum Data<'a> {
    None,
    Bools(&'a [u8]),
    Eventfds(&'a [u8]),
}

impl<'a> Data<'a> {
    fn new(flags: u32, data: &'a [u8]) -> Self {
        match flags & uapi::VFIO_IRQ_SET_DATA_TYPE_MASK {
            uapi::VFIO_IRQ_SET_DATA_BOOL => Data::Bools(data),
            uapi::VFIO_IRQ_SET_DATA_EVENTFD => Data::Eventfds(data),
            _ => Data::None,
        }
    }

    /// Whether entry `i` asks for the action: every entry with no data, a true one of bools.
    fn fires(&self, i: usize) -> bool {
        match self {
            Data::Bools(bools) => bools.get(i).is_some_and(|b| *b != 0),
            _ => true,
        }
    }
}

/// The first file descriptor of eventfd data; `EINVAL` if there is none.
fn first_fd(fds: &[u8]) -> Result<i32> {
    let fd = fds.get(..size_of::<i32>()).ok_or(EINVAL)?;
    Ok(i32::from_ne_bytes([fd[0], fd[1], fd[2], fd[3]]))
}

/// Upstream's `vfio_pci_set_ctx_trigger_single`: one eventfd, set, cleared or signalled.
fn set_single_trigger(slot: &mut Option<EventFd>, count: u32, data: Data<'_>) -> Result {
    match data {
        Data::None => {
            if slot.is_some() {
                if count != 0 {
                    slot.as_ref().inspect(|e| e.signal());
                } else {
                    *slot = None;
                }
                return Ok(());
            }
            Err(EINVAL)
        }
        Data::Bools(bools) => {
            let fire = *bools.first().ok_or(EINVAL)? != 0;
            if fire {
                slot.as_ref().inspect(|e| e.signal());
            }
            Ok(())
        }
        Data::Eventfds(fds) => {
            let fd = first_fd(fds)?;
            if fd == -1 {
                *slot = None;
            } else if fd >= 0 {
                *slot = Some(EventFd::from_fd(fd)?);
            }
            Ok(())
        }
    }
}

extern "C" {
    fn vfio_pci_nointxmask() -> bool;
}

/// Whether INTx can be masked at the function, and may be: the `nointxmask` parameter
/// (`pci_param.c`) forbids it, as upstream's. Where it cannot, the line is taken exclusively
/// when the user turns INTx on, and masked at the interrupt controller.
fn intx_maskable(pdev: &pci::Device) -> bool {
    // SAFETY: Reads a module parameter; no arguments.
    let forbidden = unsafe { vfio_pci_nointxmask() };
    !forbidden && pdev.intx_mask_supported()
}

/// Finds the function's MSI and MSI-X capabilities in config space (INTx is the driver's
/// `DeviceInfo::has_intx`, which config space alone does not decide).
pub(super) fn probe_caps(pdev: &pci::Device<Bound>) -> Result<IrqCaps> {
    use kernel::io::Io;
    const PCI_STATUS: usize = 0x06;
    const PCI_STATUS_CAP_LIST: u16 = 0x10;
    const PCI_CAPABILITY_LIST: usize = 0x34;
    const PCI_CAP_ID_MSI: u8 = 0x05;
    const PCI_CAP_ID_MSIX: u8 = 0x11;
    let space = pdev.config_space();
    let mut caps = IrqCaps::default();
    if space.try_read16(PCI_STATUS)? & PCI_STATUS_CAP_LIST == 0 {
        return Ok(caps);
    }
    let mut pos = usize::from(space.try_read8(PCI_CAPABILITY_LIST)? & !3);
    // At most 48 capabilities fit in the 192 bytes after the header; a loop ends there.
    for _ in 0..48 {
        if pos < 0x40 {
            break;
        }
        let id = space.try_read8(pos)?;
        let flags = space.try_read16(pos + 2)?;
        match id {
            PCI_CAP_ID_MSI => caps.msi = 1 << ((flags >> 1) & 0x7).min(5),
            PCI_CAP_ID_MSIX => {
                caps.msix = u32::from(flags & 0x7ff) + 1;
                caps.dyn_msix = pdev.msix_can_alloc_dyn();
                // `PCI_MSIX_TABLE`: the table's offset, with its BAR in the low bits.
                caps.msix_bar = Some((space.try_read32(pos + 4)? & 0x7) as u8);
            }
            _ => {}
        }
        pos = usize::from(space.try_read8(pos + 1)? & !3);
    }
    Ok(caps)
}
