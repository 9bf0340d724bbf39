// SPDX-License-Identifier: GPL-2.0-only
/*
 * /dev/vfio/vfio container without any group attached.
 *
 * Expectations follow upstream drivers/vfio/container.c (the legacy VFIO
 * container, CONFIG_VFIO_CONTAINER, not iommufd's compat container):
 * vfio_fops_unl_ioctl() answers VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION
 * and VFIO_SET_IOMMU itself and passes every other command to the IOMMU
 * backend, of which there is none until SET_IOMMU succeeds, so they are all
 * EINVAL. SET_IOMMU needs a group in the container, so it is EINVAL here.
 *
 * The file skips when /dev/vfio/vfio does not exist.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "kselftest_harness.h"

#define VFIO_CONTAINER_DEV "/dev/vfio/vfio"

#ifndef MISC_MAJOR
#define MISC_MAJOR 10
#endif
#ifndef VFIO_MINOR
#define VFIO_MINOR 196
#endif

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#define EXPECT_ERRNO(expected_errno, cmd)                 \
	({                                                \
		ASSERT_EQ(-1, cmd);                       \
		EXPECT_EQ(expected_errno, errno);         \
	})

/* ioctl() returning -errno on failure, so results can be compared at once */
static long xioctl(int fd, unsigned int cmd, unsigned long arg)
{
	int ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

#define SKIP_IF_NO_VFIO_DEV()                                                \
	do {                                                                 \
		if (access(VFIO_CONTAINER_DEV, F_OK))                        \
			SKIP(return, VFIO_CONTAINER_DEV " does not exist (%s)", \
			     strerror(errno));                               \
	} while (0)

/* Every extension number defined by the 7.3 uapi */
static const unsigned long known_extensions[] = {
	VFIO_TYPE1_IOMMU,
	VFIO_SPAPR_TCE_IOMMU,
	VFIO_TYPE1v2_IOMMU,
	VFIO_DMA_CC_IOMMU,
	VFIO_EEH,
	VFIO_SPAPR_TCE_v2_IOMMU,
	VFIO_NOIOMMU_IOMMU,
	VFIO_UNMAP_ALL,
	VFIO_UPDATE_VADDR,
};

/* Numbers no backend recognises; CHECK_EXTENSION must say 0 */
static const unsigned long unknown_extensions[] = {
	0,
	6, /* __VFIO_RESERVED_TYPE1_NESTING_IOMMU */
	11,
	0x1000,
	0x7fffffffUL,
	0xffffffffUL,
#if __SIZEOF_LONG__ == 8
	/* The argument is an unsigned long: high bits are not dropped */
	(1UL << 32) | VFIO_TYPE1_IOMMU,
	(1UL << 32) | VFIO_TYPE1v2_IOMMU,
	(1UL << 63) | VFIO_TYPE1v2_IOMMU,
#endif
	~0UL,
};

/* IOMMU types SET_IOMMU may be asked for */
static const unsigned long iommu_types[] = {
	VFIO_TYPE1_IOMMU,
	VFIO_SPAPR_TCE_IOMMU,
	VFIO_TYPE1v2_IOMMU,
	VFIO_SPAPR_TCE_v2_IOMMU,
	VFIO_NOIOMMU_IOMMU,
	0,
	6,
	0x1000,
	~0UL,
};

/*
 * Commands the container does not handle itself: type1/spapr backend
 * commands, group and device commands, iommufd commands, and made-up ones.
 */
static const unsigned int passthrough_cmds[] = {
	VFIO_IOMMU_GET_INFO,
	VFIO_IOMMU_MAP_DMA,
	VFIO_IOMMU_UNMAP_DMA,
	VFIO_IOMMU_DIRTY_PAGES,
	VFIO_IOMMU_ENABLE,
	VFIO_IOMMU_DISABLE,
	VFIO_IOMMU_SPAPR_TCE_GET_INFO,
	VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
	VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY,
	VFIO_IOMMU_SPAPR_TCE_CREATE,
	VFIO_IOMMU_SPAPR_TCE_REMOVE,
	VFIO_EEH_PE_OP,
	VFIO_GROUP_GET_STATUS,
	VFIO_GROUP_SET_CONTAINER,
	VFIO_GROUP_UNSET_CONTAINER,
	VFIO_GROUP_GET_DEVICE_FD,
	VFIO_DEVICE_GET_INFO,
	VFIO_DEVICE_RESET,
	_IO(VFIO_TYPE, VFIO_BASE - 1),	   /* nr 99, below VFIO_BASE */
	_IO(VFIO_TYPE, 0x7f),
	_IO(VFIO_TYPE, 0x80),		   /* IOMMU_DESTROY */
	_IO(VFIO_TYPE, 0x81),		   /* IOMMU_IOAS_ALLOC */
	_IO(VFIO_TYPE, 0xff),
	_IOW(VFIO_TYPE, VFIO_BASE + 0, int), /* GET_API_VERSION misencoded */
	_IOWR(VFIO_TYPE, VFIO_BASE + 1, int), /* CHECK_EXTENSION misencoded */
	_IOW(VFIO_TYPE, VFIO_BASE + 2, int), /* SET_IOMMU misencoded */
	_IO('x', 1),
	_IO('x', VFIO_BASE),
};

FIXTURE(vfio_container)
{
	int fd;
};

FIXTURE_SETUP(vfio_container)
{
	SKIP_IF_NO_VFIO_DEV();
	self->fd = open(VFIO_CONTAINER_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(vfio_container)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* ------------------------------------------------------------------------
 * The device node
 */

TEST(dev_vfio_vfio_is_char_device_mode_0666)
{
	struct stat st;

	SKIP_IF_NO_VFIO_DEV();
	ASSERT_EQ(0, stat(VFIO_CONTAINER_DEV, &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	/* miscdevice vfio_dev.mode = S_IRUGO | S_IWUGO */
	EXPECT_EQ(0666, st.st_mode & 07777);
}

TEST(dev_vfio_vfio_is_misc_minor_196)
{
	struct stat st;

	SKIP_IF_NO_VFIO_DEV();
	ASSERT_EQ(0, stat(VFIO_CONTAINER_DEV, &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	/* vfio_dev.minor = VFIO_MINOR on the misc major */
	EXPECT_EQ(MISC_MAJOR, major(st.st_rdev));
	EXPECT_EQ(VFIO_MINOR, minor(st.st_rdev));
}

TEST(open_close_repeatedly)
{
	int i;

	SKIP_IF_NO_VFIO_DEV();
	for (i = 0; i != 200; i++) {
		int fd = open(VFIO_CONTAINER_DEV, O_RDWR);

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, close(fd));
	}
}

TEST(open_many_containers_at_once)
{
	int fds[64];
	int i;

	SKIP_IF_NO_VFIO_DEV();
	for (i = 0; i != 64; i++) {
		fds[i] = open(VFIO_CONTAINER_DEV, O_RDWR);
		ASSERT_LE(0, fds[i]);
	}
	for (i = 0; i != 64; i++)
		ASSERT_EQ(VFIO_API_VERSION,
			  ioctl(fds[i], VFIO_GET_API_VERSION));
	for (i = 0; i != 64; i++)
		ASSERT_EQ(0, close(fds[i]));
}

TEST_F(vfio_container, simple_close)
{
}

/* ------------------------------------------------------------------------
 * VFIO_GET_API_VERSION
 */

TEST_F(vfio_container, get_api_version)
{
	ASSERT_EQ(VFIO_API_VERSION, ioctl(self->fd, VFIO_GET_API_VERSION));
	/* Stable across calls */
	ASSERT_EQ(VFIO_API_VERSION, ioctl(self->fd, VFIO_GET_API_VERSION));
}

TEST_F(vfio_container, get_api_version_ignores_argument)
{
	char *p = mmap(NULL, getpagesize(), PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(VFIO_API_VERSION,
		  ioctl(self->fd, VFIO_GET_API_VERSION, NULL));
	EXPECT_EQ(VFIO_API_VERSION,
		  ioctl(self->fd, VFIO_GET_API_VERSION, p));
	EXPECT_EQ(VFIO_API_VERSION,
		  ioctl(self->fd, VFIO_GET_API_VERSION, 0xdeadbeefUL));
	EXPECT_EQ(VFIO_API_VERSION,
		  ioctl(self->fd, VFIO_GET_API_VERSION, ~0UL));
	munmap(p, getpagesize());
}

/* ------------------------------------------------------------------------
 * VFIO_CHECK_EXTENSION
 */

TEST_F(vfio_container, check_extension_known_is_0_or_1_and_stable)
{
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(known_extensions); i++) {
		long r1 = xioctl(self->fd, VFIO_CHECK_EXTENSION,
				 known_extensions[i]);
		long r2 = xioctl(self->fd, VFIO_CHECK_EXTENSION,
				 known_extensions[i]);

		EXPECT_LE(0, r1)
			TH_LOG("extension %lu: %s", known_extensions[i],
			       strerror(-r1));
		EXPECT_GE(1, r1) TH_LOG("extension %lu", known_extensions[i]);
		EXPECT_EQ(r1, r2) TH_LOG("extension %lu", known_extensions[i]);
		TH_LOG("VFIO_CHECK_EXTENSION(%lu) = %ld", known_extensions[i],
		       r1);
	}
}

TEST_F(vfio_container, check_extension_same_on_every_container)
{
	int fd2 = open(VFIO_CONTAINER_DEV, O_RDWR);
	unsigned int i;

	ASSERT_LE(0, fd2);
	for (i = 0; i != ARRAY_SIZE(known_extensions); i++)
		EXPECT_EQ(ioctl(self->fd, VFIO_CHECK_EXTENSION,
				known_extensions[i]),
			  ioctl(fd2, VFIO_CHECK_EXTENSION,
				known_extensions[i]))
			TH_LOG("extension %lu", known_extensions[i]);
	ASSERT_EQ(0, close(fd2));
}

TEST_F(vfio_container, check_extension_unknown_is_0)
{
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(unknown_extensions); i++)
		EXPECT_EQ(0, xioctl(self->fd, VFIO_CHECK_EXTENSION,
				    unknown_extensions[i]))
			TH_LOG("extension %#lx", unknown_extensions[i]);
}

TEST_F(vfio_container, check_extension_type1_variants_agree)
{
	/*
	 * No grouping restricts the drivers here, so any backend that offers
	 * one of the type1 variants offers both (vfio_iommu_type1 answers 1
	 * for TYPE1, TYPE1v2 and UNMAP_ALL alike).
	 */
	int t1 = ioctl(self->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU);
	int t1v2 = ioctl(self->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
	int unmap_all = ioctl(self->fd, VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL);

	ASSERT_LE(0, t1);
	EXPECT_EQ(t1, t1v2);
	EXPECT_EQ(t1, unmap_all);
}

/* ------------------------------------------------------------------------
 * VFIO_SET_IOMMU without a group
 */

TEST_F(vfio_container, set_iommu_without_group_is_einval)
{
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(iommu_types); i++)
		EXPECT_ERRNO(EINVAL, ioctl(self->fd, VFIO_SET_IOMMU,
					   iommu_types[i]));
	/* Repeating it does not change the answer */
	for (i = 0; i != ARRAY_SIZE(iommu_types); i++)
		EXPECT_ERRNO(EINVAL, ioctl(self->fd, VFIO_SET_IOMMU,
					   iommu_types[i]));
}

TEST_F(vfio_container, failed_set_iommu_leaves_container_unchanged)
{
	int before[ARRAY_SIZE(known_extensions)];
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(known_extensions); i++)
		before[i] = ioctl(self->fd, VFIO_CHECK_EXTENSION,
				  known_extensions[i]);
	EXPECT_ERRNO(EINVAL,
		     ioctl(self->fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU));

	ASSERT_EQ(VFIO_API_VERSION, ioctl(self->fd, VFIO_GET_API_VERSION));
	for (i = 0; i != ARRAY_SIZE(known_extensions); i++)
		EXPECT_EQ(before[i], ioctl(self->fd, VFIO_CHECK_EXTENSION,
					   known_extensions[i]))
			TH_LOG("extension %lu", known_extensions[i]);
	/* Still no backend: pass-through commands are still EINVAL */
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, VFIO_IOMMU_GET_INFO, NULL));
}

/* ------------------------------------------------------------------------
 * Everything else without a backend
 */

TEST_F(vfio_container, unknown_ioctl_without_backend_is_einval)
{
	struct vfio_iommu_type1_info info = { .argsz = sizeof(info) };
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(passthrough_cmds); i++) {
		memset(&info, 0, sizeof(info));
		info.argsz = sizeof(info);
		EXPECT_EQ(-EINVAL, xioctl(self->fd, passthrough_cmds[i],
					  (unsigned long)&info))
			TH_LOG("cmd %#x", passthrough_cmds[i]);
		/* Nothing was written back */
		EXPECT_EQ(0, info.flags) TH_LOG("cmd %#x", passthrough_cmds[i]);
	}
}

TEST_F(vfio_container, unknown_ioctl_without_backend_ignores_bad_pointer)
{
	char *p = mmap(NULL, getpagesize(), PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned int i;

	ASSERT_NE(MAP_FAILED, p);
	/* With no backend the argument is never looked at: EINVAL, not EFAULT */
	for (i = 0; i != ARRAY_SIZE(passthrough_cmds); i++) {
		EXPECT_EQ(-EINVAL, xioctl(self->fd, passthrough_cmds[i], 0))
			TH_LOG("cmd %#x", passthrough_cmds[i]);
		EXPECT_EQ(-EINVAL, xioctl(self->fd, passthrough_cmds[i],
					  (unsigned long)p))
			TH_LOG("cmd %#x", passthrough_cmds[i]);
	}
	munmap(p, getpagesize());
}

TEST_F(vfio_container, containers_are_independent)
{
	int fd2 = open(VFIO_CONTAINER_DEV, O_RDWR);

	ASSERT_LE(0, fd2);
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	/* The second container works after the first one is gone */
	ASSERT_EQ(VFIO_API_VERSION, ioctl(fd2, VFIO_GET_API_VERSION));
	EXPECT_ERRNO(EINVAL, ioctl(fd2, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	EXPECT_ERRNO(EINVAL, ioctl(fd2, VFIO_IOMMU_GET_INFO, NULL));
	ASSERT_EQ(0, close(fd2));
}

TEST_HARNESS_MAIN
