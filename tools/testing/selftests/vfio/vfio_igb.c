// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-pci on an Intel 82576 (QEMU 10's igb, bound to vfio-pci: the igb VM of
 * make test; every test skips where there is none), for what edu cannot show:
 * dynamic MSI-X. Where the function's interrupt domain can add MSI-X vectors
 * while MSI-X is on, vfio-pci leaves VFIO_IRQ_INFO_NORESIZE out of the MSI-X
 * index's info and takes an eventfd for a vector past those it enabled,
 * allocating it then (upstream's has_dyn_msix). The test has the NIC raise
 * that vector itself (82576 datasheet: in MSI-X mode, GPIE.Multiple_MSIX, a
 * bit set in EICS raises the vector of the same number, if set in EIMS), so
 * the message must have been written into the function's MSI-X table.
 * And the error interrupt: an uncorrectable error injected below the igb's
 * root port (AER's software injector, /dev/aer_inject) reaches vfio-pci's
 * error_detected, which signals the eventfd of VFIO_PCI_ERR_IRQ_INDEX.
 * And an I/O-port BAR: the 82576's BAR 2 (32 bytes) reaches its registers
 * indirectly, IOADDR at 0 naming a register and IODATA at 4 reading or
 * writing it, which the test compares with BAR 0's memory view. And the
 * expansion ROM that scripts/test-vm-igb.sh gives the igb (romfile=): one
 * 2 KiB image in a 4 KiB BAR, read-only, reading as all ones past the image.
 * And low power down to D3hot, which edu (no PM capability) never reaches,
 * also as the user's own choice through the PM capability; a function level
 * reset and the max read request size through config space.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"

#include "vfio_edu.h"

#define IGB_GPIE 0x01514
#define IGB_GPIE_MSIX_MODE 0x10
#define IGB_EICS 0x01520
#define IGB_EIMS 0x01524
#define IGB_EIMC 0x01528
#define VECTOR 2
#define IGB_STATUS 0x00008
#define IGB_RDBAL0 0x0c000
#define IO_BAR 2
#define IO_BAR_SIZE 32
/* PCI_ERR_UNC_COMP_ABORT: uncorrectable, non-fatal by default. */
#define UNC_COMP_ABORT 0x00008000

/* What /dev/aer_inject takes (drivers/pci/pcie/aer_inject.c). */
struct aer_error_inj {
	__u8 bus;
	__u8 dev;
	__u8 fn;
	__u32 uncor_status;
	__u32 cor_status;
	__u32 header_log[4];
	__u32 domain;
};

/* The 82576 bound to vfio-pci. */
static bool is_igb_in_vfio(const char *bdf)
{
	return pci_ids_are(bdf, "0x8086", "0x10c9") && pci_bound_to(bdf, "vfio-pci");
}

/* Sets MSI-X vectors from @start to the eventfds @fds (NULL: the loopback). */
static int set_msix(int devfd, __u32 start, __u32 count, const int *fds)
{
	char buf[sizeof(struct vfio_irq_set) + 8 * sizeof(int)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;

	memset(buf, 0, sizeof(buf));
	set->argsz = sizeof(*set) + (fds ? count * sizeof(int) : 0);
	set->flags = VFIO_IRQ_SET_ACTION_TRIGGER |
		     (fds ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE);
	set->index = VFIO_PCI_MSIX_IRQ_INDEX;
	set->start = start;
	set->count = count;
	if (fds)
		memcpy(set->data, fds, count * sizeof(int));
	return ioctl(devfd, VFIO_DEVICE_SET_IRQS, set);
}

/* Whether @efd is signalled within @ms; its count is consumed. */
static bool signalled(int efd, int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	__u64 n;

	if (poll(&p, 1, ms) != 1)
		return false;
	return read(efd, &n, sizeof(n)) == sizeof(n);
}

static int igb_write(int devfd, unsigned int reg, __u32 val)
{
	return pwrite(devfd, &val, 4, VFIO_PCI_REGION(VFIO_PCI_BAR0_REGION_INDEX) + reg) == 4
		       ? 0 : -1;
}

static __u32 igb_read(int devfd, unsigned int reg)
{
	__u32 val = ~0u;

	pread(devfd, &val, 4, VFIO_PCI_REGION(VFIO_PCI_BAR0_REGION_INDEX) + reg);
	return val;
}

/* A register through the I/O BAR: IOADDR names it, IODATA holds it. */
static int io_write(int devfd, unsigned int reg, __u32 val)
{
	__u64 io = VFIO_PCI_REGION(IO_BAR);

	if (pwrite(devfd, &reg, 4, io) != 4 || pwrite(devfd, &val, 4, io + 4) != 4)
		return -1;
	return 0;
}

static __u32 io_read(int devfd, unsigned int reg)
{
	__u64 io = VFIO_PCI_REGION(IO_BAR);
	__u32 val = ~0u;

	if (pwrite(devfd, &reg, 4, io) == 4)
		pread(devfd, &val, 4, io + 4);
	return val;
}

/* Sets or clears memory (and port) decoding in the virtual command register. */
static int decoding(int devfd, bool on)
{
	__u64 at = VFIO_PCI_REGION(VFIO_PCI_CONFIG_REGION_INDEX) + PCI_COMMAND;
	__u16 cmd;

	if (pread(devfd, &cmd, 2, at) != 2)
		return -1;
	if (on)
		cmd |= PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
	else
		cmd &= ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	return pwrite(devfd, &cmd, 2, at) == 2 ? 0 : -1;
}

FIXTURE(igb)
{
	char bdf[64];
	int iommufd;
	int devfd;
};

FIXTURE_SETUP(igb)
{
	char name[32], node[64];
	__u32 ioas, pt;

	self->iommufd = -1;
	self->devfd = -1;
	if (!find_pci(self->bdf, sizeof(self->bdf), is_igb_in_vfio))
		SKIP(return, "no 82576 (8086:10c9) bound to vfio-pci");
	if (!find_vfio_dev(self->bdf, name, sizeof(name)))
		SKIP(return, "no device cdev (CONFIG_VFIO_DEVICE_CDEV)");
	snprintf(node, sizeof(node), "/dev/vfio/devices/%s", name);
	self->devfd = open(node, O_RDWR);
	ASSERT_LE(0, self->devfd);
	self->iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->iommufd);
	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, NULL));
	ASSERT_EQ(0, ioas_alloc(self->iommufd, &ioas));
	pt = ioas;
	ASSERT_EQ(0, attach_pt(self->devfd, &pt));
}

FIXTURE_TEARDOWN(igb)
{
	int groupfd = -1;

	close_device_fds(&self->devfd, &groupfd, &self->iommufd);
}

TEST_F(igb, msix_grows_while_enabled)
{
	struct vfio_irq_info info = {
		.argsz = sizeof(info),
		.index = VFIO_PCI_MSIX_IRQ_INDEX,
	};
	int efd[VECTOR + 1], two_fds[2];

	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_IRQ_INFO, &info));
	ASSERT_LT(VECTOR, info.count);
	if (info.flags & VFIO_IRQ_INFO_NORESIZE)
		SKIP(return, "this function's MSI-X cannot grow while enabled");
	for (int i = 0; i <= VECTOR; i++) {
		efd[i] = eventfd(0, EFD_NONBLOCK);
		ASSERT_LE(0, efd[i]);
	}
	/* MSI-X on with vector 0 alone, then vector VECTOR added. */
	ASSERT_EQ(0, set_msix(self->devfd, 0, 1, &efd[0]));
	ASSERT_EQ(0, set_msix(self->devfd, VECTOR, 1, &efd[VECTOR]));
	/* The loopback reaches it. */
	ASSERT_EQ(0, set_msix(self->devfd, VECTOR, 1, NULL));
	EXPECT_TRUE(signalled(efd[VECTOR], 1000));
	EXPECT_FALSE(signalled(efd[0], 0));
	/* So does the NIC: bus mastering on, the vector raised through EICS. */
	ASSERT_EQ(0, edu_bus_master(self->devfd));
	ASSERT_EQ(0, igb_write(self->devfd, IGB_GPIE, IGB_GPIE_MSIX_MODE));
	ASSERT_EQ(0, igb_write(self->devfd, IGB_EIMS, 1 << VECTOR));
	ASSERT_EQ(0, igb_write(self->devfd, IGB_EICS, 1 << VECTOR));
	EXPECT_TRUE(signalled(efd[VECTOR], 2000));
	EXPECT_FALSE(signalled(efd[0], 0));
	/* Vector 1 added later still, next to a new eventfd on VECTOR. */
	two_fds[0] = efd[1];
	two_fds[1] = efd[VECTOR];
	ASSERT_EQ(0, set_msix(self->devfd, 1, 2, two_fds));
	ASSERT_EQ(0, igb_write(self->devfd, IGB_EIMS, 1 << 1));
	ASSERT_EQ(0, igb_write(self->devfd, IGB_EICS, 1 << 1));
	EXPECT_TRUE(signalled(efd[1], 2000));
	/* Past the table: refused. */
	EXPECT_ERRNO(EINVAL, set_msix(self->devfd, info.count, 1, &efd[0]));
	ASSERT_EQ(0, igb_write(self->devfd, IGB_EIMC, ~0u));
	/* Off: every vector goes. */
	ASSERT_EQ(0, set_msix(self->devfd, 0, 0, NULL));
	for (int i = 0; i <= VECTOR; i++)
		close(efd[i]);
}

/* Sets (fd >= 0) or takes off (-1) the error eventfd. */
static int set_err(int devfd, int fd)
{
	return set_irq(devfd, VFIO_PCI_ERR_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 1, fd);
}

/* Injects an uncorrectable non-fatal error on @bdf through @inject. */
static int inject(int inject, const char *bdf)
{
	unsigned int domain, bus, dev, fn;
	struct aer_error_inj inj = { .uncor_status = UNC_COMP_ABORT };

	if (sscanf(bdf, "%x:%x:%x.%x", &domain, &bus, &dev, &fn) != 4)
		return -1;
	inj.domain = domain;
	inj.bus = bus;
	inj.dev = dev;
	inj.fn = fn;
	return write(inject, &inj, sizeof(inj)) == sizeof(inj) ? 0 : -1;
}

TEST_F(igb, error_eventfd_on_aer)
{
	int efd, fd = open("/dev/aer_inject", O_WRONLY);

	if (fd < 0)
		SKIP(return, "no /dev/aer_inject (CONFIG_PCIEAER_INJECT)");
	efd = eventfd(0, EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	ASSERT_EQ(0, set_err(self->devfd, efd));
	ASSERT_EQ(0, inject(fd, self->bdf));
	EXPECT_TRUE(signalled(efd, 5000));
	/* Taken off, it hears of the next one no more. */
	ASSERT_EQ(0, set_err(self->devfd, -1));
	ASSERT_EQ(0, inject(fd, self->bdf));
	EXPECT_FALSE(signalled(efd, 1000));
	close(efd);
	close(fd);
}

TEST_F(igb, io_bar_reaches_registers)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = IO_BAR };
	__u64 io = VFIO_PCI_REGION(IO_BAR);
	__u8 buf[8];

	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_REGION_INFO, &info));
	EXPECT_EQ(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, info.flags);
	ASSERT_EQ(IO_BAR_SIZE, info.size);
	/* Port decoding on, through the (virtual) command register. */
	ASSERT_EQ(0, decoding(self->devfd, true));
	/* Both ways reach the same registers. */
	EXPECT_EQ(igb_read(self->devfd, IGB_STATUS), io_read(self->devfd, IGB_STATUS));
	ASSERT_EQ(0, io_write(self->devfd, IGB_RDBAL0, 0x12345680));
	EXPECT_EQ(0x12345680, igb_read(self->devfd, IGB_RDBAL0));
	ASSERT_EQ(0, igb_write(self->devfd, IGB_RDBAL0, 0x0badc0c0));
	EXPECT_EQ(0x0badc0c0, io_read(self->devfd, IGB_RDBAL0));
	/* Accesses end at the BAR's end; none start past it; it is not mappable. */
	EXPECT_EQ(4, pread(self->devfd, buf, 8, io + IO_BAR_SIZE - 4));
	EXPECT_ERRNO(EINVAL, pread(self->devfd, buf, 4, io + IO_BAR_SIZE));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->devfd, io));
}

TEST_F(igb, rom_is_read_only)
{
	struct vfio_region_info info = {
		.argsz = sizeof(info),
		.index = VFIO_PCI_ROM_REGION_INDEX,
	};
	__u64 rom = VFIO_PCI_REGION(VFIO_PCI_ROM_REGION_INDEX);
	__u8 buf[64];

	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_REGION_INFO, &info));
	if (!info.size)
		SKIP(return, "no expansion ROM (QEMU's romfile=)");
	EXPECT_EQ(VFIO_REGION_INFO_FLAG_READ, info.flags);
	ASSERT_EQ(4096, info.size);
	ASSERT_EQ(0, decoding(self->devfd, true));
	/* The image: its signature, its PCIR structure, its pattern. */
	ASSERT_EQ(64, pread(self->devfd, buf, 64, rom));
	EXPECT_EQ(0x55, buf[0]);
	EXPECT_EQ(0xaa, buf[1]);
	EXPECT_EQ(0, memcmp(buf + 0x1c, "PCIR", 4));
	ASSERT_EQ(16, pread(self->devfd, buf, 16, rom + 0x101));
	for (int i = 0; i < 16; i++)
		EXPECT_EQ(((0x101 + i) * 7 + 3) & 0xff, buf[i]);
	/* Past the image, up to the BAR's end: all ones; past the BAR: nothing. */
	ASSERT_EQ(8, pread(self->devfd, buf, 64, rom + 4096 - 8));
	for (int i = 0; i < 8; i++)
		EXPECT_EQ(0xff, buf[i]);
	EXPECT_ERRNO(EINVAL, pread(self->devfd, buf, 4, rom + 4096));
	EXPECT_ERRNO(EINVAL, pwrite(self->devfd, buf, 4, rom));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->devfd, rom));
	/*
	 * Only with memory decoding on: upstream maps the ROM for each read,
	 * which fails then (ENOMEM).
	 */
	ASSERT_EQ(0, decoding(self->devfd, false));
	EXPECT_ERRNO(ENOMEM, pread(self->devfd, buf, 4, rom));
	ASSERT_EQ(0, decoding(self->devfd, true));
	EXPECT_EQ(4, pread(self->devfd, buf, 4, rom));
}

/*
 * Low power for real (the 82576 has the PM capability, edu does not): with a
 * wake-up eventfd, the function runtime suspends to D3hot, where its memory
 * BAR refuses accesses through the device file (EIO, as upstream's
 * __vfio_pci_memory_enabled); the next ioctl brings it back to D0, signals
 * the eventfd, and the registers answer again.
 */
TEST_F(igb, low_power_reaches_d3hot)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	__u64 bar0 = VFIO_PCI_REGION(VFIO_PCI_BAR0_REGION_INDEX);
	__u32 status;
	int efd;

	if (!pci_attr_becomes(self->bdf, "power_state", "D0", 0))
		SKIP(return, "no power_state in sysfs");
	status = igb_read(self->devfd, IGB_STATUS);
	ASSERT_NE(~0u, status);
	efd = eventfd(0, EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	ASSERT_EQ(0, low_power(self->devfd, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
			       efd));
	ASSERT_TRUE(pci_attr_becomes(self->bdf, "power_state", "D3hot", 2000));
	EXPECT_EQ(-1, pread(self->devfd, &status, 4, bar0 + IGB_STATUS));
	EXPECT_EQ(EIO, errno);
	EXPECT_FALSE(signalled(efd, 0));
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_TRUE(signalled(efd, 2000));
	EXPECT_TRUE(pci_attr_becomes(self->bdf, "power_state", "D0", 0));
	EXPECT_NE(~0u, igb_read(self->devfd, IGB_STATUS));
	close(efd);
}

/* The offset of capability @id in the function's (virtual) config space; 0 if none. */
static unsigned int find_cap(int devfd, __u8 id)
{
	__u8 pos = config_read32(devfd, PCI_CAPABILITY_LIST) & 0xfc;

	for (int n = 0; pos && n < 48; n++) {
		__u32 head = config_read32(devfd, pos);

		if ((head & 0xff) == id)
			return pos;
		pos = (head >> 8) & 0xfc;
	}
	return 0;
}

static __u16 config_read16(int devfd, unsigned int offset)
{
	__u16 val = 0xffff;

	pread(devfd, &val, 2, VFIO_PCI_REGION(VFIO_PCI_CONFIG_REGION_INDEX) + offset);
	return val;
}

/*
 * The user moves the function to D3hot through the PM capability, as a
 * guest's driver does: the function goes there (sysfs power_state), the BAR
 * is refused through the file (EIO) and its mapping faults (SIGBUS); back in
 * D0 the registers answer again, through both.
 */
TEST_F(igb, user_d3hot)
{
	volatile __u32 *bar = map_bar0(self->devfd, getpagesize());
	unsigned int pm = find_cap(self->devfd, PCI_CAP_ID_PM);
	__u16 ctrl, d3;
	__u32 val;

	ASSERT_NE(0, pm);
	ASSERT_NE(NULL, bar);
	ASSERT_TRUE(mmio_read32(bar + IGB_STATUS / 4, &val));
	ctrl = config_read16(self->devfd, pm + PCI_PM_CTRL);
	ASSERT_EQ(0, ctrl & PCI_PM_CTRL_STATE_MASK);
	d3 = ctrl | 3;
	ASSERT_EQ(0, config_write(self->devfd, pm + PCI_PM_CTRL, &d3, 2));
	EXPECT_TRUE(pci_attr_becomes(self->bdf, "power_state", "D3hot", 0));
	EXPECT_EQ(3, config_read16(self->devfd, pm + PCI_PM_CTRL) & PCI_PM_CTRL_STATE_MASK);
	EXPECT_EQ(-1, pread(self->devfd, &val, 4,
			    VFIO_PCI_REGION(VFIO_PCI_BAR0_REGION_INDEX) + IGB_STATUS));
	EXPECT_EQ(EIO, errno);
	EXPECT_FALSE(mmio_read32(bar + IGB_STATUS / 4, &val));
	ASSERT_EQ(0, config_write(self->devfd, pm + PCI_PM_CTRL, &ctrl, 2));
	EXPECT_TRUE(pci_attr_becomes(self->bdf, "power_state", "D0", 0));
	EXPECT_NE(~0u, igb_read(self->devfd, IGB_STATUS));
	EXPECT_TRUE(mmio_read32(bar + IGB_STATUS / 4, &val));
	EXPECT_NE(~0u, val);
	munmap((void *)bar, getpagesize());
}

/*
 * A function level reset asked for through config space (the FLR bit of the
 * PCIe device control register, which reads back as 0) resets the function:
 * a receive ring address written before reads 0 after.
 */
TEST_F(igb, flr_through_config)
{
	unsigned int exp = find_cap(self->devfd, PCI_CAP_ID_EXP);
	__u16 ctl;

	ASSERT_NE(0, exp);
	if (!(config_read32(self->devfd, exp + PCI_EXP_DEVCAP) & PCI_EXP_DEVCAP_FLR))
		SKIP(return, "this function has no FLR");
	ASSERT_EQ(0, igb_write(self->devfd, IGB_RDBAL0, 0x12345000));
	ASSERT_EQ(0x12345000, igb_read(self->devfd, IGB_RDBAL0));
	ctl = config_read16(self->devfd, exp + PCI_EXP_DEVCTL) | PCI_EXP_DEVCTL_BCR_FLR;
	ASSERT_EQ(0, config_write(self->devfd, exp + PCI_EXP_DEVCTL, &ctl, 2));
	EXPECT_EQ(0, config_read16(self->devfd, exp + PCI_EXP_DEVCTL) & PCI_EXP_DEVCTL_BCR_FLR);
	EXPECT_EQ(0, igb_read(self->devfd, IGB_RDBAL0));
}

/*
 * The max read request size the user writes is virtual (and handed to
 * pcie_set_readrq(), never below the max payload size, which cannot be seen
 * here: QEMU's devices keep that field of theirs read-only at 0); the
 * neighbouring bits still reach the function.
 */
TEST_F(igb, read_request_size_is_virtual)
{
	unsigned int exp = find_cap(self->devfd, PCI_CAP_ID_EXP);
	__u16 ctl, want = 2 << 12;	/* 512 bytes */

	ASSERT_NE(0, exp);
	ctl = config_read16(self->devfd, exp + PCI_EXP_DEVCTL);
	ctl = (ctl & ~PCI_EXP_DEVCTL_READRQ) | want;
	ASSERT_EQ(0, config_write(self->devfd, exp + PCI_EXP_DEVCTL, &ctl, 2));
	EXPECT_EQ(want, config_read16(self->devfd, exp + PCI_EXP_DEVCTL) & PCI_EXP_DEVCTL_READRQ);
	ctl &= ~PCI_EXP_DEVCTL_READRQ;
	ASSERT_EQ(0, config_write(self->devfd, exp + PCI_EXP_DEVCTL, &ctl, 2));
	EXPECT_EQ(0, config_read16(self->devfd, exp + PCI_EXP_DEVCTL) & PCI_EXP_DEVCTL_READRQ);
}

TEST_HARNESS_MAIN
