// SPDX-License-Identifier: GPL-2.0

//! vfio-pci: any PCI function, handed to userspace through VFIO.
//!
//! The driver takes a device only when its `driver_override` names `vfio-pci` (or through
//! `new_id`), as upstream. It registers the function as a VFIO device with upstream's region
//! layout: region `N` starts at `N << 40` in the device file, BARs 0 to 5 first, then the ROM,
//! config space and VGA. Config space goes through a virtual copy ([`config`]) so that
//! userspace sees and sizes its BARs and capabilities as if it owned the bus, while the host
//! keeps its addresses, interrupts and power state; memory BARs are read and written through
//! the host's mapping, only while memory decoding is on in the virtual command register
//! (`EIO` otherwise, as upstream), I/O-port BARs through the host's port mapping, and the
//! ROM, read-only, through `pci_map_rom()`.
//!
//! Memory BARs of a page or more can also be mapped into userspace (`mmap()` of the device
//! file at the region's offset, only shared), as upstream: the mapping is filled in page by
//! page on fault, only while memory decoding is on (`SIGBUS` otherwise), and a config write
//! that turns memory decoding off first zaps every mapping of the device's BARs, in every
//! process, through the address space all files of the device share. A mapping holds its
//! file, so the device stays open until it is unmapped. The BAR that holds the MSI-X table
//! says so with `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`, as upstream: all of it may be mapped.
//!
//! Lock order: `irqs`, then `config`, then `mem`; the mmap lock of a process comes before
//! `mem` (faults), and `mem` before the address space's lock (zaps).
//!
//! Interrupts ([`irqs`]): INTx, MSI, MSI-X, the device request and errors, through eventfds.
//! Resets: of the function (`VFIO_DEVICE_RESET`), and of its slot or bus with every function
//! there ([`hot_reset`]), which is why the functions of a slot or bus share a device set.
//! SR-IOV and the VF token are in [`sriov`], BAR slices as dma-bufs in [`dma_buf`], runtime PM
//! and the low-power device features in [`power`], with the power states the user writes.
//! Not yet here (see `Documentation/iommufd-vfio-rust.rst`): VGA.
//! The driver is built into
//! the VFIO module (the driver API is Rust, which another module cannot call), which offers
//! the module name `vfio-pci` as an alias.

mod config;
mod dma_buf;
mod hot_reset;
mod irqs;
mod power;
pub(crate) mod sriov;

use crate::device::{
    answer_device_info,
    InfoCaps,
    RegionInfo,
    Registration,
    VfioDevice,
    VfioDeviceOps, //
};
use config::{
    Bar as BarKind,
    ConfigIo,
    DeviceInfo,
    PciConfig,
    PCI_STD_HEADER_SIZEOF, //
};
use kernel::{
    device::{
        Bound,
        Core,
        Device, //
    },
    devres::Devres,
    io::Io,
    mm::virt::{
        flags as vm_flags,
        FaultResult,
        IoFault,
        VmFault,
        VmaNew, //
    },
    new_mutex,
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    pci::{
        self,
        DevresBar,
        ResetScope, //
    },
    pm_runtime::{
        self,
        Usage, //
    },
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex, //
    },
    uaccess::{
        UserSliceReader,
        UserSliceWriter, //
    },
    uapi,
    uapi_ioctl::{
        VFIO_DEVICE_GET_INFO,
        VFIO_DEVICE_GET_IRQ_INFO,
        VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
        VFIO_DEVICE_PCI_HOT_RESET,
        VFIO_DEVICE_RESET,
        VFIO_DEVICE_SET_IRQS, //
    },
    uuid::Uuid,
};

/// Where region `index` starts in the device file: `index << VFIO_PCI_OFFSET_SHIFT`.
const OFFSET_SHIFT: u32 = 40;
/// The offset within a region of a device file position.
const OFFSET_MASK: u64 = (1 << OFFSET_SHIFT) - 1;
/// How many bytes one round of a read or write moves through the kernel's bounce buffer.
const CHUNK: usize = 64;

/// `PCI_HEADER_TYPE` and the type of a normal function (`PCI_HEADER_TYPE_NORMAL`).
const PCI_HEADER_TYPE: usize = 0x0e;
/// `PCI_BASE_ADDRESS_0`: the first BAR register.
const PCI_BASE_ADDRESS_0: usize = 0x10;
/// `PCI_INTERRUPT_PIN`.
const PCI_INTERRUPT_PIN: usize = 0x3d;
/// `PCI_ROM_RESOURCE`: the ROM's resource number.
const PCI_ROM_RESOURCE: u32 = 6;

/// `PCI_COMMAND`, and its memory decoding bit.
const PCI_COMMAND: usize = 0x04;
const PCI_COMMAND_MEMORY: u8 = 0x2;
/// Where the BARs' regions start and end in the device file (the ROM's region follows them).
const BARS_START: u64 = (uapi::VFIO_PCI_BAR0_REGION_INDEX as u64) << OFFSET_SHIFT;
const BARS_END: u64 = (uapi::VFIO_PCI_ROM_REGION_INDEX as u64) << OFFSET_SHIFT;

/// The region and offset of a device file position; `EINVAL` beyond the regions.
fn split_pos(pos: i64) -> Result<(u32, u64)> {
    let pos = u64::try_from(pos).map_err(|_| EINVAL)?;
    let index = u32::try_from(pos >> OFFSET_SHIFT).map_err(|_| EINVAL)?;
    if index >= uapi::VFIO_PCI_NUM_REGIONS {
        return Err(EINVAL);
    }
    Ok((index, pos & OFFSET_MASK))
}

/// The errno of a config space access that failed: `EFAULT` outside config space, as upstream.
fn config_errno(e: config::Error) -> Error {
    match e {
        config::Error::OutOfRange => EFAULT,
        config::Error::Io => EIO,
        config::Error::InvalidSetup => EINVAL,
    }
}

/// The function's real config space, for [`PciConfig`], with what its writes set off.
struct HwConfig<'a> {
    pdev: &'a pci::Device<Bound>,
    pci: &'a PciDevice,
    vdev: &'a VfioDevice,
}

/// The accessors of [`HwConfig`] for one width: through the extended view where the function
/// has one.
macro_rules! hw_config_access {
    ($read:ident, $try_read:ident, $write:ident, $try_write:ident, $ty:ty) => {
        fn $read(&self, offset: u16) -> Result<$ty, config::Error> {
            let offset = usize::from(offset);
            match self.pdev.config_space_extended() {
                Ok(space) => space.$try_read(offset),
                Err(_) => self.pdev.config_space().$try_read(offset),
            }
            .map_err(|_| config::Error::Io)
        }

        fn $write(&self, offset: u16, val: $ty) -> Result<(), config::Error> {
            let offset = usize::from(offset);
            match self.pdev.config_space_extended() {
                Ok(space) => space.$try_write(val, offset),
                Err(_) => self.pdev.config_space().$try_write(val, offset),
            }
            .map_err(|_| config::Error::Io)
        }
    };
}

impl ConfigIo for HwConfig<'_> {
    hw_config_access!(read8, try_read8, write8, try_write8, u8);
    hw_config_access!(read16, try_read16, write16, try_write16, u16);
    hw_config_access!(read32, try_read32, write32, try_write32, u32);

    fn set_intx_masked(&self, masked: bool) {
        if masked {
            self.pci.intx.mask();
        } else {
            self.pci.intx.unmask();
        }
    }

    fn set_power_state(&self, state: u8) {
        power::set_user_state(self.pci, self.vdev, self.pdev, state);
    }

    /// A function level reset through config space (PCIe or AF), with the config lock held;
    /// a reset that fails goes unreported, as upstream.
    fn reset_function(&self) {
        let _ = self.pci.reset_locked(self.vdev, self.pdev);
    }

    /// Applied as asked, but never below the max payload size, as upstream.
    fn set_read_request_size(&self, bytes: u32) {
        let _ = self
            .pdev
            .set_pcie_read_request(bytes.max(self.pdev.pcie_max_payload()));
    }
}

/// The host's mapping of one BAR.
enum Mapped {
    /// Memory, read and written as MMIO, only while memory decoding is on.
    Mem(DevresBar),
    /// Port I/O, as upstream whatever the command register says.
    Io(Devres<pci::IoPortBar>),
}

/// One BAR's mapping, reached for an access.
enum Reached<'a> {
    Mem(&'a pci::Bar<'a>),
    Io(&'a pci::IoPortBar),
    /// The expansion ROM, read-only; past its images it reads as all ones, as upstream.
    Rom(&'a pci::Rom<'a>),
}

impl Reached<'_> {
    /// Reads `width` (1, 2 or 4) bytes at `pos`, little-endian.
    fn read(&self, width: usize, pos: usize) -> Result<u32> {
        Ok(match (self, width) {
            (Self::Mem(bar), 4) => bar.try_read32(pos)?,
            (Self::Mem(bar), 2) => bar.try_read16(pos)?.into(),
            (Self::Mem(bar), _) => bar.try_read8(pos)?.into(),
            (Self::Io(bar), 4) => bar.try_read32(pos)?,
            (Self::Io(bar), 2) => bar.try_read16(pos)?.into(),
            (Self::Io(bar), _) => bar.try_read8(pos)?.into(),
            (Self::Rom(rom), _) if pos + width > rom.size() => u32::MAX,
            (Self::Rom(rom), 4) => rom.try_read32(pos)?,
            (Self::Rom(rom), 2) => rom.try_read16(pos)?.into(),
            (Self::Rom(rom), _) => rom.try_read8(pos)?.into(),
        })
    }

    /// Writes the low `width` (1, 2 or 4) bytes of `val` at `pos`, little-endian.
    fn write(&self, width: usize, pos: usize, val: u32) -> Result {
        match (self, width) {
            (Self::Mem(bar), 4) => bar.try_write32(val, pos),
            (Self::Mem(bar), 2) => bar.try_write16(val as u16, pos),
            (Self::Mem(bar), _) => bar.try_write8(val as u8, pos),
            (Self::Io(bar), 4) => bar.try_write32(val, pos),
            (Self::Io(bar), 2) => bar.try_write16(val as u16, pos),
            (Self::Io(bar), _) => bar.try_write8(val as u8, pos),
            (Self::Rom(_), _) => Err(EINVAL),
        }
    }
}

/// The driver's side of one function.
#[pin_data]
struct PciDevice {
    /// What config space alone does not say, read at probe.
    info: DeviceInfo,
    /// The host's mappings of the BARs, by BAR number.
    bars: [Option<Mapped>; 6],
    /// The virtual config space, set up again at each first open; it also decides whether
    /// BARs may be accessed (memory decoding), so BAR accesses hold its lock.
    #[pin]
    config: Mutex<KBox<PciConfig>>,
    /// The function's MSI and MSI-X capabilities, read at probe.
    irq_caps: irqs::IrqCaps,
    /// The interrupts the user set up. Locked before `config`.
    #[pin]
    irqs: Mutex<irqs::Irqs>,
    /// INTx's masking, shared with its handler.
    intx: Arc<irqs::IntxLine>,
    /// The error eventfd.
    #[pin]
    err: irqs::ErrTrigger,
    /// The function could be reset when its user opened it: `VFIO_DEVICE_RESET` is offered,
    /// and the function is reset again for the next user.
    reset_works: Atomic<bool>,
    /// Which BARs userspace may map: memory BARs of at least a page, as upstream (which also
    /// maps a smaller BAR that starts a page, after reserving the rest of that page: not here).
    mmap_ok: [bool; 6],
    /// Where each memory BAR starts in physical memory.
    bar_start: [u64; 6],
    /// Whether the function keeps its config space through D3hot (`NoSoftRst`), read at probe:
    /// if not, [`power`] saves it for the way back.
    keeps_state: bool,
    /// Whether the expansion ROM holds a valid image (checked at probe, with memory decoding
    /// on): the ROM region is offered only then.
    rom_valid: bool,
    /// Whether the pages of BAR mappings may be faulted in: memory decoding as the last config
    /// write left it, and low power (upstream's `memory_lock`). Locked after `config`, and
    /// never held across a copy from or to userspace, since faults take it under the mmap lock,
    /// nor while resuming the function, whose resume callback takes it.
    mem: Arc<Mutex<power::Gate>>,
    /// INTx was masked when the function runtime suspended, to be unmasked at resume.
    pm_intx_masked: Atomic<bool>,
    /// The dma-bufs exported from the BARs (`VFIO_DEVICE_FEATURE_DMA_BUF`), whose memory is
    /// taken away whenever the BARs' mappings are zapped. Locked after `mem`.
    #[pin]
    dma_bufs: Mutex<dma_buf::DmaBufs>,
    /// The function as an SR-IOV PF or VF, and the VF token that goes with it.
    sriov: sriov::Role,
}

/// What one mapping of a BAR holds, in each of its vmas: what its faults need.
struct BarMapping {
    /// Whether the BARs may be reached, see [`PciDevice::mem`].
    mem: Arc<Mutex<power::Gate>>,
    /// The BAR's region's first page in the device file.
    region_pgoff: usize,
    /// The BAR's first page frame.
    first_pfn: usize,
    /// How many pages the BAR spans.
    pages: usize,
}

impl IoFault for BarMapping {
    /// Maps the page of the BAR that was touched, unless memory decoding is off or the function
    /// is in low power (`SIGBUS`), as upstream.
    fn fault(&self, vmf: &VmFault) -> FaultResult {
        let Some(page) = vmf
            .pgoff()
            .checked_sub(self.region_pgoff)
            .filter(|&page| page < self.pages)
        else {
            return FaultResult::SIGBUS;
        };
        if !self.mem.lock().open() {
            return FaultResult::SIGBUS;
        }
        vmf.insert_io_pfn(self.first_pfn + page)
    }
}

/// A direction of a region access, with the user's buffer.
enum Access<'a> {
    Read(&'a mut UserSliceWriter),
    Write(&'a mut UserSliceReader),
}

impl Access<'_> {
    fn len(&self) -> usize {
        match self {
            Access::Read(w) => w.len(),
            Access::Write(r) => r.len(),
        }
    }
}

impl PciDevice {
    /// Reads what the driver must tell [`PciConfig`] from the function and its resources.
    fn probe_info(pdev: &pci::Device<Core<'_>>) -> Result<DeviceInfo> {
        let space = pdev.config_space();
        let mut bars = [BarKind::None; 6];
        let mut i = 0;
        while i < bars.len() {
            let len = pdev.resource_len(i as u32)?;
            let reg = space.try_read32(PCI_BASE_ADDRESS_0 + 4 * i)?;
            let prefetch = reg & 0x8 != 0;
            let mem64 = reg & 0x1 == 0 && (reg >> 1) & 0x3 == 0x2;
            bars[i] = match (len, reg & 0x1 != 0, mem64) {
                (0, _, _) => BarKind::None,
                (len, true, _) => BarKind::Io { len },
                (len, false, true) => BarKind::Mem64 { len, prefetch },
                (len, false, false) => BarKind::Mem32 { len, prefetch },
            };
            // The upper half of a 64-bit BAR is no BAR of its own.
            i += if mem64 { 2 } else { 1 };
        }
        Ok(DeviceInfo {
            cfg_size: pdev.cfg_size().into_raw(),
            bars,
            rom_size: pdev.resource_len(PCI_ROM_RESOURCE)?,
            // Masked at the function where it can be, else at the interrupt controller (see
            // `irqs`).
            has_intx: space.try_read8(PCI_INTERRUPT_PIN)? != 0,
            nointx: false,
            no_command_memory: false,
            vf_ids: None,
        })
    }

    /// The length of BAR `index`, 0 if it has none.
    fn bar_len(&self, index: usize) -> u64 {
        match self.info.bars.get(index) {
            Some(BarKind::Io { len } | BarKind::Mem32 { len, .. } | BarKind::Mem64 { len, .. }) => {
                *len
            }
            _ => 0,
        }
    }

    /// Reads or writes config space at `offset`: all of it or nothing, `EFAULT` if it does not
    /// fit in config space, as upstream.
    fn config_rw(
        &self,
        vdev: &VfioDevice,
        pdev: &pci::Device<Bound>,
        offset: u64,
        mut access: Access<'_>,
    ) -> Result<usize> {
        let count = access.len();
        let size = self.config.lock().size() as u64;
        if offset >= size || count as u64 > size - offset {
            return Err(EFAULT);
        }
        let hw = HwConfig {
            pdev,
            pci: self,
            vdev,
        };
        let mut buf = [0u8; CHUNK];
        let mut done = 0;
        while done < count {
            let at = offset as usize + done;
            // The header's first 64 bytes (the command register) never share a piece with the
            // capabilities (the PM control register): their writes take the `mem` lock each.
            let header_end = match at < PCI_STD_HEADER_SIZEOF {
                true => PCI_STD_HEADER_SIZEOF - at,
                false => CHUNK,
            };
            let n = (count - done).min(CHUNK).min(header_end);
            match &mut access {
                Access::Read(user) => {
                    self.config
                        .lock()
                        .read(&hw, at, &mut buf[..n])
                        .map_err(config_errno)?;
                    user.write_slice(&buf[..n])?;
                }
                Access::Write(user) => {
                    user.read_slice(&mut buf[..n])?;
                    let mut config = self.config.lock();
                    let written = match PCI_COMMAND.checked_sub(at).and_then(|i| buf[..n].get(i)) {
                        // A write of the command register's low byte may turn memory decoding
                        // off: the BARs' mappings are zapped first, and faults wait, as
                        // upstream.
                        Some(&cmd) => {
                            let mut mem = self.mem.lock();
                            if cmd & PCI_COMMAND_MEMORY == 0 {
                                self.withdraw_bars(vdev);
                            }
                            let written = config.write(&hw, at, &buf[..n]);
                            mem.decoding = config.memory_enabled();
                            self.restore_bars(&mem);
                            written
                        }
                        None => config.write(&hw, at, &buf[..n]),
                    };
                    written.map_err(config_errno)?;
                }
            }
            done += n;
        }
        Ok(count)
    }

    /// Reads or writes BAR `index` (the ROM for [`PCI_ROM_RESOURCE`], only read) at `offset`,
    /// up to its end, in naturally aligned pieces of 4, 2 or 1 bytes: `EINVAL` beyond the BAR
    /// or for a BAR without a mapping, `EIO` for memory while memory decoding is off (`ENOMEM`
    /// for the ROM, as upstream) or the function is in D3 (runtime suspended, see [`power`]).
    fn bar_rw(
        &self,
        pdev: &pci::Device<Bound>,
        index: usize,
        offset: u64,
        mut access: Access<'_>,
    ) -> Result<usize> {
        // With memory decoding off the ROM cannot be mapped (upstream tries, and fails with
        // `ENOMEM`, logging the bad signature it reads): not even tried.
        let rom = match index == PCI_ROM_RESOURCE as usize {
            true if self.rom_valid && !self.config.lock().memory_enabled() => return Err(ENOMEM),
            true if self.rom_valid => Some(pdev.map_rom().ok_or(ENOMEM)?),
            true => return Err(EINVAL),
            false => None,
        };
        let len = match rom {
            Some(_) => self.info.rom_size,
            None => self.bar_len(index),
        };
        if offset >= len {
            return Err(EINVAL);
        }
        let count = access.len().min((len - offset) as usize);
        let bar = match (&rom, self.bars.get(index).and_then(Option::as_ref)) {
            (Some(rom), _) => Reached::Rom(rom),
            (None, Some(Mapped::Mem(bar))) => Reached::Mem(bar.access(pdev.as_ref())?),
            (None, Some(Mapped::Io(bar))) => Reached::Io(bar.access(pdev.as_ref())?),
            (None, None) => return Err(EINVAL),
        };
        let mut buf = [0u8; CHUNK];
        let mut done = 0;
        while done < count {
            let n = (count - done).min(CHUNK);
            let at = offset as usize + done;
            if let Access::Write(user) = &mut access {
                user.read_slice(&mut buf[..n])?;
            }
            {
                let config = self.config.lock();
                if !matches!(bar, Reached::Io(_)) && (!config.memory_enabled() || pdev.in_d3()) {
                    return Err(EIO);
                }
                let mut i = 0;
                while i < n {
                    let pos = at + i;
                    let width = if pos % 4 == 0 && n - i >= 4 {
                        4
                    } else if pos % 2 == 0 && n - i >= 2 {
                        2
                    } else {
                        1
                    };
                    let piece = &mut buf[i..i + width];
                    if let Access::Read(_) = &access {
                        let val = bar.read(width, pos)?.to_le_bytes();
                        piece.copy_from_slice(&val[..width]);
                    } else {
                        let mut val = [0u8; 4];
                        val[..width].copy_from_slice(piece);
                        bar.write(width, pos, u32::from_le_bytes(val))?;
                    }
                    i += width;
                }
            }
            if let Access::Read(user) = &mut access {
                user.write_slice(&buf[..n])?;
            }
            done += n;
        }
        Ok(count)
    }

    /// A read or write of the device file at `*pos`, which advances by what was done.
    fn rw(&self, vdev: &VfioDevice, pos: &mut i64, access: Access<'_>) -> Result<usize> {
        let (index, offset) = split_pos(*pos)?;
        let parent = vdev.bound_parent()?;
        let pdev: &pci::Device<Bound> = (&*parent).try_into()?;
        let done = match index {
            uapi::VFIO_PCI_CONFIG_REGION_INDEX => self.config_rw(vdev, pdev, offset, access)?,
            i if i <= uapi::VFIO_PCI_BAR5_REGION_INDEX => {
                self.bar_rw(pdev, i as usize, offset, access)?
            }
            uapi::VFIO_PCI_ROM_REGION_INDEX if matches!(access, Access::Read(_)) => {
                self.bar_rw(pdev, PCI_ROM_RESOURCE as usize, offset, access)?
            }
            _ => return Err(EINVAL),
        };
        *pos += done as i64;
        Ok(done)
    }

    /// `VFIO_DEVICE_RESET`: `EINVAL` for a function that cannot reset, as upstream; `EAGAIN`
    /// while its device lock is taken.
    fn reset(&self, vdev: &VfioDevice, pdev: &pci::Device<Bound>) -> Result<isize> {
        if !self.reset_works.load(Relaxed) {
            return Err(EINVAL);
        }
        // BAR accesses hold the config lock and faults the `mem` lock: none runs into the
        // reset, and the BARs' mappings are zapped first, to fault in again after it
        // (upstream's `vfio_pci_zap_and_down_write_memory_lock`).
        let _config = self.config.lock();
        self.reset_locked(vdev, pdev)?;
        Ok(0)
    }

    /// Resets the function, with the config lock held: back in D0 first, with the BARs taken
    /// away from the user meanwhile (upstream's `vfio_pci_zap_and_down_write_memory_lock` and
    /// `vfio_pci_set_power_state`).
    fn reset_locked(&self, vdev: &VfioDevice, pdev: &pci::Device<Bound>) -> Result {
        let mut mem = self.mem.lock();
        self.withdraw_bars(vdev);
        power::set_state(self, pdev, &mut mem, 0);
        let reset = pdev.try_reset_function();
        self.restore_bars(&mem);
        reset
    }

    /// Takes the BARs away from the user while memory decoding is off or the function resets,
    /// with `mem` held: their mappings are zapped (to fault in again once allowed) and the
    /// dma-bufs over them revoked (upstream's `vfio_pci_zap_and_down_write_memory_lock` with
    /// `vfio_pci_dma_buf_move`).
    fn withdraw_bars(&self, vdev: &VfioDevice) {
        vdev.mapping()
            .unmap_range(BARS_START, BARS_END - BARS_START);
        self.dma_bufs.lock().set_revoked(true);
    }

    /// Gives the BARs back after [`PciDevice::withdraw_bars`], with `mem` still held: the
    /// dma-bufs get their memory back if memory decoding is on and the function not in low
    /// power (the mappings fault in again by themselves).
    fn restore_bars(&self, mem: &power::Gate) {
        self.dma_bufs.lock().set_revoked(!mem.open());
    }
}

impl VfioDeviceOps for PciDevice {
    /// Resets the function where it can be, with bus mastering off and INTx unmasked, and
    /// builds the virtual config space from it, for the new user (upstream's
    /// `vfio_pci_core_enable`).
    fn open_device(&self, vdev: &VfioDevice, dev: &Device<Bound>) -> Result {
        let pdev: &pci::Device<Bound> = dev.try_into()?;
        // The function stays active while it is open, but in low power (see [`power`]).
        let awake = Usage::resume_and_get(dev)?;
        pdev.clear_master();
        let reset = pdev.try_reset_function();
        // Someone holds the function's device lock (binding or unbinding it): fail the open
        // rather than hand out a function that missed its reset.
        if reset == Err(EAGAIN) {
            return Err(EAGAIN);
        }
        self.reset_works.store(reset.is_ok(), Relaxed);
        if self.irq_caps.intx {
            pdev.set_intx(true);
        }
        let mut config = self.config.lock();
        config
            .setup(
                &HwConfig {
                    pdev,
                    pci: self,
                    vdev,
                },
                &self.info,
            )
            .map_err(config_errno)?;
        let mut mem = self.mem.lock();
        mem.decoding = config.memory_enabled();
        mem.opened(awake);
        drop(mem);
        self.sriov.vf_opened(true);
        Ok(())
    }

    /// Every interrupt the user set up goes with them, and bus mastering; the function is
    /// reset where it can be, so that nothing of theirs is left running.
    fn close_device(&self, _vdev: &VfioDevice, dev: &Device<Bound>) {
        // Low power ends and the function is resumed for what follows; the user's count goes
        // last (upstream's `vfio_pci_core_disable`).
        let _awake = {
            let mut mem = self.mem.lock();
            mem.exit(dev);
            mem.closing()
        };
        let _ = pm_runtime::resume(dev);
        if let Ok(pdev) = <&pci::Device<Bound>>::try_from(dev) {
            power::set_state(self, pdev, &mut self.mem.lock(), 0);
        }
        self.sriov.vf_opened(false);
        let mut irqs = self.irqs.lock();
        let config = &mut self.config.lock();
        irqs.close(config, &self.intx, &self.err);
        {
            // The dma-bufs of this user lose the BARs for good.
            let _mem = self.mem.lock();
            self.dma_bufs.lock().revoke_all();
        }
        if let Ok(pdev) = <&pci::Device<Bound>>::try_from(dev) {
            pdev.clear_master();
            if self.reset_works.load(Relaxed) {
                // (a reset that fails leaves the function as the user left it, as upstream)
                let _ = pdev.try_reset_function();
            }
        }
    }

    /// Asks the user to let go through their request eventfd, if they gave one.
    fn request(&self, vdev: &VfioDevice, count: u32) {
        if !self.irqs.lock().request() && count == 0 {
            pr_notice!(
                "vfio{}: no device request channel registered, blocked until released by user\n",
                vdev.index
            );
        }
    }

    /// The function's address, which may go on with `vf_token=<uuid>` (see [`sriov`]).
    #[cfg(CONFIG_VFIO_GROUP)]
    fn match_name(&self, vdev: &VfioDevice, name: &CStr) -> Result<bool> {
        let own = vdev.parent().name().to_bytes();
        let Some(rest) = name.to_bytes().strip_prefix(own) else {
            return Ok(false);
        };
        match sriov::name_options(rest) {
            None => Ok(false),
            Some(token) => {
                self.sriov.check_token(token?.as_ref())?;
                Ok(true)
            }
        }
    }

    fn takes_token(&self) -> bool {
        true
    }

    fn runtime_pm(&self) -> bool {
        true
    }

    fn match_token(&self, _vdev: &VfioDevice, token: Option<&Uuid>) -> Result {
        self.sriov.check_token(token)
    }

    fn as_any(&self) -> Option<&(dyn core::any::Any + Send + Sync)> {
        Some(self)
    }

    fn ioctl(&self, vdev: &VfioDevice, cmd: u32, arg: usize) -> Result<isize> {
        // The function, for the ioctls that reach it.
        let with_pdev = |f: &dyn Fn(&pci::Device<Bound>) -> Result<isize>| {
            let parent = vdev.bound_parent()?;
            f((&*parent).try_into()?)
        };
        match cmd {
            VFIO_DEVICE_GET_INFO => answer_device_info(
                arg,
                uapi::VFIO_DEVICE_FLAGS_PCI
                    | if self.reset_works.load(Relaxed) {
                        uapi::VFIO_DEVICE_FLAGS_RESET
                    } else {
                        0
                    },
                uapi::VFIO_PCI_NUM_REGIONS,
                uapi::VFIO_PCI_NUM_IRQS,
            ),
            VFIO_DEVICE_GET_IRQ_INFO => irqs::Irqs::info(&self.irq_caps, arg),
            VFIO_DEVICE_SET_IRQS => with_pdev(&|pdev| {
                let mut irqs = self.irqs.lock();
                let mut config = self.config.lock();
                irqs.set(
                    pdev,
                    &self.irq_caps,
                    &mut config,
                    &self.intx,
                    &self.err,
                    arg,
                )
            }),
            VFIO_DEVICE_RESET => with_pdev(&|pdev| self.reset(vdev, pdev)),
            VFIO_DEVICE_GET_PCI_HOT_RESET_INFO => {
                with_pdev(&|pdev| hot_reset::info(vdev, pdev, arg))
            }
            VFIO_DEVICE_PCI_HOT_RESET => with_pdev(&|pdev| hot_reset::reset(vdev, pdev, arg)),
            _ => Err(ENOTTY),
        }
    }

    /// The PCI device features: the dma-bufs of BAR slices, a PF's VF token and low power.
    fn device_feature(
        &self,
        vdev: &VfioDevice,
        flags: u32,
        arg: usize,
        argsz: usize,
    ) -> Result<isize> {
        match flags & uapi::VFIO_DEVICE_FEATURE_MASK {
            uapi::VFIO_DEVICE_FEATURE_DMA_BUF => dma_buf::feature(self, flags, arg, argsz),
            uapi::VFIO_DEVICE_FEATURE_PCI_VF_TOKEN => self.sriov.feature(flags, arg, argsz),
            _ => power::feature(self, vdev, flags, arg, argsz),
        }
    }

    fn region_info(&self, _vdev: &VfioDevice, index: u32) -> Result<RegionInfo> {
        let offset = u64::from(index) << OFFSET_SHIFT;
        let rw = uapi::VFIO_REGION_INFO_FLAG_READ | uapi::VFIO_REGION_INFO_FLAG_WRITE;
        Ok(match index {
            uapi::VFIO_PCI_CONFIG_REGION_INDEX => RegionInfo {
                flags: rw,
                size: self.info.cfg_size as u64,
                offset,
                caps: InfoCaps::default(),
            },
            i if i <= uapi::VFIO_PCI_BAR5_REGION_INDEX => {
                let mapped = self.bars.get(i as usize).is_some_and(Option::is_some);
                let mut info = RegionInfo {
                    flags: if mapped { rw } else { 0 },
                    size: if mapped { self.bar_len(i as usize) } else { 0 },
                    offset,
                    caps: InfoCaps::default(),
                };
                if self.mmap_ok.get(i as usize) == Some(&true) {
                    info.flags |= uapi::VFIO_REGION_INFO_FLAG_MMAP;
                    // The MSI-X table may be mapped with the rest of its BAR, as upstream.
                    if self.irq_caps.msix_bar == Some(i as u8) {
                        info.caps
                            .add(uapi::VFIO_REGION_INFO_CAP_MSIX_MAPPABLE as u16, 1, &[])?;
                    }
                }
                info
            }
            // A ROM with a valid image is read-only, the size of its BAR, as upstream.
            uapi::VFIO_PCI_ROM_REGION_INDEX if self.rom_valid => RegionInfo {
                flags: uapi::VFIO_REGION_INFO_FLAG_READ,
                size: self.info.rom_size,
                offset,
                caps: InfoCaps::default(),
            },
            // VGA is not offered yet: a region of size 0, as is a ROM without an image.
            uapi::VFIO_PCI_ROM_REGION_INDEX | uapi::VFIO_PCI_VGA_REGION_INDEX => RegionInfo {
                offset,
                ..Default::default()
            },
            _ => return Err(EINVAL),
        })
    }

    /// Maps BAR pages at the vma's offset, as upstream: `EINVAL` for a private mapping, a region
    /// that is not a BAR that may be mapped, or a range past the BAR's last page. The pages are
    /// faulted in (see [`BarMapping`]).
    fn mmap(&self, _vdev: &VfioDevice, vma: &VmaNew) -> Result {
        let shift = OFFSET_SHIFT as usize - PAGE_SHIFT;
        let index = vma.pgoff() >> shift;
        if vma.flags() & vm_flags::SHARED == 0 {
            return Err(EINVAL);
        }
        if index >= uapi::VFIO_PCI_ROM_REGION_INDEX as usize || !self.mmap_ok[index] {
            return Err(EINVAL);
        }
        let pages = (self.bar_len(index) as usize).div_ceil(PAGE_SIZE);
        let first = vma.pgoff() & ((1 << shift) - 1);
        let count = (vma.end() - vma.start()) / PAGE_SIZE;
        if first.checked_add(count).is_none_or(|end| end > pages) {
            return Err(EINVAL);
        }
        let hold = Arc::new(
            BarMapping {
                mem: self.mem.clone(),
                region_pgoff: index << shift,
                first_pfn: (self.bar_start[index] >> PAGE_SHIFT) as usize,
                pages,
            },
            GFP_KERNEL,
        )?;
        vma.set_io_fault(hold)
    }

    fn read(&self, vdev: &VfioDevice, buf: &mut UserSliceWriter, pos: &mut i64) -> Result<usize> {
        self.rw(vdev, pos, Access::Read(buf))
    }

    fn write(&self, vdev: &VfioDevice, buf: &mut UserSliceReader, pos: &mut i64) -> Result<usize> {
        self.rw(vdev, pos, Access::Write(buf))
    }
}

/// The PCI driver `vfio-pci`.
pub(crate) struct VfioPciDriver;

kernel::pci_device_table!(
    PCI_TABLE,
    <VfioPciDriver as pci::Driver>::IdInfo,
    // Any function, but only when its `driver_override` names the driver, as upstream.
    [(pci::DeviceId::from_class(0, 0).override_only(), ())]
);

/// What vfio-pci keeps of a function it is bound to.
pub(crate) struct Binding {
    pci: Arc<PciDevice>,
    /// The VFIO device, registered while the driver is bound.
    _reg: Registration,
    /// Keeps the function from runtime suspending, with `disable_idle_d3` (see [`power`]).
    _idle: Option<Usage>,
}

impl pci::Driver for VfioPciDriver {
    type IdInfo = ();
    type Data<'bound> = Binding;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;
    const DRIVER_MANAGED_DMA: bool = true;
    const HAS_SRIOV_CONFIGURE: bool = true;
    const HAS_ERROR_DETECTED: bool = true;
    const HAS_RUNTIME_PM: bool = true;

    /// Tells the user through the error eventfd and lets them recover the function, as
    /// upstream (`vfio_pci_core_aer_err_detected`).
    fn error_detected<'bound>(
        _pdev: &'bound pci::Device<Core<'_>>,
        this: Pin<&Binding>,
        _state: pci::ChannelState,
    ) -> pci::ErsResult {
        this.pci.err.signal();
        pci::ErsResult::CanRecover
    }

    fn sriov_configure<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        this: Pin<&Binding>,
        nr_virtfn: u16,
    ) -> Result<u16> {
        sriov::configure(pdev, &this.pci.sriov, nr_virtfn)
    }

    fn runtime_suspend<'bound>(pdev: &'bound pci::Device<Bound>, this: Pin<&Binding>) -> Result {
        power::runtime_suspend(&this.pci, pdev);
        Ok(())
    }

    fn runtime_resume<'bound>(pdev: &'bound pci::Device<Bound>, this: Pin<&Binding>) -> Result {
        power::runtime_resume(&this.pci, pdev.as_ref());
        Ok(())
    }

    /// A PF's VFs go first (and with them their users, who are asked to let go), as upstream.
    fn unbind<'bound>(pdev: &'bound pci::Device<Core<'_>>, _this: Pin<&Binding>) {
        sriov::disable(pdev);
    }

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        // Bridges and other header types are not for userspace, as upstream.
        if pdev.config_space().try_read8(PCI_HEADER_TYPE)? & 0x7f != 0 {
            return Err(EINVAL);
        }
        let info = PciDevice::probe_info(pdev)?;
        let irq_caps = irqs::IrqCaps {
            intx: info.has_intx,
            ..irqs::probe_caps(pdev)?
        };
        pdev.enable_device_mem()?;
        let mut bars: [Option<Mapped>; 6] = Default::default();
        let mut mmap_ok = [false; 6];
        let mut bar_start = [0u64; 6];
        for (i, bar) in bars.iter_mut().enumerate() {
            match info.bars[i] {
                BarKind::Mem32 { len, .. } | BarKind::Mem64 { len, .. } => {
                    let mem = pdev.iomap_region(i as u32, c"vfio-pci")?.into_devres()?;
                    *bar = Some(Mapped::Mem(mem));
                    bar_start[i] = pdev.resource_start(i as u32)?;
                    mmap_ok[i] = len >= PAGE_SIZE as u64;
                }
                // Port space that cannot be had (taken by a legacy driver, say) leaves the BAR
                // without a region rather than the function without a driver.
                BarKind::Io { .. } => match pci::IoPortBar::new(pdev, i as u32, c"vfio-pci") {
                    Ok(io) => *bar = Some(Mapped::Io(io)),
                    Err(e) => dev_info!(pdev, "vfio-pci: I/O BAR {i} not offered: {e:?}\n"),
                },
                BarKind::None => {}
            }
        }
        let rom_valid = info.rom_size != 0 && pdev.map_rom().is_some();
        let mem = Arc::pin_init(new_mutex!(power::Gate::new()), GFP_KERNEL)?;
        // About 16 KiB: made in place, never on the stack.
        let config = KBox::init(PciConfig::init_zeroed(), GFP_KERNEL)?;
        let intx = Arc::pin_init(irqs::IntxLine::new(pdev.into()), GFP_KERNEL)?;
        let ops = Arc::pin_init(
            try_pin_init!(PciDevice {
                info,
                bars,
                config <- new_mutex!(config),
                irq_caps,
                irqs <- new_mutex!(irqs::Irqs::default()),
                intx,
                err <- irqs::ErrTrigger::new(),
                reset_works: Atomic::new(false),
                mmap_ok,
                bar_start,
                rom_valid,
                keeps_state: pdev.keeps_state_in_d3(),
                mem,
                pm_intx_masked: Atomic::new(false),
                dma_bufs <- new_mutex!(dma_buf::DmaBufs::new()),
                sriov: sriov::Role::probe(pdev)?,
            }),
            GFP_KERNEL,
        )?;
        // The functions a slot or bus reset reaches share a device set, so that a hot reset
        // can check that nobody else has one of them open; a function on a root bus or a VF is
        // a set of its own, as upstream.
        let set_id = match pdev.on_root_bus() || pdev.is_virtfn() {
            true => None,
            false => Some(match pdev.hot_reset_scope() {
                Some(ResetScope::Slot) => pdev.hot_reset_key(ResetScope::Slot),
                _ => pdev.hot_reset_key(ResetScope::Bus),
            }),
        };
        let reg = Registration::new(pdev.as_ref(), ops.clone(), set_id)?;
        dev_info!(pdev, "vfio-pci: vfio{}\n", reg.device().index);
        Ok(Binding {
            pci: ops,
            _reg: reg,
            _idle: power::idle_hold(pdev.as_ref()),
        })
    }
}
