// SPDX-License-Identifier: GPL-2.0

//! Tests of config space virtualization against two fake devices: QEMU's edu (conventional,
//! one 32-bit BAR, MSI) and an igb-like PCIe NIC (64-bit, I/O and MSI-X BARs, ROM, PM, MSI
//! with masking, a hidden debug capability, MSI-X, PCIe; AER, a hidden PASID and DSN in
//! extended space). Only `core` is used, so that they can move into a KUnit suite.

use super::*;
use core::cell::Cell;
use core::cell::RefCell;

/// A device whose config space is plain memory: every write lands, so a test sees exactly
/// what reached "hardware". Accesses must be naturally aligned and inside config space.
struct Fake {
    mem: RefCell<[u8; PCI_CFG_SPACE_EXP_SIZE]>,
    size: usize,
    writes: Cell<u32>,
    power: Cell<Option<u8>>,
    resets: Cell<u32>,
    readrq: Cell<Option<u32>>,
    intx_masked: Cell<Option<bool>>,
}

impl Fake {
    fn new(size: usize) -> Self {
        Self {
            mem: RefCell::new([0; PCI_CFG_SPACE_EXP_SIZE]),
            size,
            writes: Cell::new(0),
            power: Cell::new(None),
            resets: Cell::new(0),
            readrq: Cell::new(None),
            intx_masked: Cell::new(None),
        }
    }

    fn get(&self, off: usize, n: usize) -> u32 {
        let mem = self.mem.borrow();
        (0..n).fold(0, |v, i| v | u32::from(mem[off + i]) << (8 * i))
    }

    fn put(&self, off: usize, n: usize, val: u32) {
        let mut mem = self.mem.borrow_mut();
        for i in 0..n {
            mem[off + i] = (val >> (8 * i)) as u8;
        }
    }

    fn check(&self, off: u16, n: usize) -> Result<usize, Error> {
        let off = usize::from(off);
        assert_eq!(off % n, 0, "unaligned {n}-byte access at {off:#x}");
        if off + n > self.size {
            return Err(Error::Io);
        }
        Ok(off)
    }

    fn wrote(&self, off: u16, n: usize, val: u32) -> Result<(), Error> {
        let off = self.check(off, n)?;
        self.writes.set(self.writes.get() + 1);
        self.put(off, n, val);
        Ok(())
    }
}

impl ConfigIo for Fake {
    fn read8(&self, off: u16) -> Result<u8, Error> {
        Ok(self.get(self.check(off, 1)?, 1) as u8)
    }
    fn read16(&self, off: u16) -> Result<u16, Error> {
        Ok(self.get(self.check(off, 2)?, 2) as u16)
    }
    fn read32(&self, off: u16) -> Result<u32, Error> {
        Ok(self.get(self.check(off, 4)?, 4))
    }
    fn write8(&self, off: u16, val: u8) -> Result<(), Error> {
        self.wrote(off, 1, val.into())
    }
    fn write16(&self, off: u16, val: u16) -> Result<(), Error> {
        self.wrote(off, 2, val.into())
    }
    fn write32(&self, off: u16, val: u32) -> Result<(), Error> {
        self.wrote(off, 4, val)
    }
    fn set_power_state(&self, state: u8) {
        self.power.set(Some(state));
    }
    fn reset_function(&self) {
        self.resets.set(self.resets.get() + 1);
    }
    fn set_read_request_size(&self, bytes: u32) {
        self.readrq.set(Some(bytes));
    }
    fn set_intx_masked(&self, masked: bool) {
        self.intx_masked.set(Some(masked));
    }
}

const NO_BARS: [Bar; 6] = [Bar::None; 6];

/// QEMU's edu device: 1234:11e8, class 00ff00, 1 MiB BAR0, 64-bit MSI at 0x40.
fn edu() -> (Fake, DeviceInfo) {
    let dev = Fake::new(PCI_CFG_SPACE_SIZE);
    dev.put(0x00, 4, 0x11e8_1234);
    dev.put(0x04, 4, 0x0010_0002); // status: caps; command: memory
    dev.put(0x08, 4, 0x00ff_0010);
    dev.put(0x10, 4, 0xfea0_0000);
    dev.put(0x2c, 4, 0x1100_1af4);
    dev.put(0x34, 1, 0x40);
    dev.put(0x3c, 2, 0x010b);
    dev.put(0x40, 4, 0x0080_0005); // MSI, last, 64-bit
    dev.put(0x44, 4, 0xfee0_0000);
    dev.put(0x4c, 2, 0x4021);
    let mut bars = NO_BARS;
    bars[0] = Bar::Mem32 {
        len: 1 << 20,
        prefetch: false,
    };
    let info = DeviceInfo {
        cfg_size: PCI_CFG_SPACE_SIZE,
        bars,
        rom_size: 0,
        has_intx: true,
        nointx: false,
        no_command_memory: false,
        vf_ids: None,
    };
    (dev, info)
}

/// An igb-like PCIe function.
fn igb() -> (Fake, DeviceInfo) {
    let dev = Fake::new(PCI_CFG_SPACE_EXP_SIZE);
    dev.put(0x00, 4, 0x10c9_8086);
    dev.put(0x04, 4, 0x0010_0007);
    dev.put(0x08, 4, 0x0200_0001);
    dev.put(0x10, 4, 0xfe00_0004); // 64-bit, 128 KiB
    dev.put(0x14, 4, 0x0000_0000);
    dev.put(0x18, 4, 0x0000_c001); // I/O, 32 bytes
    dev.put(0x1c, 4, 0xfe02_0000); // MSI-X, 16 KiB
    dev.put(0x2c, 4, 0xa03c_8086);
    dev.put(0x30, 4, 0xfe04_0000); // ROM, 256 KiB, disabled
    dev.put(0x34, 1, 0x40);
    dev.put(0x3c, 2, 0x010a);
    // PM: PME from D0/D3hot/D3cold; PME status and enable set, no soft reset.
    dev.put(0x40, 4, 0xc823_5001);
    dev.put(0x44, 4, 0x0000_8108);
    // MSI: 64-bit with per-vector masking.
    dev.put(0x50, 4, 0x0180_6805);
    dev.put(0x60, 4, 0x0000_0001); // mask
                                   // Debug port: hidden.
    dev.put(0x68, 4, 0x0000_700a);
    // MSI-X: 10 vectors, table and PBA in BAR3.
    dev.put(0x70, 4, 0x0009_a011);
    dev.put(0x74, 4, 0x0000_0003);
    dev.put(0x78, 4, 0x0000_2003);
    // PCIe v2 endpoint with FLR; MRRS 512, relaxed ordering, no snoop.
    dev.put(0xa0, 4, 0x0002_0010);
    dev.put(0xa4, 4, 0x1000_8cc2);
    dev.put(0xa8, 4, 0x0000_2810);
    // Extended: AER -> PASID (hidden) -> DSN.
    dev.put(0x100, 4, 0x1402_0001);
    dev.put(0x10c, 4, 0x0046_2030);
    dev.put(0x140, 4, 0x1501_001b);
    dev.put(0x150, 4, 0x0001_0003);
    dev.put(0x154, 4, 0x1234_5678);
    let mut bars = NO_BARS;
    bars[0] = Bar::Mem64 {
        len: 128 << 10,
        prefetch: false,
    };
    bars[2] = Bar::Io { len: 32 };
    bars[3] = Bar::Mem32 {
        len: 16 << 10,
        prefetch: false,
    };
    let info = DeviceInfo {
        cfg_size: PCI_CFG_SPACE_EXP_SIZE,
        bars,
        rom_size: 256 << 10,
        has_intx: true,
        nointx: false,
        no_command_memory: false,
        vf_ids: None,
    };
    (dev, info)
}

fn setup(dev: &Fake, info: &DeviceInfo) -> PciConfig {
    let mut cfg = PciConfig::new();
    assert_eq!(cfg.setup(dev, info), Ok(()));
    // Setup only reads.
    assert_eq!(dev.writes.get(), 0);
    cfg
}

fn rd(cfg: &mut PciConfig, dev: &Fake, off: usize, n: usize) -> u32 {
    let mut buf = [0u8; 4];
    assert_eq!(cfg.read(dev, off, &mut buf[..n]), Ok(n));
    u32::from_le_bytes(buf)
}

fn wr(cfg: &mut PciConfig, dev: &Fake, off: usize, n: usize, val: u32) {
    assert_eq!(cfg.write(dev, off, &val.to_le_bytes()[..n]), Ok(n));
}

#[test]
fn ids_and_class_read_only() {
    let (dev, info) = edu();
    let mut cfg = setup(&dev, &info);
    assert_eq!(cfg.size(), 256);
    assert_eq!(rd(&mut cfg, &dev, PCI_VENDOR_ID, 2), 0x1234);
    assert_eq!(rd(&mut cfg, &dev, PCI_DEVICE_ID, 2), 0x11e8);
    assert_eq!(rd(&mut cfg, &dev, 0x08, 4), 0x00ff_0010);
    wr(&mut cfg, &dev, PCI_VENDOR_ID, 4, 0xdead_beef);
    wr(&mut cfg, &dev, 0x08, 4, 0);
    wr(&mut cfg, &dev, 0x0e, 1, 0x80); // header type
    wr(&mut cfg, &dev, 0x2c, 4, 0); // subsystem
    wr(&mut cfg, &dev, PCI_CAPABILITY_LIST, 1, 0x80);
    wr(&mut cfg, &dev, PCI_INTERRUPT_PIN, 1, 4);
    assert_eq!(dev.writes.get(), 0);
    assert_eq!(rd(&mut cfg, &dev, 0, 4), 0x11e8_1234);
    assert_eq!(rd(&mut cfg, &dev, 0x08, 4), 0x00ff_0010);
    assert_eq!(rd(&mut cfg, &dev, PCI_CAPABILITY_LIST, 1), 0x40);
    assert_eq!(rd(&mut cfg, &dev, PCI_INTERRUPT_PIN, 1), 1);
}

#[test]
fn bar_sizing_32() {
    let (dev, info) = edu();
    let mut cfg = setup(&dev, &info);
    assert_eq!(rd(&mut cfg, &dev, 0x10, 4), 0xfea0_0000);
    wr(&mut cfg, &dev, 0x10, 4, u32::MAX);
    assert_eq!(rd(&mut cfg, &dev, 0x10, 4), 0xfff0_0000);
    wr(&mut cfg, &dev, 0x10, 4, 0xfea0_0000);
    assert_eq!(rd(&mut cfg, &dev, 0x10, 4), 0xfea0_0000);
    // Unaligned low bits are dropped like real address decoders do.
    wr(&mut cfg, &dev, 0x10, 4, 0x1234_5678);
    assert_eq!(rd(&mut cfg, &dev, 0x10, 4), 0x1230_0000);
    // Unimplemented BARs and the missing ROM read zero whatever is written.
    for off in (0x14..0x28).step_by(4).chain([PCI_ROM_ADDRESS]) {
        wr(&mut cfg, &dev, off, 4, u32::MAX);
        assert_eq!(rd(&mut cfg, &dev, off, 4), 0, "BAR at {off:#x}");
    }
    // Nothing reached hardware.
    assert_eq!(dev.writes.get(), 0);
    assert_eq!(dev.get(0x10, 4), 0xfea0_0000);
}

#[test]
fn bar_sizing_64_io_and_rom() {
    let (dev, info) = igb();
    let mut cfg = setup(&dev, &info);
    wr(&mut cfg, &dev, 0x10, 4, u32::MAX);
    wr(&mut cfg, &dev, 0x14, 4, u32::MAX);
    assert_eq!(rd(&mut cfg, &dev, 0x10, 4), 0xfffe_0004);
    assert_eq!(rd(&mut cfg, &dev, 0x14, 4), 0xffff_ffff);
    wr(&mut cfg, &dev, 0x10, 4, 0xfe00_0000);
    wr(&mut cfg, &dev, 0x14, 4, 0x0000_0001);
    assert_eq!(rd(&mut cfg, &dev, 0x10, 4), 0xfe00_0004);
    assert_eq!(rd(&mut cfg, &dev, 0x14, 4), 0x0000_0001);

    // I/O BAR keeps its space bit.
    wr(&mut cfg, &dev, 0x18, 4, u32::MAX);
    assert_eq!(rd(&mut cfg, &dev, 0x18, 4), 0xffff_ffe1);
    wr(&mut cfg, &dev, 0x18, 4, 0xc000);
    assert_eq!(rd(&mut cfg, &dev, 0x18, 4), 0xc001);

    // ROM: size mask plus the enable bit, which is remembered.
    wr(&mut cfg, &dev, PCI_ROM_ADDRESS, 4, u32::MAX);
    assert_eq!(rd(&mut cfg, &dev, PCI_ROM_ADDRESS, 4), 0xfffc_0001);
    wr(&mut cfg, &dev, PCI_ROM_ADDRESS, 4, 0xfe04_0000);
    assert_eq!(rd(&mut cfg, &dev, PCI_ROM_ADDRESS, 4), 0xfe04_0000);

    // Sizing with 16-bit halves works too.
    wr(&mut cfg, &dev, 0x1c, 2, 0xffff);
    wr(&mut cfg, &dev, 0x1e, 2, 0xffff);
    assert_eq!(rd(&mut cfg, &dev, 0x1c, 4), 0xffff_c000);
    assert_eq!(dev.writes.get(), 0);
}

#[test]
fn command_register() {
    let (dev, info) = edu();
    let mut cfg = setup(&dev, &info);
    // Memory, bus master and INTx disable: the first two reach hardware, INTx disable
    // stays virtual and masks INTx through the driver.
    wr(&mut cfg, &dev, PCI_COMMAND, 2, 0x0406);
    assert_eq!(dev.get(PCI_COMMAND, 2), 0x0006);
    assert_eq!(dev.intx_masked.get(), Some(true));
    assert_eq!(rd(&mut cfg, &dev, PCI_COMMAND, 2), 0x0406);
    assert!(cfg.memory_enabled());
    // Dropping INTx disable by a byte write to the high half unmasks.
    wr(&mut cfg, &dev, PCI_COMMAND + 1, 1, 0);
    assert_eq!(dev.intx_masked.get(), Some(false));
    wr(&mut cfg, &dev, PCI_COMMAND, 2, 0);
    assert!(!cfg.memory_enabled());
    assert_eq!(dev.get(PCI_COMMAND, 2), 0);
}

#[test]
fn status_is_protected() {
    let (dev, info) = edu();
    let mut cfg = setup(&dev, &info);
    dev.put(PCI_STATUS, 2, 0x4010); // signalled system error
    let writes = dev.writes.get();
    // A dword write at the command register: the command half goes to hardware, the
    // status half (write one to clear there) must not.
    wr(&mut cfg, &dev, PCI_COMMAND, 4, 0xffff_0002);
    assert_eq!(dev.get(PCI_STATUS, 2), 0x4010);
    assert_eq!(dev.writes.get(), writes + 1);
    wr(&mut cfg, &dev, PCI_STATUS, 2, 0xffff);
    assert_eq!(dev.writes.get(), writes + 1);
    assert_eq!(rd(&mut cfg, &dev, PCI_STATUS, 2), 0x4010);
}

#[test]
fn bars_restored_after_hidden_reset() {
    let (dev, info) = igb();
    let mut cfg = setup(&dev, &info);
    // The device lost its BARs and decoding behind our back.
    dev.put(0x10, 4, 0);
    dev.put(0x18, 4, 0);
    dev.put(PCI_COMMAND, 2, 0);
    wr(&mut cfg, &dev, PCI_COMMAND, 2, 0x0007);
    assert_eq!(dev.get(0x10, 4), 0xfe00_0004);
    assert_eq!(dev.get(0x18, 4), 0xc001);
    assert_eq!(dev.get(0x30, 4), 0xfe04_0000);
    assert_eq!(dev.get(PCI_COMMAND, 2), 0x0007);
}

#[test]
fn interrupt_line_and_pin() {
    let (dev, info) = edu();
    let mut cfg = setup(&dev, &info);
    wr(&mut cfg, &dev, PCI_INTERRUPT_LINE, 1, 0x42);
    assert_eq!(rd(&mut cfg, &dev, PCI_INTERRUPT_LINE, 1), 0x42);
    assert_eq!(dev.get(PCI_INTERRUPT_LINE, 1), 0x0b);
    assert_eq!(dev.writes.get(), 0);

    let (dev, mut info) = edu();
    info.has_intx = false;
    let mut cfg = setup(&dev, &info);
    assert_eq!(rd(&mut cfg, &dev, PCI_INTERRUPT_PIN, 1), 0);

    let (dev, mut info) = edu();
    info.vf_ids = Some((0x8086, 0x10ca));
    dev.put(0, 4, u32::MAX);
    let mut cfg = setup(&dev, &info);
    assert_eq!(rd(&mut cfg, &dev, 0, 4), 0x10ca_8086);
    assert_eq!(rd(&mut cfg, &dev, PCI_INTERRUPT_PIN, 1), 0);
}

#[test]
fn msi_message_stays_virtual() {
    let (dev, info) = edu();
    let mut cfg = setup(&dev, &info);
    wr(&mut cfg, &dev, 0x44, 4, 0xfee0_1000);
    wr(&mut cfg, &dev, 0x48, 4, 0x0000_0001);
    wr(&mut cfg, &dev, 0x4c, 2, 0x0051);
    assert_eq!(dev.writes.get(), 0);
    assert_eq!(rd(&mut cfg, &dev, 0x44, 4), 0xfee0_1000);
    assert_eq!(rd(&mut cfg, &dev, 0x48, 4), 0x0000_0001);
    assert_eq!(rd(&mut cfg, &dev, 0x4c, 2), 0x0051);
    assert_eq!(dev.get(0x44, 4), 0xfee0_0000);
    assert_eq!(dev.get(0x4c, 2), 0x4021);

    // Enable with four vectors before SET_IRQS: enable and size are refused.
    // (The low byte of the flags is all virtual and writable, as upstream, so the 64-bit
    // bit is written back as read.)
    wr(&mut cfg, &dev, 0x42, 2, 0x00a1);
    assert_eq!(rd(&mut cfg, &dev, 0x42, 2), 0x0080);
    assert_eq!(dev.get(0x42, 2), 0x0080);
    // Once MSI is set up with two vectors, the enable sticks and the size is clamped.
    cfg.set_msi_state(true, 1);
    wr(&mut cfg, &dev, 0x42, 2, 0x00a1);
    assert_eq!(rd(&mut cfg, &dev, 0x42, 2), 0x0093);
    assert_eq!(dev.get(0x42, 2), 0x0091);
}

#[test]
fn msi_mask_bits_reach_hardware() {
    let (dev, info) = igb();
    let mut cfg = setup(&dev, &info);
    assert_eq!(rd(&mut cfg, &dev, 0x60, 4), 1);
    wr(&mut cfg, &dev, 0x60, 4, 0);
    assert_eq!(dev.get(0x60, 4), 0);
    assert_eq!(dev.writes.get(), 1);
}

#[test]
fn msix_is_read_only() {
    let (dev, info) = igb();
    let mut cfg = setup(&dev, &info);
    wr(&mut cfg, &dev, 0x72, 2, 0xc000);
    wr(&mut cfg, &dev, 0x74, 4, 0x1000);
    wr(&mut cfg, &dev, 0x78, 4, 0x1000);
    assert_eq!(dev.writes.get(), 0);
    assert_eq!(rd(&mut cfg, &dev, 0x70, 4), 0x0009_a011);
    assert_eq!(rd(&mut cfg, &dev, 0x74, 4), 0x0000_0003);
    // The control register reads live: the host's MSI-X enable shows through.
    dev.put(0x72, 2, 0x8009);
    assert_eq!(rd(&mut cfg, &dev, 0x72, 2), 0x8009);
}

#[test]
fn hidden_capabilities_skipped() {
    let (dev, info) = igb();
    let mut cfg = setup(&dev, &info);
    let mut chain = [0usize; 8];
    let mut n = 0;
    let mut pos = rd(&mut cfg, &dev, PCI_CAPABILITY_LIST, 1) as usize;
    while pos != 0 && n < chain.len() {
        chain[n] = pos;
        n += 1;
        pos = rd(&mut cfg, &dev, pos + 1, 1) as usize;
    }
    assert_eq!(chain[..n], [0x40, 0x50, 0x70, 0xa0]);
    // The ID and next pointer read as a word too.
    assert_eq!(rd(&mut cfg, &dev, 0x50, 2), 0x7005);

    // Extended: AER now points past the hidden PASID to DSN.
    assert_eq!(rd(&mut cfg, &dev, 0x100, 4), 0x1502_0001);
    assert_eq!(rd(&mut cfg, &dev, 0x150, 4), 0x0001_0003);
    assert_eq!(rd(&mut cfg, &dev, 0x154, 4), 0x1234_5678);
    // Writing the header does not relink anything.
    wr(&mut cfg, &dev, 0x100, 4, 0);
    assert_eq!(rd(&mut cfg, &dev, 0x100, 4), 0x1502_0001);
    assert_eq!(dev.writes.get(), 0);
}

#[test]
fn hidden_first_extended_capability() {
    let (dev, info) = igb();
    // PASID first, then DSN.
    dev.put(0x100, 4, 0x1501_001b);
    let mut cfg = setup(&dev, &info);
    assert_eq!(rd(&mut cfg, &dev, 0x100, 4), 0x1500_0000);
    assert_eq!(rd(&mut cfg, &dev, 0x150, 4), 0x0001_0003);

    // Only hidden ones: the list reads empty.
    dev.put(0x100, 4, 0x0001_001b);
    let mut cfg = setup(&dev, &info);
    assert_eq!(rd(&mut cfg, &dev, 0x100, 4), 0);
}

#[test]
fn no_visible_capabilities_clears_status_bit() {
    let (dev, info) = edu();
    dev.put(0x40, 1, 0x0a); // debug port instead of MSI
    let mut cfg = setup(&dev, &info);
    assert_eq!(rd(&mut cfg, &dev, PCI_STATUS, 2) & 0x10, 0);
    assert_eq!(rd(&mut cfg, &dev, PCI_CAPABILITY_LIST, 1), 0);
}

#[test]
fn power_management() {
    let (dev, info) = igb();
    let mut cfg = setup(&dev, &info);
    // PME support, enable and status are hidden.
    assert_eq!(rd(&mut cfg, &dev, 0x42, 2), 0x0023);
    assert_eq!(rd(&mut cfg, &dev, 0x44, 2), 0x0008);
    // D3hot goes through the driver; the state bits are not written directly.
    wr(&mut cfg, &dev, 0x44, 2, 0x0003);
    assert_eq!(dev.power.get(), Some(3));
    assert_eq!(dev.get(0x44, 2) & 0x8103, 0x8100);
    // Writing PME status (one to clear) does not clear the host's.
    wr(&mut cfg, &dev, 0x44, 2, 0x8000);
    assert_eq!(dev.power.get(), Some(0));
    assert_eq!(dev.get(0x44, 2) & 0x8100, 0x8100);
}

#[test]
fn pcie_device_control() {
    let (dev, info) = igb();
    let mut cfg = setup(&dev, &info);
    let devctl = 0xa8;
    // Clear relaxed ordering and ask for phantom functions: only the first lands.
    wr(&mut cfg, &dev, devctl, 2, 0x2a00);
    assert_eq!(dev.get(devctl, 2), 0x2800);
    assert_eq!(rd(&mut cfg, &dev, devctl, 2), 0x2800);
    assert_eq!(dev.readrq.get(), None);
    // Max payload is virtual; the read request size is handed to the driver.
    wr(&mut cfg, &dev, devctl, 2, 0x4820);
    assert_eq!(rd(&mut cfg, &dev, devctl, 2), 0x4820);
    assert_eq!(dev.get(devctl, 2), 0x2800);
    assert_eq!(dev.readrq.get(), Some(2048));
    // FLR resets through the driver and reads back as zero.
    wr(&mut cfg, &dev, devctl, 2, 0xc820);
    assert_eq!(dev.resets.get(), 1);
    assert_eq!(rd(&mut cfg, &dev, devctl, 2), 0x4820);
    // Device capabilities are read-only, ARI forwarding in DEVCTL2 too.
    let writes = dev.writes.get();
    wr(&mut cfg, &dev, 0xa4, 4, 0);
    assert_eq!(dev.writes.get(), writes);
    wr(&mut cfg, &dev, 0xc8, 2, 0x0020);
    assert_eq!(dev.get(0xc8, 2), 0);
    wr(&mut cfg, &dev, 0xc8, 2, 0x0400);
    assert_eq!(dev.get(0xc8, 2), 0x0400);
}

#[test]
fn aer_writable_bits() {
    let (dev, info) = igb();
    let mut cfg = setup(&dev, &info);
    wr(&mut cfg, &dev, 0x108, 4, u32::MAX);
    assert_eq!(dev.get(0x108, 4), 0x03ff_f031);
    wr(&mut cfg, &dev, 0x118, 4, u32::MAX);
    assert_eq!(dev.get(0x118, 4), 0x0000_0140);
    // Header log is read-only.
    let writes = dev.writes.get();
    wr(&mut cfg, &dev, 0x11c, 4, u32::MAX);
    assert_eq!(dev.writes.get(), writes);
}

#[test]
fn unaligned_reads_across_registers() {
    let (dev, info) = edu();
    let mut cfg = setup(&dev, &info);
    let mut buf = [0u8; 7];
    assert_eq!(cfg.read(&dev, 1, &mut buf), Ok(7));
    assert_eq!(buf, [0x12, 0xe8, 0x11, 0x02, 0x00, 0x10, 0x00]);
    // A read spanning the header and the MSI capability, odd start and end.
    let mut buf = [0u8; 9];
    assert_eq!(cfg.read(&dev, 0x3b, &mut buf), Ok(9));
    assert_eq!(buf, [0, 0x0b, 0x01, 0, 0, 0x05, 0x00, 0x80, 0x00]);
    // The whole space in one go matches byte-by-byte reads.
    let mut all = [0u8; 256];
    assert_eq!(cfg.read(&dev, 0, &mut all), Ok(256));
    for (off, byte) in all.iter().enumerate() {
        assert_eq!(
            rd(&mut cfg, &dev, off, 1),
            u32::from(*byte),
            "byte {off:#x}"
        );
    }
}

#[test]
fn unaligned_writes_split() {
    let (dev, info) = edu();
    let mut cfg = setup(&dev, &info);
    // Three bytes at an odd offset of BAR0 land in the virtual BAR.
    assert_eq!(cfg.write(&dev, 0x11, &[0xff, 0xff, 0xff]), Ok(3));
    assert_eq!(rd(&mut cfg, &dev, 0x10, 4), 0xfff0_0000);
    assert_eq!(dev.writes.get(), 0);
}

#[test]
fn unassigned_bytes_pass_through() {
    let (dev, info) = edu();
    let mut cfg = setup(&dev, &info);
    wr(&mut cfg, &dev, 0x80, 4, 0x1234_5678);
    assert_eq!(dev.get(0x80, 4), 0x1234_5678);
    dev.put(0x90, 2, 0xbeef);
    assert_eq!(rd(&mut cfg, &dev, 0x90, 2), 0xbeef);
}

#[test]
fn out_of_range() {
    let (dev, info) = edu();
    let mut cfg = setup(&dev, &info);
    let mut buf = [0u8; 8];
    assert_eq!(cfg.read(&dev, 256, &mut buf[..1]), Err(Error::OutOfRange));
    assert_eq!(cfg.read(&dev, 250, &mut buf), Err(Error::OutOfRange));
    assert_eq!(cfg.read(&dev, usize::MAX, &mut buf), Err(Error::OutOfRange));
    assert_eq!(
        cfg.read(&dev, usize::MAX - 3, &mut buf),
        Err(Error::OutOfRange)
    );
    assert_eq!(cfg.write(&dev, 256, &buf[..1]), Err(Error::OutOfRange));
    assert_eq!(cfg.write(&dev, usize::MAX, &buf), Err(Error::OutOfRange));
    assert_eq!(cfg.write(&dev, 0xfc, &buf[..5]), Err(Error::OutOfRange));
    // Empty accesses do nothing, anywhere, as upstream.
    assert_eq!(cfg.read(&dev, usize::MAX, &mut buf[..0]), Ok(0));
    assert_eq!(cfg.write(&dev, 4096, &buf[..0]), Ok(0));
    // The last bytes are fine.
    assert_eq!(cfg.read(&dev, 248, &mut buf), Ok(8));
    assert_eq!(dev.writes.get(), 0);

    let (dev, info) = igb();
    let mut cfg = setup(&dev, &info);
    assert_eq!(cfg.read(&dev, 4092, &mut buf[..4]), Ok(4));
    assert_eq!(cfg.read(&dev, 4093, &mut buf[..4]), Err(Error::OutOfRange));
}

#[test]
fn bad_setup() {
    let (dev, mut info) = edu();
    info.cfg_size = 1000;
    assert_eq!(
        PciConfig::new().setup(&dev, &info),
        Err(Error::InvalidSetup)
    );
    // A 64-bit BAR in the last slot has no upper half.
    let (dev, mut info) = edu();
    info.bars[5] = Bar::Mem64 {
        len: 4096,
        prefetch: true,
    };
    assert_eq!(
        PciConfig::new().setup(&dev, &info),
        Err(Error::InvalidSetup)
    );
}

#[test]
fn hostile_capability_lists() {
    // A loop, a pointer into the header and a capability running off the end.
    for (ptr, next) in [(0x40, 0x40), (0x40, 0x10), (0xfc, 0x00), (0xff, 0x00)] {
        let (dev, info) = edu();
        dev.put(0x34, 1, ptr);
        dev.put(0x40, 1, 0x05);
        dev.put(0x41, 1, next);
        dev.put(0xfc, 4, 0x0000_0009 | (0xff << 16)); // vendor cap claiming 255 bytes
        let mut cfg = PciConfig::new();
        assert_eq!(cfg.setup(&dev, &info), Ok(()));
        let mut all = [0u8; 256];
        assert_eq!(cfg.read(&dev, 0, &mut all), Ok(256));
    }
    // An extended list that loops or points below 0x100.
    for header in [0x1000_0001u32, 0x0800_0001, 0xffc0_0001] {
        let (dev, info) = igb();
        dev.put(0x100, 4, header);
        dev.put(0xffc, 4, 0x0001_000b);
        let mut cfg = PciConfig::new();
        assert_eq!(cfg.setup(&dev, &info), Ok(()));
        let mut buf = [0u8; 16];
        assert_eq!(cfg.read(&dev, 0xff8, &mut buf[..8]), Ok(8));
    }
}

#[test]
fn every_offset_and_length() {
    let (dev, info) = igb();
    let mut cfg = setup(&dev, &info);
    let mut buf = [0u8; 9];
    for off in 0..4100usize {
        for len in 0..buf.len() {
            let fits = len == 0 || off + len <= 4096;
            assert_eq!(cfg.read(&dev, off, &mut buf[..len]).is_ok(), fits);
            let pattern = [0xa5u8; 9];
            assert_eq!(cfg.write(&dev, off, &pattern[..len]).is_ok(), fits);
        }
    }
}
