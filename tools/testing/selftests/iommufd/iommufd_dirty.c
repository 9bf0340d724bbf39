// SPDX-License-Identifier: GPL-2.0-only
/*
 * Dirty tracking: IOMMU_HWPT_SET_DIRTY_TRACKING, IOMMU_HWPT_GET_DIRTY_BITMAP
 * and the test ABI's IOMMU_TEST_OP_DIRTY, on a mock HWPT made with
 * IOMMU_HWPT_ALLOC_DIRTY_TRACKING: the argument checks the kernel's own
 * selftests (iommufd_dirty_tracking.*) leave out, and what a read reports
 * around holes and bits already set. Every expectation is upstream 7.3
 * behaviour (hw_pagetable.c, io_pagetable.c, selftest.c) except where a test
 * says "ours".
 *
 * The file skips when /dev/iommu or IOMMU_TEST_CMD does not exist.
 */
#include "iommufd_test_utils.h"

#define BUF_PAGES 16

static int hwpt_alloc(int fd, __u32 dev_id, __u32 pt_id, __u32 flags,
		      __u32 *hwpt_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
	};
	int ret;

	ret = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);
	if (!ret)
		*hwpt_id = cmd.out_hwpt_id;
	return ret;
}

static int set_tracking(int fd, __u32 hwpt_id, __u32 flags)
{
	struct iommu_hwpt_set_dirty_tracking cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.hwpt_id = hwpt_id,
	};

	return ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &cmd);
}

static int get_bitmap(int fd, __u32 hwpt_id, __u32 flags, __u32 reserved,
		      __u64 iova, __u64 length, __u64 pgsize, void *data)
{
	struct iommu_hwpt_get_dirty_bitmap cmd = {
		.size = sizeof(cmd),
		.hwpt_id = hwpt_id,
		.flags = flags,
		.__reserved = reserved,
		.iova = iova,
		.length = length,
		.page_size = pgsize,
		.data = (uintptr_t)data,
	};

	return ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &cmd);
}

/* IOMMU_TEST_OP_DIRTY; *@count gets out_nr_dirty */
static int mark(int fd, __u32 hwpt_id, __u64 iova, __u64 length, __u64 pgsize,
		const void *bits, __u64 *count)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_DIRTY,
		.id = hwpt_id,
		.dirty = {
			.iova = iova,
			.length = length,
			.page_size = pgsize,
			.uptr = (uintptr_t)bits,
		},
	};
	int ret;

	ret = _test_cmd(fd, &cmd);
	if (!ret && count)
		*count = cmd.dirty.out_nr_dirty;
	return ret;
}

FIXTURE(dirty)
{
	int fd;
	__u32 ioas_id, stdev_id, auto_hwpt, idev_id, hwpt_id;
	char *buf;
	size_t len;
};

FIXTURE_SETUP(dirty)
{
	self->fd = -1;
	self->buf = NULL;
	SKIP_IF_NO_IOMMU_DEV();
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	SKIP_IF_NO_TEST_CMD(self->fd);
	self->len = BUF_PAGES * page_size;
	self->buf = anon(self->len, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &self->stdev_id,
				  &self->auto_hwpt, &self->idev_id));
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev_id, self->ioas_id,
				IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				&self->hwpt_id));
}

FIXTURE_TEARDOWN(dirty)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->buf)
		munmap(self->buf, self->len);
}

/* Bit @n of a u64 array */
static bool bit(const __u64 *map, unsigned int n)
{
	return map[n / 64] >> (n % 64) & 1;
}

/* Only a HWPT made for it tracks; only a paging HWPT is looked up */
TEST_F(dirty, set_tracking_errnos)
{
	EXPECT_ERRNO(EOPNOTSUPP, set_tracking(self->fd, self->auto_hwpt,
					      IOMMU_HWPT_DIRTY_TRACKING_ENABLE));
	EXPECT_ERRNO(EOPNOTSUPP, set_tracking(self->fd, self->auto_hwpt, 0));
	EXPECT_ERRNO(EOPNOTSUPP, set_tracking(self->fd, self->hwpt_id, 2));
	EXPECT_ERRNO(ENOENT, set_tracking(self->fd, self->ioas_id,
					  IOMMU_HWPT_DIRTY_TRACKING_ENABLE));
	EXPECT_ERRNO(ENOENT, set_tracking(self->fd, 0,
					  IOMMU_HWPT_DIRTY_TRACKING_ENABLE));
	/* On twice, off twice: no error */
	ASSERT_EQ(0, set_tracking(self->fd, self->hwpt_id,
				  IOMMU_HWPT_DIRTY_TRACKING_ENABLE));
	ASSERT_EQ(0, set_tracking(self->fd, self->hwpt_id,
				  IOMMU_HWPT_DIRTY_TRACKING_ENABLE));
	ASSERT_EQ(0, set_tracking(self->fd, self->hwpt_id, 0));
	ASSERT_EQ(0, set_tracking(self->fd, self->hwpt_id, 0));
}

/* The checks of GET_DIRTY_BITMAP, in upstream's order */
TEST_F(dirty, get_bitmap_errnos)
{
	__u64 map[4] = {};
	__u64 len = 4 * page_size;

	EXPECT_ERRNO(EOPNOTSUPP, get_bitmap(self->fd, self->hwpt_id, 2, 0,
					    MOCK_IOVA, len, page_size, map));
	EXPECT_ERRNO(EOPNOTSUPP, get_bitmap(self->fd, self->hwpt_id, 0, 1,
					    MOCK_IOVA, len, page_size, map));
	EXPECT_ERRNO(ENOENT, get_bitmap(self->fd, self->ioas_id, 0, 0,
					MOCK_IOVA, len, page_size, map));
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, self->hwpt_id, 0, 0,
					MOCK_IOVA, 0, page_size, map));
	EXPECT_ERRNO(EOVERFLOW, get_bitmap(self->fd, self->hwpt_id, 0, 0,
					   -(__u64)page_size, 2 * page_size,
					   page_size, map));
	/* The mock's 2 KiB IOVA alignment */
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, self->hwpt_id, 0, 0,
					MOCK_IOVA + 1024, len, page_size, map));
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, self->hwpt_id, 0, 0,
					MOCK_IOVA, len + 1024, page_size, map));
	/* The page size: set, and dividing both ends */
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, self->hwpt_id, 0, 0,
					MOCK_IOVA, len, 0, map));
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, self->hwpt_id, 0, 0,
					MOCK_IOVA, 3 * page_size,
					2 * page_size, map));
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, self->hwpt_id, 0, 0,
					MOCK_IOVA + 2048, len, page_size, map));
	/* A HWPT made without the flag: after the range checks */
	EXPECT_ERRNO(EOPNOTSUPP, get_bitmap(self->fd, self->auto_hwpt, 0, 0,
					    MOCK_IOVA, len, page_size, map));
	/* Reading works whether tracking is on or not */
	ASSERT_EQ(0, get_bitmap(self->fd, self->hwpt_id, 0, 0, MOCK_IOVA, len,
				page_size, map));
	EXPECT_EQ(0, map[0]);
}

/* IOMMU_TEST_OP_DIRTY: its checks, and only while tracking is on */
TEST_F(dirty, test_op_errnos)
{
	__u64 bits[1] = { ~0ULL };
	__u64 count = 0;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	EXPECT_ERRNO(EINVAL, mark(self->fd, self->hwpt_id, MOCK_IOVA,
				  self->len, page_size, bits, NULL));
	ASSERT_EQ(0, set_tracking(self->fd, self->hwpt_id,
				  IOMMU_HWPT_DIRTY_TRACKING_ENABLE));
	EXPECT_ERRNO(EINVAL, mark(self->fd, self->hwpt_id, MOCK_IOVA,
				  self->len, 0, bits, NULL));
	EXPECT_ERRNO(EINVAL, mark(self->fd, self->hwpt_id, MOCK_IOVA, 0,
				  page_size, bits, NULL));
	EXPECT_ERRNO(EINVAL, mark(self->fd, self->hwpt_id, MOCK_IOVA + 1,
				  self->len, page_size, bits, NULL));
	EXPECT_ERRNO(EINVAL, mark(self->fd, self->hwpt_id, MOCK_IOVA,
				  self->len, page_size, NULL, NULL));
	/* More than 16 MiB of bitmap */
	EXPECT_ERRNO(EOVERFLOW, mark(self->fd, self->hwpt_id, MOCK_IOVA,
				     (128ULL << 20) * 2048 + 2048, 2048, bits,
				     NULL));
	EXPECT_ERRNO(ENOENT, mark(self->fd, self->ioas_id, MOCK_IOVA,
				  self->len, page_size, bits, NULL));
	ASSERT_EQ(0, mark(self->fd, self->hwpt_id, MOCK_IOVA, self->len,
			  page_size, bits, &count));
	EXPECT_EQ(BUF_PAGES, count);
}

/* Turning tracking on starts from clean pages */
TEST_F(dirty, enable_cleans)
{
	__u64 bits[1] = { ~0ULL }, map[1] = {};

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	ASSERT_EQ(0, set_tracking(self->fd, self->hwpt_id,
				  IOMMU_HWPT_DIRTY_TRACKING_ENABLE));
	ASSERT_EQ(0, mark(self->fd, self->hwpt_id, MOCK_IOVA, self->len,
			  page_size, bits, NULL));
	ASSERT_EQ(0, set_tracking(self->fd, self->hwpt_id,
				  IOMMU_HWPT_DIRTY_TRACKING_ENABLE));
	ASSERT_EQ(0, get_bitmap(self->fd, self->hwpt_id, 0, 0, MOCK_IOVA,
				self->len, page_size, map));
	EXPECT_EQ(0, map[0]);
	/* Turning it off keeps what was marked readable */
	ASSERT_EQ(0, mark(self->fd, self->hwpt_id, MOCK_IOVA, self->len,
			  page_size, bits, NULL));
	ASSERT_EQ(0, set_tracking(self->fd, self->hwpt_id, 0));
	ASSERT_EQ(0, get_bitmap(self->fd, self->hwpt_id, 0, 0, MOCK_IOVA,
				self->len, page_size, map));
	EXPECT_EQ((1ULL << BUF_PAGES) - 1, map[0]);
}

/*
 * Two areas with a hole between them: the hole reads clean, bits already set
 * in the user's bitmap stay set, NO_CLEAR leaves the pages dirty.
 */
TEST_F(dirty, holes_and_set_bits)
{
	__u64 bits[1] = { ~0ULL }, map[1], count = 0;
	size_t quarter = self->len / 4;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, quarter,
			 MOCK_IOVA);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf + 2 * quarter,
			 quarter, MOCK_IOVA + 2 * quarter);
	ASSERT_EQ(0, set_tracking(self->fd, self->hwpt_id,
				  IOMMU_HWPT_DIRTY_TRACKING_ENABLE));
	/* Every bit counts, mapped or not */
	ASSERT_EQ(0, mark(self->fd, self->hwpt_id, MOCK_IOVA, self->len,
			  page_size, bits, &count));
	EXPECT_EQ(BUF_PAGES, count);
	for (int round = 0; round < 2; round++) {
		map[0] = 1ULL << (BUF_PAGES / 4 + 1);
		ASSERT_EQ(0, get_bitmap(self->fd, self->hwpt_id,
					IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, 0,
					MOCK_IOVA, self->len, page_size, map));
		for (unsigned int n = 0; n < BUF_PAGES; n++) {
			bool mapped = n < BUF_PAGES / 4 ||
				      (n >= BUF_PAGES / 2 && n < 3 * BUF_PAGES / 4);

			EXPECT_EQ(mapped || n == BUF_PAGES / 4 + 1, bit(map, n));
		}
	}
	map[0] = 0;
	ASSERT_EQ(0, get_bitmap(self->fd, self->hwpt_id, 0, 0, MOCK_IOVA,
				self->len, page_size, map));
	EXPECT_EQ(map[0], ((1ULL << BUF_PAGES / 4) - 1) |
			  ((1ULL << BUF_PAGES / 4) - 1) << BUF_PAGES / 2);
	map[0] = 0;
	ASSERT_EQ(0, get_bitmap(self->fd, self->hwpt_id, 0, 0, MOCK_IOVA,
				self->len, page_size, map));
	EXPECT_EQ(0, map[0]);
}

/* A device without dirty tracking: no such HWPT for it, nor onto one */
TEST_F(dirty, device_without_dirty_tracking)
{
	__u32 stdev, idev, hwpt;

	ASSERT_EQ(0, _mock_domain_flags(self->fd, self->ioas_id,
					MOCK_FLAGS_DEVICE_NO_DIRTY, &stdev,
					NULL, &idev));
	EXPECT_ERRNO(EOPNOTSUPP, hwpt_alloc(self->fd, idev, self->ioas_id,
					    IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
					    &hwpt));
	EXPECT_ERRNO(EINVAL, _mock_domain_flags(self->fd, self->hwpt_id,
						MOCK_FLAGS_DEVICE_NO_DIRTY,
						NULL, NULL, NULL));
	ASSERT_DESTROY(self->fd, stdev);
}

/*
 * Ours: a bitmap that cannot be read or written is EFAULT (upstream answers
 * 0), and the pages stay dirty for the next read.
 */
TEST_F(dirty, unwritable_bitmap_is_efault)
{
	__u64 bits[1] = { ~0ULL }, map[1] = {};

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	ASSERT_EQ(0, set_tracking(self->fd, self->hwpt_id,
				  IOMMU_HWPT_DIRTY_TRACKING_ENABLE));
	ASSERT_EQ(0, mark(self->fd, self->hwpt_id, MOCK_IOVA, self->len,
			  page_size, bits, NULL));
	EXPECT_ERRNO(EFAULT, get_bitmap(self->fd, self->hwpt_id, 0, 0,
					MOCK_IOVA, self->len, page_size,
					(void *)8));
	ASSERT_EQ(0, get_bitmap(self->fd, self->hwpt_id, 0, 0, MOCK_IOVA,
				self->len, page_size, map));
	EXPECT_EQ((1ULL << BUF_PAGES) - 1, map[0]);
	/* Also with nothing dirty */
	EXPECT_ERRNO(EFAULT, get_bitmap(self->fd, self->hwpt_id, 0, 0,
					MOCK_IOVA, self->len, page_size,
					(void *)8));
}

TEST_HARNESS_MAIN
