// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VFIO group interface, /dev/vfio/$GROUP, on QEMU's edu device behind the
 * emulated VT-d, handed to the vfio-test driver: the group's ioctls with a
 * container (/dev/vfio/vfio: VFIO's own or iommufd's compat one, whichever
 * the kernel has) and with an iommufd, and the rule that a device is used
 * through its group or through its cdev, never both.
 *
 * Expectations follow upstream drivers/vfio/group.c, container.c and
 * device_cdev.c.  Every test skips without the edu device, the vfio-test
 * driver or the group interface (CONFIG_VFIO_GROUP).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "kselftest_harness.h"

#include "vfio_edu.h"

#define CONTAINER "/dev/vfio/vfio"
#define BUF_SIZE (64 * 1024)
#define BUF_IOVA 0x100000

static int get_status(int groupfd, __u32 *flags)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	int ret = ioctl(groupfd, VFIO_GROUP_GET_STATUS, &status);

	*flags = status.flags;
	return ret;
}

static int set_container(int groupfd, int fd)
{
	return ioctl(groupfd, VFIO_GROUP_SET_CONTAINER, &fd);
}

FIXTURE(group)
{
	char bdf[64];
	char node[64];
	char cdev[64];
	int groupfd;
	int container;
	void *buf;
};

FIXTURE_SETUP(group)
{
	char name[32];
	int id;

	self->groupfd = -1;
	self->container = -1;
	self->cdev[0] = 0;
	self->buf = MAP_FAILED;
	if (!find_edu(self->bdf, sizeof(self->bdf)))
		SKIP(return, "no edu device (1234:11e8)");
	if (access(TEST_DRIVER, F_OK))
		SKIP(return, "no vfio-test driver (CONFIG_VFIO_TEST_DRIVER)");
	ASSERT_EQ(0, bind_test_driver(self->bdf));
	ASSERT_TRUE(find_iommu_group(self->bdf, &id));
	snprintf(self->node, sizeof(self->node), "/dev/vfio/%d", id);
	if (access(self->node, F_OK))
		SKIP(return, "no group node %s (CONFIG_VFIO_GROUP)", self->node);
	if (find_vfio_dev(self->bdf, name, sizeof(name)))
		snprintf(self->cdev, sizeof(self->cdev), "/dev/vfio/devices/%s", name);
	self->groupfd = open(self->node, O_RDWR);
	ASSERT_LE(0, self->groupfd);
	self->buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
}

FIXTURE_TEARDOWN(group)
{
	if (self->groupfd >= 0)
		close(self->groupfd);
	if (self->container >= 0)
		close(self->container);
	if (self->buf != MAP_FAILED)
		munmap(self->buf, BUF_SIZE);
}

/* Opens the container and adds the group to it; skips without a container. */
#define OPEN_CONTAINER()                                                       \
	do {                                                                   \
		if (access(CONTAINER, F_OK))                                   \
			SKIP(return, "no " CONTAINER);                         \
		self->container = open(CONTAINER, O_RDWR);                     \
		ASSERT_LE(0, self->container);                                 \
		ASSERT_EQ(0, set_container(self->groupfd, self->container));   \
	} while (0)

/* The node is a char device of the class "vfio", named by the IOMMU group. */
TEST_F(group, node)
{
	char path[512], dev[32];
	unsigned int major, minor;
	struct stat st;

	snprintf(path, sizeof(path), "/sys/class/vfio/%s/dev", self->node + strlen("/dev/vfio/"));
	ASSERT_EQ(0, read_file(path, dev, sizeof(dev)));
	ASSERT_EQ(2, sscanf(dev, "%u:%u", &major, &minor));
	ASSERT_EQ(0, stat(self->node, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(major, major(st.st_rdev));
	EXPECT_EQ(minor, minor(st.st_rdev));
}

/* One file of the group at a time. */
TEST_F(group, open_once)
{
	int fd;

	EXPECT_ERRNO(EBUSY, open(self->node, O_RDWR));
	close(self->groupfd);
	self->groupfd = -1;
	fd = open(self->node, O_RDWR);
	ASSERT_LE(0, fd);
	EXPECT_ERRNO(EBUSY, open(self->node, O_RDWR));
	self->groupfd = fd;
}

TEST_F(group, get_status)
{
	struct vfio_group_status status = { .argsz = sizeof(status) - 1 };
	__u32 flags;

	EXPECT_ERRNO(EINVAL, ioctl(self->groupfd, VFIO_GROUP_GET_STATUS, &status));
	EXPECT_ERRNO(EFAULT, ioctl(self->groupfd, VFIO_GROUP_GET_STATUS, NULL));
	ASSERT_EQ(0, get_status(self->groupfd, &flags));
	/* Only vfio-test has the edu's group: viable, no container yet. */
	EXPECT_EQ(VFIO_GROUP_FLAGS_VIABLE, flags);
	EXPECT_ERRNO(ENOTTY, ioctl(self->groupfd, VFIO_BASE, 0));
}

TEST_F(group, set_container_errors)
{
	int null = open("/dev/null", O_RDWR);
	int bad = -1;

	ASSERT_LE(0, null);
	EXPECT_ERRNO(EFAULT, ioctl(self->groupfd, VFIO_GROUP_SET_CONTAINER, NULL));
	EXPECT_ERRNO(EBADF, ioctl(self->groupfd, VFIO_GROUP_SET_CONTAINER, &bad));
	EXPECT_ERRNO(EBADFD, set_container(self->groupfd, null));
	EXPECT_ERRNO(EINVAL, ioctl(self->groupfd, VFIO_GROUP_UNSET_CONTAINER));
	/* Nothing to open a device with yet. */
	EXPECT_ERRNO(EINVAL, ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, self->bdf));
	close(null);
}

TEST_F(group, get_device_fd_errors)
{
	char *long_name;

	OPEN_CONTAINER();
	EXPECT_ERRNO(ENODEV, ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, "0000:ff:1f.7"));
	EXPECT_ERRNO(EFAULT, ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, NULL));
	long_name = malloc(2 * 4096);
	ASSERT_NE(NULL, long_name);
	memset(long_name, 'a', 2 * 4096 - 1);
	long_name[2 * 4096 - 1] = 0;
	EXPECT_ERRNO(EINVAL, ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, long_name));
	free(long_name);
	/* A second container is refused while the group has one. */
	EXPECT_ERRNO(EINVAL, set_container(self->groupfd, self->container));
}

/*
 * The container path end to end: a group in the container, type1v2, a mapping,
 * device files that open the device once, and the state after they close.
 */
TEST_F(group, container_end_to_end)
{
	__u32 flags, opens, closes, opens0, closes0;
	struct vfio_device_info info = { .argsz = sizeof(info) };
	int dev1, dev2;

	OPEN_CONTAINER();
	ASSERT_EQ(0, get_status(self->groupfd, &flags));
	EXPECT_EQ(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET, flags);
	EXPECT_EQ(1, ioctl(self->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(0, ioctl(self->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(0, container_map(self->container, self->buf, BUF_IOVA, BUF_SIZE, DMA_RW));

	dev1 = ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, self->bdf);
	ASSERT_LE(0, dev1);
	/* Close-on-exec, as upstream. */
	EXPECT_EQ(FD_CLOEXEC, fcntl(dev1, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(0, counts(dev1, &opens0, &closes0));
	EXPECT_EQ(opens0, closes0 + 1);
	ASSERT_EQ(0, ioctl(dev1, VFIO_DEVICE_GET_INFO, &info));
	/* Binding and attaching are the group's business, not the file's. */
	EXPECT_ERRNO(EINVAL, bind_iommufd(dev1, self->container, NULL));

	/* A second file of the device does not open it again. */
	dev2 = ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, self->bdf);
	ASSERT_LE(0, dev2);
	ASSERT_EQ(0, counts(dev2, &opens, &closes));
	EXPECT_EQ(opens0, opens);
	EXPECT_EQ(closes0, closes);
	/* The device counts once in its set, however many files it has. */
	EXPECT_EQ(1, ioctl(dev2, VFIO_TEST_DRIVER_SET_OPEN));

	if (!is_iommufd_container(self->container)) {
		/* VFIO's container cannot lose the group while a device is open. */
		EXPECT_ERRNO(EBUSY, ioctl(self->groupfd, VFIO_GROUP_UNSET_CONTAINER));
	}
	close(dev1);
	ASSERT_EQ(0, counts(dev2, &opens, &closes));
	EXPECT_EQ(closes0, closes);
	close(dev2);

	/* Opened again: one more open and, before it, one more close. */
	dev1 = ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, self->bdf);
	ASSERT_LE(0, dev1);
	ASSERT_EQ(0, counts(dev1, &opens, &closes));
	EXPECT_EQ(opens0 + 1, opens);
	EXPECT_EQ(closes0 + 1, closes);
	close(dev1);

	EXPECT_EQ(BUF_SIZE, container_unmap(self->container, BUF_IOVA, BUF_SIZE));
	ASSERT_EQ(0, ioctl(self->groupfd, VFIO_GROUP_UNSET_CONTAINER));
	ASSERT_EQ(0, get_status(self->groupfd, &flags));
	EXPECT_EQ(VFIO_GROUP_FLAGS_VIABLE, flags);
}

/* VFIO's own container goes back to no backend when its last group leaves. */
TEST_F(group, container_forgets_backend_without_groups)
{
	OPEN_CONTAINER();
	if (is_iommufd_container(self->container))
		SKIP(return, "iommufd's compat container keeps its IOAS");
	EXPECT_ERRNO(EINVAL, container_map(self->container, self->buf, BUF_IOVA, BUF_SIZE, DMA_RW));
	EXPECT_ERRNO(ENODEV, ioctl(self->container, VFIO_SET_IOMMU, 12345));
	ASSERT_EQ(0, ioctl(self->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	EXPECT_ERRNO(EINVAL, ioctl(self->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(0, container_map(self->container, self->buf, BUF_IOVA, BUF_SIZE, DMA_RW));
	ASSERT_EQ(0, ioctl(self->groupfd, VFIO_GROUP_UNSET_CONTAINER));
	EXPECT_ERRNO(EINVAL, container_map(self->container, self->buf, BUF_IOVA, BUF_SIZE, DMA_RW));
	EXPECT_ERRNO(EINVAL, ioctl(self->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	/* Back in: a fresh backend, without the old mapping. */
	ASSERT_EQ(0, set_container(self->groupfd, self->container));
	ASSERT_EQ(0, ioctl(self->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(0, container_map(self->container, self->buf, BUF_IOVA, BUF_SIZE, DMA_RW));
	EXPECT_EQ(BUF_SIZE, container_unmap(self->container, BUF_IOVA, BUF_SIZE));
}

/* A group set to an iommufd: the device binds to it and sits on its compat IOAS. */
TEST_F(group, iommufd)
{
	struct iommu_vfio_ioas vfio_ioas = {
		.size = sizeof(vfio_ioas),
		.op = IOMMU_VFIO_IOAS_GET,
	};
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOAS_MAP_FIXED_RW,
		.iova = BUF_IOVA,
		.length = BUF_SIZE,
	};
	int iommufd = open("/dev/iommu", O_RDWR);
	__u32 flags;
	int dev;

	if (iommufd < 0 && errno == ENOENT)
		SKIP(return, "no /dev/iommu (CONFIG_IOMMUFD)");
	ASSERT_LE(0, iommufd);
	EXPECT_ERRNO(ENODEV, ioctl(iommufd, IOMMU_VFIO_IOAS, &vfio_ioas));
	ASSERT_EQ(0, set_container(self->groupfd, iommufd));
	ASSERT_EQ(0, get_status(self->groupfd, &flags));
	EXPECT_EQ(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET, flags);
	/* Setting the group made the compat IOAS. */
	ASSERT_EQ(0, ioctl(iommufd, IOMMU_VFIO_IOAS, &vfio_ioas));
	map.ioas_id = vfio_ioas.ioas_id;
	map.user_va = (uintptr_t)self->buf;
	ASSERT_EQ(0, ioctl(iommufd, IOMMU_IOAS_MAP, &map));

	dev = ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, self->bdf);
	ASSERT_LE(0, dev);
	/* The device sits on the compat IOAS, so it cannot be destroyed. */
	EXPECT_ERRNO(EBUSY, destroy(iommufd, vfio_ioas.ioas_id));
	/* An iommufd lets the group go even with a device open, as upstream. */
	EXPECT_EQ(0, ioctl(self->groupfd, VFIO_GROUP_UNSET_CONTAINER));
	close(dev);
	EXPECT_EQ(0, destroy(iommufd, vfio_ioas.ioas_id));
	close(iommufd);
}

/* While a device of the group is bound through its cdev, the group cannot be opened. */
TEST_F(group, cdev_bound_blocks_group)
{
	int iommufd, devfd;

	if (!self->cdev[0])
		SKIP(return, "no device cdev (CONFIG_VFIO_DEVICE_CDEV)");
	close(self->groupfd);
	self->groupfd = -1;
	iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, iommufd);
	devfd = open(self->cdev, O_RDWR);
	ASSERT_LE(0, devfd);
	/* Open but unbound: the group is still free. */
	self->groupfd = open(self->node, O_RDWR);
	ASSERT_LE(0, self->groupfd);
	EXPECT_ERRNO(EBUSY, bind_iommufd(devfd, iommufd, NULL));
	close(self->groupfd);
	self->groupfd = -1;
	ASSERT_EQ(0, bind_iommufd(devfd, iommufd, NULL));
	EXPECT_ERRNO(EBUSY, open(self->node, O_RDWR));
	close(devfd);
	/* Unbound by the close: the group opens again. */
	self->groupfd = open(self->node, O_RDWR);
	EXPECT_LE(0, self->groupfd);
	close(iommufd);
}

/*
 * A device open through the group keeps the group busy for the cdev even after
 * the group's own descriptor is closed, in this process and in a child.
 */
TEST_F(group, group_device_blocks_cdev)
{
	int iommufd, devfd, dev;
	pid_t pid;
	int status;

	if (!self->cdev[0])
		SKIP(return, "no device cdev (CONFIG_VFIO_DEVICE_CDEV)");
	OPEN_CONTAINER();
	ASSERT_EQ(0, ioctl(self->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	dev = ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, self->bdf);
	ASSERT_LE(0, dev);
	close(self->groupfd);
	self->groupfd = -1;
	iommufd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, iommufd);
	devfd = open(self->cdev, O_RDWR);
	ASSERT_LE(0, devfd);
	EXPECT_ERRNO(EBUSY, bind_iommufd(devfd, iommufd, NULL));
	EXPECT_ERRNO(EBUSY, open(self->node, O_RDWR));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The child shares the device file: still busy either way. */
		int fd = open(self->node, O_RDWR);

		if (fd >= 0 || errno != EBUSY)
			_exit(1);
		if (!bind_iommufd(devfd, iommufd, NULL) || errno != EBUSY)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	close(dev);
	/* Nothing holds the group any more: the cdev binds. */
	EXPECT_EQ(0, bind_iommufd(devfd, iommufd, NULL));
	close(devfd);
	close(iommufd);
}

/*
 * A group descriptor another process takes (pidfd_getfd) is the same open
 * group: it works there, and the node stays busy while either holds it.
 */
TEST_F(group, fd_passing)
{
	int pidfd, status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		__u32 flags;
		int fd;

		pidfd = syscall(SYS_pidfd_open, getppid(), 0);
		if (pidfd < 0)
			_exit(10);
		fd = syscall(SYS_pidfd_getfd, pidfd, self->groupfd, 0);
		if (fd < 0)
			_exit(11);
		/* Only the copy is left in this process. */
		close(self->groupfd);
		if (get_status(fd, &flags) || flags != VFIO_GROUP_FLAGS_VIABLE)
			_exit(1);
		if (open(self->node, O_RDWR) >= 0 || errno != EBUSY)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	if (WEXITSTATUS(status) >= 10)
		SKIP(return, "no pidfd_getfd (%d)", WEXITSTATUS(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The child's copy is gone; ours still holds the group. */
	EXPECT_ERRNO(EBUSY, open(self->node, O_RDWR));
	close(self->groupfd);
	self->groupfd = open(self->node, O_RDWR);
	EXPECT_LE(0, self->groupfd);
}

/*
 * 1000 rounds of open group, set container, map, open device, close: nothing
 * left behind (the VM's kmemleak scan after the tests checks the memory).
 */
TEST_F_TIMEOUT(group, open_set_get_close_cycles, 600)
{
	__u32 opens0, closes0, opens, closes;
	int i, dev;

	if (access(CONTAINER, F_OK))
		SKIP(return, "no " CONTAINER);
	close(self->groupfd);
	self->groupfd = -1;
	for (i = 0; i < 1000; i++) {
		int groupfd = open(self->node, O_RDWR);
		int container = open(CONTAINER, O_RDWR);

		ASSERT_LE(0, groupfd);
		ASSERT_LE(0, container);
		ASSERT_EQ(0, set_container(groupfd, container));
		ASSERT_EQ(0, ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
		ASSERT_EQ(0, container_map(container, self->buf, BUF_IOVA, BUF_SIZE, DMA_RW));
		dev = ioctl(groupfd, VFIO_GROUP_GET_DEVICE_FD, self->bdf);
		ASSERT_LE(0, dev);
		if (i == 0)
			ASSERT_EQ(0, counts(dev, &opens0, &closes0));
		/* Closed in an order that leaves the container last. */
		close(groupfd);
		close(dev);
		close(container);
	}
	self->groupfd = open(self->node, O_RDWR);
	ASSERT_LE(0, self->groupfd);
	OPEN_CONTAINER();
	ASSERT_EQ(0, ioctl(self->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	dev = ioctl(self->groupfd, VFIO_GROUP_GET_DEVICE_FD, self->bdf);
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, counts(dev, &opens, &closes));
	EXPECT_EQ(opens0 + 1000, opens);
	EXPECT_EQ(closes0 + 1000, closes);
	close(dev);
}

TEST_HARNESS_MAIN
