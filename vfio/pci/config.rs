// SPDX-License-Identifier: GPL-2.0

//! PCI config space virtualization for vfio-pci.
//!
//! Userspace owns the device but not the bus it sits on, so it cannot be handed the real
//! config space: BARs hold host addresses, the interrupt and power fields are the host's
//! business, and some registers (phantom functions, max payload size) would break other
//! devices. Yet QEMU and DPDK need to read and write every byte as if they owned it. This
//! module stands between the two: each byte of config space belongs to the header or to one
//! capability, and each bit of it is either passed to hardware, kept in a virtual copy, or
//! protected (writes dropped). The rules are those of upstream's `vfio_pci_config.c`.
//!
//! The logic is plain `core` Rust with no kernel bindings, so that it can be tested on the
//! host against fake devices. The driver gives it the device through [`ConfigIo`] (config
//! accessors plus the few side effects a config write can trigger: power state, function
//! reset, read request size, INTx masking, VPD) and maps [`Error`] to an errno.
//!
//! Per byte we keep: which capability owns it (`map`), the virtual value (`vconfig`), which
//! bits are virtual (`virt`) and which are writable (`write`). A read takes virtual bits from
//! `vconfig` and the rest from hardware; a write puts writable virtual bits in `vconfig`,
//! writes the writable real bits to hardware with a read-modify-write, and drops the rest.
//! Upstream shares one permission table per capability type between devices; we fill per
//! device tables once at setup, which makes the access path one simple rule (about 16 KiB per
//! device, allocated once by the driver).
//!
//! Locking is the caller's: [`PciConfig`] is `&mut` for every access. A write that covers
//! `PCI_COMMAND` may turn memory decoding off, so the driver takes its memory lock (and zaps
//! BAR mappings) around such writes, as upstream does inside its command handler.

use core::cmp::min;

/// What went wrong in a config space access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Error {
    /// The access lies outside config space. Upstream returns `EFAULT` for this.
    OutOfRange,
    /// The device did not answer a config access (the driver maps its own error).
    Io,
    /// The driver described the device inconsistently at setup (`EINVAL`).
    InvalidSetup,
}

/// Config space accessors over the real device, plus the side effects of config writes.
///
/// Offsets are naturally aligned for the access width. The hooks have defaults that do
/// nothing (or fail, for VPD), for drivers and tests that do not need them.
pub(crate) trait ConfigIo {
    /// Reads a byte of the device's config space.
    fn read8(&self, offset: u16) -> Result<u8, Error>;
    /// Reads a 16-bit word of the device's config space.
    fn read16(&self, offset: u16) -> Result<u16, Error>;
    /// Reads a 32-bit dword of the device's config space.
    fn read32(&self, offset: u16) -> Result<u32, Error>;
    /// Writes a byte of the device's config space.
    fn write8(&self, offset: u16, val: u8) -> Result<(), Error>;
    /// Writes a 16-bit word of the device's config space.
    fn write16(&self, offset: u16, val: u16) -> Result<(), Error>;
    /// Writes a 32-bit dword of the device's config space.
    fn write32(&self, offset: u16, val: u32) -> Result<(), Error>;

    /// Userspace wrote the PM control register: move the device to D`state` (0..=3).
    fn set_power_state(&self, _state: u8) {}
    /// Userspace asked for a function level reset (PCIe or AF), and the device has one.
    fn reset_function(&self) {}
    /// Userspace changed the max read request size; the driver applies it, raised to the
    /// device's max payload size.
    fn set_read_request_size(&self, _bytes: u32) {}
    /// Userspace toggled INTx disable in the command register: mask or unmask the INTx the
    /// driver forwards.
    fn set_intx_masked(&self, _masked: bool) {}
    /// Reads a dword of vital product data at `addr`.
    fn read_vpd(&self, _addr: u16) -> Result<u32, Error> {
        Err(Error::Io)
    }
    /// Writes a dword of vital product data at `addr`.
    fn write_vpd(&self, _addr: u16, _val: u32) -> Result<(), Error> {
        Err(Error::Io)
    }
}

/// One standard BAR as the host assigned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bar {
    /// Not implemented, or not assigned by the host: reads as zero.
    None,
    /// I/O space of `len` bytes.
    Io { len: u64 },
    /// 32-bit memory of `len` bytes.
    Mem32 { len: u64, prefetch: bool },
    /// 64-bit memory of `len` bytes; the next BAR slot is its upper half.
    Mem64 { len: u64, prefetch: bool },
}

/// What the driver knows about the device that config space alone does not say.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeviceInfo {
    /// 256 for conventional PCI, 4096 for PCIe and PCI-X mode 2.
    pub(crate) cfg_size: usize,
    /// The six standard BARs, from the host's resources.
    pub(crate) bars: [Bar; PCI_STD_NUM_BARS],
    /// Size of the expansion ROM BAR (or of the shadow ROM, rounded up to a power of two),
    /// zero if there is none.
    pub(crate) rom_size: u64,
    /// Whether userspace may use INTx; if not, the interrupt pin reads as zero.
    pub(crate) has_intx: bool,
    /// The device's INTx is broken and the host keeps it disabled (`nointx`).
    pub(crate) nointx: bool,
    /// The device does not implement the memory enable bit (`no_command_memory`).
    pub(crate) no_command_memory: bool,
    /// For an SR-IOV virtual function: its vendor and device ids, which the hardware does
    /// not report in config space.
    pub(crate) vf_ids: Option<(u16, u16)>,
}

// Register layout, named as in include/uapi/linux/pci_regs.h.
const PCI_CFG_SPACE_SIZE: usize = 256;
const PCI_CFG_SPACE_EXP_SIZE: usize = 4096;
pub(super) const PCI_STD_HEADER_SIZEOF: usize = 64;
const PCI_STD_NUM_BARS: usize = 6;

const PCI_VENDOR_ID: usize = 0x00;
const PCI_DEVICE_ID: usize = 0x02;
const PCI_COMMAND: usize = 0x04;
const PCI_COMMAND_IO: u16 = 0x1;
const PCI_COMMAND_MEMORY: u16 = 0x2;
const PCI_COMMAND_INTX_DISABLE: u16 = 0x400;
const PCI_STATUS: usize = 0x06;
const PCI_STATUS_CAP_LIST: u16 = 0x10;
const PCI_CACHE_LINE_SIZE: usize = 0x0c;
const PCI_LATENCY_TIMER: usize = 0x0d;
const PCI_BIST: usize = 0x0f;
const PCI_BASE_ADDRESS_0: usize = 0x10;
const PCI_BASE_ADDRESS_5: usize = 0x24;
const PCI_BASE_ADDRESS_SPACE_IO: u32 = 0x01;
const PCI_BASE_ADDRESS_MEM_TYPE_64: u32 = 0x04;
const PCI_BASE_ADDRESS_MEM_PREFETCH: u32 = 0x08;
const PCI_ROM_ADDRESS: usize = 0x30;
const PCI_ROM_ADDRESS_ENABLE: u32 = 0x01;
const PCI_CAPABILITY_LIST: usize = 0x34;
const PCI_INTERRUPT_LINE: usize = 0x3c;
const PCI_INTERRUPT_PIN: usize = 0x3d;

const PCI_CAP_LIST_NEXT: usize = 1;
const PCI_CAP_FLAGS: usize = 2;
const PCI_CAP_SIZEOF: usize = 4;

const PCI_CAP_ID_PM: u8 = 0x01;
const PCI_CAP_ID_AGP: u8 = 0x02;
const PCI_CAP_ID_VPD: u8 = 0x03;
const PCI_CAP_ID_MSI: u8 = 0x05;
const PCI_CAP_ID_PCIX: u8 = 0x07;
const PCI_CAP_ID_HT: u8 = 0x08;
const PCI_CAP_ID_VNDR: u8 = 0x09;
const PCI_CAP_ID_EXP: u8 = 0x10;
const PCI_CAP_ID_MSIX: u8 = 0x11;
const PCI_CAP_ID_SATA: u8 = 0x12;
const PCI_CAP_ID_AF: u8 = 0x13;

const PCI_PM_PMC: usize = 2;
const PCI_PM_CAP_PME_MASK: u16 = 0xf800;
const PCI_PM_CTRL: usize = 4;
const PCI_PM_CTRL_STATE_MASK: u32 = 0x0003;
const PCI_PM_CTRL_PME_ENABLE: u32 = 0x0100;
const PCI_PM_CTRL_PME_STATUS: u32 = 0x8000;
const PCI_PM_SIZEOF: u16 = 8;
const PCI_AGP_SIZEOF: u16 = 12;

const PCI_VPD_ADDR: usize = 2;
const PCI_VPD_ADDR_F: u16 = 0x8000;
const PCI_VPD_DATA: usize = 4;
const PCI_CAP_VPD_SIZEOF: u16 = 8;

const PCI_MSI_FLAGS: usize = 2;
const PCI_MSI_FLAGS_ENABLE: u16 = 0x0001;
const PCI_MSI_FLAGS_QMASK: u16 = 0x000e;
const PCI_MSI_FLAGS_QSIZE: u16 = 0x0070;
const PCI_MSI_FLAGS_64BIT: u16 = 0x0080;
const PCI_MSI_FLAGS_MASKBIT: u16 = 0x0100;
const PCI_MSI_ADDRESS_LO: usize = 0x04;
const PCI_MSI_ADDRESS_HI: usize = 0x08;
const PCI_MSI_DATA_32: usize = 0x08;
const PCI_MSI_MASK_32: usize = 0x0c;
const PCI_MSI_PENDING_32: usize = 0x10;
const PCI_MSI_DATA_64: usize = 0x0c;
const PCI_MSI_MASK_64: usize = 0x10;
const PCI_MSI_PENDING_64: usize = 0x14;
const PCI_CAP_MSIX_SIZEOF: u16 = 12;

const PCI_X_CMD: usize = 2;
const PCI_X_ECC_CSR: usize = 8;
const PCI_CAP_PCIX_SIZEOF_V0: u16 = 8;
const PCI_CAP_PCIX_SIZEOF_V2: u16 = 24;

const PCI_EXP_FLAGS: usize = 2;
const PCI_EXP_FLAGS_VERS: u16 = 0x000f;
const PCI_EXP_FLAGS_TYPE: u16 = 0x00f0;
const PCI_EXP_TYPE_RC_END: u16 = 0x9;
const PCI_EXP_DEVCAP: usize = 4;
const PCI_EXP_DEVCAP_FLR: u32 = 0x1000_0000;
const PCI_EXP_DEVCTL: usize = 8;
const PCI_EXP_DEVCTL_PAYLOAD: u16 = 0x00e0;
const PCI_EXP_DEVCTL_PHANTOM: u16 = 0x0200;
const PCI_EXP_DEVCTL_READRQ: u16 = 0x7000;
const PCI_EXP_DEVCTL_BCR_FLR: u16 = 0x8000;
const PCI_EXP_DEVCTL2: usize = 0x28;
const PCI_EXP_DEVCTL2_ARI: u16 = 0x0020;
const PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V1: u16 = 12;
const PCI_CAP_EXP_ENDPOINT_SIZEOF_V1: u16 = 20;
const PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V2: u16 = 0x2c;
const PCI_CAP_EXP_ENDPOINT_SIZEOF_V2: u16 = 0x34;

const PCI_AF_CAP: usize = 3;
const PCI_AF_CAP_TP: u8 = 0x01;
const PCI_AF_CAP_FLR: u8 = 0x02;
const PCI_AF_CTRL: usize = 4;
const PCI_AF_CTRL_FLR: u8 = 0x01;
const PCI_CAP_AF_SIZEOF: u16 = 6;

const HT_3BIT_CAP_MASK: u8 = 0xe0;
const HT_CAP_SIZEOF_LONG: u16 = 28;
const HT_CAP_SIZEOF_SHORT: u16 = 24;
const PCI_SATA_REGS: usize = 4;
const PCI_SATA_REGS_MASK: u8 = 0xf;
const PCI_SATA_REGS_INLINE: u8 = 0xf;
const PCI_SATA_SIZEOF_SHORT: u16 = 8;
const PCI_SATA_SIZEOF_LONG: u16 = 16;

const PCI_EXT_CAP_ID_ERR: u16 = 0x01;
const PCI_EXT_CAP_ID_VC: u16 = 0x02;
const PCI_EXT_CAP_ID_DSN: u16 = 0x03;
const PCI_EXT_CAP_ID_PWR: u16 = 0x04;
const PCI_EXT_CAP_ID_MFVC: u16 = 0x08;
const PCI_EXT_CAP_ID_VC9: u16 = 0x09;
const PCI_EXT_CAP_ID_VNDR: u16 = 0x0b;
const PCI_EXT_CAP_ID_ACS: u16 = 0x0d;
const PCI_EXT_CAP_ID_ARI: u16 = 0x0e;
const PCI_EXT_CAP_ID_ATS: u16 = 0x0f;
const PCI_EXT_CAP_ID_SRIOV: u16 = 0x10;
const PCI_EXT_CAP_ID_MCAST: u16 = 0x12;
const PCI_EXT_CAP_ID_PRI: u16 = 0x13;
const PCI_EXT_CAP_ID_REBAR: u16 = 0x15;
const PCI_EXT_CAP_ID_DPA: u16 = 0x16;
const PCI_EXT_CAP_ID_TPH: u16 = 0x17;
const PCI_EXT_CAP_ID_LTR: u16 = 0x18;
const PCI_EXT_CAP_ID_DVSEC: u16 = 0x23;
const PCI_EXT_CAP_NEXT_MASK: u32 = 0xffc << 20;

const PCI_ERR_UNCOR_STATUS: usize = 0x04;
const PCI_ERR_UNCOR_MASK: usize = 0x08;
const PCI_ERR_UNCOR_SEVER: usize = 0x0c;
const PCI_ERR_COR_STATUS: usize = 0x10;
const PCI_ERR_COR_MASK: usize = 0x14;
const PCI_ERR_CAP: usize = 0x18;
const PCI_ERR_CAP_ECRC_GENE: u32 = 0x40;
const PCI_ERR_CAP_ECRC_CHKE: u32 = 0x100;
const PCI_ERR_ROOT_COMMAND: u16 = 0x2c;
/// The uncorrectable error bits userspace may clear, mask and grade: those named in the
/// PCIe base spec up to TLP prefix blocked (bits 0, 4, 5 and 12..=25).
const PCI_ERR_UNC_WRITABLE: u32 = 0x0000_0031 | 0x03ff_f000;
/// The correctable error bits userspace may clear and mask (bits 0, 6..=8, 12..=15).
const PCI_ERR_COR_WRITABLE: u32 = 0x0000_f1c1;
const PCI_PWR_DATA: usize = 0x08;
const PCI_EXT_CAP_DSN_SIZEOF: u16 = 12;
const PCI_EXT_CAP_PWR_SIZEOF: u16 = 0x10;
const PCI_EXT_CAP_ARI_SIZEOF: u16 = 8;
const PCI_EXT_CAP_ATS_SIZEOF: u16 = 8;
const PCI_EXT_CAP_SRIOV_SIZEOF: u16 = 0x40;
const PCI_EXT_CAP_MCAST_ENDPOINT_SIZEOF: u16 = 40;
const PCI_EXT_CAP_PRI_SIZEOF: u16 = 16;
const PCI_EXT_CAP_LTR_SIZEOF: u16 = 8;

const PCI_VC_PORT_CAP1: usize = 0x04;
const PCI_VC_CAP1_EVCC: u32 = 0x7;
const PCI_VC_PORT_CAP2: usize = 0x08;
const PCI_VC_CAP2_32_PHASE: u32 = 0x2;
const PCI_VC_CAP2_64_PHASE: u32 = 0x4;
const PCI_VC_CAP2_128_PHASE: u32 = 0x8;
const PCI_CAP_VC_BASE_SIZEOF: usize = 0x10;
const PCI_CAP_VC_PER_VC_SIZEOF: usize = 0x0c;
const PCI_VNDR_HEADER: usize = 4;
const PCI_DVSEC_HEADER1: usize = 4;
const PCI_ACS_CAP: usize = 4;
const PCI_ACS_EC: u8 = 0x20;
const PCI_ACS_EGRESS_BITS: usize = 5;
const PCI_REBAR_CTRL: usize = 8;
const PCI_REBAR_CTRL_NBAR_MASK: u8 = 0xe0;
const PCI_REBAR_CTRL_NBAR_SHIFT: u8 = 5;
const PCI_DPA_CAP: usize = 4;
const PCI_DPA_CAP_SUBSTATE_MASK: u8 = 0x1f;
const PCI_DPA_BASE_SIZEOF: u16 = 16;
const PCI_TPH_CAP: usize = 4;
const PCI_TPH_CAP_LOC_MASK: u32 = 0x600;
const PCI_TPH_LOC_CAP: u32 = 0x200;
const PCI_TPH_CAP_ST_MASK: u32 = 0x07ff_0000;
const PCI_TPH_CAP_ST_SHIFT: u32 = 16;
const PCI_TPH_BASE_SIZEOF: u16 = 0xc;

/// Owner of the bytes of the standard header in `map`; capability ids never use 0 (an id 0
/// capability is hidden).
const MAP_HEADER: u8 = 0;
/// Owner of bytes no visible capability claims: raw read and write, for devices that keep
/// registers in the gaps (upstream cites be2net).
const MAP_UNASSIGNED: u8 = 0xff;
/// Owner of a hidden capability left at 0x100 because the extended chain cannot start
/// elsewhere: its header reads with id and version zeroed.
const MAP_HIDDEN_ECAP: u8 = 0xfd;

/// How long a capability is, once we know its id.
enum CapLen {
    /// Not shown to userspace.
    Hidden,
    Fixed(u16),
    /// Depends on the capability's registers.
    Variable,
}

/// Length of a standard capability, or whether it is hidden.
fn cap_len(id: u8) -> CapLen {
    match id {
        PCI_CAP_ID_PM => CapLen::Fixed(PCI_PM_SIZEOF),
        PCI_CAP_ID_AGP => CapLen::Fixed(PCI_AGP_SIZEOF),
        PCI_CAP_ID_VPD => CapLen::Fixed(PCI_CAP_VPD_SIZEOF),
        PCI_CAP_ID_MSIX => CapLen::Fixed(PCI_CAP_MSIX_SIZEOF),
        PCI_CAP_ID_AF => CapLen::Fixed(PCI_CAP_AF_SIZEOF),
        PCI_CAP_ID_MSI | PCI_CAP_ID_PCIX | PCI_CAP_ID_HT | PCI_CAP_ID_VNDR | PCI_CAP_ID_EXP
        | PCI_CAP_ID_SATA => CapLen::Variable,
        // Bridge, CompactPCI, debug, AGP8x, secure device, enhanced allocation, unknown.
        _ => CapLen::Hidden,
    }
}

/// Length of an extended capability, or whether it is hidden.
fn ecap_len(id: u16) -> CapLen {
    match id {
        PCI_EXT_CAP_ID_ERR => CapLen::Fixed(PCI_ERR_ROOT_COMMAND),
        PCI_EXT_CAP_ID_DSN => CapLen::Fixed(PCI_EXT_CAP_DSN_SIZEOF),
        PCI_EXT_CAP_ID_PWR => CapLen::Fixed(PCI_EXT_CAP_PWR_SIZEOF),
        PCI_EXT_CAP_ID_ARI => CapLen::Fixed(PCI_EXT_CAP_ARI_SIZEOF),
        PCI_EXT_CAP_ID_ATS => CapLen::Fixed(PCI_EXT_CAP_ATS_SIZEOF),
        PCI_EXT_CAP_ID_SRIOV => CapLen::Fixed(PCI_EXT_CAP_SRIOV_SIZEOF),
        PCI_EXT_CAP_ID_MCAST => CapLen::Fixed(PCI_EXT_CAP_MCAST_ENDPOINT_SIZEOF),
        PCI_EXT_CAP_ID_PRI => CapLen::Fixed(PCI_EXT_CAP_PRI_SIZEOF),
        PCI_EXT_CAP_ID_LTR => CapLen::Fixed(PCI_EXT_CAP_LTR_SIZEOF),
        PCI_EXT_CAP_ID_VC | PCI_EXT_CAP_ID_MFVC | PCI_EXT_CAP_ID_VC9 | PCI_EXT_CAP_ID_VNDR
        | PCI_EXT_CAP_ID_ACS | PCI_EXT_CAP_ID_REBAR | PCI_EXT_CAP_ID_DPA | PCI_EXT_CAP_ID_TPH
        | PCI_EXT_CAP_ID_DVSEC => CapLen::Variable,
        // Root complex only, obsolete, not yet supported (MR-IOV, PASID, ...), unknown.
        _ => CapLen::Hidden,
    }
}

fn is_bar(pos: usize) -> bool {
    (PCI_BASE_ADDRESS_0..PCI_BASE_ADDRESS_5 + 4).contains(&pos)
        || (PCI_ROM_ADDRESS..PCI_ROM_ADDRESS + 4).contains(&pos)
}

/// The low `count` bytes set.
fn width_mask(count: usize) -> u32 {
    match count {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

fn hw_offset(pos: usize) -> Result<u16, Error> {
    u16::try_from(pos).map_err(|_| Error::OutOfRange)
}

/// The `len`-bit mask of a BAR of `len` bytes, split into its low and high dwords.
fn size_mask(len: u64) -> (u32, u32) {
    let mask = !len.wrapping_sub(1);
    (mask as u32, (mask >> 32) as u32)
}

/// The virtualized config space of one device.
///
/// All fields are plain integers so that the driver can allocate it zeroed in place
/// ([`PciConfig::new`] is the same value) before [`PciConfig::setup`] fills it.
#[cfg_attr(CONFIG_VFIO_PCI, derive(kernel::prelude::Zeroable))]
pub(crate) struct PciConfig {
    /// Size of config space: 256 or 4096.
    size: usize,
    /// Capability owning each byte (a `PCI_CAP_ID_*` below 0x100, a `PCI_EXT_CAP_ID_*`
    /// above) or one of the `MAP_*` values.
    map: [u8; PCI_CFG_SPACE_EXP_SIZE],
    /// The virtual copy of config space, little endian as on the bus.
    vconfig: [u8; PCI_CFG_SPACE_EXP_SIZE],
    /// Bits of each byte that come from `vconfig` rather than hardware.
    virt: [u8; PCI_CFG_SPACE_EXP_SIZE],
    /// Bits of each byte userspace may write.
    write: [u8; PCI_CFG_SPACE_EXP_SIZE],
    /// Per BAR dword (six BARs, then the ROM): the bits that hold an address, the rest
    /// read as zero; sizing works because all-ones reads back as this mask.
    bar_mask: [u32; PCI_STD_NUM_BARS + 1],
    /// Per BAR dword: the read-only type bits (I/O, 64-bit, prefetchable).
    bar_flags: [u32; PCI_STD_NUM_BARS + 1],
    /// The hardware BARs as the host programmed them, to put back after a reset we missed.
    rbar: [u32; PCI_STD_NUM_BARS + 1],
    /// The virtual BARs were written since they were last masked.
    bar_dirty: bool,
    /// Userspace has INTx disabled through the virtual command register.
    virq_disabled: bool,
    /// MSI is the interrupt type set up through `VFIO_DEVICE_SET_IRQS`.
    msi_active: bool,
    /// log2 of the MSI vectors set up through `VFIO_DEVICE_SET_IRQS`.
    msi_qmax: u8,
    /// The device has an extended capability list to walk.
    extended_caps: bool,
    is_virtfn: bool,
    nointx: bool,
    no_command_memory: bool,
}

impl PciConfig {
    /// An empty config space; [`PciConfig::setup`] must run before any access.
    pub(crate) const fn new() -> Self {
        Self {
            size: 0,
            map: [0; PCI_CFG_SPACE_EXP_SIZE],
            vconfig: [0; PCI_CFG_SPACE_EXP_SIZE],
            virt: [0; PCI_CFG_SPACE_EXP_SIZE],
            write: [0; PCI_CFG_SPACE_EXP_SIZE],
            bar_mask: [0; PCI_STD_NUM_BARS + 1],
            bar_flags: [0; PCI_STD_NUM_BARS + 1],
            rbar: [0; PCI_STD_NUM_BARS + 1],
            bar_dirty: false,
            virq_disabled: false,
            msi_active: false,
            msi_qmax: 0,
            extended_caps: false,
            is_virtfn: false,
            nointx: false,
            no_command_memory: false,
        }
    }

    /// Builds the virtual config space from the device's real one.
    ///
    /// Call with the device enabled, as upstream does at open. On error the contents are
    /// unspecified and `self` must be set up again before use.
    pub(crate) fn setup(&mut self, io: &impl ConfigIo, info: &DeviceInfo) -> Result<(), Error> {
        if info.cfg_size != PCI_CFG_SPACE_SIZE && info.cfg_size != PCI_CFG_SPACE_EXP_SIZE {
            return Err(Error::InvalidSetup);
        }
        *self = Self::new_from(info);

        // Until a capability claims them, bytes are raw: read and written in hardware.
        self.map.fill(MAP_UNASSIGNED);
        self.write.fill(0xff);
        self.map[..PCI_STD_HEADER_SIZEOF].fill(MAP_HEADER);
        self.fill_vconfig(io, 0, PCI_STD_HEADER_SIZEOF)?;
        self.header_perms();
        self.bar_setup(info)?;

        if let Some((vendor, device)) = info.vf_ids {
            self.vset(PCI_VENDOR_ID, 2, vendor.into());
            self.vset(PCI_DEVICE_ID, 2, device.into());
            // Per the SR-IOV spec a VF has no INTx pin, whatever the hardware claims.
            self.vset(PCI_INTERRUPT_PIN, 1, 0);
        }
        if info.no_command_memory {
            // Such devices decode memory without the bit; show it set, like any enabled PF.
            let cmd = self.vcommand() | PCI_COMMAND_MEMORY;
            self.vset(PCI_COMMAND, 2, cmd.into());
        }
        if !info.has_intx {
            self.vset(PCI_INTERRUPT_PIN, 1, 0);
        }

        self.cap_init(io)?;
        self.ecap_init(io)
    }

    fn new_from(info: &DeviceInfo) -> Self {
        let mut cfg = Self::new();
        cfg.size = info.cfg_size;
        cfg.is_virtfn = info.vf_ids.is_some();
        cfg.nointx = info.nointx;
        cfg.no_command_memory = info.no_command_memory;
        cfg.bar_dirty = true;
        cfg
    }

    /// Size of config space (the size of the config region).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Whether userspace has INTx disabled in the virtual command register: INTx starts
    /// masked when it is then enabled.
    pub(crate) fn intx_disabled(&self) -> bool {
        self.virq_disabled
    }

    /// Records the MSI state set up through `VFIO_DEVICE_SET_IRQS`: whether MSI is the
    /// active interrupt type, and log2 of its vector count. The MSI capability shows the
    /// latter as the vectors available, and keeps its enable bit clear unless MSI is active.
    pub(crate) fn set_msi_state(&mut self, active: bool, qmax: u8) {
        self.msi_active = active;
        self.msi_qmax = qmax;
    }

    /// Whether userspace has memory decoding enabled in the virtual command register (the
    /// driver also checks the power state before allowing BAR access).
    pub(crate) fn memory_enabled(&self) -> bool {
        self.no_command_memory || self.vcommand() & PCI_COMMAND_MEMORY != 0
    }

    /// Reads `buf.len()` bytes of config space at `offset`.
    ///
    /// Returns the bytes read, which is all of them; any failure fails the whole read.
    pub(crate) fn read(
        &mut self,
        io: &impl ConfigIo,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        self.check_range(offset, buf.len())?;
        let mut done = 0;
        while let Some(rest) = buf.get_mut(done..).filter(|rest| !rest.is_empty()) {
            let pos = offset + done;
            let count = self.piece_len(pos, rest.len());
            let val = self.read_piece(io, pos, count)?;
            let src = val.to_le_bytes();
            let (Some(dst), Some(src)) = (rest.get_mut(..count), src.get(..count)) else {
                return Err(Error::OutOfRange);
            };
            dst.copy_from_slice(src);
            done += count;
        }
        Ok(done)
    }

    /// Writes `buf` to config space at `offset`.
    ///
    /// Returns the bytes consumed, which is all of them (writes to protected bits are
    /// dropped silently, as on hardware with read-only bits); a failure fails the whole
    /// write, though pieces before it may have taken effect.
    pub(crate) fn write(
        &mut self,
        io: &impl ConfigIo,
        offset: usize,
        buf: &[u8],
    ) -> Result<usize, Error> {
        self.check_range(offset, buf.len())?;
        let mut done = 0;
        while let Some(rest) = buf.get(done..).filter(|rest| !rest.is_empty()) {
            let pos = offset + done;
            let count = self.piece_len(pos, rest.len());
            let mut bytes = [0u8; 4];
            let (Some(dst), Some(src)) = (bytes.get_mut(..count), rest.get(..count)) else {
                return Err(Error::OutOfRange);
            };
            dst.copy_from_slice(src);
            self.write_piece(io, pos, count, u32::from_le_bytes(bytes))?;
            done += count;
        }
        Ok(done)
    }

    /// An empty access always succeeds, as upstream; otherwise it must fit in config space.
    fn check_range(&self, offset: usize, len: usize) -> Result<(), Error> {
        let end = offset.checked_add(len).ok_or(Error::OutOfRange)?;
        if len != 0 && (offset >= self.size || end > self.size) {
            return Err(Error::OutOfRange);
        }
        Ok(())
    }

    /// The next piece of an access at `pos`: naturally aligned, 4, 2 or 1 bytes, within one
    /// dword and one capability, so that a handler sees a single register or part of one.
    fn piece_len(&self, pos: usize, remaining: usize) -> usize {
        let owner = self.map.get(pos);
        let mut same = 1;
        while same < 4 && (pos + same) & 3 != 0 && self.map.get(pos + same) == owner {
            same += 1;
        }
        aligned_width(pos, min(remaining, same))
    }

    /// The capability id owning `pos` and where that capability starts.
    fn owner(&self, pos: usize) -> (u8, usize) {
        let id = self.map.get(pos).copied().unwrap_or(MAP_UNASSIGNED);
        if pos < PCI_STD_HEADER_SIZEOF {
            return (id, 0);
        }
        if id == MAP_UNASSIGNED {
            return (id, pos);
        }
        let base = if pos >= PCI_CFG_SPACE_SIZE {
            PCI_CFG_SPACE_SIZE
        } else {
            PCI_STD_HEADER_SIZEOF
        };
        let mut start = pos;
        while start > base && self.map.get(start - 1) == Some(&id) {
            start -= 1;
        }
        (id, start)
    }

    fn read_piece(&mut self, io: &impl ConfigIo, pos: usize, count: usize) -> Result<u32, Error> {
        let (id, start) = self.owner(pos);
        if pos >= PCI_CFG_SPACE_SIZE {
            return self.default_read(io, pos, count);
        }
        match id {
            MAP_HEADER => self.header_read(io, pos, count),
            PCI_CAP_ID_MSI => {
                self.msi_read_fixup(start, pos - start, count);
                self.default_read(io, pos, count)
            }
            _ => self.default_read(io, pos, count),
        }
    }

    fn write_piece(
        &mut self,
        io: &impl ConfigIo,
        pos: usize,
        count: usize,
        val: u32,
    ) -> Result<(), Error> {
        let (id, start) = self.owner(pos);
        if pos >= PCI_CFG_SPACE_SIZE {
            return self.default_write(io, pos, count, val);
        }
        let off = pos - start;
        match id {
            MAP_HEADER => self.header_write(io, pos, count, val),
            PCI_CAP_ID_PM => self.pm_write(io, pos, off, count, val),
            PCI_CAP_ID_VPD => self.vpd_write(io, pos, start, count, val),
            PCI_CAP_ID_MSI => self.msi_write(io, pos, start, count, val),
            PCI_CAP_ID_EXP => self.exp_write(io, pos, start, count, val),
            PCI_CAP_ID_AF => self.af_write(io, pos, start, count, val),
            _ => self.default_write(io, pos, count, val),
        }
    }

    /// Virtual bits from `vconfig`, the rest from hardware.
    fn default_read(&self, io: &impl ConfigIo, pos: usize, count: usize) -> Result<u32, Error> {
        let virt = Self::get(&self.virt, pos, count);
        let val = self.vget(pos, count);
        if virt == width_mask(count) {
            return Ok(val);
        }
        let phys = hw_read(io, pos, count)?;
        Ok((phys & !virt) | (val & virt))
    }

    /// Writable virtual bits to `vconfig`, writable real bits to hardware, the rest dropped.
    fn default_write(
        &mut self,
        io: &impl ConfigIo,
        pos: usize,
        count: usize,
        val: u32,
    ) -> Result<(), Error> {
        let write = Self::get(&self.write, pos, count);
        let virt = Self::get(&self.virt, pos, count);
        if write & virt != 0 {
            let old = self.vget(pos, count);
            self.vset(pos, count, (old & !(write & virt)) | (val & write & virt));
        }
        let real = write & !virt;
        if real != 0 {
            let phys = if real == width_mask(count) {
                0
            } else {
                hw_read(io, pos, count)?
            };
            hw_write(io, pos, count, (phys & !real) | (val & real))?;
        }
        Ok(())
    }

    // The standard header.

    fn header_perms(&mut self) {
        self.set_perm(0, PCI_STD_HEADER_SIZEOF, 0, 0);
        // Virtual so that a VF, whose hardware reads all ones here, shows real ids.
        self.set_perm(PCI_VENDOR_ID, 2, u32::MAX, 0);
        self.set_perm(PCI_DEVICE_ID, 2, u32::MAX, 0);
        // INTx disable is ours: we mask INTx with it, and can emulate it on devices
        // older than PCI 2.3.
        self.set_perm(PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE.into(), u32::MAX);
        // The capability bit follows the capabilities we show.
        self.set_perm(PCI_STATUS, 2, PCI_STATUS_CAP_LIST.into(), 0);
        self.set_perm(PCI_CACHE_LINE_SIZE, 1, 0, u32::MAX);
        self.set_perm(PCI_LATENCY_TIMER, 1, 0, u32::MAX);
        self.set_perm(PCI_BIST, 1, 0, u32::MAX);
        // The real BARs hold host addresses: userspace only ever sees virtual ones.
        for bar in 0..PCI_STD_NUM_BARS {
            self.set_perm(PCI_BASE_ADDRESS_0 + 4 * bar, 4, u32::MAX, u32::MAX);
        }
        self.set_perm(PCI_ROM_ADDRESS, 4, u32::MAX, u32::MAX);
        self.set_perm(PCI_CAPABILITY_LIST, 1, u32::MAX, 0);
        // Software scratch, no meaning to the device.
        self.set_perm(PCI_INTERRUPT_LINE, 1, u32::MAX, u32::MAX);
        // Virtual so that INTx can be hidden.
        self.set_perm(PCI_INTERRUPT_PIN, 1, u32::MAX, 0);
    }

    /// Computes the sizing masks of the BARs and records the real BARs for restore.
    fn bar_setup(&mut self, info: &DeviceInfo) -> Result<(), Error> {
        let mut bar = 0;
        while let Some(desc) = info.bars.get(bar) {
            let (len, flags) = match *desc {
                Bar::None => (0, 0),
                Bar::Io { len } => (len, PCI_BASE_ADDRESS_SPACE_IO),
                Bar::Mem32 { len, prefetch } => (len, prefetch_flag(prefetch)),
                Bar::Mem64 { len, prefetch } => {
                    (len, PCI_BASE_ADDRESS_MEM_TYPE_64 | prefetch_flag(prefetch))
                }
            };
            if len != 0 {
                let (lo, hi) = size_mask(len);
                self.bar_mask[bar] = lo;
                self.bar_flags[bar] = flags;
                if let Bar::Mem64 { .. } = desc {
                    // The upper half takes the next slot, which must be a BAR.
                    bar += 1;
                    if bar >= PCI_STD_NUM_BARS {
                        return Err(Error::InvalidSetup);
                    }
                    self.bar_mask[bar] = hi;
                }
            }
            bar += 1;
        }
        if info.rom_size != 0 {
            self.bar_mask[PCI_STD_NUM_BARS] = size_mask(info.rom_size).0 | PCI_ROM_ADDRESS_ENABLE;
        }
        for (i, rbar) in self.rbar.iter_mut().enumerate() {
            *rbar = Self::get(&self.vconfig, bar_offset(i), 4);
        }
        Ok(())
    }

    /// Makes the virtual BARs read as hardware would after the writes userspace made:
    /// address bits kept, low bits forced to the BAR type, unimplemented BARs zero.
    fn bar_fixup(&mut self) {
        if !self.bar_dirty {
            return;
        }
        for i in 0..=PCI_STD_NUM_BARS {
            let pos = bar_offset(i);
            let val = (self.vget(pos, 4) & self.bar_mask[i]) | self.bar_flags[i];
            self.vset(pos, 4, val);
        }
        self.bar_dirty = false;
    }

    /// Whether the hardware BARs lost the values the host gave them.
    fn need_bar_restore(&self, io: &impl ConfigIo) -> bool {
        self.rbar[..PCI_STD_NUM_BARS]
            .iter()
            .enumerate()
            .filter(|(_, rbar)| **rbar != 0)
            .any(|(i, rbar)| io.read32(bar_offset(i) as u16) != Ok(*rbar))
    }

    /// Puts the host's BARs back after a reset we did not see (FLR by the device's own
    /// means, for one). Failures are ignored: the device is already in a bad state.
    fn restore_bars(&self, io: &impl ConfigIo) {
        if self.is_virtfn {
            return;
        }
        for (i, rbar) in self.rbar.iter().enumerate() {
            let _ = io.write32(bar_offset(i) as u16, *rbar);
        }
        if self.nointx {
            if let Ok(cmd) = io.read16(PCI_COMMAND as u16) {
                let _ = io.write16(PCI_COMMAND as u16, cmd | PCI_COMMAND_INTX_DISABLE);
            }
        }
    }

    fn vcommand(&self) -> u16 {
        self.vget(PCI_COMMAND, 2) as u16
    }

    fn header_read(&mut self, io: &impl ConfigIo, pos: usize, count: usize) -> Result<u32, Error> {
        if is_bar(pos) {
            self.bar_fixup();
        }
        let mut val = self.default_read(io, pos, count)?;
        if pos == PCI_COMMAND && self.no_command_memory {
            val |= u32::from(self.vcommand() & PCI_COMMAND_MEMORY);
        }
        Ok(val)
    }

    fn header_write(
        &mut self,
        io: &impl ConfigIo,
        pos: usize,
        count: usize,
        val: u32,
    ) -> Result<(), Error> {
        let new_cmd = val as u16;
        if pos == PCI_COMMAND {
            // Userspace enabling decoding that we think is on but the hardware has off
            // means the device was reset behind our back: its BARs are gone too.
            let phys = io.read16(PCI_COMMAND as u16)?;
            let virt = self.vcommand();
            let lost = |bit: u16| new_cmd & bit != 0 && virt & bit != 0 && phys & bit == 0;
            if (lost(PCI_COMMAND_MEMORY) && !self.no_command_memory)
                || lost(PCI_COMMAND_IO)
                || self.need_bar_restore(io)
            {
                self.restore_bars(io);
            }
        }

        self.default_write(io, pos, count, val)?;

        if pos == PCI_COMMAND {
            // Remember what userspace asked for decoding, for the check above.
            let mask = PCI_COMMAND_MEMORY | PCI_COMMAND_IO;
            let cmd = (self.vcommand() & !mask) | (new_cmd & mask);
            self.vset(PCI_COMMAND, 2, cmd.into());
        }
        if pos == PCI_COMMAND || pos == PCI_COMMAND + 1 {
            let disabled = self.vcommand() & PCI_COMMAND_INTX_DISABLE != 0;
            if disabled != self.virq_disabled {
                self.virq_disabled = disabled;
                io.set_intx_masked(disabled);
            }
        }
        if is_bar(pos) {
            self.bar_dirty = true;
        }
        Ok(())
    }

    // Standard capabilities.

    /// Walks the capability list, claims the bytes of each capability we show and unlinks
    /// the others from the virtual chain.
    fn cap_init(&mut self, io: &impl ConfigIo) -> Result<(), Error> {
        let status = io.read16(PCI_STATUS as u16)?;
        if status & PCI_STATUS_CAP_LIST == 0 {
            return Ok(());
        }
        let mut pos = usize::from(io.read8(PCI_CAPABILITY_LIST as u16)?);
        // The pointer to patch when the capability at `pos` is hidden.
        let mut prev = PCI_CAPABILITY_LIST;
        let mut shown = 0;
        // Capabilities are dword aligned, so a longer list must loop.
        let mut loops = (PCI_CFG_SPACE_SIZE - PCI_STD_HEADER_SIZEOF) / PCI_CAP_SIZEOF;

        while pos != 0 && loops > 0 {
            loops -= 1;
            if pos < PCI_STD_HEADER_SIZEOF || pos + PCI_CAP_SIZEOF > PCI_CFG_SPACE_SIZE {
                // A pointer into the header or off the end: end the list there.
                self.vset(prev, 1, 0);
                break;
            }
            let id = io.read8(pos as u16)?;
            let next = usize::from(io.read8((pos + PCI_CAP_LIST_NEXT) as u16)?);
            let len = match cap_len(id) {
                CapLen::Hidden => 0,
                CapLen::Fixed(len) => usize::from(len),
                CapLen::Variable => usize::from(self.cap_var_len(io, id, pos)?),
            };
            if len == 0 {
                self.vset(prev, 1, next as u32);
                pos = next;
                continue;
            }
            let len = min(len, PCI_CFG_SPACE_SIZE - pos);
            self.claim(pos, len, id);
            self.fill_vconfig(io, pos, len)?;
            self.cap_perms(io, id, pos, len)?;
            prev = pos + PCI_CAP_LIST_NEXT;
            pos = next;
            shown += 1;
        }

        if shown == 0 {
            let status = self.vget(PCI_STATUS, 2) & !u32::from(PCI_STATUS_CAP_LIST);
            self.vset(PCI_STATUS, 2, status);
        }
        Ok(())
    }

    fn cap_var_len(&mut self, io: &impl ConfigIo, id: u8, pos: usize) -> Result<u16, Error> {
        // The registers giving the length lie in the first 8 bytes; a capability without
        // room for them is bogus, and hidden.
        if pos + 8 > PCI_CFG_SPACE_SIZE {
            return Ok(0);
        }
        let at = |off: usize| hw_offset(pos + off);
        Ok(match id {
            PCI_CAP_ID_MSI => {
                let flags = io.read16(at(PCI_MSI_FLAGS)?)?;
                let mut len = 10;
                if flags & PCI_MSI_FLAGS_64BIT != 0 {
                    len += 4;
                }
                if flags & PCI_MSI_FLAGS_MASKBIT != 0 {
                    len += 10;
                }
                len
            }
            PCI_CAP_ID_PCIX => {
                // Version 1 and 2 are the long form, and the mode 2 ones have an extended
                // capability list.
                let cmd = io.read16(at(PCI_X_CMD)?)?;
                if (cmd >> 12) & 3 != 0 {
                    self.probe_extended_caps(io);
                    PCI_CAP_PCIX_SIZEOF_V2
                } else {
                    PCI_CAP_PCIX_SIZEOF_V0
                }
            }
            // Vendor capabilities give their length after the next pointer.
            PCI_CAP_ID_VNDR => io.read8(at(PCI_CAP_FLAGS)?)?.into(),
            PCI_CAP_ID_EXP => {
                self.probe_extended_caps(io);
                let flags = io.read16(at(PCI_EXP_FLAGS)?)?;
                let rc_end = (flags & PCI_EXP_FLAGS_TYPE) >> 4 == PCI_EXP_TYPE_RC_END;
                match (flags & PCI_EXP_FLAGS_VERS == 1, rc_end) {
                    (true, true) => PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V1,
                    (true, false) => PCI_CAP_EXP_ENDPOINT_SIZEOF_V1,
                    (false, true) => PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V2,
                    (false, false) => PCI_CAP_EXP_ENDPOINT_SIZEOF_V2,
                }
            }
            PCI_CAP_ID_HT => {
                if io.read8(at(3)?)? & HT_3BIT_CAP_MASK != 0 {
                    HT_CAP_SIZEOF_SHORT
                } else {
                    HT_CAP_SIZEOF_LONG
                }
            }
            PCI_CAP_ID_SATA => {
                if io.read8(at(PCI_SATA_REGS)?)? & PCI_SATA_REGS_MASK == PCI_SATA_REGS_INLINE {
                    PCI_SATA_SIZEOF_LONG
                } else {
                    PCI_SATA_SIZEOF_SHORT
                }
            }
            _ => 0,
        })
    }

    /// An extended list exists when config space is 4 KiB and its first dword is not zero.
    fn probe_extended_caps(&mut self, io: &impl ConfigIo) {
        if self.size > PCI_CFG_SPACE_SIZE {
            self.extended_caps = matches!(io.read32(PCI_CFG_SPACE_SIZE as u16), Ok(h) if h != 0);
        }
    }

    /// Fills the permissions of the standard capability `id` at `start`, `len` bytes.
    fn cap_perms(
        &mut self,
        io: &impl ConfigIo,
        id: u8,
        start: usize,
        len: usize,
    ) -> Result<(), Error> {
        let mut p = CapPerms {
            cfg: self,
            start,
            len,
        };
        p.set(0, len, 0, 0);
        // The id and next pointer read from our copy, so that we can unlink capabilities.
        p.set(0, 2, u32::MAX, 0);
        match id {
            PCI_CAP_ID_PM => {
                // PME cannot reach userspace (the host handles it), so PME support, enable
                // and status read as zero. The power state is set by us, on a write, in
                // `pm_write`.
                p.set(PCI_PM_PMC, 2, PCI_PM_CAP_PME_MASK.into(), 0);
                let pme = PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS;
                p.set(PCI_PM_CTRL, 4, pme, !(pme | PCI_PM_CTRL_STATE_MASK));
                let pmc = p.cfg.vget(start + PCI_PM_PMC, 2) & !u32::from(PCI_PM_CAP_PME_MASK);
                p.cfg.vset(start + PCI_PM_PMC, 2, pmc);
                let ctrl = p.cfg.vget(start + PCI_PM_CTRL, 2) & !pme;
                p.cfg.vset(start + PCI_PM_CTRL, 2, ctrl);
            }
            PCI_CAP_ID_VPD => {
                // VPD goes through the PCI core's accessors, see `vpd_write`.
                p.set(PCI_VPD_ADDR, 2, u32::MAX, u32::MAX);
                p.set(PCI_VPD_DATA, 4, u32::MAX, u32::MAX);
            }
            PCI_CAP_ID_PCIX => {
                p.set(PCI_X_CMD, 2, 0, u32::MAX);
                p.set(PCI_X_ECC_CSR, 4, 0, u32::MAX);
            }
            PCI_CAP_ID_EXP => {
                // Phantom functions would confuse the IOMMU and MPS must match the rest of
                // the fabric; FLR and the read request size are acted on in `exp_write`.
                // ARI forwarding is the host's setting.
                let virt = PCI_EXP_DEVCTL_BCR_FLR | PCI_EXP_DEVCTL_PAYLOAD | PCI_EXP_DEVCTL_READRQ;
                p.set(
                    PCI_EXP_DEVCTL,
                    2,
                    virt.into(),
                    (!PCI_EXP_DEVCTL_PHANTOM).into(),
                );
                p.set(PCI_EXP_DEVCTL2, 2, 0, (!PCI_EXP_DEVCTL2_ARI).into());
            }
            PCI_CAP_ID_AF => {
                p.set(
                    PCI_AF_CTRL,
                    1,
                    PCI_AF_CTRL_FLR.into(),
                    PCI_AF_CTRL_FLR.into(),
                );
            }
            PCI_CAP_ID_MSI => {
                // The message is ours (`VFIO_DEVICE_SET_IRQS` programs the real one); the
                // mask and pending bits are the device's.
                let flags = io.read16(hw_offset(start + PCI_MSI_FLAGS)?)?;
                p.set(PCI_MSI_FLAGS, 1, u32::MAX, u32::MAX);
                p.set(PCI_MSI_ADDRESS_LO, 4, u32::MAX, u32::MAX);
                let (data, mask, pending) = if flags & PCI_MSI_FLAGS_64BIT != 0 {
                    p.set(PCI_MSI_ADDRESS_HI, 4, u32::MAX, u32::MAX);
                    (PCI_MSI_DATA_64, PCI_MSI_MASK_64, PCI_MSI_PENDING_64)
                } else {
                    (PCI_MSI_DATA_32, PCI_MSI_MASK_32, PCI_MSI_PENDING_32)
                };
                p.set(data, 2, u32::MAX, u32::MAX);
                if flags & PCI_MSI_FLAGS_MASKBIT != 0 {
                    p.set(mask, 4, 0, u32::MAX);
                    p.set(pending, 4, 0, u32::MAX);
                }
            }
            // Vendor registers are the device's business, like its BARs.
            PCI_CAP_ID_VNDR => p.set(PCI_CAP_FLAGS, len - PCI_CAP_FLAGS, 0, u32::MAX),
            // Read-only, straight from hardware (MSI-X, AGP, HT, SATA).
            _ => {}
        }
        Ok(())
    }

    fn pm_write(
        &mut self,
        io: &impl ConfigIo,
        pos: usize,
        off: usize,
        count: usize,
        val: u32,
    ) -> Result<(), Error> {
        self.default_write(io, pos, count, val)?;
        if off == PCI_PM_CTRL {
            io.set_power_state((val & PCI_PM_CTRL_STATE_MASK) as u8);
        }
        Ok(())
    }

    /// VPD is reached through the virtual address and data registers: writing the address
    /// starts a read (flag clear) or a write (flag set) through the driver, and the flag
    /// flips when it is done, as the hardware protocol says.
    fn vpd_write(
        &mut self,
        io: &impl ConfigIo,
        pos: usize,
        start: usize,
        count: usize,
        val: u32,
    ) -> Result<(), Error> {
        self.default_write(io, pos, count, val)?;
        let flag_byte = start + PCI_VPD_ADDR + 1;
        if pos > flag_byte || pos + count <= flag_byte {
            return Ok(());
        }
        let addr = self.vget(start + PCI_VPD_ADDR, 2) as u16;
        if addr & PCI_VPD_ADDR_F != 0 {
            let data = self.vget(start + PCI_VPD_DATA, 4);
            if io.write_vpd(addr & !PCI_VPD_ADDR_F, data).is_err() {
                // Leaving the flag alone lets the user's driver time out.
                return Ok(());
            }
        } else {
            let Ok(data) = io.read_vpd(addr) else {
                return Ok(());
            };
            self.vset(start + PCI_VPD_DATA, 4, data);
        }
        self.vset(start + PCI_VPD_ADDR, 2, (addr ^ PCI_VPD_ADDR_F).into());
        Ok(())
    }

    /// Whether an access at `off` of `count` bytes reaches the MSI flags, by upstream's
    /// (generous) test.
    fn touches_msi_flags(off: usize, count: usize) -> bool {
        off <= PCI_MSI_FLAGS && off + count >= PCI_MSI_FLAGS
    }

    /// Shows the vectors set up through `VFIO_DEVICE_SET_IRQS` as the vectors available.
    fn msi_read_fixup(&mut self, start: usize, off: usize, count: usize) {
        if Self::touches_msi_flags(off, count) {
            let pos = start + PCI_MSI_FLAGS;
            let qmask = (u16::from(self.msi_qmax) << 1) & PCI_MSI_FLAGS_QMASK;
            let flags = (self.vget(pos, 2) as u16 & !PCI_MSI_FLAGS_QMASK) | qmask;
            self.vset(pos, 2, flags.into());
        }
    }

    /// The flags are virtual, but the enable bit and vector count the user wrote are
    /// clamped to what the host set up, and written to hardware.
    fn msi_write(
        &mut self,
        io: &impl ConfigIo,
        pos: usize,
        start: usize,
        count: usize,
        val: u32,
    ) -> Result<(), Error> {
        self.default_write(io, pos, count, val)?;
        if !Self::touches_msi_flags(pos - start, count) {
            return Ok(());
        }
        let fpos = start + PCI_MSI_FLAGS;
        let mut flags = self.vget(fpos, 2) as u16;
        if !self.msi_active {
            flags &= !PCI_MSI_FLAGS_ENABLE;
        }
        if (flags & PCI_MSI_FLAGS_QSIZE) >> 4 > u16::from(self.msi_qmax) {
            let qsize = (u16::from(self.msi_qmax) << 4) & PCI_MSI_FLAGS_QSIZE;
            flags = (flags & !PCI_MSI_FLAGS_QSIZE) | qsize;
        }
        self.vset(fpos, 2, flags.into());
        io.write16(hw_offset(fpos)?, flags)
    }

    /// FLR is requested by setting a virtual bit that always reads back as zero; the read
    /// request size is virtual but handed to the driver to apply.
    fn exp_write(
        &mut self,
        io: &impl ConfigIo,
        pos: usize,
        start: usize,
        count: usize,
        val: u32,
    ) -> Result<(), Error> {
        let ctl = start + PCI_EXP_DEVCTL;
        let old_readrq = self.vget(ctl, 2) as u16 & PCI_EXP_DEVCTL_READRQ;
        self.default_write(io, pos, count, val)?;

        let mut devctl = self.vget(ctl, 2) as u16;
        if devctl & PCI_EXP_DEVCTL_BCR_FLR != 0 {
            devctl &= !PCI_EXP_DEVCTL_BCR_FLR;
            self.vset(ctl, 2, devctl.into());
            let devcap = io.read32(hw_offset(start + PCI_EXP_DEVCAP)?);
            if matches!(devcap, Ok(cap) if cap & PCI_EXP_DEVCAP_FLR != 0) {
                io.reset_function();
            }
        }
        let readrq = devctl & PCI_EXP_DEVCTL_READRQ;
        if readrq != old_readrq {
            io.set_read_request_size(128 << (readrq >> 12));
        }
        Ok(())
    }

    fn af_write(
        &mut self,
        io: &impl ConfigIo,
        pos: usize,
        start: usize,
        count: usize,
        val: u32,
    ) -> Result<(), Error> {
        self.default_write(io, pos, count, val)?;
        let ctrl = start + PCI_AF_CTRL;
        let flr = u32::from(PCI_AF_CTRL_FLR);
        if self.vget(ctrl, 1) & flr != 0 {
            self.vset(ctrl, 1, self.vget(ctrl, 1) & !flr);
            let cap = io.read8(hw_offset(start + PCI_AF_CAP)?);
            let both = PCI_AF_CAP_FLR | PCI_AF_CAP_TP;
            if matches!(cap, Ok(cap) if cap & both == both) {
                io.reset_function();
            }
        }
        Ok(())
    }

    // Extended capabilities.

    /// Walks the extended capability list like `cap_init`. The list has to start at 0x100,
    /// so a hidden first capability stays as a placeholder with id and version zeroed.
    fn ecap_init(&mut self, io: &impl ConfigIo) -> Result<(), Error> {
        if !self.extended_caps {
            return Ok(());
        }
        let mut epos = PCI_CFG_SPACE_SIZE;
        let mut prev: Option<usize> = None;
        let mut shown = 0;
        let mut loops = (self.size - PCI_CFG_SPACE_SIZE) / PCI_CAP_SIZEOF;

        while loops > 0 && epos >= PCI_CFG_SPACE_SIZE && epos + PCI_CAP_SIZEOF <= self.size {
            loops -= 1;
            let header = io.read32(hw_offset(epos)?)?;
            let id = header as u16;
            let next = ((header & PCI_EXT_CAP_NEXT_MASK) >> 20) as usize;
            let mut len = match ecap_len(id) {
                CapLen::Hidden => 0,
                CapLen::Fixed(len) => usize::from(len),
                CapLen::Variable => self.ecap_var_len(io, id, epos)?,
            };
            let mut hidden = false;
            if len == 0 {
                if let Some(prev) = prev {
                    let h = (self.vget(prev, 4) & !PCI_EXT_CAP_NEXT_MASK) | ((next as u32) << 20);
                    self.vset(prev, 4, h);
                    epos = next;
                    continue;
                }
                len = PCI_CAP_SIZEOF;
                hidden = true;
            }
            let len = min(len, self.size - epos);
            self.claim(epos, len, if hidden { MAP_HIDDEN_ECAP } else { id as u8 });
            self.fill_vconfig(io, epos, len)?;
            self.ecap_perms(id, hidden, epos, len);
            if hidden {
                let h = self.vget(epos, 4) & PCI_EXT_CAP_NEXT_MASK;
                self.vset(epos, 4, h);
            } else {
                shown += 1;
            }
            prev = Some(epos);
            epos = next;
        }

        if shown == 0 {
            self.vset(PCI_CFG_SPACE_SIZE, 4, 0);
        }
        Ok(())
    }

    fn ecap_var_len(&self, io: &impl ConfigIo, id: u16, epos: usize) -> Result<usize, Error> {
        // As for standard capabilities: the length registers lie in the first 12 bytes.
        if epos + 12 > self.size {
            return Ok(0);
        }
        let at = |off: usize| hw_offset(epos + off);
        Ok(match id {
            PCI_EXT_CAP_ID_VNDR => (io.read32(at(PCI_VNDR_HEADER)?)? >> 20) as usize & 0xfff,
            PCI_EXT_CAP_ID_DVSEC => (io.read32(at(PCI_DVSEC_HEADER1)?)? >> 20) as usize & 0xfff,
            PCI_EXT_CAP_ID_VC | PCI_EXT_CAP_ID_VC9 | PCI_EXT_CAP_ID_MFVC => {
                let evcc = (io.read32(at(PCI_VC_PORT_CAP1)?)? & PCI_VC_CAP1_EVCC) as usize;
                let cap2 = io.read32(at(PCI_VC_PORT_CAP2)?)?;
                let phases = if cap2 & PCI_VC_CAP2_128_PHASE != 0 {
                    128
                } else if cap2 & PCI_VC_CAP2_64_PHASE != 0 {
                    64
                } else if cap2 & PCI_VC_CAP2_32_PHASE != 0 {
                    32
                } else {
                    0
                };
                // Arbitration tables are never writable, so their exact size matters little.
                let mut len = PCI_CAP_VC_BASE_SIZEOF + (1 + evcc) * PCI_CAP_VC_PER_VC_SIZEOF;
                if phases != 0 {
                    len = len.next_multiple_of(16) + phases * 4 / 8;
                }
                len
            }
            PCI_EXT_CAP_ID_ACS => {
                if io.read8(at(PCI_ACS_CAP)?)? & PCI_ACS_EC != 0 {
                    let bits = match io.read8(at(PCI_ACS_EGRESS_BITS)?)? {
                        0 => 256,
                        n => usize::from(n).next_multiple_of(32),
                    };
                    8 + bits / 8
                } else {
                    8
                }
            }
            PCI_EXT_CAP_ID_REBAR => {
                let ctrl = io.read8(at(PCI_REBAR_CTRL)?)?;
                let nbar = (ctrl & PCI_REBAR_CTRL_NBAR_MASK) >> PCI_REBAR_CTRL_NBAR_SHIFT;
                4 + usize::from(nbar) * 8
            }
            PCI_EXT_CAP_ID_DPA => {
                let substates = io.read8(at(PCI_DPA_CAP)?)? & PCI_DPA_CAP_SUBSTATE_MASK;
                usize::from(PCI_DPA_BASE_SIZEOF) + usize::from(substates) + 1
            }
            PCI_EXT_CAP_ID_TPH => {
                let cap = io.read32(at(PCI_TPH_CAP)?)?;
                let base = usize::from(PCI_TPH_BASE_SIZEOF);
                if cap & PCI_TPH_CAP_LOC_MASK == PCI_TPH_LOC_CAP {
                    let sts = ((cap & PCI_TPH_CAP_ST_MASK) >> PCI_TPH_CAP_ST_SHIFT) as usize;
                    base + sts * 2 + 2
                } else {
                    base
                }
            }
            _ => 0,
        })
    }

    fn ecap_perms(&mut self, id: u16, hidden: bool, start: usize, len: usize) {
        let mut p = CapPerms {
            cfg: self,
            start,
            len,
        };
        p.set(0, len, 0, 0);
        // The header holds the next pointer, which we may rewrite.
        p.set(0, 4, u32::MAX, 0);
        if hidden {
            return;
        }
        match id {
            PCI_EXT_CAP_ID_ERR => {
                // Error status (write one to clear), masks and severities of the errors an
                // endpoint reports, and ECRC enables; the rest is read-only.
                p.set(PCI_ERR_UNCOR_STATUS, 4, 0, PCI_ERR_UNC_WRITABLE);
                p.set(PCI_ERR_UNCOR_MASK, 4, 0, PCI_ERR_UNC_WRITABLE);
                p.set(PCI_ERR_UNCOR_SEVER, 4, 0, PCI_ERR_UNC_WRITABLE);
                p.set(PCI_ERR_COR_STATUS, 4, 0, PCI_ERR_COR_WRITABLE);
                p.set(PCI_ERR_COR_MASK, 4, 0, PCI_ERR_COR_WRITABLE);
                let ecrc = PCI_ERR_CAP_ECRC_GENE | PCI_ERR_CAP_ECRC_CHKE;
                p.set(PCI_ERR_CAP, 4, 0, ecrc);
            }
            // The data select is harmless; the power figures stay read-only.
            PCI_EXT_CAP_ID_PWR => p.set(PCI_PWR_DATA, 1, 0, u32::MAX),
            PCI_EXT_CAP_ID_VNDR | PCI_EXT_CAP_ID_DVSEC => {
                p.set(PCI_CAP_SIZEOF, len.saturating_sub(4), 0, u32::MAX)
            }
            _ => {}
        }
    }

    // Byte map helpers.

    /// Marks `len` bytes at `start` as owned by `id`.
    fn claim(&mut self, start: usize, len: usize, id: u8) {
        if let Some(bytes) = self.map.get_mut(start..start.saturating_add(len)) {
            bytes.fill(id);
        }
    }

    /// Reads the physical config bytes `[pos, pos + len)` into `vconfig`, in the widest
    /// aligned accesses (as `pci_save_state` does, all registers are assumed to allow
    /// dword reads).
    fn fill_vconfig(
        &mut self,
        io: &impl ConfigIo,
        mut pos: usize,
        len: usize,
    ) -> Result<(), Error> {
        let end = pos.checked_add(len).ok_or(Error::OutOfRange)?;
        while pos < end {
            let count = aligned_width(pos, end - pos);
            let val = hw_read(io, pos, count)?;
            self.vset(pos, count, val);
            pos += count;
        }
        Ok(())
    }

    /// Sets the virtual and writable bits of `count` bytes at `pos` (masks little endian,
    /// repeated every dword for longer ranges).
    fn set_perm(&mut self, pos: usize, count: usize, virt: u32, write: u32) {
        for i in 0..count {
            let shift = 8 * (i % 4);
            if let Some(v) = self.virt.get_mut(pos + i) {
                *v = (virt >> shift) as u8;
            }
            if let Some(w) = self.write.get_mut(pos + i) {
                *w = (write >> shift) as u8;
            }
        }
    }

    /// `count` (1, 2 or 4) little endian bytes of `bytes` at `pos`; zero where out of range.
    fn get(bytes: &[u8], pos: usize, count: usize) -> u32 {
        let mut val = [0u8; 4];
        if let (Some(dst), Some(src)) = (
            val.get_mut(..count),
            bytes.get(pos..pos.saturating_add(count)),
        ) {
            dst.copy_from_slice(src);
        }
        u32::from_le_bytes(val)
    }

    fn vget(&self, pos: usize, count: usize) -> u32 {
        Self::get(&self.vconfig, pos, count)
    }

    /// Stores `count` (1, 2 or 4) bytes of `val` in `vconfig` at `pos`; ignored if out of
    /// range.
    fn vset(&mut self, pos: usize, count: usize, val: u32) {
        let bytes = val.to_le_bytes();
        if let (Some(dst), Some(src)) = (
            self.vconfig.get_mut(pos..pos.saturating_add(count)),
            bytes.get(..count),
        ) {
            dst.copy_from_slice(src);
        }
    }
}

/// Permission setter for one capability, offsets relative to its start, clipped to its
/// length (a short capability version lacks the later registers).
struct CapPerms<'a> {
    cfg: &'a mut PciConfig,
    start: usize,
    len: usize,
}

impl CapPerms<'_> {
    fn set(&mut self, off: usize, count: usize, virt: u32, write: u32) {
        if off.saturating_add(count) <= self.len {
            self.cfg.set_perm(self.start + off, count, virt, write);
        }
    }
}

/// The widest naturally aligned access (4, 2 or 1 bytes) at `pos` that fits in `avail`.
fn aligned_width(pos: usize, avail: usize) -> usize {
    if avail >= 4 && pos & 3 == 0 {
        4
    } else if avail >= 2 && pos & 1 == 0 {
        2
    } else {
        1
    }
}

fn prefetch_flag(prefetch: bool) -> u32 {
    if prefetch {
        PCI_BASE_ADDRESS_MEM_PREFETCH
    } else {
        0
    }
}

/// Offset of BAR `i`, the ROM BAR for `i == 6`.
fn bar_offset(i: usize) -> usize {
    if i < PCI_STD_NUM_BARS {
        PCI_BASE_ADDRESS_0 + 4 * i
    } else {
        PCI_ROM_ADDRESS
    }
}

fn hw_read(io: &impl ConfigIo, pos: usize, count: usize) -> Result<u32, Error> {
    let off = hw_offset(pos)?;
    match count {
        1 => io.read8(off).map(u32::from),
        2 => io.read16(off).map(u32::from),
        4 => io.read32(off),
        _ => Err(Error::OutOfRange),
    }
}

fn hw_write(io: &impl ConfigIo, pos: usize, count: usize, val: u32) -> Result<(), Error> {
    let off = hw_offset(pos)?;
    match count {
        1 => io.write8(off, val as u8),
        2 => io.write16(off, val as u16),
        4 => io.write32(off, val),
        _ => Err(Error::OutOfRange),
    }
}

// Host unit tests against fake devices. Kernel builds never set `cfg(test)`; to run them
// under KUnit, move the file's contents into an inline `#[kunit_tests(vfio_pci_config)]`
// module here (they use `core` only).
#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
