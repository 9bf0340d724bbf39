// SPDX-License-Identifier: GPL-2.0-only
/*
 * SR-IOV through vfio-pci, on a PF bound to vfio-pci (QEMU 10's igb in the igb
 * VM of make test; every test skips where there is none): enabling VFs through
 * sriov_numvfs (only with vfio-pci's enable_sriov parameter), the VFs handed
 * to vfio-pci as they appear and removed when the PF is unbound, and the VF
 * token that ties a VF's user to the PF's user.
 *
 * Expectations follow upstream drivers/vfio/pci/vfio_pci.c and
 * vfio_pci_core.c: ENOENT from sriov_numvfs without the parameter (both
 * ways); VFIO_DEVICE_FEATURE_PCI_VF_TOKEN only SET, on a PF, ENOTTY on a VF;
 * a VF opens only with its PF's token (EACCES), a PF needs it too while a VF
 * is open and otherwise takes the token it is given; "BDF vf_token=UUID"
 * names for the group, EINVAL for a malformed or repeated option.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"

#include "vfio_edu.h"

#define ENABLE_SRIOV "/sys/module/vfio_pci/parameters/enable_sriov"
#define UUID_A "52ac9bff-3a88-4fbd-901a-0d767c3b6c97"
#define UUID_B "88594674-90a0-47a9-aea8-9d9b352ac08a"

/* The 16 bytes of a UUID's text form, in the order written. */
static void uuid_bytes(const char *text, __u8 *uuid)
{
	for (int i = 0, j = 0; i < 16; i++, j += 2) {
		if (text[j] == '-')
			j++;
		sscanf(text + j, "%2hhx", &uuid[i]);
	}
}

/* An SR-IOV PF bound to vfio-pci. */
static bool is_pf_in_vfio(const char *bdf)
{
	char path[512], val[16];

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/sriov_totalvfs", bdf);
	return !read_file(path, val, sizeof(val)) && atoi(val) > 0 &&
	       pci_bound_to(bdf, "vfio-pci");
}

static int set_numvfs(const char *pf, int n)
{
	char path[512], val[16];

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/sriov_numvfs", pf);
	snprintf(val, sizeof(val), "%d", n);
	return write_file(path, val);
}

/* The BDF of the PF's first VF into @bdf; false if it has none. */
static bool first_vf(const char *pf, char *bdf, size_t size)
{
	char path[512], link[512];
	ssize_t n;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/virtfn0", pf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	snprintf(bdf, size, "%s", strrchr(link, '/') + 1);
	return true;
}

/* A new file of @bdf's device cdev, not bound yet. */
static int open_cdev(const char *bdf)
{
	char name[32], node[64];

	if (!find_vfio_dev(bdf, name, sizeof(name)))
		return -1;
	snprintf(node, sizeof(node), "/dev/vfio/devices/%s", name);
	return open(node, O_RDWR);
}

/* Binds @devfd to @iommufd, with the token @uuid (text) unless it is NULL. */
static int bind_token(int devfd, int iommufd, const char *uuid)
{
	__u8 token[16];
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = iommufd,
	};

	if (uuid) {
		uuid_bytes(uuid, token);
		bind.flags = VFIO_DEVICE_BIND_FLAG_TOKEN;
		bind.token_uuid_ptr = (__u64)(uintptr_t)token;
	}
	return ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
}

/* VFIO_DEVICE_FEATURE_PCI_VF_TOKEN with @flags, @argsz and the token @uuid. */
static int vf_token_feature(int devfd, __u32 flags, __u32 argsz, const char *uuid)
{
	struct {
		struct vfio_device_feature feature;
		__u8 uuid[16];
	} arg = {
		.feature.argsz = argsz,
		.feature.flags = flags | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN,
	};

	uuid_bytes(uuid, arg.uuid);
	return ioctl(devfd, VFIO_DEVICE_FEATURE, &arg);
}

FIXTURE(sriov)
{
	char pf[64];
	char vf[64];
	char param[8];	/* enable_sriov as found, put back at teardown */
	int iommufd;
};

FIXTURE_SETUP(sriov)
{
	self->iommufd = -1;
	self->param[0] = 0;
	if (!find_pci(self->pf, sizeof(self->pf), is_pf_in_vfio))
		SKIP(return, "no SR-IOV PF bound to vfio-pci");
	if (read_file(ENABLE_SRIOV, self->param, sizeof(self->param)))
		SKIP(return, "no enable_sriov parameter (CONFIG_PCI_IOV)");
	ASSERT_EQ(0, write_file(ENABLE_SRIOV, "1"));
	ASSERT_EQ(0, set_numvfs(self->pf, 0));
	self->iommufd = open("/dev/iommu", O_RDWR);
}

FIXTURE_TEARDOWN(sriov)
{
	if (self->iommufd >= 0)
		close(self->iommufd);
	if (!self->param[0])
		return;
	write_file(ENABLE_SRIOV, "1");
	bind_driver(self->pf, "vfio-pci");
	set_numvfs(self->pf, 0);
	write_file(ENABLE_SRIOV, self->param[0] == 'Y' ? "1" : "0");
}

/* Enables one VF and finds it, bound to vfio-pci. */
static void enable_vf(struct __test_metadata *_metadata, FIXTURE_DATA(sriov) *self)
{
	char path[512], link[512];
	ssize_t n;

	ASSERT_EQ(0, set_numvfs(self->pf, 1));
	ASSERT_TRUE(first_vf(self->pf, self->vf, sizeof(self->vf)));
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver", self->vf);
	n = readlink(path, link, sizeof(link) - 1);
	ASSERT_LT(0, n);
	link[n] = 0;
	ASSERT_STREQ("vfio-pci", strrchr(link, '/') + 1);
}

/* The cdev tests need the cdev and /dev/iommu. */
#define NEED_CDEV()                                                           \
	do {                                                                  \
		char _name[32];                                               \
		if (self->iommufd < 0 ||                                      \
		    !find_vfio_dev(self->pf, _name, sizeof(_name)))           \
			SKIP(return, "no device cdev (CONFIG_VFIO_DEVICE_CDEV)"); \
	} while (0)

TEST_F(sriov, enable_needs_parameter)
{
	char path[512], val[64];

	ASSERT_EQ(0, write_file(ENABLE_SRIOV, "0"));
	EXPECT_EQ(-ENOENT, set_numvfs(self->pf, 1));
	ASSERT_EQ(0, write_file(ENABLE_SRIOV, "1"));
	enable_vf(_metadata, self);
	/* vfio-pci claimed it through its driver_override. */
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver_override", self->vf);
	ASSERT_EQ(0, read_file(path, val, sizeof(val)));
	EXPECT_STREQ("vfio-pci\n", val);
	/* Disabling needs the parameter too, as upstream. */
	ASSERT_EQ(0, write_file(ENABLE_SRIOV, "0"));
	EXPECT_EQ(-ENOENT, set_numvfs(self->pf, 0));
	ASSERT_EQ(0, write_file(ENABLE_SRIOV, "1"));
	ASSERT_EQ(0, set_numvfs(self->pf, 0));
	snprintf(path, sizeof(path), PCI_DEVICES "/%s", self->vf);
	EXPECT_NE(0, access(path, F_OK));
}

TEST_F(sriov, token_feature)
{
	const __u32 size = sizeof(struct vfio_device_feature) + 16;
	int pf, vf;

	NEED_CDEV();
	enable_vf(_metadata, self);
	pf = open_cdev(self->pf);
	ASSERT_LE(0, pf);
	ASSERT_EQ(0, bind_token(pf, self->iommufd, NULL));
	EXPECT_EQ(0, vf_token_feature(pf, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PROBE,
				      size, UUID_A));
	/* Never read back: it would tell the token of the one before. */
	EXPECT_ERRNO(EINVAL, vf_token_feature(pf, VFIO_DEVICE_FEATURE_GET, size, UUID_A));
	EXPECT_ERRNO(EINVAL, vf_token_feature(pf, VFIO_DEVICE_FEATURE_GET |
					      VFIO_DEVICE_FEATURE_PROBE, size, UUID_A));
	EXPECT_ERRNO(EINVAL, vf_token_feature(pf, VFIO_DEVICE_FEATURE_SET, size - 1, UUID_A));
	ASSERT_EQ(0, vf_token_feature(pf, VFIO_DEVICE_FEATURE_SET, size, UUID_B));
	/* The VF now opens with B only; it has no token of its own. */
	vf = open_cdev(self->vf);
	ASSERT_LE(0, vf);
	EXPECT_ERRNO(EACCES, bind_token(vf, self->iommufd, UUID_A));
	ASSERT_EQ(0, bind_token(vf, self->iommufd, UUID_B));
	EXPECT_ERRNO(ENOTTY, vf_token_feature(vf, VFIO_DEVICE_FEATURE_SET, size, UUID_A));
	close(vf);
	close(pf);
}

TEST_F(sriov, token_rules)
{
	int pf, vf, fd;

	NEED_CDEV();
	enable_vf(_metadata, self);
	/* No VF open: the PF takes the token it is given. */
	pf = open_cdev(self->pf);
	ASSERT_LE(0, pf);
	ASSERT_EQ(0, bind_token(pf, self->iommufd, UUID_A));
	close(pf);
	/* The token outlives the PF's user; the VF needs it. */
	vf = open_cdev(self->vf);
	ASSERT_LE(0, vf);
	EXPECT_ERRNO(EACCES, bind_token(vf, self->iommufd, NULL));
	EXPECT_ERRNO(EACCES, bind_token(vf, self->iommufd, UUID_B));
	ASSERT_EQ(0, bind_token(vf, self->iommufd, UUID_A));
	/* With the VF open, the PF needs the token too, and keeps it. */
	pf = open_cdev(self->pf);
	ASSERT_LE(0, pf);
	EXPECT_ERRNO(EACCES, bind_token(pf, self->iommufd, NULL));
	EXPECT_ERRNO(EACCES, bind_token(pf, self->iommufd, UUID_B));
	ASSERT_EQ(0, bind_token(pf, self->iommufd, UUID_A));
	close(pf);
	close(vf);
	/* No VF open again: the PF sets B, which the VF then needs. */
	pf = open_cdev(self->pf);
	ASSERT_LE(0, pf);
	ASSERT_EQ(0, bind_token(pf, self->iommufd, UUID_B));
	close(pf);
	fd = open_cdev(self->vf);
	ASSERT_LE(0, fd);
	EXPECT_ERRNO(EACCES, bind_token(fd, self->iommufd, UUID_A));
	EXPECT_EQ(0, bind_token(fd, self->iommufd, UUID_B));
	close(fd);
}

/* Opens @bdf's group into the container @container; returns the group fd. */
static int group_in(struct __test_metadata *_metadata, const char *bdf, int container)
{
	char node[64];
	int id, fd;

	if (!find_iommu_group(bdf, &id))
		return -1;
	snprintf(node, sizeof(node), "/dev/vfio/%d", id);
	fd = open(node, O_RDWR);
	if (fd >= 0 && ioctl(fd, VFIO_GROUP_SET_CONTAINER, &container)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* VFIO_GROUP_GET_DEVICE_FD of "@bdf@options"; the device file is closed. */
static int get_device(int group, const char *bdf, const char *options)
{
	char name[256];
	int fd;

	snprintf(name, sizeof(name), "%s%s", bdf, options);
	fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, name);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

TEST_F(sriov, group_names)
{
	int container, pf, vf;

	if (access("/dev/vfio/vfio", F_OK))
		SKIP(return, "no container (CONFIG_VFIO_GROUP)");
	enable_vf(_metadata, self);
	container = open("/dev/vfio/vfio", O_RDWR);
	ASSERT_LE(0, container);
	pf = group_in(_metadata, self->pf, container);
	ASSERT_LE(0, pf);
	vf = group_in(_metadata, self->vf, container);
	if (vf < 0)
		SKIP(return, "the VF shares its PF's IOMMU group");
	ASSERT_EQ(0, ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	/* Options after the name: one vf_token, well formed, and spaces. */
	EXPECT_ERRNO(EINVAL, get_device(pf, self->pf, " vf_token=" UUID_A " vf_token=" UUID_A));
	EXPECT_ERRNO(EINVAL, get_device(pf, self->pf, " vf_token=52ac9bff-3a88"));
	EXPECT_ERRNO(EINVAL, get_device(pf, self->pf, " vf_token=" UUID_A "0"));
	EXPECT_ERRNO(EINVAL, get_device(pf, self->pf, " vf_tokens=" UUID_A));
	EXPECT_ERRNO(ENODEV, get_device(pf, self->pf, "0"));
	ASSERT_EQ(0, get_device(pf, self->pf, "  vf_token=" UUID_A "  "));
	/* The VF, with the token the PF was opened with. */
	EXPECT_ERRNO(EACCES, get_device(vf, self->vf, ""));
	EXPECT_ERRNO(EACCES, get_device(vf, self->vf, " vf_token=" UUID_B));
	ASSERT_EQ(0, get_device(vf, self->vf, " vf_token=" UUID_A));
	close(vf);
	close(pf);
	close(container);
}

TEST_F(sriov, unbinding_pf_removes_vfs)
{
	char path[512], val[16];

	enable_vf(_metadata, self);
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver/unbind", self->pf);
	ASSERT_EQ(0, write_file(path, self->pf));
	snprintf(path, sizeof(path), PCI_DEVICES "/%s", self->vf);
	EXPECT_NE(0, access(path, F_OK));
	ASSERT_EQ(0, bind_driver(self->pf, "vfio-pci"));
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/sriov_numvfs", self->pf);
	ASSERT_EQ(0, read_file(path, val, sizeof(val)));
	EXPECT_EQ(0, atoi(val));
}

TEST_HARNESS_MAIN
