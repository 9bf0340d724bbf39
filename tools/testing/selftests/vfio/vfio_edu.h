/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the VFIO selftests share: finding QEMU's edu device (1234:11e8),
 * handing it to the vfio-test driver (CONFIG_VFIO_TEST_DRIVER) through
 * driver_override, finding its VFIO device and group, and small wrappers of
 * the ioctls they use.  Include after kselftest_harness.h.
 */
#ifndef VFIO_EDU_H
#define VFIO_EDU_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#define PCI_DEVICES "/sys/bus/pci/devices"
#define TEST_DRIVER "/sys/bus/pci/drivers/vfio-test"

/* The vfio-test driver's private ioctl: open_device and close_device counts. */
#define VFIO_TEST_DRIVER_COUNTS _IO(VFIO_TYPE, VFIO_BASE + 100)
/* And how many devices of the device's set are open (all its devices share one). */
#define VFIO_TEST_DRIVER_SET_OPEN _IO(VFIO_TYPE, VFIO_BASE + 101)

#define EXPECT_ERRNO(expected_errno, cmd)         \
	({                                        \
		ASSERT_EQ(-1, cmd);               \
		EXPECT_EQ(expected_errno, errno); \
	})

static inline int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

static inline int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

/* The BDF of the edu device into @bdf; false if there is none. */
static inline bool find_edu(char *bdf, size_t size)
{
	DIR *dir = opendir(PCI_DEVICES);
	struct dirent *d;
	bool found = false;

	if (!dir)
		return false;
	while (!found && (d = readdir(dir))) {
		char path[512], vendor[16], device[16];

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PCI_DEVICES "/%s/vendor", d->d_name);
		if (read_file(path, vendor, sizeof(vendor)))
			continue;
		snprintf(path, sizeof(path), PCI_DEVICES "/%s/device", d->d_name);
		if (read_file(path, device, sizeof(device)))
			continue;
		if (!strncmp(vendor, "0x1234", 6) && !strncmp(device, "0x11e8", 6)) {
			snprintf(bdf, size, "%s", d->d_name);
			found = true;
		}
	}
	closedir(dir);
	return found;
}

/* Hands @bdf to vfio-test (if it is not there yet). */
/*
 * Binds @bdf to the PCI driver @driver through driver_override, unbinding it
 * from any other driver first.
 */
static inline int bind_driver(const char *bdf, const char *driver)
{
	char path[512];
	int ret;

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/%s", driver, bdf);
	if (!access(path, F_OK))
		return 0;
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver/unbind", bdf);
	if (!access(path, F_OK)) {
		ret = write_file(path, bdf);
		if (ret)
			return ret;
	}
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver_override", bdf);
	ret = write_file(path, driver);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/bind", driver);
	return write_file(path, bdf);
}

static inline int bind_test_driver(const char *bdf)
{
	return bind_driver(bdf, "vfio-test");
}

/* The name vfioN of the VFIO device of @bdf, from its vfio-dev directory. */
static inline bool find_vfio_dev(const char *bdf, char *name, size_t size)
{
	char path[512];
	struct dirent *d;
	bool found = false;
	DIR *dir;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/vfio-dev", bdf);
	dir = opendir(path);
	if (!dir)
		return false;
	while (!found && (d = readdir(dir))) {
		if (!strncmp(d->d_name, "vfio", 4)) {
			snprintf(name, size, "%s", d->d_name);
			found = true;
		}
	}
	closedir(dir);
	return found;
}

static inline int bind_iommufd(int devfd, int iommufd, __u32 *devid)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = iommufd,
	};
	int ret = ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind);

	if (!ret && devid)
		*devid = bind.out_devid;
	return ret;
}

static inline int attach_pt(int devfd, __u32 *pt_id)
{
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = *pt_id,
	};
	int ret = ioctl(devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);

	if (!ret)
		*pt_id = attach.pt_id;
	return ret;
}

static inline int detach_pt(int devfd)
{
	struct vfio_device_detach_iommufd_pt detach = {
		.argsz = sizeof(detach),
	};

	return ioctl(devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach);
}

static inline int ioas_alloc(int iommufd, __u32 *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int ret = ioctl(iommufd, IOMMU_IOAS_ALLOC, &cmd);

	*id = cmd.out_ioas_id;
	return ret;
}

static inline int destroy(int iommufd, __u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(iommufd, IOMMU_DESTROY, &cmd);
}

static inline int counts(int devfd, __u32 *opens, __u32 *closes)
{
	__u32 c[2] = {};
	int ret = ioctl(devfd, VFIO_TEST_DRIVER_COUNTS, c);

	*opens = c[0];
	*closes = c[1];
	return ret;
}

/* The number of @bdf's IOMMU group into @id; false if it has none. */
static inline bool find_iommu_group(const char *bdf, int *id)
{
	char path[512], link[512];
	ssize_t n;
	char *slash;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	slash = strrchr(link, '/');
	return slash && sscanf(slash + 1, "%d", id) == 1;
}

#endif /* VFIO_EDU_H */
