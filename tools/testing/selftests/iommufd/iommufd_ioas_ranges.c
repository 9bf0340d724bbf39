// SPDX-License-Identifier: GPL-2.0-only
/*
 * IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_ALLOW_IOVAS and IOMMU_OPTION on an IOAS
 * without devices, domains or (mostly) mappings.
 *
 * Every expectation below is what upstream drivers/iommu/iommufd/ioas.c
 * (iommufd_ioas_iova_ranges, iommufd_ioas_allow_iovas,
 * iommufd_option_rlimit_mode, iommufd_ioas_option), main.c (iommufd_option,
 * IOCTL_OP minimum sizes) and io_pagetable.c (iopt_set_allow_iova,
 * iopt_disable_large_pages, iopt_calculate_iova_alignment) do:
 *
 *  - IOVA_RANGES reports the holes of the reserved ranges only. A fresh IOAS
 *    has none reserved, so it reports exactly [0, ULONG_MAX], whatever the
 *    allowed ranges are. The answer is written back before EMSGSIZE is
 *    decided, so the first pass (num_iovas 0) returns the count with
 *    EMSGSIZE. out_iova_alignment is 1, or PAGE_SIZE with huge pages off.
 *  - ALLOW_IOVAS replaces the allowed set atomically: ranges need
 *    start < last and must not overlap each other; any failure keeps the old
 *    set. The allowed set is only observable through automatic IOVA
 *    allocation of IOMMU_IOAS_MAP; the tests that need it skip while
 *    IOMMU_IOAS_MAP is not implemented (ENOTTY).
 *  - IOMMU_OPTION writes back val64 only, after the option was applied.
 *
 * None of the three structs has a valid size below sizeof(struct): their
 * IOCTL_OP minimum is the end of the last member.
 *
 * The file skips when /dev/iommu does not exist.
 */
#define _GNU_SOURCE

#include "iommufd_test_utils.h"

/* Minimum sizes the kernel accepts (IOCTL_OP(..., _last) in main.c) */
#define IOVA_RANGES_MIN_SIZE \
	offsetofend(struct iommu_ioas_iova_ranges, out_iova_alignment)
#define ALLOW_IOVAS_MIN_SIZE \
	offsetofend(struct iommu_ioas_allow_iovas, allowed_iovas)
#define OPTION_MIN_SIZE offsetofend(struct iommu_option, val64)

/* ------------------------------------------------------------------------
 * Helpers
 */

/* The first IOMMU_IOAS_MAP of a test: skips when MAP is not implemented */
#define MAP_AUTO_OR_SKIP(fd, ioas_id, buf, len, iova)                      \
	do {                                                               \
		if (_map_auto(fd, ioas_id, buf, len, iova)) {              \
			if (errno == ENOTTY)                               \
				SKIP(return, "no IOMMU_IOAS_MAP; the "     \
				     "allowed set is not observable");     \
			ASSERT_EQ(0, errno);                               \
		}                                                          \
	} while (0)

/* One zeroed page that is read-only */
static char *map_readonly_page(void)
{
	return anon(page_size, PROT_READ);
}

/* A read-write page followed by a zeroed read-only page */
static char *map_rw_then_ro(void)
{
	char *p = anon(2 * page_size, PROT_READ | PROT_WRITE);

	if (!p)
		return NULL;
	if (mprotect(p + page_size, page_size, PROT_READ)) {
		munmap(p, 2 * page_size);
		return NULL;
	}
	return p;
}

static void poison_ranges(struct iommu_iova_range *r, size_t n)
{
	size_t i;

	for (i = 0; i != n; i++) {
		r[i].start = POISON64;
		r[i].last = POISON64;
	}
}

/* IOVA_RANGES must report exactly the one range [0, ULONG_MAX] */
#define ASSERT_FULL_RANGE_ONLY(fd, ioas_id)                                  \
	({                                                                   \
		struct iommu_ioas_iova_ranges __c;                           \
		struct iommu_iova_range __r[3];                              \
		poison_ranges(__r, 3);                                       \
		ASSERT_EQ(0, _iova_ranges(fd, ioas_id, 3, __r, &__c));       \
		ASSERT_EQ(1, __c.num_iovas);                                 \
		ASSERT_EQ(0, __r[0].start);                                  \
		ASSERT_EQ(IOVA_MAX, __r[0].last);                            \
		ASSERT_EQ(POISON64, __r[1].start);                           \
		ASSERT_EQ(POISON64, __r[1].last);                            \
	})

/* ------------------------------------------------------------------------
 * Fixtures: one with an IOAS (the bare iommufd one is in the header)
 */

FIXTURE(ioas)
{
	int fd;
	__u32 ioas_id;
};

FIXTURE_SETUP(ioas)
{
	self->fd = -1;
	SKIP_IF_NO_IOMMU_DEV();
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
	ASSERT_NE(0, self->ioas_id);
}

FIXTURE_TEARDOWN(ioas)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* ------------------------------------------------------------------------
 * IOMMU_IOAS_IOVA_RANGES
 */

TEST_F(ioas, iova_ranges_first_pass_returns_count_with_emsgsize)
{
	struct iommu_ioas_iova_ranges cmd;

	EXPECT_ERRNO(EMSGSIZE, _iova_ranges(self->fd, self->ioas_id, 0, NULL,
					    &cmd));
	/* The whole answer is written back before EMSGSIZE */
	EXPECT_EQ(sizeof(cmd), cmd.size);
	EXPECT_EQ(self->ioas_id, cmd.ioas_id);
	EXPECT_EQ(1, cmd.num_iovas);
	EXPECT_EQ(0, cmd.__reserved);
	EXPECT_EQ(0, cmd.allowed_iovas);
	EXPECT_EQ(1, cmd.out_iova_alignment);
}

TEST_F(ioas, iova_ranges_two_pass)
{
	struct iommu_ioas_iova_ranges cmd;
	struct iommu_iova_range *ranges;
	__u32 n;

	EXPECT_ERRNO(EMSGSIZE, _iova_ranges(self->fd, self->ioas_id, 0, NULL,
					    &cmd));
	n = cmd.num_iovas;
	ASSERT_EQ(1, n);

	ranges = calloc(n, sizeof(*ranges));
	ASSERT_NE(NULL, ranges);
	poison_ranges(ranges, n);
	ASSERT_EQ(0, _iova_ranges(self->fd, self->ioas_id, n, ranges, &cmd));
	EXPECT_EQ(n, cmd.num_iovas);
	EXPECT_EQ(1, cmd.out_iova_alignment);
	EXPECT_EQ((uintptr_t)ranges, cmd.allowed_iovas);
	EXPECT_EQ(0, ranges[0].start);
	EXPECT_EQ(IOVA_MAX, ranges[0].last);
	free(ranges);
}

TEST_F(ioas, iova_ranges_fresh_ioas_is_one_full_range)
{
	struct iommu_ioas_iova_ranges cmd;
	struct iommu_iova_range r[4];

	poison_ranges(r, 4);
	/* More room than needed: success, and only one slot is written */
	ASSERT_EQ(0, _iova_ranges(self->fd, self->ioas_id, 4, r, &cmd));
	EXPECT_EQ(1, cmd.num_iovas);
	EXPECT_EQ(0, r[0].start);
	EXPECT_EQ(IOVA_MAX, r[0].last);
	EXPECT_EQ(POISON64, r[1].start);
	EXPECT_EQ(POISON64, r[1].last);
	EXPECT_EQ(POISON64, r[3].last);
}

TEST_F(ioas, iova_ranges_alignment_is_1_without_domains)
{
	struct iommu_ioas_iova_ranges cmd;
	struct iommu_iova_range r;

	ASSERT_EQ(0, _iova_ranges(self->fd, self->ioas_id, 1, &r, &cmd));
	/* POISON64 went in; iopt_init_table() sets iova_alignment = 1 */
	EXPECT_EQ(1, cmd.out_iova_alignment);
}

TEST_F(ioas, iova_ranges_every_ioas_is_full_range)
{
	__u32 ids[4];
	int i;

	for (i = 0; i != 4; i++)
		ASSERT_EQ(0, _ioas_alloc(self->fd, &ids[i]));
	ASSERT_EQ(0, _destroy(self->fd, ids[1]));
	for (i = 0; i != 4; i++) {
		if (i == 1)
			continue;
		ASSERT_FULL_RANGE_ONLY(self->fd, ids[i]);
	}
	ASSERT_FULL_RANGE_ONLY(self->fd, self->ioas_id);
}

TEST_F(ioas, iova_ranges_exact_buffer_before_guard_page)
{
	struct iommu_ioas_iova_ranges cmd;
	struct iommu_iova_range *r;
	char *buf = map_with_guard(1);

	ASSERT_NE(NULL, buf);
	/* The one slot ends where the guard page starts */
	r = (void *)(buf + page_size - sizeof(*r));
	ASSERT_EQ(0, _iova_ranges(self->fd, self->ioas_id, 1, r, &cmd));
	EXPECT_EQ(1, cmd.num_iovas);
	EXPECT_EQ(0, r->start);
	EXPECT_EQ(IOVA_MAX, r->last);

	/* A huge num_iovas is fine: only the slots with a range are written */
	ASSERT_EQ(0, _iova_ranges(self->fd, self->ioas_id, UINT32_MAX, r,
				  &cmd));
	EXPECT_EQ(1, cmd.num_iovas);
	unmap_with_guard(buf, 1);
}

TEST_F(ioas, iova_ranges_num_0_never_touches_pointer)
{
	struct iommu_ioas_iova_ranges cmd;
	char *guard = map_with_guard(0);
	void *ptrs[] = { NULL, guard, (void *)-4096L, (void *)0x1 };
	unsigned int i;

	ASSERT_NE(NULL, guard);
	for (i = 0; i != ARRAY_SIZE(ptrs); i++) {
		EXPECT_ERRNO(EMSGSIZE, _iova_ranges(self->fd, self->ioas_id,
						    0, ptrs[i], &cmd));
		EXPECT_EQ(1, cmd.num_iovas);
		EXPECT_EQ(1, cmd.out_iova_alignment);
		EXPECT_EQ((uintptr_t)ptrs[i], cmd.allowed_iovas);
	}
	unmap_with_guard(guard, 0);
}

TEST_F(ioas, iova_ranges_bad_pointer_is_efault)
{
	struct iommu_ioas_iova_ranges cmd;
	char *guard = map_with_guard(0);
	char *ro = map_readonly_page();
	void *ptrs[] = { NULL, guard, ro, (void *)-4096L };
	unsigned int i;

	ASSERT_NE(NULL, guard);
	ASSERT_NE(NULL, ro);
	for (i = 0; i != ARRAY_SIZE(ptrs); i++) {
		EXPECT_ERRNO(EFAULT, _iova_ranges(self->fd, self->ioas_id, 1,
						  ptrs[i], &cmd));
		/* Nothing was written back */
		EXPECT_EQ(1, cmd.num_iovas);
		EXPECT_EQ(POISON64, cmd.out_iova_alignment);
	}
	/* Also with more slots than ranges: the first copy faults */
	EXPECT_ERRNO(EFAULT, _iova_ranges(self->fd, self->ioas_id, 8, NULL,
					  &cmd));
	EXPECT_EQ(8, cmd.num_iovas);
	unmap_with_guard(guard, 0);
	munmap(ro, page_size);
}

TEST_F(ioas, iova_ranges_slot_straddling_guard_page_is_efault)
{
	struct iommu_ioas_iova_ranges cmd;
	struct iommu_iova_range *r;
	char *buf = map_with_guard(1);

	ASSERT_NE(NULL, buf);
	/* start is writable, last is in the guard page */
	r = (void *)(buf + page_size - sizeof(r->start));
	EXPECT_ERRNO(EFAULT, _iova_ranges(self->fd, self->ioas_id, 1, r,
					  &cmd));
	EXPECT_EQ(1, cmd.num_iovas);
	EXPECT_EQ(POISON64, cmd.out_iova_alignment);
	unmap_with_guard(buf, 1);
}

TEST_F(ioas, iova_ranges_reserved_nonzero_is_eopnotsupp)
{
	struct iommu_ioas_iova_ranges cmd;
	struct iommu_iova_range r[2];
	__u32 bits[] = { 1, 0x80000000U, UINT32_MAX };
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(bits); i++) {
		poison_ranges(r, 2);
		cmd = (struct iommu_ioas_iova_ranges){
			.size = sizeof(cmd),
			.ioas_id = self->ioas_id,
			.num_iovas = 2,
			.__reserved = bits[i],
			.allowed_iovas = (uintptr_t)r,
			.out_iova_alignment = POISON64,
		};
		EXPECT_ERRNO(EOPNOTSUPP,
			     ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
		EXPECT_EQ(2, cmd.num_iovas);
		EXPECT_EQ(POISON64, cmd.out_iova_alignment);
		EXPECT_EQ(POISON64, r[0].start);

		/* Checked before the id and before EMSGSIZE */
		cmd.ioas_id = 0;
		cmd.num_iovas = 0;
		EXPECT_ERRNO(EOPNOTSUPP,
			     ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
		EXPECT_EQ(0, cmd.num_iovas);
	}
}

TEST_F(ioas, iova_ranges_unknown_id_is_enoent)
{
	struct iommu_ioas_iova_ranges cmd;
	struct iommu_iova_range r;
	__u32 gone;
	__u32 ids[] = { 0, self->ioas_id + 1, self->ioas_id + 100,
			0x7fffffff, UINT32_MAX };
	unsigned int i;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &gone));
	ASSERT_EQ(0, _destroy(self->fd, gone));

	for (i = 0; i != ARRAY_SIZE(ids); i++) {
		poison_ranges(&r, 1);
		EXPECT_ERRNO(ENOENT, _iova_ranges(self->fd, ids[i], 1, &r,
						  &cmd));
		EXPECT_EQ(1, cmd.num_iovas);
		EXPECT_EQ(POISON64, cmd.out_iova_alignment);
		EXPECT_EQ(POISON64, r.start);
		/* The id is checked before the pointer and EMSGSIZE */
		EXPECT_ERRNO(ENOENT, _iova_ranges(self->fd, ids[i], 1, NULL,
						  &cmd));
		EXPECT_ERRNO(ENOENT, _iova_ranges(self->fd, ids[i], 0, NULL,
						  &cmd));
		EXPECT_EQ(0, cmd.num_iovas);
	}
	EXPECT_ERRNO(ENOENT, _iova_ranges(self->fd, gone, 1, &r, &cmd));
}

TEST_F(ioas, iova_ranges_id_of_other_file_is_enoent)
{
	struct iommu_ioas_iova_ranges cmd;
	struct iommu_iova_range r;
	int fd2 = open(IOMMU_DEV, O_RDWR);

	ASSERT_LE(0, fd2);
	/* fd2 has no objects at all: the id is only valid in self->fd */
	EXPECT_ERRNO(ENOENT, _iova_ranges(fd2, self->ioas_id, 1, &r, &cmd));
	close(fd2);
}

TEST_F(ioas, iova_ranges_wrong_object_type_is_enoent)
{
	struct iommu_ioas_iova_ranges cmd;
	struct iommu_iova_range r;
	__u32 fault_id = 0;
	int fault_fd = -1;

	FAULT_ALLOC_OR_SKIP(self->fd, &fault_id, &fault_fd);
	ASSERT_NE(self->ioas_id, fault_id);
	EXPECT_ERRNO(ENOENT, _iova_ranges(self->fd, fault_id, 1, &r, &cmd));
	EXPECT_ERRNO(ENOENT, _iova_ranges(self->fd, fault_id, 0, NULL, &cmd));
	/* The IOAS itself still answers */
	ASSERT_FULL_RANGE_ONLY(self->fd, self->ioas_id);
	close(fault_fd);
}

TEST_F(ioas, iova_ranges_size_below_minimum_is_einval)
{
	struct iommu_ioas_iova_ranges cmd;
	struct iommu_iova_range r;
	__u32 sizes[] = { 0, 4, 16, 24, IOVA_RANGES_MIN_SIZE - 1 };
	unsigned int i;

	ASSERT_EQ(sizeof(cmd), IOVA_RANGES_MIN_SIZE);
	for (i = 0; i != ARRAY_SIZE(sizes); i++) {
		poison_ranges(&r, 1);
		cmd = (struct iommu_ioas_iova_ranges){
			.size = sizes[i],
			.ioas_id = self->ioas_id,
			.num_iovas = 1,
			.allowed_iovas = (uintptr_t)&r,
			.out_iova_alignment = POISON64,
		};
		EXPECT_ERRNO(EINVAL,
			     ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
		EXPECT_EQ(POISON64, cmd.out_iova_alignment);
		EXPECT_EQ(POISON64, r.start);
	}
}

TEST_F(ioas, iova_ranges_larger_size_writes_only_struct)
{
	struct iommu_ioas_iova_ranges *cmd;
	struct iommu_iova_range r;
	char *p = map_rw_then_ro();

	ASSERT_NE(NULL, p);
	/*
	 * The struct ends where a zeroed read-only page starts; size claims
	 * 16 more bytes. The zero tail is accepted, and the answer is
	 * min(size, sizeof) bytes, so nothing is written to the tail.
	 */
	cmd = (void *)(p + page_size - sizeof(*cmd));
	*cmd = (struct iommu_ioas_iova_ranges){
		.size = sizeof(*cmd) + 16,
		.ioas_id = self->ioas_id,
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)&r,
		.out_iova_alignment = POISON64,
	};
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, cmd));
	EXPECT_EQ(sizeof(*cmd) + 16, cmd->size);
	EXPECT_EQ(1, cmd->num_iovas);
	EXPECT_EQ(1, cmd->out_iova_alignment);
	EXPECT_EQ(0, r.start);
	EXPECT_EQ(IOVA_MAX, r.last);

	/* The same for the first pass */
	cmd->num_iovas = 0;
	cmd->out_iova_alignment = POISON64;
	EXPECT_ERRNO(EMSGSIZE, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, cmd));
	EXPECT_EQ(1, cmd->num_iovas);
	EXPECT_EQ(1, cmd->out_iova_alignment);
	munmap(p, 2 * page_size);
}

TEST_F(ioas, iova_ranges_larger_size_nonzero_tail_is_e2big)
{
	struct {
		struct iommu_ioas_iova_ranges cmd;
		__u64 tail;
	} big;
	struct iommu_iova_range r;

	poison_ranges(&r, 1);
	memset(&big, 0, sizeof(big));
	big.cmd.size = sizeof(big);
	big.cmd.ioas_id = self->ioas_id;
	big.cmd.num_iovas = 1;
	big.cmd.allowed_iovas = (uintptr_t)&r;
	big.cmd.out_iova_alignment = POISON64;
	big.tail = 1ULL << 63;
	EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &big));
	EXPECT_EQ(POISON64, big.cmd.out_iova_alignment);
	EXPECT_EQ(POISON64, r.start);

	big.tail = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &big));
	EXPECT_EQ(1, big.cmd.num_iovas);
	EXPECT_EQ(IOVA_MAX, r.last);
	EXPECT_EQ(0, big.tail);
}

TEST_F(ioas, iova_ranges_readonly_struct_is_efault)
{
	struct iommu_ioas_iova_ranges *cmd;
	struct iommu_iova_range r;
	char *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, p);
	cmd = (void *)p;
	*cmd = (struct iommu_ioas_iova_ranges){
		.size = sizeof(*cmd),
		.ioas_id = self->ioas_id,
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)&r,
	};
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, cmd));

	/* The answer is written before EMSGSIZE is decided: EFAULT wins */
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ | PROT_WRITE));
	cmd->num_iovas = 0;
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, cmd));
	munmap(p, page_size);
}

TEST_F(ioas, iova_ranges_not_affected_by_allowed_iovas)
{
	struct iommu_iova_range allow[] = {
		{ .start = IOVA_B, .last = IOVA_B + 0xfffff },
		{ .start = IOVA_A, .last = IOVA_A + 0xfff },
		{ .start = IOVA_C, .last = IOVA_MAX - 1 },
	};
	struct iommu_iova_range full = { .start = 0, .last = IOVA_MAX };

	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, allow, 3));
	/* Only the holes of the reserved ranges are reported */
	ASSERT_FULL_RANGE_ONLY(self->fd, self->ioas_id);
	EXPECT_EQ(1, _iova_alignment(self->fd, self->ioas_id));

	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &full, 1));
	ASSERT_FULL_RANGE_ONLY(self->fd, self->ioas_id);

	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, NULL, 0));
	ASSERT_FULL_RANGE_ONLY(self->fd, self->ioas_id);
}

/* ------------------------------------------------------------------------
 * IOMMU_IOAS_ALLOW_IOVAS
 */

TEST_F(ioas, allow_iovas_valid_ranges_accepted)
{
	struct iommu_iova_range one = { .start = IOVA_A, .last = IOVA_A + 1 };
	struct iommu_iova_range full = { .start = 0, .last = IOVA_MAX };
	struct iommu_iova_range low = { .start = 0, .last = 1 };
	struct iommu_iova_range high = { .start = IOVA_MAX - 1,
					 .last = IOVA_MAX };
	/* Unsorted, disjoint, some adjacent (last + 1 == start) */
	struct iommu_iova_range many[] = {
		{ .start = IOVA_C, .last = IOVA_C + 0xfff },
		{ .start = IOVA_A, .last = IOVA_A + 0xfff },
		{ .start = IOVA_A + 0x1000, .last = IOVA_A + 0x1fff },
		{ .start = 0, .last = 0xfff },
		{ .start = IOVA_B, .last = IOVA_C - 1 },
	};

	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &one, 1));
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &full, 1));
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &low, 1));
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &high, 1));
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, many, 5));
	/* The same set again */
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, many, 5));
}

TEST_F(ioas, allow_iovas_many_ranges_accepted)
{
	struct iommu_iova_range *r;
	__u32 n = 1000, i;

	r = calloc(n, sizeof(*r));
	ASSERT_NE(NULL, r);
	/* Descending order, every other 4 KiB block */
	for (i = 0; i != n; i++) {
		r[i].start = (__u64)(n - i) * 0x2000;
		r[i].last = r[i].start + 0xfff;
	}
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, r, n));
	/* One more that overlaps the middle one: the whole call fails */
	r[n / 2].last = r[n / 2].start + 0x2000;
	EXPECT_ERRNO(EINVAL, _allow_iovas(self->fd, self->ioas_id, r, n));
	free(r);
}

TEST_F(ioas, allow_iovas_start_not_below_last_is_einval)
{
	struct iommu_iova_range bad[] = {
		{ .start = IOVA_A, .last = IOVA_A },		/* one byte */
		{ .start = 0, .last = 0 },
		{ .start = IOVA_MAX, .last = IOVA_MAX },
		{ .start = IOVA_A + 1, .last = IOVA_A },	/* reversed */
		{ .start = IOVA_MAX, .last = 0 },
	};
	struct iommu_iova_range pair[2] = {
		{ .start = IOVA_A, .last = IOVA_A + 0xfff },
	};
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(bad); i++) {
		EXPECT_ERRNO(EINVAL,
			     _allow_iovas(self->fd, self->ioas_id, &bad[i], 1));
		/* Also when it is not the first one */
		pair[1] = bad[i];
		if (pair[1].start == IOVA_A)
			pair[1].start = pair[1].last = IOVA_B;
		EXPECT_ERRNO(EINVAL,
			     _allow_iovas(self->fd, self->ioas_id, pair, 2));
	}
}

TEST_F(ioas, allow_iovas_overlapping_ranges_is_einval)
{
	const struct {
		struct iommu_iova_range r[3];
		__u32 n;
	} cases[] = {
		/* the same range twice */
		{ { { IOVA_A, IOVA_A + 0xfff }, { IOVA_A, IOVA_A + 0xfff } }, 2 },
		/* sharing one byte */
		{ { { IOVA_A, IOVA_A + 0x1000 }, { IOVA_A + 0x1000, IOVA_B } },
		  2 },
		/* the second inside the first */
		{ { { IOVA_A, IOVA_C }, { IOVA_B, IOVA_B + 1 } }, 2 },
		/* the first inside the second */
		{ { { IOVA_B, IOVA_B + 1 }, { IOVA_A, IOVA_C } }, 2 },
		/* the third overlaps the first, not the second */
		{ { { IOVA_A, IOVA_A + 0xfff },
		    { IOVA_C, IOVA_C + 0xfff },
		    { IOVA_A + 0xfff, IOVA_A + 0x1fff } }, 3 },
		/* everything and anything */
		{ { { 0, IOVA_MAX }, { IOVA_MAX - 1, IOVA_MAX } }, 2 },
	};
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(cases); i++)
		EXPECT_ERRNO(EINVAL, _allow_iovas(self->fd, self->ioas_id,
						  cases[i].r, cases[i].n));
	/* Each of those ranges alone is fine */
	for (i = 0; i != ARRAY_SIZE(cases); i++)
		EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id,
					  &cases[i].r[1], 1));
}

TEST_F(ioas, allow_iovas_bad_pointer_is_efault)
{
	struct iommu_iova_range *r;
	char *buf = map_with_guard(1);
	char *guard;

	ASSERT_NE(NULL, buf);
	guard = buf + page_size;
	EXPECT_ERRNO(EFAULT, _allow_iovas(self->fd, self->ioas_id, NULL, 1));
	EXPECT_ERRNO(EFAULT, _allow_iovas(self->fd, self->ioas_id, guard, 1));
	EXPECT_ERRNO(EFAULT, _allow_iovas(self->fd, self->ioas_id,
					  (void *)-4096L, 1));

	/* One element straddling the guard page */
	r = (void *)(guard - sizeof(r->start));
	r->start = IOVA_A;
	EXPECT_ERRNO(EFAULT, _allow_iovas(self->fd, self->ioas_id, r, 1));

	/* A valid first element, the second in the guard page */
	r = (void *)(guard - sizeof(*r));
	r->start = IOVA_A;
	r->last = IOVA_A + 0xfff;
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, r, 1));
	EXPECT_ERRNO(EFAULT, _allow_iovas(self->fd, self->ioas_id, r, 2));
	EXPECT_ERRNO(EFAULT, _allow_iovas(self->fd, self->ioas_id, r,
					  UINT32_MAX));
	unmap_with_guard(buf, 1);
}

TEST_F(ioas, allow_iovas_invalid_range_before_fault_is_einval)
{
	struct iommu_iova_range *r;
	char *buf = map_with_guard(1);

	ASSERT_NE(NULL, buf);
	/* Elements are checked one by one: the bad one comes before the fault */
	r = (void *)(buf + page_size - 2 * sizeof(*r));
	r[0] = (struct iommu_iova_range){ .start = IOVA_A, .last = IOVA_B };
	r[1] = (struct iommu_iova_range){ .start = IOVA_B, .last = IOVA_B };
	EXPECT_ERRNO(EINVAL, _allow_iovas(self->fd, self->ioas_id, r, 3));
	r[1] = (struct iommu_iova_range){ .start = IOVA_B, .last = IOVA_C };
	EXPECT_ERRNO(EINVAL, _allow_iovas(self->fd, self->ioas_id, r, 3));
	r[1] = (struct iommu_iova_range){ .start = IOVA_B + 1, .last = IOVA_C };
	EXPECT_ERRNO(EFAULT, _allow_iovas(self->fd, self->ioas_id, r, 3));
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, r, 2));
	unmap_with_guard(buf, 1);
}

TEST_F(ioas, allow_iovas_num_0_never_touches_pointer)
{
	char *guard = map_with_guard(0);

	ASSERT_NE(NULL, guard);
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, NULL, 0));
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, guard, 0));
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, (void *)-4096L,
				  0));
	unmap_with_guard(guard, 0);
}

TEST_F(ioas, allow_iovas_reserved_nonzero_is_eopnotsupp)
{
	struct iommu_iova_range r = { .start = IOVA_A, .last = IOVA_B };
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd),
		.ioas_id = self->ioas_id,
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)&r,
	};
	__u32 bits[] = { 1, 0x80000000U, UINT32_MAX };
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(bits); i++) {
		cmd.__reserved = bits[i];
		cmd.ioas_id = self->ioas_id;
		cmd.num_iovas = 1;
		EXPECT_ERRNO(EOPNOTSUPP,
			     ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
		cmd.num_iovas = 0;
		EXPECT_ERRNO(EOPNOTSUPP,
			     ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
		/* Before the id */
		cmd.ioas_id = 0;
		EXPECT_ERRNO(EOPNOTSUPP,
			     ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	}
	cmd.__reserved = 0;
	cmd.ioas_id = self->ioas_id;
	cmd.num_iovas = 1;
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
}

TEST_F(ioas, allow_iovas_unknown_id_is_enoent)
{
	struct iommu_iova_range good = { .start = IOVA_A, .last = IOVA_B };
	struct iommu_iova_range bad = { .start = IOVA_B, .last = IOVA_A };
	__u32 gone;
	__u32 ids[] = { 0, self->ioas_id + 1, 0x7fffffff, UINT32_MAX, 0 };
	unsigned int i;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &gone));
	ASSERT_EQ(0, _destroy(self->fd, gone));
	ids[4] = gone;
	for (i = 0; i != ARRAY_SIZE(ids); i++) {
		EXPECT_ERRNO(ENOENT, _allow_iovas(self->fd, ids[i], &good, 1));
		EXPECT_ERRNO(ENOENT, _allow_iovas(self->fd, ids[i], NULL, 0));
		/* The id is looked up before the ranges are read */
		EXPECT_ERRNO(ENOENT, _allow_iovas(self->fd, ids[i], NULL, 1));
		EXPECT_ERRNO(ENOENT, _allow_iovas(self->fd, ids[i], &bad, 1));
	}
}

TEST_F(ioas, allow_iovas_wrong_object_type_is_enoent)
{
	struct iommu_iova_range r = { .start = IOVA_A, .last = IOVA_B };
	__u32 fault_id = 0;
	int fault_fd = -1;

	FAULT_ALLOC_OR_SKIP(self->fd, &fault_id, &fault_fd);
	EXPECT_ERRNO(ENOENT, _allow_iovas(self->fd, fault_id, &r, 1));
	EXPECT_ERRNO(ENOENT, _allow_iovas(self->fd, fault_id, NULL, 0));
	EXPECT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &r, 1));
	close(fault_fd);
}

TEST_F(ioas, allow_iovas_size_rules)
{
	struct iommu_iova_range r = { .start = IOVA_A, .last = IOVA_B };
	struct {
		struct iommu_ioas_allow_iovas cmd;
		__u64 tail;
	} big = {
		.cmd = {
			.ioas_id = self->ioas_id,
			.num_iovas = 1,
			.allowed_iovas = (uintptr_t)&r,
		},
	};
	__u32 small[] = { 0, 4, 8, 16, ALLOW_IOVAS_MIN_SIZE - 1 };
	unsigned int i;

	ASSERT_EQ(sizeof(big.cmd), ALLOW_IOVAS_MIN_SIZE);
	for (i = 0; i != ARRAY_SIZE(small); i++) {
		big.cmd.size = small[i];
		EXPECT_ERRNO(EINVAL,
			     ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &big));
	}
	big.cmd.size = sizeof(big);
	big.tail = 0x100;
	EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &big));
	big.tail = 0;
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &big));
	big.cmd.size = sizeof(big.cmd);
	big.tail = POISON64;	/* beyond size: never read */
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &big));
	EXPECT_EQ(POISON64, big.tail);
}

TEST_F(ioas, allow_iovas_accepts_readonly_memory)
{
	struct iommu_ioas_allow_iovas *cmd;
	struct iommu_iova_range *r;
	char *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, p);
	r = (void *)(p + 64);
	r[0] = (struct iommu_iova_range){ .start = IOVA_A, .last = IOVA_B - 1 };
	r[1] = (struct iommu_iova_range){ .start = IOVA_C, .last = IOVA_MAX };
	cmd = (void *)p;
	*cmd = (struct iommu_ioas_allow_iovas){
		.size = sizeof(*cmd),
		.ioas_id = self->ioas_id,
		.num_iovas = 2,
		.allowed_iovas = (uintptr_t)r,
	};
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ));
	/* ALLOW_IOVAS has no output: nothing is written back */
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, cmd));
	munmap(p, page_size);
}

/*
 * The allowed set is observable only through IOMMU_IOAS_MAP without
 * IOMMU_IOAS_MAP_FIXED_IOVA: the kernel picks the IOVA inside an allowed
 * range and fails with ENOSPC when none has room.
 */
FIXTURE(allowed)
{
	int fd;
	__u32 ioas_id;
	char *buf;	/* 4 pages to map */
};

FIXTURE_SETUP(allowed)
{
	self->fd = -1;
	self->buf = MAP_FAILED;
	SKIP_IF_NO_IOMMU_DEV();
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
	self->buf = mmap(NULL, 4 * page_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	memset(self->buf, 0x5a, 4 * page_size);
}

FIXTURE_TEARDOWN(allowed)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->buf != MAP_FAILED)
		munmap(self->buf, 4 * page_size);
}

/* A one-page range at @iova */
#define PAGE_RANGE(iova) { .start = (iova), .last = (iova) + page_size - 1 }

TEST_F(allowed, auto_map_stays_inside_allowed_range)
{
	struct iommu_iova_range a = PAGE_RANGE(IOVA_A);
	__u64 iova;

	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &a, 1));
	MAP_AUTO_OR_SKIP(self->fd, self->ioas_id, self->buf, page_size, &iova);
	EXPECT_EQ(IOVA_A, iova);
	/* The one allowed page is used up */
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id,
				       self->buf + page_size, page_size,
				       &iova));
}

TEST_F(allowed, auto_map_uses_every_allowed_range)
{
	struct iommu_iova_range r[] = { PAGE_RANGE(IOVA_C),
					PAGE_RANGE(IOVA_A) };
	__u64 iova1, iova2;

	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, r, 2));
	MAP_AUTO_OR_SKIP(self->fd, self->ioas_id, self->buf, page_size,
			 &iova1);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->buf + page_size,
			       page_size, &iova2));
	EXPECT_NE(iova1, iova2);
	EXPECT_TRUE(iova1 == IOVA_A || iova1 == IOVA_C);
	EXPECT_TRUE(iova2 == IOVA_A || iova2 == IOVA_C);
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id,
				       self->buf + 2 * page_size, page_size,
				       &iova1));
}

TEST_F(allowed, new_set_replaces_old_set)
{
	struct iommu_iova_range a = PAGE_RANGE(IOVA_A);
	struct iommu_iova_range b = PAGE_RANGE(IOVA_B);
	__u64 iova;

	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &a, 1));
	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &b, 1));
	MAP_AUTO_OR_SKIP(self->fd, self->ioas_id, self->buf, page_size, &iova);
	EXPECT_EQ(IOVA_B, iova);
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id,
				       self->buf + page_size, page_size,
				       &iova));
}

TEST_F(allowed, num_0_clears_the_set)
{
	struct iommu_iova_range a = PAGE_RANGE(IOVA_A);
	__u64 iova;
	int i;

	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &a, 1));
	MAP_AUTO_OR_SKIP(self->fd, self->ioas_id, self->buf, page_size, &iova);
	EXPECT_EQ(IOVA_A, iova);
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id,
				       self->buf + page_size, page_size,
				       &iova));

	/* No allowed ranges: any IOVA may be picked again */
	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, NULL, 0));
	for (i = 1; i != 4; i++) {
		ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id,
				       self->buf + i * page_size, page_size,
				       &iova));
		EXPECT_NE(IOVA_A, iova);
		EXPECT_EQ(0, iova % page_size);
	}
}

TEST_F(allowed, failed_call_keeps_previous_set)
{
	struct iommu_iova_range a = PAGE_RANGE(IOVA_A);
	struct iommu_iova_range b = PAGE_RANGE(IOVA_B);
	struct iommu_iova_range dup[] = { PAGE_RANGE(IOVA_B),
					  PAGE_RANGE(IOVA_C),
					  PAGE_RANGE(IOVA_B) };
	struct iommu_iova_range bad_last[] = {
		PAGE_RANGE(IOVA_B),
		{ .start = IOVA_C, .last = IOVA_C },
	};
	struct iommu_ioas_allow_iovas rsv = {
		.size = sizeof(rsv),
		.ioas_id = self->ioas_id,
		.num_iovas = 1,
		.__reserved = 1,
		.allowed_iovas = (uintptr_t)&b,
	};
	struct iommu_iova_range *faulting;
	char *gbuf = map_with_guard(1);
	__u64 iova;

	ASSERT_NE(NULL, gbuf);
	faulting = (void *)(gbuf + page_size - sizeof(*faulting));
	*faulting = b;

	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &a, 1));

	/* Every failure happens after B was already read */
	EXPECT_ERRNO(EINVAL, _allow_iovas(self->fd, self->ioas_id, dup, 3));
	EXPECT_ERRNO(EINVAL, _allow_iovas(self->fd, self->ioas_id, bad_last,
					  2));
	EXPECT_ERRNO(EFAULT, _allow_iovas(self->fd, self->ioas_id, faulting,
					  2));
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &rsv));
	rsv.__reserved = 0;
	rsv.size = ALLOW_IOVAS_MIN_SIZE - 1;
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &rsv));

	/* Still exactly {A}: neither cleared nor extended by B or C */
	MAP_AUTO_OR_SKIP(self->fd, self->ioas_id, self->buf, page_size, &iova);
	EXPECT_EQ(IOVA_A, iova);
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id,
				       self->buf + page_size, page_size,
				       &iova));
	unmap_with_guard(gbuf, 1);
}

TEST_F(allowed, set_is_per_ioas)
{
	struct iommu_iova_range a = PAGE_RANGE(IOVA_A);
	__u32 other;
	__u64 iova;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &other));
	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &a, 1));
	MAP_AUTO_OR_SKIP(self->fd, self->ioas_id, self->buf, page_size, &iova);
	EXPECT_EQ(IOVA_A, iova);
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id,
				       self->buf + page_size, page_size,
				       &iova));
	/* The other IOAS has no allowed ranges */
	EXPECT_EQ(0, _map_auto(self->fd, other, self->buf + page_size,
			       page_size, &iova));
	EXPECT_EQ(0, _map_auto(self->fd, other, self->buf + 2 * page_size,
			       page_size, &iova));
}

/* ------------------------------------------------------------------------
 * IOMMU_OPTION: IOMMU_OPTION_RLIMIT_MODE (global, object_id 0)
 */

TEST_F(iommufd, rlimit_mode_get_default_is_0)
{
	__u64 val = POISON64;

	/* val64 is written back on GET */
	ASSERT_EQ(0, _option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
			     IOMMU_OPTION_OP_GET, 0, &val));
	EXPECT_EQ(0, val);
}

TEST_F(iommufd, rlimit_mode_get_with_objects_present)
{
	__u32 id;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &id));
	EXPECT_EQ(0, rlimit_get(self->fd));
}

TEST_F(iommufd, rlimit_mode_set_1_then_0)
{
	__u64 val;

	SKIP_IF_NOT_ROOT();
	val = 1;
	ASSERT_EQ(0, _option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
			     IOMMU_OPTION_OP_SET, 0, &val));
	EXPECT_EQ(1, val);
	EXPECT_EQ(1, rlimit_get(self->fd));
	/* Again: setting the current value is fine */
	ASSERT_EQ(0, _rlimit_set(self->fd, 1));
	EXPECT_EQ(1, rlimit_get(self->fd));

	val = 0;
	ASSERT_EQ(0, _option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
			     IOMMU_OPTION_OP_SET, 0, &val));
	EXPECT_EQ(0, val);
	EXPECT_EQ(0, rlimit_get(self->fd));
	ASSERT_EQ(0, _rlimit_set(self->fd, 0));
	EXPECT_EQ(0, rlimit_get(self->fd));
}

TEST_F(iommufd, rlimit_mode_is_per_file)
{
	int fd2;

	SKIP_IF_NOT_ROOT();
	ASSERT_EQ(0, _rlimit_set(self->fd, 1));
	fd2 = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, rlimit_get(fd2));
	EXPECT_EQ(1, rlimit_get(self->fd));
	close(fd2);
}

TEST_F(iommufd, rlimit_mode_set_with_objects_is_ebusy)
{
	__u32 id1, id2;

	SKIP_IF_NOT_ROOT();
	ASSERT_EQ(0, _ioas_alloc(self->fd, &id1));
	EXPECT_ERRNO(EBUSY, _rlimit_set(self->fd, 1));
	EXPECT_ERRNO(EBUSY, _rlimit_set(self->fd, 0));
	/* The object check comes before the value check */
	EXPECT_ERRNO(EBUSY, _rlimit_set(self->fd, 2));
	EXPECT_EQ(0, rlimit_get(self->fd));

	ASSERT_EQ(0, _ioas_alloc(self->fd, &id2));
	ASSERT_EQ(0, _destroy(self->fd, id1));
	EXPECT_ERRNO(EBUSY, _rlimit_set(self->fd, 1));
	EXPECT_EQ(0, rlimit_get(self->fd));

	/* No objects left: allowed again */
	ASSERT_EQ(0, _destroy(self->fd, id2));
	ASSERT_EQ(0, _rlimit_set(self->fd, 1));
	EXPECT_EQ(1, rlimit_get(self->fd));

	/* And objects made afterwards pin the new mode */
	ASSERT_EQ(0, _ioas_alloc(self->fd, &id1));
	EXPECT_ERRNO(EBUSY, _rlimit_set(self->fd, 0));
	EXPECT_EQ(1, rlimit_get(self->fd));
}

TEST_F(iommufd, rlimit_mode_set_with_fault_object_is_ebusy)
{
	__u32 fault_id = 0;
	int fault_fd = -1;

	SKIP_IF_NOT_ROOT();
	FAULT_ALLOC_OR_SKIP(self->fd, &fault_id, &fault_fd);
	/* Any object counts, not just an IOAS */
	EXPECT_ERRNO(EBUSY, _rlimit_set(self->fd, 1));
	EXPECT_EQ(0, rlimit_get(self->fd));
	close(fault_fd);
}

TEST_F(iommufd, rlimit_mode_set_invalid_value_is_einval)
{
	__u64 vals[] = { 2, 3, 0x100, 1ULL << 32, (1ULL << 32) | 1,
			 1ULL << 63, UINT64_MAX };
	unsigned int i;

	SKIP_IF_NOT_ROOT();
	for (i = 0; i != ARRAY_SIZE(vals); i++) {
		__u64 val = vals[i];

		EXPECT_ERRNO(EINVAL, _option(self->fd,
					     IOMMU_OPTION_RLIMIT_MODE,
					     IOMMU_OPTION_OP_SET, 0, &val));
		/* val64 is only written back on success */
		EXPECT_EQ(vals[i], val);
		EXPECT_EQ(0, rlimit_get(self->fd));
	}
	ASSERT_EQ(0, _rlimit_set(self->fd, 1));
	for (i = 0; i != ARRAY_SIZE(vals); i++) {
		EXPECT_ERRNO(EINVAL, _rlimit_set(self->fd, vals[i]));
		EXPECT_EQ(1, rlimit_get(self->fd));
	}
}

TEST_F(iommufd, rlimit_mode_object_id_nonzero_is_eopnotsupp)
{
	__u32 ioas_id;
	__u32 ids[] = { 1, 2, 0x7fffffff, UINT32_MAX };
	unsigned int i;
	__u64 val;

	for (i = 0; i != ARRAY_SIZE(ids); i++) {
		val = POISON64;
		EXPECT_ERRNO(EOPNOTSUPP,
			     _option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
				     IOMMU_OPTION_OP_GET, ids[i], &val));
		EXPECT_EQ(POISON64, val);
		val = 1;
		EXPECT_ERRNO(EOPNOTSUPP,
			     _option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
				     IOMMU_OPTION_OP_SET, ids[i], &val));
	}
	/* Even when the id is a live IOAS */
	ASSERT_EQ(0, _ioas_alloc(self->fd, &ioas_id));
	val = POISON64;
	EXPECT_ERRNO(EOPNOTSUPP, _option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
					 IOMMU_OPTION_OP_GET, ioas_id, &val));
	EXPECT_EQ(POISON64, val);
	EXPECT_EQ(0, rlimit_get(self->fd));
}

TEST_F(iommufd, rlimit_mode_unknown_op_is_eopnotsupp)
{
	__u16 ops[] = { 2, 3, 0x100, 0xffff };
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(ops); i++) {
		__u64 val = POISON64;

		EXPECT_ERRNO(EOPNOTSUPP,
			     _option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
				     ops[i], 0, &val));
		EXPECT_EQ(POISON64, val);
		val = 1;
		EXPECT_ERRNO(EOPNOTSUPP,
			     _option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
				     ops[i], 0, &val));
	}
	EXPECT_EQ(0, rlimit_get(self->fd));
}

TEST_F(iommufd, rlimit_mode_set_unprivileged_is_eperm)
{
	__u64 val;
	__u32 id;

	SKIP_IF_NOT_ROOT();
	/* The file was opened as root; setuid() drops every capability */
	ASSERT_EQ(0, setgid(65534));
	ASSERT_EQ(0, setuid(65534));
	ASSERT_FALSE(have_cap(CAP_SYS_RESOURCE));

	EXPECT_ERRNO(EPERM, _rlimit_set(self->fd, 1));
	EXPECT_ERRNO(EPERM, _rlimit_set(self->fd, 0));
	/* The capability check comes before the value check */
	EXPECT_ERRNO(EPERM, _rlimit_set(self->fd, 2));
	/* ... and after the object_id check */
	val = 1;
	EXPECT_ERRNO(EOPNOTSUPP, _option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
					 IOMMU_OPTION_OP_SET, 1, &val));
	/* GET needs no privilege */
	EXPECT_EQ(0, rlimit_get(self->fd));

	/* ... and before the object check */
	ASSERT_EQ(0, _ioas_alloc(self->fd, &id));
	EXPECT_ERRNO(EPERM, _rlimit_set(self->fd, 1));
	EXPECT_EQ(0, rlimit_get(self->fd));
}

TEST_F(iommufd, rlimit_mode_set_needs_cap_sys_resource)
{
	SKIP_IF_NOT_ROOT();
	/* Root without CAP_SYS_RESOURCE in the effective set */
	ASSERT_EQ(0, set_effective_caps(CAP_SYS_RESOURCE, false));
	ASSERT_FALSE(have_cap(CAP_SYS_RESOURCE));
	ASSERT_TRUE(have_cap(CAP_SYS_ADMIN));
	EXPECT_ERRNO(EPERM, _rlimit_set(self->fd, 1));
	EXPECT_EQ(0, rlimit_get(self->fd));
}

TEST_F(iommufd, rlimit_mode_set_with_only_cap_sys_resource)
{
	SKIP_IF_NOT_ROOT();
	/* CAP_SYS_RESOURCE alone is enough */
	ASSERT_EQ(0, set_effective_caps(CAP_SYS_RESOURCE, true));
	ASSERT_TRUE(have_cap(CAP_SYS_RESOURCE));
	ASSERT_FALSE(have_cap(CAP_SYS_ADMIN));
	ASSERT_EQ(0, _rlimit_set(self->fd, 1));
	EXPECT_EQ(1, rlimit_get(self->fd));
}

/* ------------------------------------------------------------------------
 * IOMMU_OPTION: generic argument checks
 */

TEST_F(ioas, option_unknown_option_id_is_eopnotsupp)
{
	__u32 opts[] = { 2, 3, 0x100, 0x80000000U, UINT32_MAX };
	__u32 objs[] = { 0, self->ioas_id, UINT32_MAX };
	__u16 ops[] = { IOMMU_OPTION_OP_SET, IOMMU_OPTION_OP_GET, 7 };
	unsigned int i, j, k;

	for (i = 0; i != ARRAY_SIZE(opts); i++) {
		for (j = 0; j != ARRAY_SIZE(objs); j++) {
			for (k = 0; k != ARRAY_SIZE(ops); k++) {
				__u64 val = POISON64;

				EXPECT_ERRNO(EOPNOTSUPP,
					     _option(self->fd, opts[i], ops[k],
						     objs[j], &val));
				EXPECT_EQ(POISON64, val);
			}
		}
	}
}

TEST_F(ioas, option_reserved_nonzero_is_eopnotsupp)
{
	struct iommu_option cmd;
	__u16 bits[] = { 1, 0x8000, 0xffff };
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(bits); i++) {
		cmd = (struct iommu_option){
			.size = sizeof(cmd),
			.option_id = IOMMU_OPTION_RLIMIT_MODE,
			.op = IOMMU_OPTION_OP_GET,
			.__reserved = bits[i],
			.val64 = POISON64,
		};
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_OPTION, &cmd));
		EXPECT_EQ(POISON64, cmd.val64);

		cmd.option_id = IOMMU_OPTION_HUGE_PAGES;
		cmd.object_id = self->ioas_id;
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_OPTION, &cmd));
		EXPECT_EQ(POISON64, cmd.val64);

		/* Before the object lookup */
		cmd.object_id = 0;
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_OPTION, &cmd));

		/* A SET is not applied */
		cmd.op = IOMMU_OPTION_OP_SET;
		cmd.object_id = self->ioas_id;
		cmd.val64 = 0;
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_OPTION, &cmd));
		EXPECT_EQ(1, huge_get(self->fd, self->ioas_id));
	}
}

TEST_F(ioas, option_size_rules)
{
	struct {
		struct iommu_option cmd;
		__u64 tail;
	} big = {
		.cmd = {
			.option_id = IOMMU_OPTION_HUGE_PAGES,
			.op = IOMMU_OPTION_OP_GET,
			.object_id = self->ioas_id,
			.val64 = POISON64,
		},
	};
	__u32 small[] = { 0, 4, 8, 16, OPTION_MIN_SIZE - 1 };
	unsigned int i;

	ASSERT_EQ(sizeof(big.cmd), OPTION_MIN_SIZE);
	for (i = 0; i != ARRAY_SIZE(small); i++) {
		big.cmd.size = small[i];
		EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_OPTION, &big));
		EXPECT_EQ(POISON64, big.cmd.val64);
	}
	big.cmd.size = sizeof(big);
	big.tail = 1;
	EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_OPTION, &big));
	EXPECT_EQ(POISON64, big.cmd.val64);

	big.tail = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_OPTION, &big));
	EXPECT_EQ(1, big.cmd.val64);
	EXPECT_EQ(0, big.tail);
}

TEST_F(ioas, option_get_writes_only_val64)
{
	struct iommu_option *cmd;
	char *p = map_rw_then_ro();

	ASSERT_NE(NULL, p);
	/*
	 * The struct ends where a zeroed read-only page starts and size
	 * claims 8 more bytes: only val64 is written.
	 */
	cmd = (void *)(p + page_size - sizeof(*cmd));
	*cmd = (struct iommu_option){
		.size = sizeof(*cmd) + 8,
		.option_id = IOMMU_OPTION_HUGE_PAGES,
		.op = IOMMU_OPTION_OP_GET,
		.object_id = self->ioas_id,
		.val64 = POISON64,
	};
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_OPTION, cmd));
	EXPECT_EQ(1, cmd->val64);
	EXPECT_EQ(sizeof(*cmd) + 8, cmd->size);
	EXPECT_EQ(IOMMU_OPTION_HUGE_PAGES, cmd->option_id);
	EXPECT_EQ(IOMMU_OPTION_OP_GET, cmd->op);
	EXPECT_EQ(self->ioas_id, cmd->object_id);

	cmd->option_id = IOMMU_OPTION_RLIMIT_MODE;
	cmd->object_id = 0;
	cmd->val64 = POISON64;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_OPTION, cmd));
	EXPECT_EQ(0, cmd->val64);
	munmap(p, 2 * page_size);
}

TEST_F(ioas, option_readonly_struct_is_efault)
{
	struct iommu_option *cmd;
	char *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, p);
	cmd = (void *)p;
	*cmd = (struct iommu_option){
		.size = sizeof(*cmd),
		.option_id = IOMMU_OPTION_HUGE_PAGES,
		.op = IOMMU_OPTION_OP_GET,
		.object_id = self->ioas_id,
	};
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_OPTION, cmd));

	/*
	 * val64 is written back after a SET too, once the option is
	 * applied: the SET takes effect and still reports EFAULT.
	 */
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ | PROT_WRITE));
	cmd->op = IOMMU_OPTION_OP_SET;
	cmd->val64 = 0;
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_OPTION, cmd));
	EXPECT_EQ(0, huge_get(self->fd, self->ioas_id));
	munmap(p, page_size);
}

/* ------------------------------------------------------------------------
 * IOMMU_OPTION: IOMMU_OPTION_HUGE_PAGES (per IOAS)
 */

TEST_F(ioas, huge_pages_get_default_is_1)
{
	__u64 val = POISON64;

	ASSERT_EQ(0, _option(self->fd, IOMMU_OPTION_HUGE_PAGES,
			     IOMMU_OPTION_OP_GET, self->ioas_id, &val));
	EXPECT_EQ(1, val);
	val = 0;
	ASSERT_EQ(0, _option(self->fd, IOMMU_OPTION_HUGE_PAGES,
			     IOMMU_OPTION_OP_GET, self->ioas_id, &val));
	EXPECT_EQ(1, val);
}

TEST_F(ioas, huge_pages_set_0_then_1)
{
	__u64 val;

	val = 0;
	ASSERT_EQ(0, _option(self->fd, IOMMU_OPTION_HUGE_PAGES,
			     IOMMU_OPTION_OP_SET, self->ioas_id, &val));
	EXPECT_EQ(0, val);
	EXPECT_EQ(0, huge_get(self->fd, self->ioas_id));
	/* Again */
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 0));
	EXPECT_EQ(0, huge_get(self->fd, self->ioas_id));

	val = 1;
	ASSERT_EQ(0, _option(self->fd, IOMMU_OPTION_HUGE_PAGES,
			     IOMMU_OPTION_OP_SET, self->ioas_id, &val));
	EXPECT_EQ(1, val);
	EXPECT_EQ(1, huge_get(self->fd, self->ioas_id));
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 1));
	EXPECT_EQ(1, huge_get(self->fd, self->ioas_id));
}

TEST_F(ioas, huge_pages_set_invalid_value_is_einval)
{
	__u64 vals[] = { 2, 3, 0x100, 1ULL << 32, (1ULL << 32) | 1,
			 1ULL << 63, UINT64_MAX };
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(vals); i++) {
		__u64 val = vals[i];

		EXPECT_ERRNO(EINVAL, _option(self->fd, IOMMU_OPTION_HUGE_PAGES,
					     IOMMU_OPTION_OP_SET,
					     self->ioas_id, &val));
		EXPECT_EQ(vals[i], val);
		EXPECT_EQ(1, huge_get(self->fd, self->ioas_id));
	}
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 0));
	for (i = 0; i != ARRAY_SIZE(vals); i++) {
		EXPECT_ERRNO(EINVAL, _huge_set(self->fd, self->ioas_id,
					       vals[i]));
		EXPECT_EQ(0, huge_get(self->fd, self->ioas_id));
	}
}

TEST_F(ioas, huge_pages_unknown_id_is_enoent)
{
	__u32 gone;
	__u32 ids[] = { 0, self->ioas_id + 1, 0x7fffffff, UINT32_MAX, 0 };
	unsigned int i;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &gone));
	ASSERT_EQ(0, _destroy(self->fd, gone));
	ids[4] = gone;
	for (i = 0; i != ARRAY_SIZE(ids); i++) {
		__u64 val = POISON64;

		EXPECT_ERRNO(ENOENT, _option(self->fd, IOMMU_OPTION_HUGE_PAGES,
					     IOMMU_OPTION_OP_GET, ids[i],
					     &val));
		EXPECT_EQ(POISON64, val);
		EXPECT_ERRNO(ENOENT, _huge_set(self->fd, ids[i], 0));
		/* The id is looked up before the value ... */
		EXPECT_ERRNO(ENOENT, _huge_set(self->fd, ids[i], 2));
		/* ... and before the op */
		val = 0;
		EXPECT_ERRNO(ENOENT, _option(self->fd, IOMMU_OPTION_HUGE_PAGES,
					     9, ids[i], &val));
	}
	EXPECT_EQ(1, huge_get(self->fd, self->ioas_id));
}

TEST_F(ioas, huge_pages_wrong_object_type_is_enoent)
{
	__u32 fault_id = 0;
	int fault_fd = -1;
	__u64 val = POISON64;

	FAULT_ALLOC_OR_SKIP(self->fd, &fault_id, &fault_fd);
	EXPECT_ERRNO(ENOENT, _option(self->fd, IOMMU_OPTION_HUGE_PAGES,
				     IOMMU_OPTION_OP_GET, fault_id, &val));
	EXPECT_EQ(POISON64, val);
	EXPECT_ERRNO(ENOENT, _huge_set(self->fd, fault_id, 0));
	close(fault_fd);
}

TEST_F(ioas, huge_pages_unknown_op_is_eopnotsupp)
{
	__u16 ops[] = { 2, 3, 0x100, 0xffff };
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(ops); i++) {
		__u64 val = POISON64;

		EXPECT_ERRNO(EOPNOTSUPP,
			     _option(self->fd, IOMMU_OPTION_HUGE_PAGES, ops[i],
				     self->ioas_id, &val));
		EXPECT_EQ(POISON64, val);
		val = 0;
		EXPECT_ERRNO(EOPNOTSUPP,
			     _option(self->fd, IOMMU_OPTION_HUGE_PAGES, ops[i],
				     self->ioas_id, &val));
		EXPECT_EQ(1, huge_get(self->fd, self->ioas_id));
	}
}

TEST_F(ioas, huge_pages_is_per_ioas)
{
	__u32 other;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &other));
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 0));
	EXPECT_EQ(0, huge_get(self->fd, self->ioas_id));
	EXPECT_EQ(1, huge_get(self->fd, other));
	EXPECT_EQ(1, _iova_alignment(self->fd, other));

	ASSERT_EQ(0, _huge_set(self->fd, other, 0));
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 1));
	EXPECT_EQ(1, huge_get(self->fd, self->ioas_id));
	EXPECT_EQ(0, huge_get(self->fd, other));
}

TEST_F(ioas, huge_pages_0_sets_page_size_iova_alignment)
{
	/* iopt_calculate_iova_alignment(): PAGE_SIZE when huge pages are off */
	ASSERT_EQ(1, _iova_alignment(self->fd, self->ioas_id));
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 0));
	EXPECT_EQ(page_size, _iova_alignment(self->fd, self->ioas_id));
	ASSERT_FULL_RANGE_ONLY(self->fd, self->ioas_id);
	/* A failed SET changes nothing */
	EXPECT_ERRNO(EINVAL, _huge_set(self->fd, self->ioas_id, 2));
	EXPECT_EQ(page_size, _iova_alignment(self->fd, self->ioas_id));
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 1));
	EXPECT_EQ(1, _iova_alignment(self->fd, self->ioas_id));
}

TEST_F(ioas, huge_pages_set_needs_no_privilege)
{
	SKIP_IF_NOT_ROOT();
	ASSERT_EQ(0, setgid(65534));
	ASSERT_EQ(0, setuid(65534));
	ASSERT_FALSE(have_cap(CAP_SYS_RESOURCE));
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 0));
	EXPECT_EQ(0, huge_get(self->fd, self->ioas_id));
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 1));
	EXPECT_EQ(1, huge_get(self->fd, self->ioas_id));
}

TEST_F(ioas, huge_pages_independent_of_rlimit_mode)
{
	SKIP_IF_NOT_ROOT();
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 0));
	/* An IOAS exists, so RLIMIT_MODE cannot change; huge pages can */
	EXPECT_ERRNO(EBUSY, _rlimit_set(self->fd, 1));
	EXPECT_EQ(0, rlimit_get(self->fd));
	EXPECT_EQ(0, huge_get(self->fd, self->ioas_id));
}

TEST_HARNESS_MAIN
