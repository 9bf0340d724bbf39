// SPDX-License-Identifier: GPL-2.0-only
/*
 * VFIO's no-IOMMU mode (CONFIG_VFIO_NOIOMMU) on QEMU's edu device in a VM
 * without an IOMMU: the test turns the mode on
 * (/sys/module/vfio/parameters/enable_unsafe_noiommu_mode), hands edu to the
 * vfio-test driver, and uses the no-IOMMU group it gets through a container
 * and through an iommufd.
 *
 * Expectations follow upstream drivers/vfio/group.c, container.c and
 * drivers/iommu/iommufd/vfio_compat.c.  Every test skips unless edu is there
 * without an IOMMU (scripts/run-vm.sh --no-iommu) and the mode exists.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/capability.h>

#include "kselftest_harness.h"

#include "vfio_edu.h"

#define CONTAINER "/dev/vfio/vfio"
#define PARAM "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"
#define TAINT_USER_BIT (1 << 6)

/* Whether @bdf's IOMMU group, if any, is a no-IOMMU one. */
static bool no_real_iommu(const char *bdf)
{
	char path[512], name[64];
	int id;

	if (!find_iommu_group(bdf, &id))
		return true;
	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/name", id);
	return !read_file(path, name, sizeof(name)) && !strncmp(name, "vfio-noiommu", 12);
}

/* Drops CAP_SYS_RAWIO from the calling process's effective set. */
static int drop_rawio(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};

	if (syscall(SYS_capget, &hdr, data))
		return -1;
	data[CAP_SYS_RAWIO / 32].effective &= ~(1u << (CAP_SYS_RAWIO % 32));
	return syscall(SYS_capset, &hdr, data);
}

FIXTURE(noiommu)
{
	char bdf[64];
	char node[64];
	int groupfd;
};

FIXTURE_SETUP(noiommu)
{
	int id;

	self->groupfd = -1;
	if (!find_edu(self->bdf, sizeof(self->bdf)))
		SKIP(return, "no edu device (1234:11e8)");
	if (!no_real_iommu(self->bdf))
		SKIP(return, "edu is behind an IOMMU (boot with run-vm.sh --no-iommu)");
	if (access(TEST_DRIVER, F_OK))
		SKIP(return, "no vfio-test driver (CONFIG_VFIO_TEST_DRIVER)");
	if (access(PARAM, F_OK))
		SKIP(return, "no no-IOMMU mode (CONFIG_VFIO_NOIOMMU)");
	ASSERT_EQ(0, write_file(PARAM, "Y"));
	ASSERT_EQ(0, bind_test_driver(self->bdf));
	ASSERT_TRUE(find_iommu_group(self->bdf, &id));
	snprintf(self->node, sizeof(self->node), "/dev/vfio/noiommu-%d", id);
	self->groupfd = open(self->node, O_RDWR);
	ASSERT_LE(0, self->groupfd) TH_LOG("%s: %s", self->node, strerror(errno));
}

FIXTURE_TEARDOWN(noiommu)
{
	if (self->groupfd >= 0)
		close(self->groupfd);
}

/* The device is in a group of its own, offered through the group only, and taints. */
TEST_F(noiommu, group_only_and_taint)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	char path[512], tainted[32];

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/vfio-dev", self->bdf);
	EXPECT_NE(0, access(path, F_OK));
	ASSERT_EQ(0, read_file("/proc/sys/kernel/tainted", tainted, sizeof(tainted)));
	EXPECT_TRUE(strtoul(tainted, NULL, 10) & TAINT_USER_BIT);
	ASSERT_EQ(0, ioctl(self->groupfd, VFIO_GROUP_GET_STATUS, &status));
	EXPECT_EQ(VFIO_GROUP_FLAGS_VIABLE, status.flags);
}

/* Only CAP_SYS_RAWIO may open the group; EPERM comes before EBUSY. */
TEST_F(noiommu, needs_rawio)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		if (drop_rawio())
			_exit(10);
		if (open(self->node, O_RDWR) >= 0 || errno != EPERM)
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* VFIO's container with a no-IOMMU group: only the no-IOMMU backend, which maps nothing. */
TEST_F(noiommu, container)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ,
		.size = 4096,
	};
	struct vfio_device_info info = { .argsz = sizeof(info) };
	int container, dev;

	if (access(CONTAINER, F_OK))
		SKIP(return, "no " CONTAINER);
	container = open(CONTAINER, O_RDWR);
	ASSERT_LE(0, container);
	EXPECT_EQ(1, ioctl(container, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU));
	ASSERT_EQ(0, ioctl(self->groupfd, VFIO_GROUP_SET_CONTAINER, &container));
	if (ioctl(container, IOMMU_IOAS_ALLOC, NULL) == -1 && errno == EFAULT) {
		/* iommufd's compat container: checked by the iommufd case. */
		close(container);
		SKIP(return, "iommufd's compat container");
	}
	EXPECT_EQ(1, ioctl(container, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU));
	EXPECT_EQ(0, ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU));
	EXPECT_ERRNO(EINVAL, ioctl(container, VFIO_IOMMU_MAP_DMA, &map));
	EXPECT_ERRNO(ENODEV, ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(0, ioctl(container, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU));
	EXPECT_ERRNO(ENOTTY, ioctl(container, VFIO_IOMMU_MAP_DMA, &map));
	dev = ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, self->bdf);
	ASSERT_LE(0, dev);
	EXPECT_EQ(0, ioctl(dev, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_ERRNO(EBUSY, ioctl(self->groupfd, VFIO_GROUP_UNSET_CONTAINER));
	close(dev);
	EXPECT_EQ(0, ioctl(self->groupfd, VFIO_GROUP_UNSET_CONTAINER));
	close(container);
}

/* An iommufd with a no-IOMMU group: no compat IOAS, only the no-IOMMU backend. */
TEST_F(noiommu, iommufd)
{
	struct iommu_vfio_ioas vfio_ioas = {
		.size = sizeof(vfio_ioas),
		.op = IOMMU_VFIO_IOAS_GET,
	};
	struct vfio_device_info info = { .argsz = sizeof(info) };
	int iommufd = open("/dev/iommu", O_RDWR);
	int dev;

	if (iommufd < 0)
		SKIP(return, "no /dev/iommu");
	ASSERT_EQ(0, ioctl(self->groupfd, VFIO_GROUP_SET_CONTAINER, &iommufd));
	EXPECT_ERRNO(ENODEV, ioctl(iommufd, IOMMU_VFIO_IOAS, &vfio_ioas));
	EXPECT_EQ(0, ioctl(iommufd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU));
	EXPECT_EQ(1, ioctl(iommufd, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU));
	EXPECT_ERRNO(EINVAL, ioctl(iommufd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	EXPECT_EQ(0, ioctl(iommufd, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU));
	dev = ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, self->bdf);
	ASSERT_LE(0, dev);
	EXPECT_EQ(0, ioctl(dev, VFIO_DEVICE_GET_INFO, &info));
	close(dev);
	close(iommufd);
}

TEST_HARNESS_MAIN
