// SPDX-License-Identifier: GPL-2.0
/*
 * A userspace driver for QEMU's edu device, run inside the VM by `make run`:
 * it hands edu to vfio-pci, then drives it twice, first through its device
 * cdev bound to /dev/iommu, then through its group in a VFIO container. Each
 * time it maps a buffer, has edu copy one page of it into its own memory and
 * back into another page through the emulated VT-d, checks the bytes, unmaps
 * the second page, and shows that edu's next write no longer reaches it (VT-d
 * blocks it and logs the fault). The DMA back into RAM announces its end
 * with edu's MSI, which arrives through an eventfd (VFIO_DEVICE_SET_IRQS).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "../testing/selftests/vfio/vfio_edu.h"

#define IOVA 0x100000
#define LEN 256

static bool failed;

/* Prints one step and whether it worked. */
static bool step(bool ok, const char *what)
{
	printf("  %-64s %s\n", what, ok ? "ok" : strerror(errno));
	failed |= !ok;
	return ok;
}

/* The device file and the IOMMU side of one way in. */
struct way {
	const char *name;
	bool container;
	int iommu;	/* /dev/iommu or the container */
	__u32 ioas_id;
	int devfd;
	int groupfd;
};

static bool open_cdev(struct way *w, const char *bdf)
{
	char name[32], node[64];
	__u32 devid, pt;

	if (!find_vfio_dev(bdf, name, sizeof(name))) {
		printf("  no device cdev in this kernel (VFIO_DEVICE_CDEV)\n");
		return false;
	}
	snprintf(node, sizeof(node), "/dev/vfio/devices/%s", name);
	w->devfd = open(node, O_RDWR);
	if (!step(w->devfd >= 0, node))
		return false;
	w->iommu = open("/dev/iommu", O_RDWR);
	if (!step(w->iommu >= 0, "open /dev/iommu"))
		return false;
	if (!step(!bind_iommufd(w->devfd, w->iommu, &devid), "VFIO_DEVICE_BIND_IOMMUFD"))
		return false;
	if (!step(!ioas_alloc(w->iommu, &w->ioas_id), "IOMMU_IOAS_ALLOC"))
		return false;
	pt = w->ioas_id;
	return step(!attach_pt(w->devfd, &pt), "VFIO_DEVICE_ATTACH_IOMMUFD_PT to the IOAS");
}

static bool open_group(struct way *w, const char *bdf)
{
	char node[64];
	int id;

	if (!find_iommu_group(bdf, &id))
		return step(false, "edu's IOMMU group");
	snprintf(node, sizeof(node), "/dev/vfio/%d", id);
	if (access(node, F_OK) || access("/dev/vfio/vfio", F_OK)) {
		printf("  no group or container in this kernel (VFIO_GROUP)\n");
		return false;
	}
	w->groupfd = open(node, O_RDWR);
	if (!step(w->groupfd >= 0, node))
		return false;
	w->iommu = open("/dev/vfio/vfio", O_RDWR);
	if (!step(w->iommu >= 0, "open /dev/vfio/vfio"))
		return false;
	if (!step(!ioctl(w->groupfd, VFIO_GROUP_SET_CONTAINER, &w->iommu),
		  "VFIO_GROUP_SET_CONTAINER"))
		return false;
	if (!step(!ioctl(w->iommu, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU),
		  "VFIO_SET_IOMMU type1v2"))
		return false;
	w->devfd = ioctl(w->groupfd, VFIO_GROUP_GET_DEVICE_FD, bdf);
	return step(w->devfd >= 0, "VFIO_GROUP_GET_DEVICE_FD");
}

/*
 * Routes edu's MSI to a new eventfd, runs a DMA towards RAM that raises it
 * when done, waits for it and acknowledges it.
 */
static bool dma_with_msi(struct way *w, __u64 iova, __u32 len)
{
	struct {
		struct vfio_irq_set set;
		__s32 fd;
	} irq = {
		.set = {
			.argsz = sizeof(irq),
			.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
			.index = VFIO_PCI_MSI_IRQ_INDEX,
			.count = 1,
		},
	};
	struct pollfd p = { .events = POLLIN };
	__u64 count = 0;
	bool ok;

	irq.fd = p.fd = eventfd(0, EFD_NONBLOCK);
	if (!step(irq.fd >= 0 && !ioctl(w->devfd, VFIO_DEVICE_SET_IRQS, &irq),
		  "edu's MSI -> an eventfd (VFIO_DEVICE_SET_IRQS)") ||
	    !step(!edu_dma_start(w->devfd, iova, len, true, true),
		  "DMA edu's buffer -> page 1, interrupt when done"))
		return false;
	ok = poll(&p, 1, 5000) == 1 && read(p.fd, &count, sizeof(count)) == sizeof(count);
	printf("  MSI arrived: eventfd count %llu, edu's interrupt status %#x\n",
	       (unsigned long long)count, edu_read32(w->devfd, EDU_IRQ_STATUS));
	edu_write32(w->devfd, EDU_IRQ_ACK, EDU_IRQ_DMA);
	close(p.fd);
	return step(ok && count == 1, "the DMA ended with an MSI");
}

/* DMA into edu and back, then after unmapping. */
static void drive(struct way *w)
{
	size_t page = getpagesize();
	char line[256] = "";
	bool same, untouched = true;
	__u8 *buf;
	int i, kmsg;

	printf("  edu says %#x; liveness check: ", edu_read32(w->devfd, 0));
	edu_write32(w->devfd, EDU_LIVENESS, 0x12345678);
	printf("wrote 0x12345678, read back %#x\n", edu_read32(w->devfd, EDU_LIVENESS));
	buf = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!step(buf != MAP_FAILED, "a two-page buffer"))
		return;
	for (i = 0; i < LEN; i++)
		buf[i] = i ^ 0xa5;
	memset(buf + page, 0, page);
	if (!step(!iommu_map_va(w->iommu, w->container, w->ioas_id, buf, IOVA, page),
		  "map page 0 at IOVA 0x100000") ||
	    !step(!iommu_map_va(w->iommu, w->container, w->ioas_id, buf + page, IOVA + page, page),
		  "map page 1 at IOVA 0x101000") ||
	    !step(!edu_bus_master(w->devfd), "bus mastering on (config space)") ||
	    !step(!edu_dma(w->devfd, IOVA, LEN, false), "DMA page 0 -> edu's buffer") ||
	    !dma_with_msi(w, IOVA + page, LEN))
		goto out;
	same = !memcmp(buf, buf + page, LEN);
	printf("  page 1 now starts %02x %02x %02x %02x ...\n", buf[page], buf[page + 1],
	       buf[page + 2], buf[page + 3]);
	step(same, "page 1 holds what page 0 held");
	memset(buf + page, 0, page);
	if (!step(!iommu_unmap_iova(w->iommu, w->container, w->ioas_id, IOVA + page, page),
		  "unmap page 1"))
		goto out;
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	lseek(kmsg, 0, SEEK_END);
	step(!edu_dma(w->devfd, IOVA + page, LEN, true), "DMA edu's buffer -> IOVA 0x101000 again");
	for (i = 0; i < LEN; i++)
		untouched &= !buf[page + i];
	step(untouched, "page 1 stays zero: the device cannot reach it");
	if (step(kmsg >= 0 && dmar_fault_logged(kmsg, IOVA + page, line, sizeof(line)),
		 "VT-d reported the blocked DMA"))
		printf("    %s", line);
	if (kmsg >= 0)
		close(kmsg);
	iommu_unmap_iova(w->iommu, w->container, w->ioas_id, IOVA, page);
out:
	munmap(buf, 2 * page);
}

int main(void)
{
	struct way ways[] = {
		{ .name = "the device cdev and /dev/iommu", .container = false },
		{ .name = "the group and the VFIO container", .container = true },
	};
	char bdf[64];
	unsigned int i;

	if (!find_edu(bdf, sizeof(bdf))) {
		printf("no edu device (1234:11e8)\n");
		return 1;
	}
	printf("edu at %s\n", bdf);
	if (!step(!bind_driver(bdf, "vfio-pci"), "bind edu to vfio-pci (driver_override)"))
		return 1;
	for (i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
		struct way *w = &ways[i];
		bool opened;

		w->iommu = w->devfd = w->groupfd = -1;
		printf("--- edu through %s\n", w->name);
		opened = w->container ? open_group(w, bdf) : open_cdev(w, bdf);
		if (opened)
			drive(w);
		close_device_fds(&w->devfd, &w->groupfd, &w->iommu);
	}
	printf("edu demo: %s\n", failed ? "FAILED" : "all steps ok");
	return failed;
}
