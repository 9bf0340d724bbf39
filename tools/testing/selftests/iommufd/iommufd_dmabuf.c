// SPDX-License-Identifier: GPL-2.0-only
/*
 * IOMMU_IOAS_MAP_FILE of a dma-buf, with the test ABI's exporter
 * (IOMMU_TEST_OP_DMABUF_GET/REVOKE, CONFIG_IOMMUFD_TEST): what the kernel's
 * own selftests (iommufd_ioas.*.dmabuf_simple/dmabuf_revoke) leave out.
 * Every expectation is upstream 7.3 behaviour (pages.c, io_pagetable.c,
 * selftest.c):
 *
 *  - The test exporter gives page-rounded buffers of 1 to 512 pages and
 *    EINVAL otherwise; REVOKE of a file that is not one of its buffers is
 *    EINVAL (not a dma-buf) or EBADF.
 *  - A map must lie inside the buffer (EINVAL); while the buffer is revoked
 *    new maps fail with ENODEV, and a buffer restored later maps again, but
 *    areas made before the revocation stay empty until unmapped.
 *  - Areas over a dma-buf live in domains attached before or after the map,
 *    survive revocation, domain detach and the close of the dma-buf fd, and
 *    unmap whole; IOAS_COPY shares them with another IOAS.
 *  - An emulated device can neither pin nor read or write them (EINVAL),
 *    and IOMMU_IOAS_CHANGE_PROCESS refuses an IOAS holding one (EINVAL).
 *
 * The file skips when /dev/iommu or IOMMU_TEST_CMD does not exist.
 */
#include "iommufd_test_utils.h"

#define BUF_PAGES 4

/* IOMMU_TEST_OP_DMABUF_GET: the new fd, or -1 with errno */
static int dmabuf_get(int fd, __u32 length)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_DMABUF_GET,
		.dmabuf_get = { .length = length, .open_flags = O_CLOEXEC },
	};

	return _test_cmd(fd, &cmd);
}

/* IOMMU_TEST_OP_DMABUF_REVOKE */
static int dmabuf_revoke(int fd, int dfd, bool revoked)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_DMABUF_REVOKE,
		.dmabuf_revoke = { .dmabuf_fd = dfd, .revoked = revoked },
	};

	return _test_cmd(fd, &cmd);
}

/* IOMMU_IOAS_MAP_FILE, at *@iova when @flags has FIXED */
static int map_file(int fd, __u32 ioas_id, __u32 flags, int mfd, __u64 start,
		    __u64 length, __u64 *iova)
{
	struct iommu_ioas_map_file cmd = {
		.size = sizeof(cmd),
		.flags = flags | RW,
		.ioas_id = ioas_id,
		.fd = mfd,
		.start = start,
		.length = length,
		.iova = *iova,
	};
	int ret;

	ret = ioctl(fd, IOMMU_IOAS_MAP_FILE, &cmd);
	if (!ret)
		*iova = cmd.iova;
	return ret;
}

/* IOMMU_TEST_OP_CREATE_ACCESS on @ioas_id, pinning; the access fd */
static int access_create(int fd, __u32 ioas_id, int *access_fd)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_CREATE_ACCESS,
		.id = ioas_id,
		.create_access = {
			.flags = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
		},
	};
	int ret;

	ret = _test_cmd(fd, &cmd);
	if (!ret)
		*access_fd = cmd.create_access.out_access_fd;
	return ret;
}

FIXTURE(dmabuf)
{
	int fd;
	__u32 ioas_id;
	int dfd;
	size_t len;
};

FIXTURE_SETUP(dmabuf)
{
	self->fd = -1;
	self->dfd = -1;
	SKIP_IF_NO_IOMMU_DEV();
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	SKIP_IF_NO_TEST_CMD(self->fd);
	self->len = BUF_PAGES * page_size;
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
	self->dfd = dmabuf_get(self->fd, self->len);
	ASSERT_LE(0, self->dfd);
}

FIXTURE_TEARDOWN(dmabuf)
{
	if (self->dfd >= 0)
		close(self->dfd);
	if (self->fd >= 0)
		close(self->fd);
}

/* The exporter's sizes, and REVOKE of other files */
TEST_F(dmabuf, get_and_revoke_args)
{
	int memfd;
	int dfd;

	EXPECT_ERRNO(EINVAL, dmabuf_get(self->fd, 0));
	EXPECT_ERRNO(EINVAL, dmabuf_get(self->fd, 512 * page_size + 1));
	dfd = dmabuf_get(self->fd, 512 * page_size);
	ASSERT_LE(0, dfd);
	close(dfd);
	/* Rounded up to a page */
	dfd = dmabuf_get(self->fd, 1);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(page_size, lseek(dfd, 0, SEEK_END));
	close(dfd);

	memfd = memfd_create("notdmabuf", 0);
	ASSERT_LE(0, memfd);
	EXPECT_ERRNO(EINVAL, dmabuf_revoke(self->fd, memfd, true));
	close(memfd);
	EXPECT_ERRNO(EBADF, dmabuf_revoke(self->fd, -1, true));
	/* Revoking twice, or restoring a live buffer, is fine */
	ASSERT_EQ(0, dmabuf_revoke(self->fd, self->dfd, false));
	ASSERT_EQ(0, dmabuf_revoke(self->fd, self->dfd, true));
	ASSERT_EQ(0, dmabuf_revoke(self->fd, self->dfd, true));
}

/* Ranges inside the buffer map, others do not */
TEST_F(dmabuf, map_bounds)
{
	__u64 iova = 0;

	EXPECT_ERRNO(EINVAL, map_file(self->fd, self->ioas_id, 0, self->dfd,
				      page_size, self->len, &iova));
	EXPECT_ERRNO(EOVERFLOW, map_file(self->fd, self->ioas_id, 0,
					 self->dfd, UINT64_MAX, 2, &iova));
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, 0, self->dfd,
			      page_size, self->len - page_size, &iova));
	/* The IOVA is aligned like the offset in the buffer */
	EXPECT_EQ(0, iova % page_size);
	/* Without a domain, a sub-page offset maps too */
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, 0, self->dfd, 16, 100,
			      &iova));
	EXPECT_EQ(16, iova % page_size);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id,
			 self->len - page_size + 100);
}

/* Revoked: new maps fail, old areas stay and unmap; restored: maps again */
TEST_F(dmabuf, revoke_with_domains)
{
	__u32 stdev_id, hwpt_id, stdev2_id;
	__u64 iova = MOCK_IOVA;
	__u64 iova2 = 0;

	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &stdev_id,
				  &hwpt_id, NULL));
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, FIXED, self->dfd, 0,
			      self->len, &iova));
	ASSERT_EQ(0, dmabuf_revoke(self->fd, self->dfd, true));
	EXPECT_ERRNO(ENODEV, map_file(self->fd, self->ioas_id, 0, self->dfd,
				      0, self->len, &iova2));
	/* A domain attached now gets the revoked area, and goes again */
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &stdev2_id, NULL,
				  NULL));
	ASSERT_DESTROY(self->fd, stdev2_id);

	ASSERT_EQ(0, dmabuf_revoke(self->fd, self->dfd, false));
	iova2 = MOCK_IOVA + 16 * self->len;
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, FIXED, self->dfd, 0,
			      self->len, &iova2));
	/* Revoking again empties the new area too */
	ASSERT_EQ(0, dmabuf_revoke(self->fd, self->dfd, true));
	ASSERT_UNMAP(self->fd, self->ioas_id, iova, self->len, self->len);
	ASSERT_DESTROY(self->fd, stdev_id);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, self->len);
}

/* The area holds the buffer: closing its fd changes nothing */
TEST_F(dmabuf, close_fd_while_mapped)
{
	__u32 stdev_id;
	__u64 iova = MOCK_IOVA;

	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, FIXED, self->dfd, 0,
			      self->len, &iova));
	close(self->dfd);
	self->dfd = -1;
	/* Filled into a domain attached after the close */
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &stdev_id, NULL,
				  NULL));
	ASSERT_DESTROY(self->fd, stdev_id);
	ASSERT_UNMAP(self->fd, self->ioas_id, iova, self->len, self->len);
}

/* IOAS_COPY shares the area; both copies unmap on their own */
TEST_F(dmabuf, copy_to_another_ioas)
{
	struct iommu_ioas_copy copy = {
		.size = sizeof(copy),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | RW,
		.src_iova = MOCK_IOVA,
		.dst_iova = MOCK_IOVA,
	};
	__u32 stdev_id, stdev2_id;
	__u64 iova = MOCK_IOVA;
	__u32 ioas2;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &ioas2));
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &stdev_id, NULL,
				  NULL));
	ASSERT_EQ(0, _mock_domain(self->fd, ioas2, &stdev2_id, NULL, NULL));
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, FIXED, self->dfd, 0,
			      self->len, &iova));
	copy.src_ioas_id = self->ioas_id;
	copy.dst_ioas_id = ioas2;
	copy.length = self->len;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_COPY, &copy));
	ASSERT_UNMAP(self->fd, self->ioas_id, iova, self->len, self->len);
	/* The copy outlives the source area, and a revocation */
	ASSERT_EQ(0, dmabuf_revoke(self->fd, self->dfd, true));
	ASSERT_DESTROY(self->fd, stdev2_id);
	ASSERT_UNMAP(self->fd, ioas2, MOCK_IOVA, self->len, self->len);
	ASSERT_DESTROY(self->fd, stdev_id);
}

/* Emulated devices cannot reach a dma-buf; CHANGE_PROCESS refuses it */
TEST_F(dmabuf, no_access_no_change_process)
{
	struct iommu_ioas_change_process chg = { .size = sizeof(chg) };
	char data[64] = {};
	struct iommu_test_cmd pin = {
		.op = IOMMU_TEST_OP_ACCESS_PAGES,
		.access_pages = {
			.flags = MOCK_FLAGS_ACCESS_WRITE,
			.iova = MOCK_IOVA,
			.length = page_size,
			.uptr = (uintptr_t)data,
		},
	};
	struct iommu_test_cmd rw = {
		.op = IOMMU_TEST_OP_ACCESS_RW,
		.access_rw = {
			.iova = MOCK_IOVA,
			.length = sizeof(data),
			.uptr = (uintptr_t)data,
		},
	};
	__u64 iova = MOCK_IOVA;
	int access_fd;

	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, FIXED, self->dfd, 0,
			      self->len, &iova));
	ASSERT_EQ(0, access_create(self->fd, self->ioas_id, &access_fd));
	pin.id = access_fd;
	rw.id = access_fd;
	EXPECT_ERRNO(EINVAL, _test_cmd(self->fd, &pin));
	pin.access_pages.flags = 0;
	EXPECT_ERRNO(EINVAL, _test_cmd(self->fd, &pin));
	EXPECT_ERRNO(EINVAL, _test_cmd(self->fd, &rw));
	rw.access_rw.flags = MOCK_ACCESS_RW_WRITE;
	EXPECT_ERRNO(EINVAL, _test_cmd(self->fd, &rw));
	close(access_fd);

	EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_IOAS_CHANGE_PROCESS, &chg));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, self->len);
}

TEST_HARNESS_MAIN
