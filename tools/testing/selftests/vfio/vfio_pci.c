// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-pci on QEMU's edu device (1234:11e8) behind the emulated VT-d, opened
 * through its device cdev bound to an iommufd, and again (the variant group)
 * through its group in a type1v2 container: the device info, the
 * region info, config space through the virtual copy (BAR sizing that never
 * reaches the hardware, the command register's memory bit gating the BARs)
 * and BAR0's registers through read() and write().
 *
 * Expectations follow upstream drivers/vfio/pci/vfio_pci_core.c,
 * vfio_pci_config.c and vfio_pci_rdwr.c: regions at index << 40, EINVAL for
 * a region or offset the device does not have, EFAULT for config space
 * accesses that do not fit, EIO for BAR accesses with memory decoding off.
 * The edu device: BAR0 is 1 MiB of 32-bit memory; its register 0x00 reads
 * 0x010000ed and register 0x04 reads back the inverse of what was written;
 * QEMU's edu answers aligned dword accesses only. Its DMA engine copies
 * between an IOVA and its own 4 KiB buffer at device address 0x40000 (IOVAs
 * are 28 bits wide); the tests map a buffer through the variant's IOMMU
 * interface (an IOAS the device is attached to, or the container), run DMA
 * both ways through the emulated VT-d, and check that after unmapping the
 * device no longer reaches the buffer and VT-d reports the fault.
 *
 * Every test skips without the edu device or vfio-pci, and without the way in
 * of its variant.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"

#include "vfio_edu.h"

#define VFIO_PCI_DRIVER "/sys/bus/pci/drivers/vfio-pci"
#define NOINTXMASK "/sys/module/vfio_pci/parameters/nointxmask"
#define REGION(index) VFIO_PCI_REGION(index)
#define CONFIG EDU_CONFIG
#define BAR0 EDU_BAR0
#define DMA_IOVA 0x100000
#define DMA_LEN 1024

FIXTURE(pci)
{
	char bdf[64];
	int iommufd;	/* /dev/iommu, or the container for the group variant */
	int groupfd;
	int devfd;
	__u32 ioas_id;	/* the IOAS the cdev variant attached the device to */
	__u32 devid;	/* the device's id in the iommufd (cdev variant) */
};

FIXTURE_VARIANT(pci)
{
	bool group;
};

FIXTURE_VARIANT_ADD(pci, cdev)
{
	.group = false,
};

FIXTURE_VARIANT_ADD(pci, group)
{
	.group = true,
};

/* The device file through the group in a type1v2 container. */
static void open_through_group(struct __test_metadata *_metadata,
			       FIXTURE_DATA(pci) *self)
{
	char node[64];
	int id;

	ASSERT_TRUE(find_iommu_group(self->bdf, &id));
	snprintf(node, sizeof(node), "/dev/vfio/%d", id);
	self->groupfd = open(node, O_RDWR);
	ASSERT_LE(0, self->groupfd);
	self->iommufd = open("/dev/vfio/vfio", O_RDWR);
	ASSERT_LE(0, self->iommufd);
	ASSERT_EQ(0, ioctl(self->groupfd, VFIO_GROUP_SET_CONTAINER, &self->iommufd));
	ASSERT_EQ(0, ioctl(self->iommufd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	self->devfd = ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, self->bdf);
	ASSERT_LE(0, self->devfd);
}

/* The device file through the cdev, bound to an iommufd. */
static void open_through_cdev(struct __test_metadata *_metadata,
			      FIXTURE_DATA(pci) *self)
{
	char name[32], node[64];
	__u32 hwpt;

	ASSERT_TRUE(find_vfio_dev(self->bdf, name, sizeof(name)));
	snprintf(node, sizeof(node), "/dev/vfio/devices/%s", name);
	self->devfd = open(node, O_RDWR);
	ASSERT_LE(0, self->devfd);
	self->iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->iommufd);
	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, &self->devid));
	ASSERT_EQ(0, ioas_alloc(self->iommufd, &self->ioas_id));
	/* (attaching gives back the id of the HWPT it made in the IOAS) */
	hwpt = self->ioas_id;
	ASSERT_EQ(0, attach_pt(self->devfd, &hwpt));
}

FIXTURE_SETUP(pci)
{
	self->iommufd = -1;
	self->groupfd = -1;
	self->devfd = -1;
	if (!find_edu(self->bdf, sizeof(self->bdf)))
		SKIP(return, "no edu device (1234:11e8)");
	if (access(VFIO_PCI_DRIVER, F_OK))
		SKIP(return, "no vfio-pci driver (CONFIG_VFIO_PCI)");
	ASSERT_EQ(0, bind_driver(self->bdf, "vfio-pci"));
	if (variant->group) {
		if (access("/dev/vfio/vfio", F_OK))
			SKIP(return, "no container (CONFIG_VFIO_GROUP)");
		open_through_group(_metadata, self);
	} else {
		char name[32];

		if (!find_vfio_dev(self->bdf, name, sizeof(name)))
			SKIP(return, "no device cdev (CONFIG_VFIO_DEVICE_CDEV)");
		open_through_cdev(_metadata, self);
	}
}

/* Closes what the fixture opened: the device is no longer in use. */
static void close_all(FIXTURE_DATA(pci) *self)
{
	close_device_fds(&self->devfd, &self->groupfd, &self->iommufd);
}

FIXTURE_TEARDOWN(pci)
{
	close_all(self);
	/* Back to the default, whatever a test set (and vfio-pci may be missing). */
	write_file(NOINTXMASK, "N");
}

static int region_info(int devfd, __u32 index, struct vfio_region_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	info->index = index;
	return ioctl(devfd, VFIO_DEVICE_GET_REGION_INFO, info);
}


/* A PCI device with the nine regions of vfio-pci. */
TEST_F(pci, device_info)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };

	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_TRUE(info.flags & VFIO_DEVICE_FLAGS_PCI);
	EXPECT_EQ(VFIO_PCI_NUM_REGIONS, info.num_regions);
	info.argsz = offsetof(struct vfio_device_info, num_irqs);
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
}

/*
 * The interrupt indexes and the reset agree with the device info: every
 * index below num_irqs has its info, the next is EINVAL, as are SET_IRQS on
 * it and VFIO_DEVICE_RESET without VFIO_DEVICE_FLAGS_RESET.
 */
TEST_F(pci, irqs_and_reset_match_info)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_irq_info irq = { .argsz = sizeof(irq) };
	struct vfio_irq_set set = {
		.argsz = sizeof(set),
		.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
	};
	__u32 i;

	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
	for (i = 0; i < info.num_irqs; i++) {
		irq.index = i;
		EXPECT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_IRQ_INFO, &irq));
	}
	irq.index = info.num_irqs;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_GET_IRQ_INFO, &irq));
	irq.argsz = offsetof(struct vfio_irq_info, count);
	irq.index = 0;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_GET_IRQ_INFO, &irq));
	set.index = info.num_irqs;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_SET_IRQS, &set));
	if (!(info.flags & VFIO_DEVICE_FLAGS_RESET))
		EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_RESET));
}

/* Config space and BAR0 with their sizes; BAR1 absent; no region 9. */
TEST_F(pci, region_info)
{
	struct vfio_region_info info;
	__u32 rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;

	ASSERT_EQ(0, region_info(self->devfd, VFIO_PCI_CONFIG_REGION_INDEX, &info));
	EXPECT_EQ(rw, info.flags & rw);
	EXPECT_EQ(CONFIG, info.offset);
	EXPECT_TRUE(info.size == 256 || info.size == 4096);
	ASSERT_EQ(0, region_info(self->devfd, VFIO_PCI_BAR0_REGION_INDEX, &info));
	EXPECT_EQ(rw, info.flags & rw);
	EXPECT_EQ(BAR0, info.offset);
	EXPECT_EQ(EDU_BAR0_SIZE, info.size);
	ASSERT_EQ(0, region_info(self->devfd, VFIO_PCI_BAR1_REGION_INDEX, &info));
	EXPECT_EQ(0, info.size);
	EXPECT_ERRNO(EINVAL, region_info(self->devfd, VFIO_PCI_NUM_REGIONS, &info));
	info.argsz = sizeof(info) - 1;
	info.index = VFIO_PCI_CONFIG_REGION_INDEX;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_GET_REGION_INFO, &info));
}

/* The ids through config space; accesses that do not fit are EFAULT. */
TEST_F(pci, config_ids_and_bounds)
{
	struct vfio_region_info info;
	__u8 bytes[8];

	EXPECT_EQ(0x11e81234, config_read32(self->devfd, PCI_VENDOR_ID));
	/* An unaligned read across the vendor and device ids. */
	ASSERT_EQ(3, pread(self->devfd, bytes, 3, CONFIG + 1));
	EXPECT_EQ(0x12, bytes[0]);
	EXPECT_EQ(0xe8, bytes[1]);
	EXPECT_EQ(0x11, bytes[2]);
	ASSERT_EQ(0, region_info(self->devfd, VFIO_PCI_CONFIG_REGION_INDEX, &info));
	EXPECT_ERRNO(EFAULT, pread(self->devfd, bytes, 4, CONFIG + info.size));
	EXPECT_ERRNO(EFAULT, pread(self->devfd, bytes, 8, CONFIG + info.size - 4));
	/* Beyond the last region. */
	EXPECT_ERRNO(EINVAL, pread(self->devfd, bytes, 4, REGION(VFIO_PCI_NUM_REGIONS)));
}

/*
 * Sizing BAR0 through config space reads back its size mask and leaves the
 * hardware BAR alone: the device still answers at the same place.
 */
TEST_F(pci, bar_sizing_is_virtual)
{
	__u32 ones = 0xffffffff, orig, id = 0;

	orig = config_read32(self->devfd, PCI_BASE_ADDRESS_0);
	ASSERT_EQ(0, config_write(self->devfd, PCI_BASE_ADDRESS_0, &ones, 4));
	EXPECT_EQ((__u32)~(EDU_BAR0_SIZE - 1), config_read32(self->devfd, PCI_BASE_ADDRESS_0));
	ASSERT_EQ(0, config_write(self->devfd, PCI_BASE_ADDRESS_0, &orig, 4));
	EXPECT_EQ(orig, config_read32(self->devfd, PCI_BASE_ADDRESS_0));
	ASSERT_EQ(4, pread(self->devfd, &id, 4, BAR0));
	EXPECT_EQ(EDU_ID, id);
}

/* BAR0's registers: the id, and the liveness register inverting what it gets. */
TEST_F(pci, bar0_registers)
{
	__u32 id = 0, val = 0x12345678, back = 0, both[2];

	ASSERT_EQ(4, pread(self->devfd, &id, 4, BAR0));
	EXPECT_EQ(EDU_ID, id);
	ASSERT_EQ(4, pwrite(self->devfd, &val, 4, BAR0 + EDU_LIVENESS));
	ASSERT_EQ(4, pread(self->devfd, &back, 4, BAR0 + EDU_LIVENESS));
	EXPECT_EQ(~val, back);
	/* Two registers in one read (edu takes only aligned dwords). */
	ASSERT_EQ(8, pread(self->devfd, both, 8, BAR0));
	EXPECT_EQ(EDU_ID, both[0]);
	EXPECT_EQ(~val, both[1]);
}

/* Reads stop at the end of the BAR; beyond it, and a BAR that is absent, EINVAL. */
TEST_F(pci, bar_bounds)
{
	__u32 buf[2];

	EXPECT_EQ(4, pread(self->devfd, buf, 8, BAR0 + EDU_BAR0_SIZE - 4));
	EXPECT_ERRNO(EINVAL, pread(self->devfd, buf, 4, BAR0 + EDU_BAR0_SIZE));
	EXPECT_ERRNO(EINVAL, pread(self->devfd, buf, 4, REGION(VFIO_PCI_BAR1_REGION_INDEX)));
}

/* With memory decoding off in the command register, BAR accesses are EIO. */
TEST_F(pci, memory_decoding_gates_bars)
{
	__u16 cmd, off;
	__u32 id;

	ASSERT_EQ(2, pread(self->devfd, &cmd, 2, CONFIG + PCI_COMMAND));
	ASSERT_TRUE(cmd & PCI_COMMAND_MEMORY);
	off = cmd & ~PCI_COMMAND_MEMORY;
	ASSERT_EQ(0, config_write(self->devfd, PCI_COMMAND, &off, 2));
	EXPECT_ERRNO(EIO, pread(self->devfd, &id, 4, BAR0));
	EXPECT_ERRNO(EIO, pwrite(self->devfd, &id, 4, BAR0 + EDU_LIVENESS));
	ASSERT_EQ(0, config_write(self->devfd, PCI_COMMAND, &cmd, 2));
	ASSERT_EQ(4, pread(self->devfd, &id, 4, BAR0));
	EXPECT_EQ(EDU_ID, id);
}


/*
 * BAR0 (1 MiB of MMIO) may be mapped, config space may not; edu has no MSI-X,
 * so no capability chain, whatever room argsz leaves for one.
 */
TEST_F(pci, region_info_mmap)
{
	struct {
		struct vfio_region_info info;
		__u8 room[64];
	} big;
	struct vfio_region_info info;

	ASSERT_EQ(0, region_info(self->devfd, VFIO_PCI_BAR0_REGION_INDEX, &info));
	EXPECT_TRUE(info.flags & VFIO_REGION_INFO_FLAG_MMAP);
	EXPECT_FALSE(info.flags & VFIO_REGION_INFO_FLAG_CAPS);
	EXPECT_EQ(0, info.cap_offset);
	ASSERT_EQ(0, region_info(self->devfd, VFIO_PCI_CONFIG_REGION_INDEX, &info));
	EXPECT_FALSE(info.flags & VFIO_REGION_INFO_FLAG_MMAP);
	ASSERT_EQ(0, region_info(self->devfd, VFIO_PCI_BAR1_REGION_INDEX, &info));
	EXPECT_FALSE(info.flags & VFIO_REGION_INFO_FLAG_MMAP);
	memset(&big, 0, sizeof(big));
	big.info.argsz = sizeof(big);
	big.info.index = VFIO_PCI_BAR0_REGION_INDEX;
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_REGION_INFO, &big));
	EXPECT_EQ(sizeof(big), big.info.argsz);
	EXPECT_FALSE(big.info.flags & VFIO_REGION_INFO_FLAG_CAPS);
}

/* BAR0's registers through a mapping of all of it, and of its first page alone. */
TEST_F(pci, mmap_bar0_registers)
{
	volatile __u32 *bar = map_bar0(self->devfd, EDU_BAR0_SIZE);
	__u32 back = 0;

	ASSERT_NE(NULL, bar);
	EXPECT_EQ(EDU_ID, bar[0]);
	bar[EDU_LIVENESS / 4] = 0x5a5aa5a5;
	EXPECT_EQ(~0x5a5aa5a5u, bar[EDU_LIVENESS / 4]);
	/* The same register through the device file. */
	ASSERT_EQ(4, pread(self->devfd, &back, 4, BAR0 + EDU_LIVENESS));
	EXPECT_EQ(~0x5a5aa5a5u, back);
	EXPECT_EQ(0, munmap((void *)bar, EDU_BAR0_SIZE));
	bar = map_bar0(self->devfd, getpagesize());
	ASSERT_NE(NULL, bar);
	EXPECT_EQ(EDU_ID, bar[0]);
	EXPECT_EQ(0, munmap((void *)bar, getpagesize()));
}

/* Refused as upstream: EINVAL for a private mapping, past the BAR, or not a BAR that maps. */
TEST_F(pci, mmap_refused)
{
	size_t page = getpagesize();
	void *p;

	p = mmap(NULL, page, PROT_READ, MAP_PRIVATE, self->devfd, BAR0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, EDU_BAR0_SIZE + page, PROT_READ, MAP_SHARED, self->devfd, BAR0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, self->devfd, BAR0 + EDU_BAR0_SIZE);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, 2 * page, PROT_READ, MAP_SHARED, self->devfd,
		 BAR0 + EDU_BAR0_SIZE - page);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, self->devfd,
		 REGION(VFIO_PCI_BAR1_REGION_INDEX));
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, self->devfd, CONFIG);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, self->devfd,
		 REGION(VFIO_PCI_ROM_REGION_INDEX));
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, self->devfd, REGION(VFIO_PCI_NUM_REGIONS));
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
}

/*
 * Turning memory decoding off zaps the mapping, which then faults with
 * SIGBUS, also in a page never touched before; turned on again, it works.
 */
TEST_F(pci, mmap_sigbus_while_memory_off)
{
	volatile __u32 *bar = map_bar0(self->devfd, EDU_BAR0_SIZE);
	__u16 cmd, off;
	__u32 val = 0;

	ASSERT_NE(NULL, bar);
	ASSERT_TRUE(mmio_read32(bar, &val));
	EXPECT_EQ(EDU_ID, val);
	ASSERT_EQ(2, pread(self->devfd, &cmd, 2, CONFIG + PCI_COMMAND));
	ASSERT_TRUE(cmd & PCI_COMMAND_MEMORY);
	off = cmd & ~PCI_COMMAND_MEMORY;
	ASSERT_EQ(0, config_write(self->devfd, PCI_COMMAND, &off, 2));
	EXPECT_FALSE(mmio_read32(bar, &val));
	EXPECT_FALSE(mmio_read32(bar + getpagesize() / 4, &val));
	ASSERT_EQ(0, config_write(self->devfd, PCI_COMMAND, &cmd, 2));
	ASSERT_TRUE(mmio_read32(bar, &val));
	EXPECT_EQ(EDU_ID, val);
	EXPECT_EQ(0, munmap((void *)bar, EDU_BAR0_SIZE));
}

/*
 * A mapping holds its file, as upstream's: closing every fd leaves it working
 * (the device stays open) until it is unmapped; a child inherits it too.
 */
TEST_F(pci, mmap_outlives_close)
{
	volatile __u32 *bar = map_bar0(self->devfd, EDU_BAR0_SIZE);
	int status;
	pid_t pid;

	ASSERT_NE(NULL, bar);
	close_all(self);
	EXPECT_EQ(EDU_ID, bar[0]);
	bar[EDU_LIVENESS / 4] = 7;
	EXPECT_EQ(~7u, bar[EDU_LIVENESS / 4]);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(bar[0] == EDU_ID ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, munmap((void *)bar, EDU_BAR0_SIZE));
}

/* Before VFIO_DEVICE_BIND_IOMMUFD a cdev file reaches no region. */
TEST_F(pci, regions_need_bind)
{
	char name[32], node[64];
	__u32 id;
	int fd;

	if (variant->group)
		SKIP(return, "the group hands out files that are bound already");
	ASSERT_TRUE(find_vfio_dev(self->bdf, name, sizeof(name)));
	snprintf(node, sizeof(node), "/dev/vfio/devices/%s", name);
	/* Another file while the first has the device: it stays unbound. */
	fd = open(node, O_RDWR);
	ASSERT_LE(0, fd);
	EXPECT_ERRNO(EINVAL, pread(fd, &id, 4, BAR0));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, getpagesize(), PROT_READ, MAP_SHARED, fd, BAR0));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

/*
 * edu copies a pattern from one page of a mapped buffer into its own buffer
 * and back into the other page: both DMA directions through the IOMMU.
 */
TEST_F(pci, dma_both_ways)
{
	size_t page = getpagesize();
	__u8 *buf;
	int i;

	buf = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	for (i = 0; i < DMA_LEN; i++)
		buf[i] = i * 7 + 3;
	memset(buf + page, 0, page);
	ASSERT_EQ(0, iommu_map_va(self->iommufd, variant->group, self->ioas_id, buf, DMA_IOVA, 2 * page));
	ASSERT_EQ(0, edu_bus_master(self->devfd));
	ASSERT_EQ(0, edu_dma(self->devfd, DMA_IOVA, DMA_LEN, false));
	ASSERT_EQ(0, edu_dma(self->devfd, DMA_IOVA + page, DMA_LEN, true));
	EXPECT_EQ(0, memcmp(buf, buf + page, DMA_LEN));
	EXPECT_EQ(0, iommu_unmap_iova(self->iommufd, variant->group, self->ioas_id, DMA_IOVA, 2 * page));
	munmap(buf, 2 * page);
}

/*
 * Once its IOVA is unmapped, the device cannot write the buffer any more:
 * VT-d blocks the DMA and reports the fault.
 */
TEST_F(pci, dma_after_unmap_faults)
{
	size_t page = getpagesize();
	bool zero = true;
	char line[256];
	int i;
	__u8 *buf;

	buf = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0x5a, DMA_LEN);
	memset(buf + page, 0, page);
	/* Two mappings: neither interface unmaps part of one. */
	ASSERT_EQ(0, iommu_map_va(self->iommufd, variant->group, self->ioas_id, buf, DMA_IOVA, page));
	ASSERT_EQ(0, iommu_map_va(self->iommufd, variant->group, self->ioas_id, buf + page, DMA_IOVA + page, page));
	ASSERT_EQ(0, edu_bus_master(self->devfd));
	/* edu's buffer holds 0x5a bytes; then the second page goes. */
	ASSERT_EQ(0, edu_dma(self->devfd, DMA_IOVA, DMA_LEN, false));
	ASSERT_EQ(0, iommu_unmap_iova(self->iommufd, variant->group, self->ioas_id, DMA_IOVA + page, page));
	EXPECT_TRUE(edu_dma_fault_logged(self->devfd, DMA_IOVA + page, DMA_LEN, true,
					 DMA_IOVA + page, line, sizeof(line)));
	for (i = 0; i < DMA_LEN; i++)
		zero &= buf[page + i] == 0;
	EXPECT_TRUE(zero);
	EXPECT_EQ(0, iommu_unmap_iova(self->iommufd, variant->group, self->ioas_id, DMA_IOVA, page));
	munmap(buf, 2 * page);
}

#define BAR_IOVA 0x400000

/*
 * Peer-to-peer DMA: VFIO's own container maps a BAR's mmap() (device memory,
 * VM_PFNMAP) by physical address, as upstream's type1 does, and edu's DMA
 * reads its own registers through the IOVA; once unmapped, VT-d blocks it.
 * iommufd, and its compat container when it stands in for VFIO's
 * (IOMMUFD_VFIO_CONTAINER), never map such memory (EFAULT: it cannot be
 * pinned). A mapping must be as writable as the CPU's (EFAULT otherwise).
 */
TEST_F(pci, dma_from_bar_mapping)
{
	size_t page = getpagesize();
	volatile __u32 *bar = map_bar0(self->devfd, page);
	char line[256];
	__u32 *buf;
	void *ro;

	ASSERT_NE(NULL, bar);
	if (!variant->group || is_iommufd_container(self->iommufd)) {
		EXPECT_ERRNO(EFAULT, iommu_map_va(self->iommufd, variant->group, self->ioas_id,
						  (void *)bar, BAR_IOVA, page));
		munmap((void *)bar, page);
		return;
	}
	ro = mmap(NULL, page, PROT_READ, MAP_SHARED, self->devfd, BAR0);
	ASSERT_NE(MAP_FAILED, ro);
	EXPECT_ERRNO(EFAULT, container_map(self->iommufd, ro, BAR_IOVA, page, DMA_RW));
	ASSERT_EQ(0, container_map(self->iommufd, ro, BAR_IOVA, page, VFIO_DMA_MAP_FLAG_READ));
	ASSERT_EQ(0, iommu_unmap_iova(self->iommufd, true, 0, BAR_IOVA, page));
	munmap(ro, page);

	buf = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0, page);
	ASSERT_EQ(0, iommu_map_va(self->iommufd, true, 0, buf, DMA_IOVA, page));
	ASSERT_EQ(0, iommu_map_va(self->iommufd, true, 0, (void *)bar, BAR_IOVA, page));
	ASSERT_EQ(0, edu_bus_master(self->devfd));
	/* edu answers ~value for its liveness register: a value no RAM holds here. */
	bar[EDU_LIVENESS / 4] = 0x12345678;
	ASSERT_EQ(0, edu_dma(self->devfd, BAR_IOVA + EDU_LIVENESS, 4, false));
	ASSERT_EQ(0, edu_dma(self->devfd, DMA_IOVA, 4, true));
	EXPECT_EQ(~0x12345678u, buf[0]);

	ASSERT_EQ(0, iommu_unmap_iova(self->iommufd, true, 0, BAR_IOVA, page));
	EXPECT_TRUE(edu_dma_fault_logged(self->devfd, BAR_IOVA, 4, false, BAR_IOVA, line,
					 sizeof(line)));
	EXPECT_EQ(0, iommu_unmap_iova(self->iommufd, true, 0, DMA_IOVA, page));
	munmap(buf, page);
	munmap((void *)bar, page);
}

/*
 * VFIO_DEVICE_FEATURE_DMA_BUF of BAR @bar's @nr ranges (offset, length pairs
 * in @ranges) with @flags in the feature's own flags and @op (GET, SET or
 * PROBE): the new dma-buf's descriptor, 0 for a probe, or -1.
 */
static int bar_dma_buf(int devfd, __u32 op, __u32 bar, const __u64 *ranges, __u32 nr,
		       __u32 flags)
{
	__u8 buf[sizeof(struct vfio_device_feature) + sizeof(struct vfio_device_feature_dma_buf) +
		 4 * sizeof(struct vfio_region_dma_range)] = { 0 };
	struct vfio_device_feature *feature = (void *)buf;
	struct vfio_device_feature_dma_buf *dma_buf = (void *)feature->data;

	feature->argsz = sizeof(buf);
	feature->flags = op | VFIO_DEVICE_FEATURE_DMA_BUF;
	dma_buf->region_index = bar;
	dma_buf->open_flags = O_RDWR | O_CLOEXEC;
	dma_buf->flags = flags;
	dma_buf->nr_ranges = nr;
	memcpy(dma_buf->dma_ranges, ranges, nr * 2 * sizeof(__u64));
	return ioctl(devfd, VFIO_DEVICE_FEATURE, buf);
}

/* IOMMU_IOAS_MAP_FILE of @len bytes of dma-buf @fd to @iova of IOAS @ioas_id. */
static int map_file(int iommufd, __u32 ioas_id, int fd, __u64 iova, __u64 len)
{
	struct iommu_ioas_map_file map = {
		.size = sizeof(map),
		.flags = IOAS_MAP_FIXED_RW,
		.ioas_id = ioas_id,
		.fd = fd,
		.length = len,
		.iova = iova,
	};

	return ioctl(iommufd, IOMMU_IOAS_MAP_FILE, &map);
}

/*
 * Peer-to-peer DMA the iommufd way: a page of BAR0 exported as a dma-buf
 * (VFIO_DEVICE_FEATURE_DMA_BUF) and mapped into the IOAS with
 * IOMMU_IOAS_MAP_FILE; edu's DMA reads its own register through it. Turning
 * memory decoding off revokes the buffer: VT-d blocks the DMA from then on,
 * even once decoding is back. Bad requests get upstream's errnos; a buffer
 * of two ranges is exported but iommufd takes only one.
 */
TEST_F(pci, dma_buf_of_bar)
{
	size_t page = getpagesize();
	__u64 one[2] = { 0, page }, two[4] = { 0, page, 2 * page, page };
	__u64 unaligned[2] = { 1, page }, past[2] = { EDU_BAR0_SIZE, page };
	__u64 empty[2] = { 0, 0 };
	__u32 get = VFIO_DEVICE_FEATURE_GET;
	volatile __u32 *bar;
	char line[256];
	__u16 cmd;
	__u32 *buf;
	int fd;

	if (bar_dma_buf(self->devfd, VFIO_DEVICE_FEATURE_PROBE | get, 0, one, 1, 0) &&
	    errno == ENOTTY)
		SKIP(return, "no VFIO_DEVICE_FEATURE_DMA_BUF (DMA_SHARED_BUFFER=n)");
	EXPECT_EQ(0, bar_dma_buf(self->devfd, VFIO_DEVICE_FEATURE_PROBE | get, 0, one, 1, 0));
	EXPECT_ERRNO(EINVAL, bar_dma_buf(self->devfd, VFIO_DEVICE_FEATURE_SET, 0, one, 1, 0));
	EXPECT_ERRNO(EINVAL, bar_dma_buf(self->devfd, get, 0, one, 0, 0));
	EXPECT_ERRNO(EINVAL, bar_dma_buf(self->devfd, get, 0, one, 1, 1));
	EXPECT_ERRNO(EINVAL, bar_dma_buf(self->devfd, get, 0, unaligned, 1, 0));
	EXPECT_ERRNO(EINVAL, bar_dma_buf(self->devfd, get, 0, past, 1, 0));
	EXPECT_ERRNO(EINVAL, bar_dma_buf(self->devfd, get, 0, empty, 1, 0));
	/* edu has BAR0 only; the ROM and config space are not BARs. */
	EXPECT_ERRNO(ENODEV, bar_dma_buf(self->devfd, get, 1, one, 1, 0));
	EXPECT_ERRNO(ENODEV, bar_dma_buf(self->devfd, get, VFIO_PCI_ROM_REGION_INDEX, one, 1, 0));

	fd = bar_dma_buf(self->devfd, get, 0, two, 2, 0);
	ASSERT_LE(0, fd);
	if (!variant->group)
		EXPECT_ERRNO(EOPNOTSUPP, map_file(self->iommufd, self->ioas_id, fd, BAR_IOVA, 2 * page));
	close(fd);
	fd = bar_dma_buf(self->devfd, get, 0, one, 1, 0);
	ASSERT_LE(0, fd);
	if (variant->group) {
		close(fd);
		return;
	}

	buf = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0, page);
	ASSERT_EQ(0, iommu_map_va(self->iommufd, false, self->ioas_id, buf, DMA_IOVA, page));
	ASSERT_EQ(0, map_file(self->iommufd, self->ioas_id, fd, BAR_IOVA, page));
	ASSERT_EQ(0, edu_bus_master(self->devfd));
	bar = map_bar0(self->devfd, page);
	ASSERT_NE(NULL, bar);
	bar[EDU_LIVENESS / 4] = 0x2468ace0;
	ASSERT_EQ(0, edu_dma(self->devfd, BAR_IOVA + EDU_LIVENESS, 4, false));
	ASSERT_EQ(0, edu_dma(self->devfd, DMA_IOVA, 4, true));
	EXPECT_EQ(~0x2468ace0u, buf[0]);

	/* Memory decoding off and on again: the buffer was revoked meanwhile. */
	ASSERT_EQ(2, pread(self->devfd, &cmd, 2, CONFIG + PCI_COMMAND));
	cmd &= ~PCI_COMMAND_MEMORY;
	ASSERT_EQ(0, config_write(self->devfd, PCI_COMMAND, &cmd, 2));
	cmd |= PCI_COMMAND_MEMORY;
	ASSERT_EQ(0, config_write(self->devfd, PCI_COMMAND, &cmd, 2));
	/* (VT-d records the page of the fault) */
	EXPECT_TRUE(edu_dma_fault_logged(self->devfd, BAR_IOVA + EDU_LIVENESS, 4, false, BAR_IOVA,
					 line, sizeof(line)));
	/* A revoked buffer's pages map nothing, but the area is there until unmapped. */
	EXPECT_EQ(0, iommu_unmap_iova(self->iommufd, false, self->ioas_id, BAR_IOVA, page));
	EXPECT_EQ(0, iommu_unmap_iova(self->iommufd, false, self->ioas_id, DMA_IOVA, page));
	close(fd);
	munmap((void *)bar, page);
	munmap(buf, page);
}

/* Waits up to two seconds for @efd to be signalled; its count, or 0. */
/* The count of @efd once it is signalled within @ms, consumed; 0 if it is not. */
static __u64 wait_eventfd_for(int efd, int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	__u64 n = 0;

	if (poll(&p, 1, ms) != 1 || read(efd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static __u64 wait_eventfd(int efd)
{
	return wait_eventfd_for(efd, 2000);
}

/*
 * edu's MSI reaches userspace through the eventfd given to SET_IRQS; the
 * loopback (DATA_NONE) signals it too; count 0 turns MSI off; bad
 * arguments get upstream's errnos.
 */
TEST_F(pci, msi_through_eventfd)
{
	struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = VFIO_PCI_MSI_IRQ_INDEX };
	__u32 trigger = VFIO_IRQ_SET_ACTION_TRIGGER;
	int efd = eventfd(0, EFD_NONBLOCK);

	ASSERT_LE(0, efd);
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_IRQ_INFO, &irq));
	EXPECT_EQ(1, irq.count);
	EXPECT_TRUE(irq.flags & VFIO_IRQ_INFO_EVENTFD);
	/* Not enabled yet: no loopback. */
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX, trigger, 1, -2));
	/* More vectors than edu has, a descriptor that is not open or not an eventfd. */
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX, trigger, 2, efd));
	EXPECT_ERRNO(EBADF, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX, trigger, 1, 9999));
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX, trigger, 1,
				     self->devfd));
	/* Masking MSI has no handler, as upstream. */
	EXPECT_ERRNO(ENOTTY, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX,
				     VFIO_IRQ_SET_ACTION_MASK, 1, -2));

	/* An MSI is a write to memory: the device must be a bus master. */
	ASSERT_EQ(0, edu_bus_master(self->devfd));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX, trigger, 1, efd));
	/* MSI-X while MSI is on. */
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_MSIX_IRQ_INDEX, trigger, 1, efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_RAISE, 1));
	EXPECT_EQ(1, wait_eventfd(efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_ACK, 1));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX, trigger, 1, -2));
	EXPECT_EQ(1, wait_eventfd(efd));
	/* Off; the interrupt no longer arrives. */
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX, trigger, 0, -2));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_RAISE, 1));
	EXPECT_EQ(0, wait_eventfd(efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_ACK, 1));
	close(efd);
}

/* VFIO_DEVICE_SET_IRQS with one bool of data. */
static int set_irq_bool(int devfd, __u32 index, __u32 action, __u8 val)
{
	struct {
		struct vfio_irq_set set;
		__u8 val;
	} __attribute__((packed)) s = {
		.set = {
			.argsz = sizeof(s),
			.flags = action | VFIO_IRQ_SET_DATA_BOOL,
			.index = index,
			.count = 1,
		},
		.val = val,
	};

	return ioctl(devfd, VFIO_DEVICE_SET_IRQS, &s);
}

/* Waits a tenth of a second: whether @efd stayed quiet. */
static bool eventfd_quiet(int efd)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };

	return poll(&p, 1, 100) == 0;
}

/*
 * edu's INTx (with MSI off, edu raises its pin) reaches userspace through
 * the eventfd, masked by the handler until the user unmasks it; an unmask
 * with the interrupt still pending signals again; the user masks with
 * ACTION_MASK or with INTx disable in the virtual command register; INTx and
 * MSI exclude each other; count 0 turns INTx off.
 */
/*
 * Whether the function's real command register has INTx disable set (read
 * through sysfs, not through VFIO's virtual one); -1 if it cannot be read.
 */
static int hw_intx_disabled(const char *bdf)
{
	char path[128];
	__u16 cmd;
	int fd, n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = pread(fd, &cmd, sizeof(cmd), PCI_COMMAND);
	close(fd);
	return n == sizeof(cmd) ? !!(cmd & PCI_COMMAND_INTX_DISABLE) : -1;
}

/* As described above; masked at the function if @at_function, else not there. */
static void check_intx(struct __test_metadata *_metadata, FIXTURE_DATA(pci) *self,
		       bool at_function)
{
	struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = VFIO_PCI_INTX_IRQ_INDEX };
	__u32 trigger = VFIO_IRQ_SET_ACTION_TRIGGER, mask = VFIO_IRQ_SET_ACTION_MASK;
	__u32 unmask = VFIO_IRQ_SET_ACTION_UNMASK;
	int efd = eventfd(0, EFD_NONBLOCK), efd2 = eventfd(0, EFD_NONBLOCK);
	__u16 cmd;

	ASSERT_LE(0, efd);
	ASSERT_LE(0, efd2);
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_IRQ_INFO, &irq));
	EXPECT_EQ(1, irq.count);
	EXPECT_EQ(VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
		  irq.flags);
	/* Not enabled: no loopback, no (un)masking. */
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 1, -2));
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, mask, 1, -2));
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, -2));
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 2, efd));
	EXPECT_ERRNO(EBADF, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 1, 9999));

	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 1, efd));
	/* MSI while INTx is on, and the other way round. */
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX, trigger, 1, efd));
	/* Loopback, with no data and with a true bool (a false one does nothing). */
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 1, -2));
	EXPECT_EQ(1, wait_eventfd(efd));
	ASSERT_EQ(0, set_irq_bool(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 0));
	EXPECT_TRUE(eventfd_quiet(efd));
	ASSERT_EQ(0, set_irq_bool(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 1));
	EXPECT_EQ(1, wait_eventfd(efd));

	/* The device's interrupt: signalled once, then masked. */
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_RAISE, 1));
	EXPECT_EQ(1, wait_eventfd(efd));
	EXPECT_TRUE(eventfd_quiet(efd));
	EXPECT_EQ(at_function, hw_intx_disabled(self->bdf));
	/* Unmasked while still pending (not acknowledged): signalled again. */
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, -2));
	EXPECT_EQ(1, wait_eventfd(efd));
	/* Served: acknowledged at the device, then unmasked; quiet. */
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_ACK, 1));
	ASSERT_EQ(0, set_irq_bool(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1));
	EXPECT_TRUE(eventfd_quiet(efd));
	/* And the next interrupt comes through. */
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_RAISE, 2));
	EXPECT_EQ(1, wait_eventfd(efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_ACK, 2));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, -2));

	/* Masked by the user: held back until unmasked. */
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, mask, 1, -2));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_RAISE, 4));
	EXPECT_TRUE(eventfd_quiet(efd));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, -2));
	EXPECT_EQ(1, wait_eventfd(efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_ACK, 4));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, -2));

	/* Masked through INTx disable in the virtual command register. */
	cmd = config_read32(self->devfd, PCI_COMMAND) & 0xffff;
	cmd |= PCI_COMMAND_INTX_DISABLE;
	ASSERT_EQ(0, config_write(self->devfd, PCI_COMMAND, &cmd, 2));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_RAISE, 8));
	EXPECT_TRUE(eventfd_quiet(efd));
	cmd &= ~PCI_COMMAND_INTX_DISABLE;
	ASSERT_EQ(0, config_write(self->devfd, PCI_COMMAND, &cmd, 2));
	EXPECT_EQ(1, wait_eventfd(efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_ACK, 8));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, -2));

	/* A new eventfd replaces the old one, the line staying on. */
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 1, efd2));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_RAISE, 16));
	EXPECT_EQ(1, wait_eventfd(efd2));
	EXPECT_TRUE(eventfd_quiet(efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_ACK, 16));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, -2));

	/* Off; no more masking, and MSI may be used again. */
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 0, -2));
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, -2));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX, trigger, 1, efd));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX, trigger, 0, -2));
	close(efd);
	close(efd2);
}

/* Masked at the function (edu has PCI 2.3 INTx masking). */
TEST_F(pci, intx_through_eventfd)
{
	check_intx(_metadata, self, true);
}

/*
 * With the nointxmask parameter set, as for a function that cannot mask
 * INTx itself: the same behaviour, from the line taken for the function
 * alone and masked at the interrupt controller (upstream's !pci_2_3); EBUSY
 * if another driver shares the line. The teardown clears the parameter.
 */
TEST_F(pci, intx_masked_at_the_controller)
{
	__u32 trigger = VFIO_IRQ_SET_ACTION_TRIGGER;
	int efd = eventfd(0, EFD_NONBLOCK);

	ASSERT_LE(0, efd);
	ASSERT_EQ(0, write_file(NOINTXMASK, "Y"));
	if (set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 1, efd)) {
		ASSERT_EQ(EBUSY, errno);
		close(efd);
		SKIP(return, "edu's INTx line is shared with another driver");
	}
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 0, -2));
	close(efd);
	check_intx(_metadata, self, false);
}

/* Writes one to eventfd @efd, as KVM's resampler or any user does. */
static int kick(int efd)
{
	__u64 one = 1;

	return write(efd, &one, sizeof(one)) == sizeof(one) ? 0 : -1;
}

/* edu raises its interrupt @bit, which must reach @efd; then it is acknowledged at edu. */
static void raise_and_ack(struct __test_metadata *_metadata, int devfd, int efd, __u32 bit)
{
	ASSERT_EQ(0, edu_write32(devfd, EDU_IRQ_RAISE, bit));
	EXPECT_EQ(1, wait_eventfd(efd));
	ASSERT_EQ(0, edu_write32(devfd, EDU_IRQ_ACK, bit));
}

/*
 * INTx unmasked through an eventfd of the user's (upstream's virqfd, as KVM's
 * resampling irqfd uses it): each signal unmasks, and an interrupt still
 * pending then is signalled again; the kernel consumes the eventfd's count; a
 * signal pending when the eventfd is given counts; one unmask eventfd at a
 * time (EBUSY), until it is removed with -1 or closed; it goes with INTx.
 */
TEST_F(pci, intx_unmask_through_eventfd)
{
	__u32 trigger = VFIO_IRQ_SET_ACTION_TRIGGER, mask = VFIO_IRQ_SET_ACTION_MASK;
	__u32 unmask = VFIO_IRQ_SET_ACTION_UNMASK;
	int efd = eventfd(0, EFD_NONBLOCK), ufd = eventfd(0, EFD_NONBLOCK);
	int ufd2 = eventfd(0, EFD_NONBLOCK);
	__u64 n;

	ASSERT_LE(0, efd);
	ASSERT_LE(0, ufd);
	ASSERT_LE(0, ufd2);
	/* Not before INTx is on. */
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, ufd));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 1, efd));
	EXPECT_ERRNO(ENOTTY, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, mask, 1, ufd));
	EXPECT_ERRNO(EBADF, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, 9999));
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1,
				     self->devfd));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, ufd));
	EXPECT_ERRNO(EBUSY, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, ufd2));

	/* An interrupt: signalled once, then masked. */
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_RAISE, 1));
	EXPECT_EQ(1, wait_eventfd(efd));
	EXPECT_TRUE(eventfd_quiet(efd));
	/* Unmasked through the eventfd while still pending: signalled again. */
	ASSERT_EQ(0, kick(ufd));
	EXPECT_EQ(1, wait_eventfd(efd));
	/* Served, then unmasked through the eventfd: quiet, and the next one comes. */
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_ACK, 1));
	ASSERT_EQ(0, kick(ufd));
	EXPECT_TRUE(eventfd_quiet(efd));
	raise_and_ack(_metadata, self->devfd, efd, 2);
	ASSERT_EQ(0, kick(ufd));
	/* The kernel took the eventfd's count. */
	EXPECT_ERRNO(EAGAIN, read(ufd, &n, sizeof(n)));

	/* Removed: its signals no longer unmask. */
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, -1));
	raise_and_ack(_metadata, self->devfd, efd, 4);
	ASSERT_EQ(0, kick(ufd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_RAISE, 8));
	EXPECT_TRUE(eventfd_quiet(efd));
	/* Given again with that signal pending: it unmasks at once, 8 is still pending. */
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, ufd));
	EXPECT_EQ(1, wait_eventfd(efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_ACK, 8));
	ASSERT_EQ(0, kick(ufd));
	EXPECT_TRUE(eventfd_quiet(efd));
	raise_and_ack(_metadata, self->devfd, efd, 16);

	/* Closed by the user: another may take its place, and unmasks. */
	close(ufd);
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, ufd2));
	ASSERT_EQ(0, kick(ufd2));
	raise_and_ack(_metadata, self->devfd, efd, 32);

	/* INTx off takes the unmask eventfd with it. */
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 0, -2));
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, unmask, 1, ufd2));
	ASSERT_EQ(0, kick(ufd2));
	close(efd);
	close(ufd2);
}

/*
 * INTx left on, and masked by its handler, when the device is closed: the
 * close takes the line down (the VM's kmemleak and lockdep watch), and the
 * next user starts with INTx off.
 */
TEST_F(pci, intx_left_on_at_close)
{
	__u32 trigger = VFIO_IRQ_SET_ACTION_TRIGGER;
	int efd = eventfd(0, EFD_NONBLOCK);

	ASSERT_LE(0, efd);
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 1, efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_RAISE, 1));
	EXPECT_EQ(1, wait_eventfd(efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_ACK, 1));
	close_all(self);
	if (variant->group)
		open_through_group(_metadata, self);
	else
		open_through_cdev(_metadata, self);
	EXPECT_ERRNO(EINVAL, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX,
				     VFIO_IRQ_SET_ACTION_UNMASK, 1, -2));
	ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_INTX_IRQ_INDEX, trigger, 1, efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_RAISE, 1));
	EXPECT_EQ(1, wait_eventfd(efd));
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_IRQ_ACK, 1));
	close(efd);
}

/*
 * Runs @reset on a device with bus mastering on and BAR0 mapped, then checks
 * that the PCI core reset the function (it logs "reset done" for a function
 * with a driver once it restored its config space) and that the function
 * works after it as before: its config space and the
 * virtual command register unchanged, BAR0's registers alive through read()
 * and write() and through the mapping (zapped by the reset, faulted in
 * again), and DMA both ways with bus mastering as it was.
 */
static void works_after_reset(struct __test_metadata *_metadata, FIXTURE_DATA(pci) *self,
			      bool group, int (*reset)(FIXTURE_DATA(pci) *self))
{
	size_t page = getpagesize();
	__u32 cmd_before, cmd_after;
	char done[96], line[256];
	volatile __u32 *regs;
	int kmsg;
	__u8 *buf;

	ASSERT_EQ(0, edu_bus_master(self->devfd));
	cmd_before = config_read32(self->devfd, PCI_COMMAND) & 0xffff;
	regs = map_bar0(self->devfd, EDU_BAR0_SIZE);
	ASSERT_NE(NULL, regs);
	EXPECT_EQ(EDU_ID, regs[0]);
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, kmsg);
	lseek(kmsg, 0, SEEK_END);
	ASSERT_EQ(0, reset(self));
	snprintf(done, sizeof(done), "%s: reset done", self->bdf);
	EXPECT_TRUE(kmsg_logged(kmsg, done, done, line, sizeof(line)));
	close(kmsg);
	cmd_after = config_read32(self->devfd, PCI_COMMAND) & 0xffff;
	EXPECT_EQ(cmd_before, cmd_after);
	EXPECT_EQ(0x11e81234, config_read32(self->devfd, 0));
	EXPECT_EQ(EDU_ID, edu_read32(self->devfd, 0));
	/* Still alive: liveness inverts what was written. */
	ASSERT_EQ(0, edu_write32(self->devfd, EDU_LIVENESS, 0x12345678));
	EXPECT_EQ(~0x12345678u, edu_read32(self->devfd, EDU_LIVENESS));
	EXPECT_EQ(EDU_ID, regs[0]);
	regs[EDU_LIVENESS / 4] = 0x0f0f0f0f;
	EXPECT_EQ(~0x0f0f0f0fu, regs[EDU_LIVENESS / 4]);
	munmap((void *)regs, EDU_BAR0_SIZE);
	buf = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0x5a, page);
	memset(buf + page, 0, page);
	ASSERT_EQ(0, iommu_map_va(self->iommufd, group, self->ioas_id, buf, DMA_IOVA, 2 * page));
	ASSERT_EQ(0, edu_dma(self->devfd, DMA_IOVA, DMA_LEN, false));
	ASSERT_EQ(0, edu_dma(self->devfd, DMA_IOVA + page, DMA_LEN, true));
	EXPECT_EQ(0, memcmp(buf, buf + page, DMA_LEN));
	EXPECT_EQ(0, iommu_unmap_iova(self->iommufd, group, self->ioas_id, DMA_IOVA, 2 * page));
	munmap(buf, 2 * page);
}

static int function_reset(FIXTURE_DATA(pci) *self)
{
	return ioctl(self->devfd, VFIO_DEVICE_RESET);
}

/*
 * VFIO_DEVICE_RESET (edu sits alone behind a root port: a bus reset), twice:
 * the function works after each.
 */
TEST_F(pci, reset)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };

	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
	if (!(info.flags & VFIO_DEVICE_FLAGS_RESET))
		SKIP(return, "edu cannot be reset here (not behind a bridge of its own)");
	works_after_reset(_metadata, self, variant->group, function_reset);
	works_after_reset(_metadata, self, variant->group, function_reset);
}

/*
 * VFIO_DEVICE_PCI_HOT_RESET with @count group descriptors @fds, @flags, and
 * argsz @argsz (0: the size of the struct and the descriptors); sets errno on
 * failure.
 */
static int hot_reset(int devfd, const int *fds, __u32 count, __u32 flags, __u32 argsz)
{
	size_t size = sizeof(struct vfio_pci_hot_reset) + count * sizeof(__s32);
	struct vfio_pci_hot_reset *arg = calloc(1, size);
	int ret, err;

	if (!arg)
		return -1;
	arg->argsz = argsz ? argsz : size;
	arg->flags = flags;
	arg->count = count;
	if (count)
		memcpy(arg->group_fds, fds, count * sizeof(__s32));
	ret = ioctl(devfd, VFIO_DEVICE_PCI_HOT_RESET, arg);
	err = errno;
	free(arg);
	errno = err;
	return ret;
}

/* The hot reset each way in proves ownership its own way: groups, or none. */
static int own_hot_reset(FIXTURE_DATA(pci) *self)
{
	if (self->groupfd >= 0)
		return hot_reset(self->devfd, &self->groupfd, 1, 0, 0);
	return hot_reset(self->devfd, NULL, 0, 0, 0);
}

/* VFIO_DEVICE_GET_PCI_HOT_RESET_INFO with room for @room devices. */
static struct vfio_pci_hot_reset_info *hot_reset_info(int devfd, __u32 room, int *ret)
{
	size_t size = sizeof(struct vfio_pci_hot_reset_info) +
		      room * sizeof(struct vfio_pci_dependent_device);
	struct vfio_pci_hot_reset_info *info = calloc(1, size);

	if (!info)
		return NULL;
	info->argsz = size;
	info->count = 0xdead;
	*ret = ioctl(devfd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info) ? errno : 0;
	return info;
}

/*
 * The functions a hot reset of edu reaches: edu alone, behind its root port,
 * by segment, bus and devfn; through the group with its IOMMU group's id,
 * through the cdev with its id in the iommufd, flagged owned.
 */
TEST_F(pci, hot_reset_info)
{
	struct vfio_pci_hot_reset_info *info;
	unsigned int seg, bus, dev, fn;
	int ret, group_id;

	ASSERT_EQ(4, sscanf(self->bdf, "%x:%x:%x.%x", &seg, &bus, &dev, &fn));
	info = hot_reset_info(self->devfd, 4, &ret);
	ASSERT_NE(NULL, info);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(1, info->count);
	EXPECT_EQ(seg, info->devices[0].segment);
	EXPECT_EQ(bus, info->devices[0].bus);
	EXPECT_EQ((dev << 3) | fn, info->devices[0].devfn);
	if (variant->group) {
		ASSERT_TRUE(find_iommu_group(self->bdf, &group_id));
		EXPECT_EQ(0, info->flags);
		EXPECT_EQ((__u32)group_id, info->devices[0].group_id);
	} else {
		EXPECT_EQ(VFIO_PCI_HOT_RESET_FLAG_DEV_ID | VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED,
			  info->flags);
		EXPECT_EQ(self->devid, info->devices[0].devid);
		EXPECT_NE(0, self->devid);
	}
	free(info);
}

/*
 * An array too short for the functions reached: ENOSPC, with the number
 * needed in count and no flags; an argsz short of count: EINVAL.
 */
TEST_F(pci, hot_reset_info_too_small)
{
	struct vfio_pci_hot_reset_info *info;
	int ret;

	info = hot_reset_info(self->devfd, 0, &ret);
	ASSERT_NE(NULL, info);
	EXPECT_EQ(ENOSPC, ret);
	EXPECT_EQ(1, info->count);
	EXPECT_EQ(0, info->flags);
	/* Room for most of one entry is no room. */
	info->argsz = sizeof(*info) + sizeof(info->devices[0]) - 1;
	info->count = 0;
	info->flags = 0xff;
	EXPECT_ERRNO(ENOSPC, ioctl(self->devfd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info));
	EXPECT_EQ(1, info->count);
	EXPECT_EQ(0, info->flags);
	info->argsz = offsetof(struct vfio_pci_hot_reset_info, count) + 3;
	info->count = 0;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info));
	EXPECT_EQ(0, info->count);
	free(info);
}

/*
 * VFIO_DEVICE_PCI_HOT_RESET: the group form through the group (edu's group
 * descriptor), the zero-length form through the cdev (edu bound to the
 * iommufd); the function works after it as after VFIO_DEVICE_RESET, twice.
 */
TEST_F(pci, hot_reset)
{
	works_after_reset(_metadata, self, variant->group, own_hot_reset);
	works_after_reset(_metadata, self, variant->group, own_hot_reset);
}

/*
 * What the hot reset refuses, as upstream: any flag, an argsz short of count,
 * the other way in's form, more descriptors than functions reached, a
 * descriptor that is not a VFIO group's (EINVAL), one that is not open
 * (EBADF). The device is still there and works after all of them.
 */
TEST_F(pci, hot_reset_bad_args)
{
	int fds[2] = { self->groupfd, self->groupfd };
	int closed = dup(self->devfd);

	ASSERT_LE(0, closed);
	close(closed);
	EXPECT_ERRNO(EINVAL, hot_reset(self->devfd, fds, variant->group, 1, 0));
	EXPECT_ERRNO(EINVAL, hot_reset(self->devfd, fds, variant->group, 0,
				       offsetof(struct vfio_pci_hot_reset, count) + 3));
	if (!variant->group) {
		/* Descriptors are for devices opened through their group. */
		EXPECT_ERRNO(EINVAL, hot_reset(self->devfd, &self->iommufd, 1, 0, 0));
		EXPECT_ERRNO(EINVAL, hot_reset(self->devfd, &self->devfd, 1, 0, 0));
		ASSERT_EQ(0, own_hot_reset(self));
		return;
	}
	/* The zero-length form is for devices opened through their cdev. */
	EXPECT_ERRNO(EINVAL, hot_reset(self->devfd, NULL, 0, 0, 0));
	/* One function reached, two descriptors. */
	EXPECT_ERRNO(EINVAL, hot_reset(self->devfd, fds, 2, 0, 0));
	/* The container and the device are VFIO files, but not groups. */
	EXPECT_ERRNO(EINVAL, hot_reset(self->devfd, &self->iommufd, 1, 0, 0));
	EXPECT_ERRNO(EINVAL, hot_reset(self->devfd, &self->devfd, 1, 0, 0));
	EXPECT_ERRNO(EBADF, hot_reset(self->devfd, &closed, 1, 0, 0));
	fds[0] = -1;
	EXPECT_ERRNO(EBADF, hot_reset(self->devfd, fds, 1, 0, 0));
	ASSERT_EQ(0, own_hot_reset(self));
	EXPECT_EQ(EDU_ID, edu_read32(self->devfd, 0));
}

/* The request index: one eventfd, set, signalled by loopback, cleared with -1. */
/*
 * edu is neither an SR-IOV PF nor a VF: it has no VF token to set (ENOTTY)
 * and takes none when opened (EINVAL). A group name may go on after the
 * address with spaces and options; one that goes on without a space names
 * another device (ENODEV).
 */
TEST_F(pci, no_vf_token)
{
	static const __u8 token[16] = { 0x52, 0xac };
	struct {
		struct vfio_device_feature feature;
		__u8 uuid[16];
	} set = {
		.feature.argsz = sizeof(set),
		.feature.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN,
	};
	char name[128];
	int fd;

	EXPECT_ERRNO(ENOTTY, ioctl(self->devfd, VFIO_DEVICE_FEATURE, &set));
	if (variant->group) {
		snprintf(name, sizeof(name), "%s vf_token=52ac9bff-3a88-4fbd-901a-0d767c3b6c97",
			 self->bdf);
		EXPECT_ERRNO(EINVAL, ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, name));
		snprintf(name, sizeof(name), "%s vf_token=52ac9bff", self->bdf);
		EXPECT_ERRNO(EINVAL, ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, name));
		snprintf(name, sizeof(name), "%s speed=fast", self->bdf);
		EXPECT_ERRNO(EINVAL, ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, name));
		snprintf(name, sizeof(name), "%s0", self->bdf);
		EXPECT_ERRNO(ENODEV, ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, name));
		snprintf(name, sizeof(name), "%s  ", self->bdf);
		fd = ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, name);
		ASSERT_LE(0, fd);
		close(fd);
	} else {
		struct vfio_device_bind_iommufd bind = {
			.argsz = sizeof(bind),
			.flags = VFIO_DEVICE_BIND_FLAG_TOKEN,
			.iommufd = self->iommufd,
			.token_uuid_ptr = (__u64)(uintptr_t)token,
		};
		char vfio[32], node[64];

		/* A second file: the token is checked before the device is found busy. */
		ASSERT_TRUE(find_vfio_dev(self->bdf, vfio, sizeof(vfio)));
		snprintf(node, sizeof(node), "/dev/vfio/devices/%s", vfio);
		fd = open(node, O_RDWR);
		ASSERT_LE(0, fd);
		EXPECT_ERRNO(EINVAL, ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
		bind.token_uuid_ptr = 8;
		EXPECT_ERRNO(EFAULT, ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
		/* Without one it gets that far: a cdev opens the device once. */
		bind.flags = 0;
		EXPECT_ERRNO(EINVAL, ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
		close(fd);
	}
}

/*
 * The request and error indexes: one eventfd each (count 1, not resizable),
 * signalled by the loopback (DATA_NONE) while set and refused (EINVAL) once
 * taken off; masking them has no handler (ENOTTY), as upstream.
 */
TEST_F(pci, request_and_error_eventfds)
{
	static const __u32 index[] = { VFIO_PCI_REQ_IRQ_INDEX, VFIO_PCI_ERR_IRQ_INDEX };
	__u32 trigger = VFIO_IRQ_SET_ACTION_TRIGGER;

	for (int i = 0; i < 2; i++) {
		struct vfio_irq_info info = { .argsz = sizeof(info), .index = index[i] };
		int efd = eventfd(0, EFD_NONBLOCK);

		ASSERT_LE(0, efd);
		ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_IRQ_INFO, &info));
		EXPECT_EQ(1, info.count);
		EXPECT_EQ(VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, info.flags);
		EXPECT_ERRNO(EINVAL, set_irq(self->devfd, index[i], trigger, 1, -2));
		ASSERT_EQ(0, set_irq(self->devfd, index[i], trigger, 1, efd));
		ASSERT_EQ(0, set_irq(self->devfd, index[i], trigger, 1, -2));
		EXPECT_EQ(1, wait_eventfd(efd));
		EXPECT_ERRNO(ENOTTY, set_irq(self->devfd, index[i], VFIO_IRQ_SET_ACTION_MASK, 1, -2));
		ASSERT_EQ(0, set_irq(self->devfd, index[i], trigger, 1, -1));
		EXPECT_ERRNO(EINVAL, set_irq(self->devfd, index[i], trigger, 1, -2));
		close(efd);
	}
}

/*
 * The low-power features (upstream's vfio_pci_core_pm_entry and kin): SET
 * only, the wake-up eventfd checked as upstream (EINVAL for a negative one or
 * a file that is not an eventfd, EBADF for one not open, EINVAL for argsz
 * short of it); entering twice is EINVAL, also across other ioctls (they
 * resume the function but without a wake-up eventfd it stays in low power);
 * exit may be repeated.
 */
TEST_F(pci, low_power_features)
{
	static const __u32 features[] = {
		VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
		VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
		VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
	};
	const __u32 entry = VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY;
	const __u32 wakeup = VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP;
	const __u32 exit_ = VFIO_DEVICE_FEATURE_LOW_POWER_EXIT;
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct {
		struct vfio_device_feature feature;
		__s32 efd;
		__u32 reserved;
	} arg;
	int efd = eventfd(0, EFD_NONBLOCK);

	ASSERT_LE(0, efd);
	for (int i = 0; i < 3; i++) {
		memset(&arg, 0, sizeof(arg));
		arg.feature.argsz = sizeof(arg.feature);
		arg.feature.flags = VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET | features[i];
		EXPECT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_FEATURE, &arg));
		arg.feature.flags = VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET | features[i];
		EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_FEATURE, &arg));
		arg.feature.flags = VFIO_DEVICE_FEATURE_GET | features[i];
		EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_FEATURE, &arg));
	}
	memset(&arg, 0, sizeof(arg));
	arg.feature.argsz = sizeof(arg.feature) + sizeof(__s32);
	arg.feature.flags = VFIO_DEVICE_FEATURE_SET | wakeup;
	arg.efd = efd;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_FEATURE, &arg));
	EXPECT_ERRNO(EINVAL, low_power(self->devfd, wakeup, -1));
	EXPECT_ERRNO(EINVAL, low_power(self->devfd, wakeup, self->devfd));
	EXPECT_ERRNO(EBADF, low_power(self->devfd, wakeup, 1000));

	ASSERT_EQ(0, low_power(self->devfd, entry, -1));
	EXPECT_ERRNO(EINVAL, low_power(self->devfd, entry, -1));
	EXPECT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_ERRNO(EINVAL, low_power(self->devfd, wakeup, efd));
	EXPECT_EQ(0, low_power(self->devfd, exit_, -1));
	EXPECT_EQ(0, low_power(self->devfd, exit_, -1));
	/* Out again: in again, and closed while in (the teardown). */
	EXPECT_EQ(0, low_power(self->devfd, wakeup, efd));
	close(efd);
}

/*
 * In low power the BARs are the user's no more: a mapping faults with SIGBUS
 * until low power ends, and works again after.
 */
TEST_F(pci, low_power_takes_bars)
{
	volatile __u32 *bar = map_bar0(self->devfd, EDU_BAR0_SIZE);
	__u32 val = 0;

	ASSERT_NE(NULL, bar);
	ASSERT_TRUE(mmio_read32(bar, &val));
	EXPECT_EQ(EDU_ID, val);
	ASSERT_EQ(0, low_power(self->devfd, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, -1));
	EXPECT_FALSE(mmio_read32(bar, &val));
	EXPECT_FALSE(mmio_read32(bar + getpagesize() / 4, &val));
	ASSERT_EQ(0, low_power(self->devfd, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, -1));
	ASSERT_TRUE(mmio_read32(bar, &val));
	EXPECT_EQ(EDU_ID, val);
	EXPECT_EQ(0, munmap((void *)bar, EDU_BAR0_SIZE));
}

/*
 * Runtime PM under the user (CONFIG_PM): closed, the function suspends; open,
 * it stays active; in low power with a wake-up eventfd it suspends, and the
 * next ioctl resumes it, signals the eventfd and ends low power (entering
 * again works), with the BARs back.
 */
TEST_F(pci, low_power_wakeup)
{
	const char *status = "power/runtime_status";
	struct vfio_device_info info = { .argsz = sizeof(info) };
	volatile __u32 *bar;
	__u32 val = 0;
	int efd;

	if (!pci_attr_becomes(self->bdf, status, "active", 0))
		SKIP(return, "no runtime PM (CONFIG_PM)");
	EXPECT_FALSE(pci_attr_becomes(self->bdf, status, "suspended", 200));
	efd = eventfd(0, EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	bar = map_bar0(self->devfd, EDU_BAR0_SIZE);
	ASSERT_NE(NULL, bar);
	ASSERT_EQ(0, low_power(self->devfd, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
			       efd));
	ASSERT_TRUE(pci_attr_becomes(self->bdf, status, "suspended", 2000));
	EXPECT_EQ(0, wait_eventfd_for(efd, 100));
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_EQ(1, wait_eventfd_for(efd, 2000));
	EXPECT_TRUE(pci_attr_becomes(self->bdf, status, "active", 0));
	ASSERT_TRUE(mmio_read32(bar, &val));
	EXPECT_EQ(EDU_ID, val);
	EXPECT_EQ(0, low_power(self->devfd, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, -1));
	EXPECT_EQ(0, low_power(self->devfd, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, -1));
	EXPECT_EQ(0, munmap((void *)bar, EDU_BAR0_SIZE));
	/* Closed, the function suspends; opened again, it is resumed. */
	close_all(self);
	EXPECT_TRUE(pci_attr_becomes(self->bdf, status, "suspended", 2000));
	if (variant->group)
		open_through_group(_metadata, self);
	else
		open_through_cdev(_metadata, self);
	EXPECT_TRUE(pci_attr_becomes(self->bdf, status, "active", 0));
	EXPECT_EQ(EDU_ID, edu_read32(self->devfd, 0));
	close(efd);
}

/*
 * Many users one after the other, each opening the device its way, mapping,
 * running DMA and closing: the counts stay right and nothing leaks (the VM
 * runs kmemleak after the tests).
 */
TEST_F_TIMEOUT(pci, open_dma_close_cycles, 600)
{
	size_t page = getpagesize();
	int efd = eventfd(0, EFD_NONBLOCK);
	int i, n = 200;
	__u8 *buf;

	ASSERT_LE(0, efd);
	buf = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0x3c, page);
	for (i = 0; i < n; i++) {
		if (i) {
			/* A new user: close everything, open again. */
			close_all(self);
			if (variant->group)
				open_through_group(_metadata, self);
			else
				open_through_cdev(_metadata, self);
		}
		ASSERT_EQ(0, iommu_map_va(self->iommufd, variant->group, self->ioas_id, buf,
					  DMA_IOVA, page));
		ASSERT_EQ(0, edu_bus_master(self->devfd));
		ASSERT_EQ(0, edu_dma(self->devfd, DMA_IOVA, 64, false));
		/* An MSI left on for the close to take down. */
		ASSERT_EQ(0, set_irq(self->devfd, VFIO_PCI_MSI_IRQ_INDEX,
				     VFIO_IRQ_SET_ACTION_TRIGGER, 1, efd));
		ASSERT_EQ(0, iommu_unmap_iova(self->iommufd, variant->group, self->ioas_id,
					      DMA_IOVA, page));
	}
	munmap(buf, page);
	close(efd);
}

TEST_HARNESS_MAIN

