// SPDX-License-Identifier: GPL-2.0-only
/*
 * mmap() of /dev/iommu: the pages a vIOMMU driver offers userspace, through
 * the mock vIOMMU (IOMMU_VIOMMU_TYPE_SELFTEST with driver data, which offers
 * two pages, the first starting with its in_data). What the kernel's own
 * selftests do not check; every expectation is upstream 7.3 behaviour
 * (main.c iommufd_fops_mmap, driver.c _iommufd_alloc_mmap):
 *
 *  - Only the exact offset and length the driver answered map the region
 *    (ENXIO for any other, inside it or not), only MAP_SHARED (EINVAL),
 *    never executable (EPERM).
 *  - Offsets are the lowest free range from the second page on.
 *  - Each mapping (and each piece or copy of it: a partial munmap, a fork)
 *    keeps the vIOMMU in use (EBUSY on destroy) until the last goes; the
 *    region goes with the vIOMMU (ENXIO afterwards).
 *  - A mapping keeps the file alive: closing and unmapping may come in
 *    either order.
 *  - It is an I/O mapping: its pages cannot be pinned (EFAULT for an IOAS).
 *
 * The file skips when /dev/iommu or IOMMU_TEST_CMD does not exist.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/wait.h>

#include "iommufd_test_utils.h"

#define IN_DATA 0xbeefU

FIXTURE(viommu_mmap)
{
	int fd;
	__u32 ioas_id;
	__u32 idev_id;
	__u32 parent_id;
	__u32 viommu_id;
	struct iommu_viommu_selftest data;
};

static int viommu_alloc(int fd, __u32 idev_id, __u32 parent_id, void *data,
			__u32 data_len, __u32 *viommu_id)
{
	struct iommu_viommu_alloc cmd = {
		.size = sizeof(cmd),
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
		.dev_id = idev_id,
		.hwpt_id = parent_id,
		.data_uptr = (uintptr_t)data,
		.data_len = data_len,
	};
	int ret;

	ret = ioctl(fd, IOMMU_VIOMMU_ALLOC, &cmd);
	if (!ret && viommu_id)
		*viommu_id = cmd.out_viommu_id;
	return ret;
}

/* A vIOMMU with driver data; @data comes back filled in */
static int viommu_with_data(int fd, __u32 idev_id, __u32 parent_id,
			    struct iommu_viommu_selftest *data, __u32 *id)
{
	memset(data, 0, sizeof(*data));
	data->in_data = IN_DATA;
	return viommu_alloc(fd, idev_id, parent_id, data, sizeof(*data), id);
}

static void *map_at(int fd, size_t length, __u64 offset, int prot, int flags)
{
	return mmap(NULL, length, prot, flags, fd, offset);
}

/* mmap() errno for @length at @offset (0 if it maps; it is unmapped again) */
static int map_errno(int fd, size_t length, __u64 offset, int prot, int flags)
{
	void *p = map_at(fd, length, offset, prot, flags);

	if (p == MAP_FAILED)
		return errno;
	munmap(p, length);
	return 0;
}

#define RW_SHARED PROT_READ | PROT_WRITE, MAP_SHARED

FIXTURE_SETUP(viommu_mmap)
{
	__u32 stdev_id;

	self->fd = -1;
	SKIP_IF_NO_IOMMU_DEV();
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	SKIP_IF_NO_TEST_CMD(self->fd);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &stdev_id, NULL,
				  &self->idev_id));
	{
		struct iommu_hwpt_alloc cmd = {
			.size = sizeof(cmd),
			.flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
			.dev_id = self->idev_id,
			.pt_id = self->ioas_id,
		};

		ASSERT_EQ(0, ioctl(self->fd, IOMMU_HWPT_ALLOC, &cmd));
		self->parent_id = cmd.out_hwpt_id;
	}
	ASSERT_EQ(0, viommu_with_data(self->fd, self->idev_id, self->parent_id,
				      &self->data, &self->viommu_id));
}

FIXTURE_TEARDOWN(viommu_mmap)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(viommu_mmap, answer_and_contents)
{
	__u32 *p;

	EXPECT_EQ(IN_DATA, self->data.out_data);
	/* The first region starts at the second page; two pages long */
	EXPECT_EQ(page_size, self->data.out_mmap_offset);
	EXPECT_EQ(2 * page_size, self->data.out_mmap_length);

	p = map_at(self->fd, self->data.out_mmap_length,
		   self->data.out_mmap_offset, RW_SHARED);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(IN_DATA, p[0]);
	EXPECT_EQ(0, p[1]);
	EXPECT_EQ(0, p[page_size / sizeof(*p)]);
	EXPECT_EQ(0, p[2 * page_size / sizeof(*p) - 1]);
	ASSERT_EQ(0, munmap(p, self->data.out_mmap_length));
}

TEST_F(viommu_mmap, writes_reach_every_mapping)
{
	size_t len = self->data.out_mmap_length;
	__u64 off = self->data.out_mmap_offset;
	__u32 *a, *b;

	a = map_at(self->fd, len, off, RW_SHARED);
	ASSERT_NE(MAP_FAILED, a);
	b = map_at(self->fd, len, off, PROT_READ, MAP_SHARED);
	ASSERT_NE(MAP_FAILED, b);
	a[0] = 0x1234;
	a[page_size / sizeof(*a) + 1] = 0x5678;
	EXPECT_EQ(0x1234, b[0]);
	EXPECT_EQ(0x5678, b[page_size / sizeof(*b) + 1]);
	ASSERT_EQ(0, munmap(a, len));
	ASSERT_EQ(0, munmap(b, len));

	/* The pages stay with the vIOMMU between mappings */
	a = map_at(self->fd, len, off, PROT_READ, MAP_SHARED);
	ASSERT_NE(MAP_FAILED, a);
	EXPECT_EQ(0x1234, a[0]);
	ASSERT_EQ(0, munmap(a, len));
}

TEST_F(viommu_mmap, only_the_exact_offset_and_length)
{
	size_t len = self->data.out_mmap_length;
	__u64 off = self->data.out_mmap_offset;

	EXPECT_EQ(ENXIO, map_errno(self->fd, len, off + page_size, RW_SHARED));
	EXPECT_EQ(ENXIO, map_errno(self->fd, len, off + len, RW_SHARED));
	EXPECT_EQ(ENXIO, map_errno(self->fd, len / 2, off, RW_SHARED));
	EXPECT_EQ(ENXIO, map_errno(self->fd, len * 2, off, RW_SHARED));
	EXPECT_EQ(ENXIO, map_errno(self->fd, page_size, 0, RW_SHARED));
	EXPECT_EQ(ENXIO,
		  map_errno(self->fd, len, 1ULL << 40, RW_SHARED));
	/* Read-only and write-only shared mappings are fine */
	EXPECT_EQ(0, map_errno(self->fd, len, off, PROT_READ, MAP_SHARED));
	EXPECT_EQ(0, map_errno(self->fd, len, off, PROT_WRITE, MAP_SHARED));
}

TEST_F(viommu_mmap, shared_only_never_executable)
{
	size_t len = self->data.out_mmap_length;
	__u64 off = self->data.out_mmap_offset;

	EXPECT_EQ(EINVAL, map_errno(self->fd, len, off, PROT_READ,
				    MAP_PRIVATE));
	/* The flags are checked before the offset */
	EXPECT_EQ(EINVAL, map_errno(self->fd, len, 0, PROT_READ, MAP_PRIVATE));
	EXPECT_EQ(EPERM, map_errno(self->fd, len, off, PROT_READ | PROT_EXEC,
				   MAP_SHARED));
	EXPECT_EQ(EPERM, map_errno(self->fd, len, 0, PROT_READ | PROT_EXEC,
				   MAP_SHARED));
	/* Nothing was left in use */
	ASSERT_DESTROY(self->fd, self->viommu_id);
}

TEST_F(viommu_mmap, mapping_keeps_viommu_in_use)
{
	size_t len = self->data.out_mmap_length;
	__u64 off = self->data.out_mmap_offset;
	char *p;

	p = map_at(self->fd, len, off, RW_SHARED);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, self->viommu_id));
	/* Each piece of a split mapping holds it */
	ASSERT_EQ(0, munmap(p, page_size));
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, self->viommu_id));
	EXPECT_EQ(0, p[page_size]);
	ASSERT_EQ(0, munmap(p + page_size, page_size));
	ASSERT_DESTROY(self->fd, self->viommu_id);

	/* The region went with it */
	EXPECT_EQ(ENXIO, map_errno(self->fd, len, off, RW_SHARED));
	/* and so did its parent's hold */
	ASSERT_DESTROY(self->fd, self->parent_id);
}

TEST_F(viommu_mmap, not_pinnable)
{
	size_t len = self->data.out_mmap_length;
	void *p;

	p = map_at(self->fd, len, self->data.out_mmap_offset, RW_SHARED);
	ASSERT_NE(MAP_FAILED, p);
	/* An I/O mapping: its pages cannot be pinned for an IOAS */
	EXPECT_ERRNO(EFAULT, _map_fixed(self->fd, self->ioas_id, p, len,
					MOCK_IOVA));
	ASSERT_EQ(0, munmap(p, len));
}

TEST_F(viommu_mmap, failed_mmap_holds_nothing)
{
	EXPECT_EQ(ENXIO, map_errno(self->fd, self->data.out_mmap_length,
				   self->data.out_mmap_offset + page_size,
				   RW_SHARED));
	ASSERT_DESTROY(self->fd, self->viommu_id);
}

TEST_F(viommu_mmap, fork_copies_hold)
{
	size_t len = self->data.out_mmap_length;
	__u64 off = self->data.out_mmap_offset;
	int pipefd[2], status;
	__u32 *p;
	pid_t pid;
	char c;

	p = map_at(self->fd, len, off, RW_SHARED);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(pipefd[1]);
		/* Wait for the parent to unmap, then write through our copy */
		if (read(pipefd[0], &c, 1) != 1)
			_exit(1);
		p[1] = 0xc0de;
		_exit(p[0] == IN_DATA ? 0 : 2);
	}
	close(pipefd[0]);
	ASSERT_EQ(0, munmap(p, len));
	/* The child's copy still holds the vIOMMU */
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, self->viommu_id));
	ASSERT_EQ(1, write(pipefd[1], "x", 1));
	close(pipefd[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* The child's write landed in the shared pages */
	p = map_at(self->fd, len, off, PROT_READ, MAP_SHARED);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0xc0de, p[1]);
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_DESTROY(self->fd, self->viommu_id);
}

TEST_F(viommu_mmap, close_then_unmap)
{
	size_t len = self->data.out_mmap_length;
	__u32 *p;

	p = map_at(self->fd, len, self->data.out_mmap_offset, RW_SHARED);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	/* The mapping keeps the file, and the pages, alive */
	EXPECT_EQ(IN_DATA, p[0]);
	p[1] = 1;
	ASSERT_EQ(0, munmap(p, len));
}

TEST_F(viommu_mmap, unmap_then_close)
{
	size_t len = self->data.out_mmap_length;
	__u32 *p;

	p = map_at(self->fd, len, self->data.out_mmap_offset, RW_SHARED);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
}

TEST_F(viommu_mmap, close_with_partial_mapping)
{
	size_t len = self->data.out_mmap_length;
	char *p;

	p = map_at(self->fd, len, self->data.out_mmap_offset, RW_SHARED);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, munmap(p + page_size, page_size));
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	EXPECT_EQ((char)IN_DATA, p[0]);
	ASSERT_EQ(0, munmap(p, page_size));
}

TEST_F(viommu_mmap, offsets_lowest_free_and_per_file)
{
	struct iommu_viommu_selftest d2, d3, other;
	__u32 v2, v3, ov, o_ioas, o_idev, o_stdev;
	int fd2;

	/* A second vIOMMU gets the range after the first */
	ASSERT_EQ(0, viommu_with_data(self->fd, self->idev_id, self->parent_id,
				      &d2, &v2));
	EXPECT_EQ(self->data.out_mmap_offset + self->data.out_mmap_length,
		  d2.out_mmap_offset);
	/* Once the first goes, a third takes its range again */
	ASSERT_DESTROY(self->fd, self->viommu_id);
	ASSERT_EQ(0, viommu_with_data(self->fd, self->idev_id, self->parent_id,
				      &d3, &v3));
	EXPECT_EQ(self->data.out_mmap_offset, d3.out_mmap_offset);

	/* Another file has offsets of its own */
	fd2 = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, _ioas_alloc(fd2, &o_ioas));
	ASSERT_EQ(0, _mock_domain(fd2, o_ioas, &o_stdev, NULL, &o_idev));
	{
		struct iommu_hwpt_alloc cmd = {
			.size = sizeof(cmd),
			.flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
			.dev_id = o_idev,
			.pt_id = o_ioas,
		};

		ASSERT_EQ(0, ioctl(fd2, IOMMU_HWPT_ALLOC, &cmd));
		ASSERT_EQ(0, viommu_with_data(fd2, o_idev, cmd.out_hwpt_id,
					      &other, &ov));
	}
	EXPECT_EQ(page_size, other.out_mmap_offset);
	close(fd2);
	ASSERT_DESTROY(self->fd, v2);
	ASSERT_DESTROY(self->fd, v3);
}

TEST_F(viommu_mmap, no_data_no_region)
{
	struct iommu_viommu_selftest d = { .in_data = IN_DATA };
	__u32 v;

	ASSERT_DESTROY(self->fd, self->viommu_id);
	/* Without driver data there is nothing to map */
	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev_id, self->parent_id,
				  NULL, 0, &v));
	EXPECT_EQ(ENXIO, map_errno(self->fd, 2 * page_size, page_size,
				   RW_SHARED));
	ASSERT_DESTROY(self->fd, v);
	/* Data too short for out_data fails, and leaves no region behind */
	EXPECT_ERRNO(EINVAL, viommu_alloc(self->fd, self->idev_id,
					  self->parent_id, &d,
					  offsetof(typeof(d), out_data), &v));
	EXPECT_EQ(ENXIO, map_errno(self->fd, 2 * page_size, page_size,
				   RW_SHARED));
	/* Data up to out_data only: a region, but its place is not told */
	memset(&d, 0xff, sizeof(d));
	d.in_data = IN_DATA;
	ASSERT_EQ(0, viommu_alloc(self->fd, self->idev_id, self->parent_id, &d,
				  offsetofend(typeof(d), out_data), &v));
	EXPECT_EQ(IN_DATA, d.out_data);
	EXPECT_EQ(~0ULL, d.out_mmap_offset);
	EXPECT_EQ(0, map_errno(self->fd, 2 * page_size, page_size, RW_SHARED));
	ASSERT_DESTROY(self->fd, v);
}

TEST_HARNESS_MAIN
