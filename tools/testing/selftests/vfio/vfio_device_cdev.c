// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VFIO device cdev, /dev/vfio/devices/vfioN, on QEMU's edu device
 * (1234:11e8) behind the emulated VT-d, handed to the vfio-test driver
 * (CONFIG_VFIO_TEST_DRIVER) through driver_override.
 *
 * Expectations follow upstream drivers/vfio/device_cdev.c, vfio_main.c and
 * iommufd.c: a cdev file can do nothing but VFIO_DEVICE_BIND_IOMMUFD until it
 * is bound (EINVAL for everything else); one file at a time may bind the
 * device; binding gives an iommufd device id usable on the iommufd; attach
 * goes to an IOAS (through an automatic HWPT) or a HWPT; closing the file
 * undoes everything.
 *
 * Every test skips without the edu device or the vfio-test driver.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"

#include "vfio_edu.h"

FIXTURE(cdev)
{
	char bdf[64];
	char name[32];
	char node[64];
	int iommufd;
	int devfd;
};

FIXTURE_SETUP(cdev)
{
	self->iommufd = -1;
	self->devfd = -1;
	if (!find_edu(self->bdf, sizeof(self->bdf)))
		SKIP(return, "no edu device (1234:11e8)");
	if (access(TEST_DRIVER, F_OK))
		SKIP(return, "no vfio-test driver (CONFIG_VFIO_TEST_DRIVER)");
	ASSERT_EQ(0, bind_test_driver(self->bdf));
	ASSERT_TRUE(find_vfio_dev(self->bdf, self->name, sizeof(self->name)));
	snprintf(self->node, sizeof(self->node), "/dev/vfio/devices/%s", self->name);
	self->iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->iommufd);
	self->devfd = open(self->node, O_RDWR);
	ASSERT_LE(0, self->devfd);
}

FIXTURE_TEARDOWN(cdev)
{
	if (self->devfd >= 0)
		close(self->devfd);
	if (self->iommufd >= 0)
		close(self->iommufd);
}

/* The node's numbers are what sysfs says, in the class and under the parent. */
TEST_F(cdev, sysfs_and_node)
{
	char path[512], dev[32], classdev[32];
	unsigned int major, minor;
	struct stat st;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/vfio-dev/%s/dev", self->bdf, self->name);
	ASSERT_EQ(0, read_file(path, dev, sizeof(dev)));
	snprintf(path, sizeof(path), "/sys/class/vfio-dev/%s/dev", self->name);
	ASSERT_EQ(0, read_file(path, classdev, sizeof(classdev)));
	EXPECT_STREQ(dev, classdev);
	ASSERT_EQ(2, sscanf(dev, "%u:%u", &major, &minor));
	ASSERT_EQ(0, stat(self->node, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(major, major(st.st_rdev));
	EXPECT_EQ(minor, minor(st.st_rdev));
	/* The class device's parent is the PCI device. */
	snprintf(path, sizeof(path), "/sys/class/vfio-dev/%s/device/vendor", self->name);
	ASSERT_EQ(0, read_file(path, dev, sizeof(dev)));
	EXPECT_EQ(0, strncmp(dev, "0x1234", 6));
}

/* Until BIND_IOMMUFD, every other operation of the file is EINVAL. */
TEST_F(cdev, nothing_before_bind)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct vfio_device_detach_iommufd_pt detach = { .argsz = sizeof(detach) };
	struct vfio_device_feature feature = { .argsz = sizeof(feature) };
	struct vfio_region_info region = { .argsz = sizeof(region) };
	__u32 opens, closes;
	char buf[8] = {};

	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_FEATURE, &feature));
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_GET_REGION_INFO, &region));
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_RESET));
	EXPECT_ERRNO(EINVAL, counts(self->devfd, &opens, &closes));
	EXPECT_ERRNO(EINVAL, read(self->devfd, buf, sizeof(buf)));
	EXPECT_ERRNO(EINVAL, write(self->devfd, buf, sizeof(buf)));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->devfd, 0));
	EXPECT_EQ(EINVAL, errno);
}

/* BIND_IOMMUFD's argument checks, and that a failed bind leaves nothing. */
TEST_F(cdev, bind_errors)
{
	struct {
		struct vfio_device_bind_iommufd bind;
		__u64 tail;
	} big = {};
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = self->iommufd,
	};
	int null_fd = open("/dev/null", O_RDWR);
	__u32 devid = 0;

	ASSERT_LE(0, null_fd);
	EXPECT_ERRNO(EFAULT, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, NULL));
	/* argsz must reach out_devid */
	bind.argsz = offsetof(struct vfio_device_bind_iommufd, out_devid);
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	bind.argsz = sizeof(bind);
	bind.flags = 1 << 1;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	/* the driver takes no VF token */
	bind.flags = VFIO_DEVICE_BIND_FLAG_TOKEN;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	bind.flags = 0;
	bind.iommufd = -1;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	bind.iommufd = 1000;
	EXPECT_ERRNO(EBADF, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	bind.iommufd = null_fd;
	EXPECT_ERRNO(EBADFD, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	bind.iommufd = self->devfd;
	EXPECT_ERRNO(EBADFD, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	/* a longer struct must end in zeroes */
	big.bind.argsz = sizeof(big);
	big.bind.iommufd = self->iommufd;
	big.tail = 1;
	EXPECT_ERRNO(E2BIG, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &big));
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &bind));
	/* ... and one that does is fine */
	big.tail = 0;
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_BIND_IOMMUFD, &big));
	EXPECT_NE(0, big.bind.out_devid);
	/* one file binds once */
	EXPECT_ERRNO(EINVAL, bind_iommufd(self->devfd, self->iommufd, &devid));
	close(null_fd);
}

/* The device id is the iommufd's: GET_HW_INFO answers for it, DESTROY cannot remove it. */
TEST_F(cdev, bind_gives_iommufd_device)
{
	struct iommu_hw_info info = { .size = sizeof(info) };
	__u8 data[256];
	__u32 devid;

	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, &devid));
	ASSERT_NE(0, devid);
	info.dev_id = devid;
	info.data_len = sizeof(data);
	info.data_uptr = (uintptr_t)data;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_GET_HW_INFO, &info));
	EXPECT_EQ(IOMMU_HW_INFO_TYPE_INTEL_VTD, info.out_data_type);
	EXPECT_EQ(sizeof(struct iommu_hw_info_vtd), info.data_len);
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, devid));
	info.dev_id = devid + 100;
	EXPECT_ERRNO(ENOENT, ioctl(self->iommufd, IOMMU_GET_HW_INFO, &info));
}

/* After binding, the driver answers: no regions, no interrupts. */
TEST_F(cdev, get_info)
{
	struct vfio_device_info info;

	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, NULL));
	memset(&info, 0xff, sizeof(info));
	info.argsz = sizeof(info);
	ASSERT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_EQ(0, info.flags);
	EXPECT_EQ(0, info.num_regions);
	EXPECT_EQ(0, info.num_irqs);
	info.argsz = offsetof(struct vfio_device_info, num_irqs);
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
	/* the core has no region info for a driver without it */
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_GET_REGION_INFO, &info));
	/* nor features */
	struct vfio_device_feature feature = {
		.argsz = sizeof(feature),
		.flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET | 1,
	};
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_FEATURE, &feature));
	feature.flags = VFIO_DEVICE_FEATURE_GET | 1;
	EXPECT_ERRNO(ENOTTY, ioctl(self->devfd, VFIO_DEVICE_FEATURE, &feature));
	feature.flags = 1 << 20;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_FEATURE, &feature));
}

/* Only one file at a time has the device; opening more files is allowed. */
TEST_F(cdev, one_binding_at_a_time)
{
	int second = open(self->node, O_RDWR);
	int other_iommufd = open("/dev/iommu", O_RDWR);
	__u32 devid, devid2;

	ASSERT_LE(0, second);
	ASSERT_LE(0, other_iommufd);
	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, &devid));
	EXPECT_ERRNO(EINVAL, bind_iommufd(second, self->iommufd, NULL));
	EXPECT_ERRNO(EINVAL, bind_iommufd(second, other_iommufd, NULL));
	struct vfio_device_info info = { .argsz = sizeof(info) };
	EXPECT_ERRNO(EINVAL, ioctl(second, VFIO_DEVICE_GET_INFO, &info));
	close(self->devfd);
	self->devfd = -1;
	/* closing the bound file frees the device for another iommufd */
	ASSERT_EQ(0, bind_iommufd(second, other_iommufd, &devid2));
	EXPECT_EQ(0, ioctl(second, VFIO_DEVICE_GET_INFO, &info));
	close(second);
	close(other_iommufd);
}

/* Attaching to an IOAS goes through an automatic HWPT, which goes with the detach. */
TEST_F(cdev, attach_ioas)
{
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	__u32 ioas, pt, pt2, devid;

	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, &devid));
	ASSERT_EQ(0, ioas_alloc(self->iommufd, &ioas));
	pt = ioas;
	ASSERT_EQ(0, attach_pt(self->devfd, &pt));
	EXPECT_NE(ioas, pt);
	EXPECT_NE(devid, pt);
	/* again: the same HWPT (a replace) */
	pt2 = ioas;
	ASSERT_EQ(0, attach_pt(self->devfd, &pt2));
	EXPECT_EQ(pt, pt2);
	/* the IOAS and the HWPT are in use */
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, ioas));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, pt));
	/* memory can be mapped through the attached domain */
	void *buf = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE |
			 IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = ioas,
		.user_va = (uintptr_t)buf,
		.length = 1 << 20,
		.iova = 1 << 30,
	};
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_MAP, &map));
	/* bad ids: none, not a page table */
	pt2 = 9999;
	EXPECT_ERRNO(ENOENT, attach_pt(self->devfd, &pt2));
	pt2 = devid;
	EXPECT_ERRNO(EINVAL, attach_pt(self->devfd, &pt2));
	/* bad arguments */
	attach.pt_id = ioas;
	attach.flags = 1 << 1;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	attach.flags = 0;
	attach.argsz = offsetof(struct vfio_device_attach_iommufd_pt, pt_id);
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	EXPECT_ERRNO(EFAULT, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, NULL));
	/* detach: the automatic HWPT goes, the IOAS is free */
	ASSERT_EQ(0, detach_pt(self->devfd));
	EXPECT_ERRNO(ENOENT, destroy(self->iommufd, pt));
	/* detaching again does nothing */
	EXPECT_EQ(0, detach_pt(self->devfd));
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap), .ioas_id = ioas, .iova = 1 << 30, .length = 1 << 20,
	};
	EXPECT_EQ(0, ioctl(self->iommufd, IOMMU_IOAS_UNMAP, &unmap));
	EXPECT_EQ(0, destroy(self->iommufd, ioas));
	munmap(buf, 1 << 20);
}

/* A HWPT made for the device takes it directly. */
TEST_F(cdev, attach_hwpt)
{
	struct iommu_hwpt_alloc alloc = { .size = sizeof(alloc) };
	__u32 ioas, pt, devid;

	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, &devid));
	ASSERT_EQ(0, ioas_alloc(self->iommufd, &ioas));
	alloc.dev_id = devid;
	alloc.pt_id = ioas;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_HWPT_ALLOC, &alloc));
	pt = alloc.out_hwpt_id;
	ASSERT_EQ(0, attach_pt(self->devfd, &pt));
	EXPECT_EQ(alloc.out_hwpt_id, pt);
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, alloc.out_hwpt_id));
	/* replace with the IOAS: an automatic HWPT, and the first is free */
	pt = ioas;
	ASSERT_EQ(0, attach_pt(self->devfd, &pt));
	EXPECT_NE(alloc.out_hwpt_id, pt);
	EXPECT_EQ(0, destroy(self->iommufd, alloc.out_hwpt_id));
	ASSERT_EQ(0, detach_pt(self->devfd));
	EXPECT_EQ(0, destroy(self->iommufd, ioas));
}

/* The PASID variants: argument checks, an IOAS is not PASID-capable. */
TEST_F(cdev, pasid)
{
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = offsetof(struct vfio_device_attach_iommufd_pt, pasid),
		.flags = VFIO_DEVICE_ATTACH_PASID,
		.pasid = 1,
	};
	struct vfio_device_detach_iommufd_pt detach = {
		.argsz = offsetof(struct vfio_device_detach_iommufd_pt, pasid),
		.flags = VFIO_DEVICE_DETACH_PASID,
		.pasid = 1,
	};
	__u32 ioas;

	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, NULL));
	ASSERT_EQ(0, ioas_alloc(self->iommufd, &ioas));
	attach.pt_id = ioas;
	/* argsz must reach pasid */
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));
	attach.argsz = sizeof(attach);
	detach.argsz = sizeof(detach);
	/* an automatic HWPT is never PASID-compatible */
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	attach.pt_id = 9999;
	EXPECT_ERRNO(ENOENT, ioctl(self->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	/* detaching a PASID that is not attached does nothing */
	EXPECT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));
	detach.flags = 1 << 1;
	EXPECT_ERRNO(EINVAL, ioctl(self->devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));
	EXPECT_EQ(0, destroy(self->iommufd, ioas));
}

/* The bound device holds its iommufd: closing the iommufd's fd changes nothing. */
TEST_F(cdev, iommufd_closed_first)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	__u32 ioas, pt;

	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, NULL));
	ASSERT_EQ(0, ioas_alloc(self->iommufd, &ioas));
	pt = ioas;
	ASSERT_EQ(0, attach_pt(self->devfd, &pt));
	close(self->iommufd);
	self->iommufd = -1;
	EXPECT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_EQ(0, detach_pt(self->devfd));
	pt = ioas;
	EXPECT_EQ(0, attach_pt(self->devfd, &pt));
}

/*
 * Open, bind, attach, close, a thousand times: every close is a last close
 * (the driver's counts), and nothing stays behind (the IOAS can be destroyed,
 * the device can be bound again; kmemleak checks the rest after the run).
 */
/* Many rounds: slow under TCG with KASAN, hence the longer timeout. */
TEST_F_TIMEOUT(cdev, open_bind_attach_close_cycles, 600)
{
	__u32 ioas, opens0, closes0, opens, closes;
	int i;

	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, NULL));
	ASSERT_EQ(0, counts(self->devfd, &opens0, &closes0));
	EXPECT_EQ(opens0, closes0 + 1);
	close(self->devfd);
	self->devfd = -1;
	ASSERT_EQ(0, ioas_alloc(self->iommufd, &ioas));
	for (i = 0; i < 1000; i++) {
		int fd = open(self->node, O_RDWR);
		__u32 pt = ioas;

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, bind_iommufd(fd, self->iommufd, NULL));
		ASSERT_EQ(0, attach_pt(fd, &pt));
		ASSERT_EQ(0, close(fd));
	}
	/* no automatic HWPT left on the IOAS */
	EXPECT_EQ(0, destroy(self->iommufd, ioas));
	self->devfd = open(self->node, O_RDWR);
	ASSERT_LE(0, self->devfd);
	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, NULL));
	ASSERT_EQ(0, counts(self->devfd, &opens, &closes));
	EXPECT_EQ(opens0 + 1001, opens);
	EXPECT_EQ(closes0 + 1001, closes);
}

struct unbind_arg {
	const char *bdf;
	volatile int done;
};

static void *unbind_thread(void *p)
{
	struct unbind_arg *arg = p;

	write_file(TEST_DRIVER "/unbind", arg->bdf);
	arg->done = 1;
	return NULL;
}

/*
 * Unbinding the driver removes the node at once but waits until the open
 * files are closed; binding again brings a node back.
 */
TEST_F(cdev, unbind_waits_for_files)
{
	struct unbind_arg arg = { .bdf = self->bdf };
	struct timespec ts = { .tv_nsec = 300 * 1000 * 1000 };
	char path[512];
	pthread_t thread;

	ASSERT_EQ(0, bind_iommufd(self->devfd, self->iommufd, NULL));
	ASSERT_EQ(0, pthread_create(&thread, NULL, unbind_thread, &arg));
	nanosleep(&ts, NULL);
	EXPECT_EQ(0, arg.done);
	EXPECT_NE(0, access(self->node, F_OK));
	/* the file still works meanwhile */
	struct vfio_device_info info = { .argsz = sizeof(info) };
	EXPECT_EQ(0, ioctl(self->devfd, VFIO_DEVICE_GET_INFO, &info));
	close(self->devfd);
	self->devfd = -1;
	ASSERT_EQ(0, pthread_join(thread, NULL));
	EXPECT_EQ(1, arg.done);
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/vfio-dev", self->bdf);
	EXPECT_NE(0, access(path, F_OK));
	/* the DMA went back to the kernel: binding again works */
	ASSERT_EQ(0, bind_test_driver(self->bdf));
	ASSERT_TRUE(find_vfio_dev(self->bdf, self->name, sizeof(self->name)));
	snprintf(self->node, sizeof(self->node), "/dev/vfio/devices/%s", self->name);
	self->devfd = open(self->node, O_RDWR);
	ASSERT_LE(0, self->devfd);
	EXPECT_EQ(0, bind_iommufd(self->devfd, self->iommufd, NULL));
}

TEST_HARNESS_MAIN
