// SPDX-License-Identifier: GPL-2.0-only
/*
 * IOMMU_IOAS_MAP and IOMMU_IOAS_UNMAP on an IOAS without devices or
 * domains: no reserved ranges, IOVA alignment 1 (PAGE_SIZE with
 * IOMMU_OPTION_HUGE_PAGES 0).
 *
 * Every expectation below is what upstream drivers/iommu/iommufd/ioas.c
 * (iommufd_ioas_map, iommufd_ioas_unmap, iommufd_ioas_destroy),
 * io_pagetable.c (iopt_map_user_pages, iopt_alloc_area_pages,
 * iopt_alloc_iova, iopt_check_iova, iopt_insert_area, iopt_unmap_iova,
 * iopt_unmap_all, iopt_unmap_iova_range, iopt_check_iova_alignment) and
 * pages.c (iopt_alloc_user_pages, iopt_alloc_pages, iopt_area_fill_domains)
 * do:
 *
 *  - MAP checks, in this order: unknown flags or __reserved -> EOPNOTSUPP;
 *    iova or length >= ULONG_MAX -> EOVERFLOW (even without FIXED_IOVA);
 *    neither READABLE nor WRITEABLE -> EINVAL; the IOAS id -> ENOENT;
 *    user_va + length wrapping -> EOVERFLOW; length 0 or
 *    length > SIZE_MAX - PAGE_SIZE -> EINVAL; length not a multiple of the
 *    IOVA alignment -> EINVAL; then FIXED_IOVA: iova not aligned -> EINVAL,
 *    iova + length - 1 wrapping -> EOVERFLOW, overlap -> EEXIST, and
 *    user_va % PAGE_SIZE not aligned -> EINVAL; without FIXED_IOVA:
 *    length >= ULONG_MAX / 2 -> EOVERFLOW, derived alignment below the
 *    IOAS's -> EINVAL, no room -> ENOSPC.
 *  - Without a domain nothing is pinned: the user memory is not looked at
 *    (unmapped, PROT_NONE or read-only memory maps fine, WRITEABLE or not),
 *    nothing is charged to RLIMIT_MEMLOCK, and VmPin/VmLck do not move.
 *  - The allowed ranges only steer automatic allocation; FIXED_IOVA
 *    ignores them. Automatic allocation never returns an IOVA below
 *    PAGE_SIZE or in the last page, and aligns to
 *    min(roundup_pow_of_two(length), lowest set bit of user_va) capped at
 *    HPAGE_SIZE (with THP) or PAGE_SIZE (without), then ORs in
 *    user_va % PAGE_SIZE; the first hole of the first allowed range where
 *    that fits is used.
 *  - UNMAP: the IOAS id first (ENOENT); iova 0 with length U64_MAX unmaps
 *    everything and succeeds with length 0 on an empty IOAS; otherwise iova
 *    or length >= ULONG_MAX -> EOVERFLOW, length 0 -> EINVAL, wrap ->
 *    EOVERFLOW; areas are removed in IOVA order and an area only partly
 *    inside the range stops the walk with ENOENT (the areas before it stay
 *    unmapped); nothing in the range -> ENOENT. Success writes the number
 *    of bytes unmapped to length.
 *  - Both write the whole struct back only on success, after the work is
 *    done: a read-only struct gives EFAULT with the map/unmap applied.
 *
 * The file skips when /dev/iommu does not exist.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/resource.h>

#include "iommufd_test_utils.h"

/* Minimum sizes the kernel accepts (IOCTL_OP(..., _last) in main.c) */
#define MAP_MIN_SIZE offsetofend(struct iommu_ioas_map, iova)
#define UNMAP_MIN_SIZE offsetofend(struct iommu_ioas_unmap, length)

/* Pages of the fixture's ordinary buffer */
#define BUF_PAGES 16

/* A kernel-half address: never valid user memory */
#define KERNEL_VA 0xffff888000000000ULL

/* ------------------------------------------------------------------------
 * Helpers
 */

/* IOMMU_IOAS_IOVA_RANGES must report exactly [0, ULONG_MAX], alignment 1 */
#define ASSERT_FULL_RANGE_ONLY(fd, id)                                       \
	({                                                                   \
		struct iommu_iova_range __r[2] = {                           \
			{ POISON64, POISON64 }, { POISON64, POISON64 }       \
		};                                                           \
		struct iommu_ioas_iova_ranges __c = {                        \
			.size = sizeof(__c),                                 \
			.ioas_id = (id),                                     \
			.num_iovas = 2,                                      \
			.allowed_iovas = (uintptr_t)__r,                     \
		};                                                           \
		ASSERT_EQ(0, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &__c));       \
		ASSERT_EQ(1, __c.num_iovas);                                 \
		ASSERT_EQ(1, __c.out_iova_alignment);                        \
		ASSERT_EQ(0, __r[0].start);                                  \
		ASSERT_EQ(IOVA_MAX, __r[0].last);                            \
		ASSERT_EQ(POISON64, __r[1].start);                           \
	})

/*
 * Lower RLIMIT_MEMLOCK to @limit and become uid/gid 65534, which drops
 * every capability (CAP_IPC_LOCK included). 0 on success.
 */
static int drop_to_nobody(rlim_t limit)
{
	struct rlimit rl = { .rlim_cur = limit, .rlim_max = limit };

	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return -1;
	if (setgid(65534) || setuid(65534))
		return -1;
	return 0;
}

/* ------------------------------------------------------------------------
 * Fixtures
 */

/*
 * An IOAS, BUF_PAGES ordinary read-write pages at buf, and al: an address
 * aligned to 4 MiB (so its lowest set bit never limits the alignment) with
 * 4 MiB of reserved, untouched anonymous memory behind it.
 */
FIXTURE(ioas)
{
	int fd;
	__u32 ioas_id;
	char *buf;
	char *region;
	char *al;
};

#define REGION_SIZE (8UL << 20)

FIXTURE_SETUP(ioas)
{
	self->fd = -1;
	self->buf = NULL;
	self->region = NULL;
	SKIP_IF_NO_IOMMU_DEV();
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
	self->buf = anon(BUF_PAGES * page_size, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, self->buf);
	memset(self->buf, 0x5a, BUF_PAGES * page_size);
	self->region = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
			    0);
	ASSERT_NE(MAP_FAILED, self->region);
	self->al = (char *)(((uintptr_t)self->region + (4UL << 20) - 1) &
			    ~((4UL << 20) - 1));
}

FIXTURE_TEARDOWN(ioas)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->buf)
		munmap(self->buf, BUF_PAGES * page_size);
	if (self->region && self->region != MAP_FAILED)
		munmap(self->region, REGION_SIZE);
}

/* ------------------------------------------------------------------------
 * IOMMU_IOAS_MAP with IOMMU_IOAS_MAP_FIXED_IOVA
 */

TEST_F(ioas, map_fixed_success_writes_back_same_struct)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = RW | FIXED,
		.ioas_id = self->ioas_id,
		.user_va = (uintptr_t)self->buf,
		.length = 4 * page_size,
		.iova = IOVA_A,
	};

	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_MAP, &cmd));
	EXPECT_EQ(sizeof(cmd), cmd.size);
	EXPECT_EQ(RW | FIXED, cmd.flags);
	EXPECT_EQ(self->ioas_id, cmd.ioas_id);
	EXPECT_EQ(0, cmd.__reserved);
	EXPECT_EQ((uintptr_t)self->buf, cmd.user_va);
	EXPECT_EQ(4 * page_size, cmd.length);
	EXPECT_EQ(IOVA_A, cmd.iova);

	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A);
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A + 4 * page_size - 1);
	ASSERT_FREE(self->fd, self->ioas_id, IOVA_A - 1);
	/* Areas are not reserved ranges: IOVA_RANGES does not change */
	ASSERT_FULL_RANGE_ONLY(self->fd, self->ioas_id);
	ASSERT_FREE(self->fd, self->ioas_id, IOVA_A + 4 * page_size);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A, 4 * page_size,
		     4 * page_size);
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(ioas, map_fixed_access_flags)
{
	__u32 flags[] = { IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE,
			  RW };
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(flags); i++) {
		__u64 iova = IOVA_A + i * IOVA_A;

		ASSERT_EQ(0, _map(self->fd, self->ioas_id, flags[i] | FIXED,
				  (uintptr_t)self->buf, page_size, &iova));
		EXPECT_EQ(IOVA_A + i * IOVA_A, iova);
	}
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 3 * page_size);
}

TEST_F(ioas, map_fixed_overlap_is_eexist)
{
	__u64 a = IOVA_A, len = 4 * page_size;
	struct {
		__u64 iova, length;
	} bad[] = {
		{ a, len },			/* the same */
		{ a, 1 },			/* first byte */
		{ a + len - 1, 1 },		/* last byte */
		{ a - page_size, 2 * page_size },	/* over the start */
		{ a + len - page_size, 2 * page_size },	/* over the end */
		{ a - page_size, len + 2 * page_size },	/* superset */
		{ a + page_size, page_size },	/* inside */
		{ a - 1, 2 },			/* one byte into it */
	};
	unsigned int i;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, len, a);
	for (i = 0; i != ARRAY_SIZE(bad); i++) {
		__u64 iova = bad[i].iova;

		EXPECT_ERRNO(EEXIST, _map(self->fd, self->ioas_id, RW | FIXED,
					  (uintptr_t)self->buf,
					  bad[i].length, &iova));
		/* Nothing written back */
		EXPECT_EQ(bad[i].iova, iova);
	}
	/* Adjacent on both sides is fine */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 a - page_size);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 a + len);
	/* Only the three areas exist */
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, len + 2 * page_size);
}

TEST_F(ioas, map_fixed_iova_0_and_top_of_address_space)
{
	__u64 top = IOVA_MAX - page_size + 1;

	/* IOVA 0 is only avoided by automatic allocation */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size, 0);
	/* The last page: iova + length - 1 == ULONG_MAX does not wrap */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size, top);
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_MAX - 1);
	ASSERT_FULL_RANGE_ONLY(self->fd, self->ioas_id);
	ASSERT_UNMAP(self->fd, self->ioas_id, top, page_size, page_size);
	ASSERT_UNMAP(self->fd, self->ioas_id, 0, page_size, page_size);
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(ioas, map_fixed_iova_plus_length_wrap_is_eoverflow)
{
	struct {
		__u64 iova, length;
	} bad[] = {
		{ IOVA_MAX - page_size + 1, 2 * page_size },
		{ IOVA_MAX - 1, 3 },
		{ IOVA_MAX - 1, page_size },
		{ 1ULL << 63, (1ULL << 63) + 1 },
		{ IOVA_MAX - page_size, 1ULL << 40 },
	};
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(bad); i++) {
		__u64 iova = bad[i].iova;

		EXPECT_ERRNO(EOVERFLOW,
			     _map(self->fd, self->ioas_id, RW | FIXED,
				  (uintptr_t)self->buf, bad[i].length, &iova));
		EXPECT_EQ(bad[i].iova, iova);
	}
	ASSERT_EMPTY(self->fd, self->ioas_id);
	/* Exactly up to ULONG_MAX is fine */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 2,
			 IOVA_MAX - 1);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 1ULL << 62,
			 1ULL << 63);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, (1ULL << 62) + 2);
}

TEST_F(ioas, map_iova_or_length_ulong_max_is_eoverflow)
{
	__u32 flags[] = { RW | FIXED, RW };
	unsigned int i;
	__u64 iova;

	for (i = 0; i != ARRAY_SIZE(flags); i++) {
		/* iova ULONG_MAX is refused even when it is not used */
		iova = IOVA_MAX;
		EXPECT_ERRNO(EOVERFLOW, _map(self->fd, self->ioas_id, flags[i],
					     (uintptr_t)self->buf, page_size,
					     &iova));
		EXPECT_EQ(IOVA_MAX, iova);
		iova = IOVA_A;
		EXPECT_ERRNO(EOVERFLOW, _map(self->fd, self->ioas_id, flags[i],
					     (uintptr_t)self->buf, UINT64_MAX,
					     &iova));
		EXPECT_EQ(IOVA_A, iova);

		/* Before the access flags and the IOAS id */
		iova = IOVA_MAX;
		EXPECT_ERRNO(EOVERFLOW,
			     _map(self->fd, self->ioas_id, flags[i] & FIXED,
				  (uintptr_t)self->buf, page_size, &iova));
		iova = IOVA_A;
		EXPECT_ERRNO(EOVERFLOW, _map(self->fd, 0, flags[i],
					     (uintptr_t)self->buf, UINT64_MAX,
					     &iova));
	}
	/* After unknown flags */
	iova = IOVA_MAX;
	EXPECT_ERRNO(EOPNOTSUPP, _map(self->fd, self->ioas_id, RW | 8,
				      (uintptr_t)self->buf, UINT64_MAX,
				      &iova));
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(ioas, map_length_0_is_einval)
{
	__u32 flags[] = { RW | FIXED, RW, IOMMU_IOAS_MAP_READABLE };
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(flags); i++) {
		__u64 iova = IOVA_A;

		EXPECT_ERRNO(EINVAL, _map(self->fd, self->ioas_id, flags[i],
					  (uintptr_t)self->buf, 0, &iova));
		EXPECT_EQ(IOVA_A, iova);
	}
	/* The IOAS id is checked first */
	EXPECT_ERRNO(ENOENT, _map_fixed(self->fd, 0, self->buf, 0, IOVA_A));
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(ioas, map_unknown_flags_or_reserved_is_eopnotsupp)
{
	__u32 bad[] = { 1U << 3, 1U << 4, 1U << 31, ~0U,
			IOMMU_IOAS_MAP_READABLE | (1U << 8) };
	struct iommu_ioas_map cmd;
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(bad); i++) {
		cmd = (struct iommu_ioas_map){
			.size = sizeof(cmd),
			.flags = bad[i] | RW | FIXED,
			.ioas_id = self->ioas_id,
			.user_va = (uintptr_t)self->buf,
			.length = page_size,
			.iova = IOVA_A,
		};
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_MAP, &cmd));
		/* Without FIXED_IOVA: the iova is not written */
		cmd.flags = bad[i] & ~FIXED;
		cmd.iova = POISON64;
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_MAP, &cmd));
		EXPECT_EQ(POISON64, cmd.iova);
		/* Before the id and the length */
		cmd.ioas_id = 0;
		cmd.length = 0;
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_MAP, &cmd));
	}

	cmd = (struct iommu_ioas_map){
		.size = sizeof(cmd),
		.flags = RW | FIXED,
		.ioas_id = self->ioas_id,
		.user_va = (uintptr_t)self->buf,
		.length = page_size,
		.iova = IOVA_A,
	};
	cmd.__reserved = 1;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_MAP, &cmd));
	cmd.__reserved = 0x80000000U;
	cmd.iova = IOVA_MAX;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_MAP, &cmd));
	ASSERT_EMPTY(self->fd, self->ioas_id);

	cmd.__reserved = 0;
	cmd.iova = IOVA_A;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_MAP, &cmd));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

TEST_F(ioas, map_without_access_flags_is_einval)
{
	__u64 iova;

	iova = IOVA_A;
	EXPECT_ERRNO(EINVAL, _map(self->fd, self->ioas_id, FIXED,
				  (uintptr_t)self->buf, page_size, &iova));
	iova = POISON64;
	EXPECT_ERRNO(EINVAL, _map(self->fd, self->ioas_id, 0,
				  (uintptr_t)self->buf, page_size, &iova));
	EXPECT_EQ(POISON64, iova);
	/* Before the IOAS id and the length */
	iova = IOVA_A;
	EXPECT_ERRNO(EINVAL, _map(self->fd, 0, FIXED, (uintptr_t)self->buf,
				  page_size, &iova));
	EXPECT_ERRNO(EINVAL, _map(self->fd, UINT32_MAX, 0, 0, 0, &iova));
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(ioas, map_unknown_id_is_enoent)
{
	__u32 gone;
	__u32 ids[] = { 0, self->ioas_id + 1, 0x7fffffff, UINT32_MAX, 0 };
	unsigned int i;
	__u64 iova;
	int fd2;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &gone));
	ASSERT_EQ(0, _destroy(self->fd, gone));
	ids[4] = gone;
	for (i = 0; i != ARRAY_SIZE(ids); i++) {
		EXPECT_ERRNO(ENOENT, _map_fixed(self->fd, ids[i], self->buf,
						page_size, IOVA_A));
		EXPECT_ERRNO(ENOENT, _map_auto(self->fd, ids[i], self->buf,
					       page_size, &iova));
		EXPECT_EQ(POISON64, iova);
		/* Before the user_va + length check */
		iova = IOVA_A;
		EXPECT_ERRNO(ENOENT, _map(self->fd, ids[i], RW | FIXED,
					  IOVA_MAX - 1, page_size, &iova));
	}
	/* An id of another file */
	fd2 = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_ERRNO(ENOENT, _map_fixed(fd2, self->ioas_id, self->buf,
					page_size, IOVA_A));
	close(fd2);
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(ioas, map_wrong_object_type_is_enoent)
{
	__u32 fault_id = 0;
	int fault_fd = -1;
	__u64 iova;

	FAULT_ALLOC_OR_SKIP(self->fd, &fault_id, &fault_fd);
	EXPECT_ERRNO(ENOENT, _map_fixed(self->fd, fault_id, self->buf,
					page_size, IOVA_A));
	EXPECT_ERRNO(ENOENT, _map_auto(self->fd, fault_id, self->buf,
				       page_size, &iova));
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, fault_id, 0, UINT64_MAX, NULL));
	ASSERT_EMPTY(self->fd, self->ioas_id);
	close(fault_fd);
}

TEST_F(ioas, map_is_per_ioas)
{
	__u32 other;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &other));
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_A);
	/* The same IOVA in another IOAS is free */
	ASSERT_MAP_FIXED(self->fd, other, self->buf, 2 * page_size, IOVA_A);
	ASSERT_UNMAP_ALL(self->fd, other, 2 * page_size);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

TEST_F(ioas, map_does_not_touch_user_memory)
{
	char *none = anon(2 * page_size, PROT_NONE);
	char *ro = anon(2 * page_size, PROT_READ);
	char *hole = anon(2 * page_size, PROT_READ | PROT_WRITE);
	__u64 vas[4], iova, total = 0;
	unsigned int i;

	ASSERT_NE(NULL, none);
	ASSERT_NE(NULL, ro);
	ASSERT_NE(NULL, hole);
	ASSERT_EQ(0, munmap(hole, 2 * page_size));
	vas[0] = (uintptr_t)none;
	vas[1] = (uintptr_t)hole;	/* no VMA at all */
	vas[2] = 0;			/* NULL */
	vas[3] = KERNEL_VA;		/* not even user memory */

	/*
	 * Without a domain the pages are neither pinned nor read: each of
	 * these maps, writeable or not, fixed or not.
	 */
	for (i = 0; i != ARRAY_SIZE(vas); i++) {
		ASSERT_EQ(0, _map_fixed(self->fd, self->ioas_id,
					(void *)(uintptr_t)vas[i],
					2 * page_size, IOVA_A + i * IOVA_A));
		iova = IOVA_A;
		ASSERT_EQ(0, _map(self->fd, self->ioas_id,
				  IOMMU_IOAS_MAP_READABLE, vas[i], page_size,
				  &iova));
		EXPECT_NE(IOVA_A, iova);
		total += 3 * page_size;
	}
	/* WRITEABLE on read-only memory */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, ro, 2 * page_size,
			 IOVA_A * 8);
	iova = POISON64;
	ASSERT_EQ(0, _map(self->fd, self->ioas_id, IOMMU_IOAS_MAP_WRITEABLE,
			  (uintptr_t)ro, page_size, &iova));
	total += 3 * page_size;
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A * 8, 2 * page_size,
		     2 * page_size);
	total -= 2 * page_size;
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, total);
	munmap(none, 2 * page_size);
	munmap(ro, 2 * page_size);
}

TEST_F(ioas, map_user_memory_unmapped_later)
{
	char *p = anon(4 * page_size, PROT_READ | PROT_WRITE);
	__u64 iova;

	ASSERT_NE(NULL, p);
	memset(p, 1, 4 * page_size);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, p, 4 * page_size, IOVA_A);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, p, 4 * page_size,
			       &iova));
	ASSERT_EQ(0, munmap(p, 4 * page_size));
	/* The areas outlive the VMA */
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A);
	ASSERT_UNMAP(self->fd, self->ioas_id, iova, 4 * page_size,
		     4 * page_size);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A, 4 * page_size,
		     4 * page_size);
}

TEST_F(ioas, map_user_va_plus_length_wrap_is_eoverflow)
{
	__u64 va = IOVA_MAX - page_size + 1;
	__u64 iova;

	/* user_va + length == 2^64 wraps */
	iova = IOVA_A;
	EXPECT_ERRNO(EOVERFLOW, _map(self->fd, self->ioas_id, RW | FIXED, va,
				     page_size, &iova));
	iova = POISON64;
	EXPECT_ERRNO(EOVERFLOW, _map(self->fd, self->ioas_id, RW, va,
				     page_size, &iova));
	EXPECT_EQ(POISON64, iova);
	iova = IOVA_A;
	EXPECT_ERRNO(EOVERFLOW, _map(self->fd, self->ioas_id, RW | FIXED,
				     (uintptr_t)self->buf, IOVA_MAX - 1,
				     &iova));
	EXPECT_ERRNO(EOVERFLOW, _map(self->fd, self->ioas_id, RW | FIXED,
				     IOVA_MAX, 1, &iova));
	/* user_va + 0 does not wrap: then length 0 is EINVAL */
	EXPECT_ERRNO(EINVAL, _map(self->fd, self->ioas_id, RW | FIXED,
				  IOVA_MAX, 0, &iova));
	ASSERT_EMPTY(self->fd, self->ioas_id);

	/* Ending exactly at 2^64 - 1 does not wrap */
	ASSERT_EQ(0, _map(self->fd, self->ioas_id, RW | FIXED, va,
			  page_size - 1, &iova));
	EXPECT_EQ(IOVA_A, iova);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size - 1);
}

TEST_F(ioas, map_huge_length)
{
	/* The largest length iopt_alloc_pages() takes: SIZE_MAX - PAGE_SIZE */
	__u64 max_len = IOVA_MAX - page_size;
	__u64 iova;

	/* One more is EINVAL (user_va 0, so user_va + length does not wrap) */
	iova = 0;
	EXPECT_ERRNO(EINVAL, _map(self->fd, self->ioas_id, RW | FIXED, 0,
				  max_len + 1, &iova));
	EXPECT_ERRNO(EINVAL, _map(self->fd, self->ioas_id, RW | FIXED, 0,
				  IOVA_MAX - 1, &iova));
	ASSERT_EMPTY(self->fd, self->ioas_id);

	/* Nothing is pinned, so a length of almost 2^64 maps */
	ASSERT_EQ(0, _map(self->fd, self->ioas_id, RW | FIXED, 0, max_len,
			  &iova));
	EXPECT_EQ(0, iova);
	ASSERT_MAPPED(self->fd, self->ioas_id, max_len - 1);
	ASSERT_FREE(self->fd, self->ioas_id, max_len);
	ASSERT_UNMAP(self->fd, self->ioas_id, 0, max_len, max_len);

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 1ULL << 62,
			 1ULL << 62);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 1ULL << 62);
}

TEST_F(ioas, map_fixed_alignment_1_allows_any_offsets)
{
	/* iova_alignment is 1: no relation between iova and user_va needed */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf + 0x10, 0x100,
			 IOVA_A + 0x123);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf + 1, 1,
			 IOVA_A + 0x123 + 0x100);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf + page_size - 1,
			 3, IOVA_B + 7);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 3 * page_size + 5,
			 IOVA_C + page_size / 2);
	ASSERT_FREE(self->fd, self->ioas_id, IOVA_A + 0x122);
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A + 0x123 + 0x100);
	ASSERT_FREE(self->fd, self->ioas_id, IOVA_A + 0x123 + 0x101);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A + 0x123, 0x100, 0x100);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_B + 7, 3, 3);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 1 + 3 * page_size + 5);
}

TEST_F(ioas, map_huge_pages_0_requires_page_alignment)
{
	__u64 iova;

	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 0));
	/* iova not page aligned */
	EXPECT_ERRNO(EINVAL, _map_fixed(self->fd, self->ioas_id, self->buf,
					page_size, IOVA_A + 0x800));
	EXPECT_ERRNO(EINVAL, _map_fixed(self->fd, self->ioas_id, self->buf,
					page_size, IOVA_A + 1));
	/* length not page aligned */
	EXPECT_ERRNO(EINVAL, _map_fixed(self->fd, self->ioas_id, self->buf,
					page_size + 1, IOVA_A));
	EXPECT_ERRNO(EINVAL, _map_fixed(self->fd, self->ioas_id, self->buf,
					page_size / 2, IOVA_A));
	/* user_va not page aligned, also with the same offset in iova */
	EXPECT_ERRNO(EINVAL, _map_fixed(self->fd, self->ioas_id,
					self->buf + 0x800, page_size, IOVA_A));
	EXPECT_ERRNO(EINVAL, _map_fixed(self->fd, self->ioas_id,
					self->buf + 0x800, page_size,
					IOVA_A + 0x800));
	/* The same for automatic IOVAs */
	EXPECT_ERRNO(EINVAL, _map_auto(self->fd, self->ioas_id,
				       self->buf + 0x800, page_size, &iova));
	EXPECT_EQ(POISON64, iova);
	EXPECT_ERRNO(EINVAL, _map_auto(self->fd, self->ioas_id, self->buf,
				       page_size + 0x800, &iova));
	EXPECT_ERRNO(EINVAL, _map_auto(self->fd, self->ioas_id, self->buf, 1,
				       &iova));
	/* An overlap that is also misaligned: alignment first */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 2 * page_size,
			 IOVA_A);
	EXPECT_ERRNO(EINVAL, _map_fixed(self->fd, self->ioas_id, self->buf,
					page_size, IOVA_A + 0x800));
	EXPECT_ERRNO(EEXIST, _map_fixed(self->fd, self->ioas_id, self->buf,
					page_size, IOVA_A + page_size));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * page_size);

	/* Aligned is fine, both ways */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf + page_size,
			 2 * page_size, IOVA_B);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->buf, page_size,
			       &iova));
	EXPECT_EQ(0, iova % page_size);
	EXPECT_EQ(page_size, iova);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 3 * page_size);
}

TEST_F(ioas, huge_pages_0_with_unaligned_area_is_eaddrinuse)
{
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_A);
	/* Page aligned areas do not stop HUGE_PAGES 0 */
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 0));
	EXPECT_EQ(0, huge_get(self->fd, self->ioas_id));
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 1));

	/* An area with an unaligned iova, length or user_va offset does */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_B + 0x800);
	EXPECT_ERRNO(EADDRINUSE, _huge_set(self->fd, self->ioas_id, 0));
	EXPECT_EQ(1, huge_get(self->fd, self->ioas_id));
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_B + 0x800, page_size,
		     page_size);

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size + 1,
			 IOVA_B);
	EXPECT_ERRNO(EADDRINUSE, _huge_set(self->fd, self->ioas_id, 0));
	EXPECT_EQ(1, huge_get(self->fd, self->ioas_id));
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_B, page_size + 1,
		     page_size + 1);

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf + 0x800,
			 page_size, IOVA_B);
	EXPECT_ERRNO(EADDRINUSE, _huge_set(self->fd, self->ioas_id, 0));
	EXPECT_EQ(1, huge_get(self->fd, self->ioas_id));
	/* Unaligned mappings still work after the failed SET */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 1, IOVA_C + 1);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_B, page_size, page_size);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_C + 1, 1, 1);

	/* Only the aligned area is left */
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 0));
	EXPECT_EQ(0, huge_get(self->fd, self->ioas_id));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

TEST_F(ioas, map_readonly_struct_is_efault_but_mapped)
{
	struct iommu_ioas_map *cmd;
	char *p = anon(page_size, PROT_READ | PROT_WRITE);

	ASSERT_NE(NULL, p);
	cmd = (void *)p;
	*cmd = (struct iommu_ioas_map){
		.size = sizeof(*cmd),
		.flags = RW | FIXED,
		.ioas_id = self->ioas_id,
		.user_va = (uintptr_t)self->buf,
		.length = 2 * page_size,
		.iova = IOVA_A,
	};
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ));
	/* The map is done before the struct is written back */
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_MAP, cmd));
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A);

	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ | PROT_WRITE));
	cmd->flags = RW;
	cmd->iova = POISON64;
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_MAP, cmd));
	EXPECT_EQ(POISON64, cmd->iova);
	/* Both areas exist */
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A, 2 * page_size,
		     2 * page_size);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * page_size);

	/* A failing map writes nothing, so it still reports its own errno */
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ | PROT_WRITE));
	cmd->length = 0;
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ));
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_IOAS_MAP, cmd));
	ASSERT_EMPTY(self->fd, self->ioas_id);
	munmap(p, page_size);
}

TEST_F(ioas, map_size_rules)
{
	struct {
		struct iommu_ioas_map cmd;
		__u64 tail;
	} big;
	__u32 small[] = { 0, 4, 16, 32, MAP_MIN_SIZE - 1 };
	unsigned int i;

	ASSERT_EQ(sizeof(big.cmd), MAP_MIN_SIZE);
	memset(&big, 0, sizeof(big));
	big.cmd.flags = RW;
	big.cmd.ioas_id = self->ioas_id;
	big.cmd.user_va = (uintptr_t)self->buf;
	big.cmd.length = page_size;
	big.cmd.iova = POISON64;
	for (i = 0; i != ARRAY_SIZE(small); i++) {
		big.cmd.size = small[i];
		EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_IOAS_MAP, &big));
		EXPECT_EQ(POISON64, big.cmd.iova);
	}
	big.cmd.size = sizeof(big);
	big.tail = 1;
	EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_IOAS_MAP, &big));
	EXPECT_EQ(POISON64, big.cmd.iova);
	ASSERT_EMPTY(self->fd, self->ioas_id);

	big.tail = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_MAP, &big));
	EXPECT_EQ(auto_place(page_size, (uintptr_t)self->buf, page_size),
		  big.cmd.iova);
	EXPECT_EQ(sizeof(big), big.cmd.size);
	EXPECT_EQ(0, big.tail);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

/* ------------------------------------------------------------------------
 * IOMMU_IOAS_MAP without IOMMU_IOAS_MAP_FIXED_IOVA
 */

TEST_F(ioas, map_auto_starts_at_page_size)
{
	__u64 iova;

	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, page_size,
			       &iova));
	EXPECT_EQ(page_size, iova);
	/* Not at 0 even when [0, PAGE_SIZE) is the only free space below */
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, page_size,
			       &iova));
	EXPECT_EQ(2 * page_size, iova);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, 1, &iova));
	EXPECT_EQ(3 * page_size, iova);
	ASSERT_FREE(self->fd, self->ioas_id, 0);
	ASSERT_FREE(self->fd, self->ioas_id, page_size - 1);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * page_size + 1);
}

TEST_F(ioas, map_auto_alignment_from_length_and_user_va)
{
	struct {
		__u64 va, length;
	} cases[] = {
		{ (uintptr_t)self->al, 1 },
		{ (uintptr_t)self->al, page_size },
		{ (uintptr_t)self->al, 3 * page_size },
		{ (uintptr_t)self->al, 16 * page_size },
		{ (uintptr_t)self->al, 3UL << 20 },
		{ (uintptr_t)self->al, 1ULL << 40 },
		{ (uintptr_t)self->al + page_size, 16 * page_size },
		{ (uintptr_t)self->al + 8 * page_size, 16 * page_size },
		{ (uintptr_t)self->al + 0x10, 0x20 },
		{ (uintptr_t)self->al + 0x800, 0x2000 },
		{ (uintptr_t)self->al + 0x30, 0x10 },
		{ (uintptr_t)self->al + 0x31, 0x1000 },
		{ 0, 3 * page_size },
		{ 0, 1ULL << 30 },
		{ 0, 1 },
	};
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(cases); i++) {
		__u64 iova;

		ASSERT_EQ(0, _map(self->fd, self->ioas_id, RW,
				  cases[i].va, cases[i].length,
				  (iova = POISON64, &iova)));
		EXPECT_EQ(auto_place(page_size, cases[i].va, cases[i].length),
			  iova)
		{
			TH_LOG("case %u: va 0x%llx length 0x%llx", i,
			       (unsigned long long)cases[i].va,
			       (unsigned long long)cases[i].length);
		}
		ASSERT_UNMAP(self->fd, self->ioas_id, iova, cases[i].length,
			     cases[i].length);
	}
}

TEST_F(ioas, map_auto_alignment_literal_values)
{
	__u64 iova;

	/* Without THP the alignment is capped at PAGE_SIZE */
	if (max_alignment != page_size || page_size != 4096)
		SKIP(return, "THP kernel or page size %zu", page_size);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al + 0x10, 0x20,
			       &iova));
	EXPECT_EQ(0x1010, iova);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al + 0x30, 0x10,
			       &iova));
	EXPECT_EQ(0x1030, iova);
	/*
	 * The hole at 0x1000 is too small, and the OR of the page offset
	 * skips 0x1040: the next fit is 0x1040 | 0x10.
	 */
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al + 0x10, 0x10,
			       &iova));
	EXPECT_EQ(0x1050, iova);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al + 0x800,
			       0x2000, &iova));
	EXPECT_EQ(0x1800, iova);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, 0x3000,
			       &iova));
	EXPECT_EQ(0x4000, iova);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 0x20 + 0x10 + 0x10 + 0x2000 +
			 0x3000);
}

TEST_F(ioas, map_auto_fills_holes_between_fixed_areas)
{
	__u64 iova;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 page_size);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 3 * page_size);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, page_size,
			       &iova));
	EXPECT_EQ(2 * page_size, iova);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, page_size,
			       &iova));
	EXPECT_EQ(4 * page_size, iova);
	/* A one-byte hole at 5 * PAGE_SIZE + 1 does not take 2 bytes */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 1, 5 * page_size);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 1,
			 5 * page_size + 2);
	ASSERT_EQ(0, _map(self->fd, self->ioas_id, RW, 0, 2,
			  (iova = POISON64, &iova)));
	EXPECT_EQ(5 * page_size + 4, iova);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 4 * page_size + 4);
}

TEST_F(ioas, map_auto_maps_do_not_overlap)
{
	__u64 lens[] = { page_size, 1, 3 * page_size, 0x10, 2 * page_size,
			 page_size + 1, 0x800, 7 * page_size, 1, 0x10000 };
	__u64 iovas[ARRAY_SIZE(lens)];
	unsigned int i, j;

	for (i = 0; i != ARRAY_SIZE(lens); i++) {
		ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id,
				       self->buf + (i % 4) * 0x10, lens[i],
				       &iovas[i]));
		ASSERT_LE(page_size, iovas[i]);
	}
	for (i = 0; i != ARRAY_SIZE(lens); i++)
		for (j = 0; j != ARRAY_SIZE(lens); j++)
			if (i != j)
				ASSERT_TRUE(iovas[i] + lens[i] <= iovas[j] ||
					    iovas[j] + lens[j] <= iovas[i]);
	for (i = 0; i != ARRAY_SIZE(lens); i++)
		ASSERT_UNMAP(self->fd, self->ioas_id, iovas[i], lens[i],
			     lens[i]);
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(ioas, map_auto_honours_allowed_ranges)
{
	struct iommu_iova_range allow[] = {
		RANGE(IOVA_B, 2 * page_size),
		RANGE(IOVA_A, page_size),
	};
	__u64 iova;

	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, allow, 2));
	/* The lowest allowed range first, then the next */
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, page_size,
			       &iova));
	EXPECT_EQ(IOVA_A, iova);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, page_size,
			       &iova));
	EXPECT_EQ(IOVA_B, iova);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, page_size,
			       &iova));
	EXPECT_EQ(IOVA_B + page_size, iova);
	/* Full */
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id, self->al, 1,
				       &iova));
	EXPECT_EQ(POISON64, iova);
	/* FIXED_IOVA ignores the allowed ranges */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_C);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size, 0);
	/* A new allowed set may leave existing areas outside */
	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &allow[1], 1));
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_C);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 5 * page_size);

	/* A range that is too small for the length: ENOSPC, nothing mapped */
	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &allow[1], 1));
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id, self->al,
				       2 * page_size, &iova));
	EXPECT_EQ(POISON64, iova);
	ASSERT_EMPTY(self->fd, self->ioas_id);
	/* ... and a fixed area filling the range */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 1,
			 IOVA_A + page_size / 2);
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id, self->al,
				       page_size, &iova));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 1);

	/* Clearing the allowed set frees the whole space again */
	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, NULL, 0));
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al,
			       2 * page_size, &iova));
	EXPECT_EQ(auto_place(page_size, (uintptr_t)self->al, 2 * page_size),
		  iova);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * page_size);
}

TEST_F(ioas, map_auto_allowed_range_edges)
{
	struct iommu_iova_range low = RANGE(0, 2 * page_size);
	struct iommu_iova_range page0 = RANGE(0, page_size);
	struct iommu_iova_range top = RANGE(IOVA_MAX - 2 * page_size + 1,
					    2 * page_size);
	struct iommu_iova_range odd = {
		.start = IOVA_A + page_size / 2,
		.last = IOVA_A + 3 * page_size - 1,
	};
	__u64 iova;

	/* IOVA 0 is never picked, even when allowed */
	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &page0, 1));
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id, self->al, 1,
				       &iova));
	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &low, 1));
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, page_size,
			       &iova));
	EXPECT_EQ(page_size, iova);
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id, self->al, 1,
				       &iova));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);

	/* Nor the last page */
	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &top, 1));
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, page_size,
			       &iova));
	EXPECT_EQ(IOVA_MAX - 2 * page_size + 1, iova);
	EXPECT_ERRNO(ENOSPC, _map_auto(self->fd, self->ioas_id, self->al, 1,
				       &iova));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);

	/* An unaligned range start is rounded up to the alignment */
	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &odd, 1));
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, page_size,
			       &iova));
	EXPECT_EQ(IOVA_A + page_size, iova);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al, page_size,
			       &iova));
	EXPECT_EQ(IOVA_A + 2 * page_size, iova);
	/* The half page below is still usable by a smaller alignment */
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->al + 0x100,
			       0x100, &iova));
	EXPECT_EQ(IOVA_A + page_size / 2 + 0x100, iova);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * page_size + 0x100);
}

TEST_F(ioas, map_auto_huge_length_is_eoverflow)
{
	__u64 lens[] = { IOVA_MAX / 2, 1ULL << 63, IOVA_MAX - page_size };
	unsigned int i;
	__u64 iova;

	for (i = 0; i != ARRAY_SIZE(lens); i++) {
		iova = POISON64;
		EXPECT_ERRNO(EOVERFLOW, _map(self->fd, self->ioas_id, RW, 0,
					     lens[i], &iova));
		EXPECT_EQ(POISON64, iova);
	}
	/* Just below ULONG_MAX / 2 fits above PAGE_SIZE */
	ASSERT_EQ(0, _map(self->fd, self->ioas_id, RW, 0, IOVA_MAX / 2 - 1,
			  (iova = POISON64, &iova)));
	EXPECT_EQ(auto_place(page_size, 0, IOVA_MAX / 2 - 1), iova);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, IOVA_MAX / 2 - 1);
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

struct thread_arg {
	int fd;
	__u32 ioas_id;
	void *va;
	__u64 iovas[64];
	int rc;
};

static void *map_thread(void *p)
{
	struct thread_arg *arg = p;
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(arg->iovas); i++) {
		if (_map_auto(arg->fd, arg->ioas_id, arg->va, page_size,
			      &arg->iovas[i])) {
			arg->rc = errno;
			break;
		}
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

TEST_F(ioas, map_auto_concurrent_maps_do_not_overlap)
{
	struct thread_arg args[2];
	__u64 all[2 * ARRAY_SIZE(args[0].iovas)];
	unsigned int i, n = ARRAY_SIZE(args[0].iovas);
	pthread_t t[2];

	for (i = 0; i != 2; i++) {
		args[i] = (struct thread_arg){
			.fd = self->fd,
			.ioas_id = self->ioas_id,
			.va = self->buf + i * page_size,
		};
		ASSERT_EQ(0, pthread_create(&t[i], NULL, map_thread, &args[i]));
	}
	for (i = 0; i != 2; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		ASSERT_EQ(0, args[i].rc);
	}
	memcpy(all, args[0].iovas, sizeof(args[0].iovas));
	memcpy(all + n, args[1].iovas, sizeof(args[1].iovas));
	qsort(all, 2 * n, sizeof(all[0]), cmp_u64);
	ASSERT_LE(page_size, all[0]);
	for (i = 1; i != 2 * n; i++)
		ASSERT_LE(all[i - 1] + page_size, all[i]);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * n * page_size);
}

/* ------------------------------------------------------------------------
 * IOMMU_IOAS_UNMAP
 */

TEST_F(ioas, unmap_exact_area_returns_length)
{
	__u64 iova;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 4 * page_size,
			 IOVA_A);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf + 1, 0x123,
			 IOVA_B + 0x45);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->buf,
			       3 * page_size, &iova));
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_B + 0x45, 0x123, 0x123);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A, 4 * page_size,
		     4 * page_size);
	ASSERT_UNMAP(self->fd, self->ioas_id, iova, 3 * page_size,
		     3 * page_size);
	/* Gone */
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, IOVA_A,
				    4 * page_size, NULL));
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(ioas, unmap_range_covering_several_areas)
{
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_A);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 2 * page_size,
			 IOVA_A + page_size);	/* adjacent */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 5,
			 IOVA_A + 8 * page_size + 3);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_B);		/* outside the range */
	/* Slack on both ends; the range need not be aligned */
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A - 0x11,
		     9 * page_size + 0x100, 3 * page_size + 5);
	ASSERT_FREE(self->fd, self->ioas_id, IOVA_A);
	ASSERT_FREE(self->fd, self->ioas_id, IOVA_A + 8 * page_size + 3);
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_B);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

TEST_F(ioas, unmap_cutting_an_area_is_enoent)
{
	__u64 a = IOVA_A, p = page_size, len;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 2 * p, a);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 2 * p, a + 4 * p);

	/* Start inside, end inside, one byte short of either end */
	len = POISON64;
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, a + p, p, &len));
	EXPECT_EQ(p, len);	/* length is not written back */
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, a, p, NULL));
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, a + 1, 2 * p - 1,
				    NULL));
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, a, 2 * p - 1,
				    NULL));
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, a - p, 2 * p,
				    NULL));
	/* Cutting the first area stops before the second is looked at */
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, a + p, 10 * p,
				    NULL));
	ASSERT_MAPPED(self->fd, self->ioas_id, a);
	ASSERT_MAPPED(self->fd, self->ioas_id, a + 4 * p);

	/*
	 * Covering the first and cutting the second: the walk goes in IOVA
	 * order, so the first is unmapped before ENOENT.
	 */
	len = 5 * p;
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, a, 5 * p, &len));
	EXPECT_EQ(5 * p, len);
	ASSERT_FREE(self->fd, self->ioas_id, a);
	ASSERT_MAPPED(self->fd, self->ioas_id, a + 4 * p);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * p);
}

TEST_F(ioas, unmap_nothing_mapped_is_enoent)
{
	__u64 len;

	/* An empty IOAS */
	len = page_size;
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, IOVA_A, page_size,
				    &len));
	EXPECT_EQ(page_size, len);
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, 0,
				    IOVA_MAX - 1, NULL));
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, 1, 1ULL << 63,
				    NULL));

	/* Holes around and between areas */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_A);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_A + 2 * page_size);
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id,
				    IOVA_A + page_size, page_size, NULL));
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, 0, IOVA_A, NULL));
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id,
				    IOVA_A + 3 * page_size, IOVA_A, NULL));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * page_size);
}

TEST_F(ioas, unmap_all)
{
	__u64 iova, len;

	/* Empty: success with 0 */
	len = POISON64;
	ASSERT_EQ(0, _unmap(self->fd, self->ioas_id, 0, UINT64_MAX, &len));
	EXPECT_EQ(0, len);

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 3 * page_size, 0);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 1, IOVA_A + 1);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_MAX - page_size + 1);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->buf,
			       2 * page_size, &iova));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 6 * page_size + 1);
	ASSERT_FREE(self->fd, self->ioas_id, 0);
	ASSERT_FREE(self->fd, self->ioas_id, IOVA_MAX - 1);
	ASSERT_EMPTY(self->fd, self->ioas_id);

	/* Other spellings of "everything" are not special */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_A);
	EXPECT_ERRNO(EOVERFLOW, _unmap(self->fd, self->ioas_id, 1,
				       UINT64_MAX, NULL));
	ASSERT_UNMAP(self->fd, self->ioas_id, 0, IOVA_MAX - 1, page_size);
}

TEST_F(ioas, unmap_unknown_id_is_enoent)
{
	__u32 gone;
	__u32 ids[] = { 0, self->ioas_id + 1, 0x7fffffff, UINT32_MAX, 0 };
	unsigned int i;
	__u64 len;
	int fd2;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_A);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &gone));
	ASSERT_EQ(0, _destroy(self->fd, gone));
	ids[4] = gone;
	for (i = 0; i != ARRAY_SIZE(ids); i++) {
		len = page_size;
		EXPECT_ERRNO(ENOENT, _unmap(self->fd, ids[i], IOVA_A,
					    page_size, &len));
		EXPECT_EQ(page_size, len);
		/* Also the unmap-all form, and before the argument checks */
		EXPECT_ERRNO(ENOENT, _unmap(self->fd, ids[i], 0, UINT64_MAX,
					    NULL));
		EXPECT_ERRNO(ENOENT, _unmap(self->fd, ids[i], IOVA_A, 0,
					    NULL));
		EXPECT_ERRNO(ENOENT, _unmap(self->fd, ids[i], IOVA_MAX, 1,
					    NULL));
	}
	fd2 = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_ERRNO(ENOENT, _unmap(fd2, self->ioas_id, 0, UINT64_MAX, NULL));
	close(fd2);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

TEST_F(ioas, unmap_bad_ranges)
{
	struct {
		__u64 iova, length;
		int err;
	} bad[] = {
		{ IOVA_A, 0, EINVAL },
		{ 0, 0, EINVAL },
		{ IOVA_MAX, 1, EOVERFLOW },
		{ IOVA_MAX, 0, EOVERFLOW },	/* before the length check */
		{ IOVA_A, UINT64_MAX, EOVERFLOW },
		{ IOVA_MAX - 1, 2, ENOENT },	/* ends at ULONG_MAX: fine */
		{ IOVA_MAX - 1, 3, EOVERFLOW },
		{ 1ULL << 63, (1ULL << 63) + 1, EOVERFLOW },
		{ IOVA_A, IOVA_MAX - IOVA_A + 2, EOVERFLOW },
		{ IOVA_A + 1, IOVA_MAX - IOVA_A, ENOENT },	/* cuts it */
	};
	unsigned int i;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_A);
	for (i = 0; i != ARRAY_SIZE(bad); i++) {
		__u64 len = bad[i].length;
		EXPECT_ERRNO(bad[i].err, _unmap(self->fd, self->ioas_id,
						bad[i].iova, bad[i].length,
						&len));
		EXPECT_EQ(bad[i].length, len);
	}
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A);
	/* Exactly to the end of the address space is fine */
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A, IOVA_MAX - IOVA_A + 1,
		     page_size);
}

TEST_F(ioas, unmap_needs_no_alignment_with_huge_pages_0)
{
	ASSERT_EQ(0, _huge_set(self->fd, self->ioas_id, 0));
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 2 * page_size,
			 IOVA_A);
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, IOVA_A + 1,
				    2 * page_size, NULL));
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A - 1, 2 * page_size + 2,
		     2 * page_size);
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(ioas, unmap_readonly_struct_is_efault_but_unmapped)
{
	struct iommu_ioas_unmap *cmd;
	char *p = anon(page_size, PROT_READ | PROT_WRITE);

	ASSERT_NE(NULL, p);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_A);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_B);
	cmd = (void *)p;
	*cmd = (struct iommu_ioas_unmap){
		.size = sizeof(*cmd),
		.ioas_id = self->ioas_id,
		.iova = IOVA_A,
		.length = IOVA_B - IOVA_A,
	};
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_UNMAP, cmd));
	EXPECT_EQ(IOVA_B - IOVA_A, cmd->length);
	/* The unmap happened */
	ASSERT_FREE(self->fd, self->ioas_id, IOVA_A);
	/* Now nothing is there: ENOENT, which writes nothing */
	EXPECT_ERRNO(ENOENT, ioctl(self->fd, IOMMU_IOAS_UNMAP, cmd));
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_B);
	munmap(p, page_size);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

TEST_F(ioas, unmap_size_rules)
{
	struct {
		struct iommu_ioas_unmap cmd;
		__u64 tail;
	} big;
	__u32 small[] = { 0, 4, 8, 16, UNMAP_MIN_SIZE - 1 };
	unsigned int i;

	ASSERT_EQ(sizeof(big.cmd), UNMAP_MIN_SIZE);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_A);
	memset(&big, 0, sizeof(big));
	big.cmd.ioas_id = self->ioas_id;
	big.cmd.iova = 0;
	big.cmd.length = UINT64_MAX;
	for (i = 0; i != ARRAY_SIZE(small); i++) {
		big.cmd.size = small[i];
		EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_IOAS_UNMAP, &big));
		EXPECT_EQ(UINT64_MAX, big.cmd.length);
	}
	big.cmd.size = sizeof(big);
	big.tail = 1;
	EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_IOAS_UNMAP, &big));
	EXPECT_EQ(UINT64_MAX, big.cmd.length);
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A);

	big.tail = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_UNMAP, &big));
	EXPECT_EQ(page_size, big.cmd.length);
	EXPECT_EQ(sizeof(big), big.cmd.size);
	EXPECT_EQ(0, big.tail);
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

/* ------------------------------------------------------------------------
 * Memory kinds, object lifetime
 */

TEST_F(ioas, map_same_memory_twice)
{
	__u64 iova1, iova2;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 4 * page_size,
			 IOVA_A);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 4 * page_size,
			 IOVA_B);
	/* Overlapping parts of it too */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf + page_size,
			 2 * page_size, IOVA_C);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->buf,
			       4 * page_size, &iova1));
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->buf,
			       4 * page_size, &iova2));
	ASSERT_NE(iova1, iova2);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_B, 4 * page_size,
		     4 * page_size);
	ASSERT_UNMAP(self->fd, self->ioas_id, iova2, 4 * page_size,
		     4 * page_size);
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 10 * page_size);
}

TEST_F(ioas, map_memfd_memory)
{
	size_t len = 8 * page_size;
	int mfd = memfd_create("iommufd_ioas_map", MFD_CLOEXEC);
	char *shared, *priv;
	__u64 iova;

	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, len));
	shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, shared);
	priv = mmap(NULL, len, PROT_READ, MAP_PRIVATE, mfd, 0);
	ASSERT_NE(MAP_FAILED, priv);
	memset(shared, 0xa5, len);

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, shared, len, IOVA_A);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, shared + page_size,
			       2 * page_size, &iova));
	ASSERT_NE(IOVA_A, iova);
	iova = IOVA_B;
	ASSERT_EQ(0, _map(self->fd, self->ioas_id,
			  IOMMU_IOAS_MAP_READABLE | FIXED, (uintptr_t)priv, len,
			  &iova));
	EXPECT_EQ(IOVA_B, iova);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A, len, len);
	munmap(shared, len);
	munmap(priv, len);
	close(mfd);
	/* The memory and the file are gone; the areas are still there */
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, len + 2 * page_size);
}

TEST_F(ioas, destroy_ioas_with_mappings)
{
	__u32 other;
	__u64 iova;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &other));
	ASSERT_MAP_FIXED(self->fd, other, self->buf, 4 * page_size, IOVA_A);
	ASSERT_EQ(0, _map_auto(self->fd, other, self->buf, page_size, &iova));
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size,
			 IOVA_A);
	ASSERT_EQ(0, _destroy(self->fd, other));
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, other, 0, UINT64_MAX, NULL));
	EXPECT_ERRNO(ENOENT, _map_fixed(self->fd, other, self->buf, page_size,
					IOVA_A));
	/* The other IOAS is untouched */
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);

	/* And once more with the fixture's IOAS */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size, 0);
	ASSERT_EQ(0, _destroy(self->fd, self->ioas_id));
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, self->ioas_id));
}

TEST_F(iommufd, close_with_live_mappings)
{
	char *buf = anon(4 * page_size, PROT_READ | PROT_WRITE);
	__u32 ids[3];
	unsigned int i, j;
	__u64 iova;

	ASSERT_NE(NULL, buf);
	for (i = 0; i != ARRAY_SIZE(ids); i++) {
		ASSERT_EQ(0, _ioas_alloc(self->fd, &ids[i]));
		for (j = 0; j != 8; j++) {
			ASSERT_MAP_FIXED(self->fd, ids[i], buf, 4 * page_size,
					 IOVA_A + j * IOVA_A);
			ASSERT_EQ(0, _map_auto(self->fd, ids[i], buf + j,
					       page_size, &iova));
		}
	}
	ASSERT_EQ(0, _destroy(self->fd, ids[1]));
	/* The rest goes with the file (leaks show up in kmemleak) */
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	munmap(buf, 4 * page_size);
}

/* ------------------------------------------------------------------------
 * Pinned memory accounting: without a domain nothing is pinned, so nothing
 * is charged, whatever RLIMIT_MEMLOCK and IOMMU_OPTION_RLIMIT_MODE say.
 */

TEST_F(ioas, no_pin_accounting_as_root)
{
	size_t len = 16UL << 20;
	char *big = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	long pin0 = proc_status_kb("VmPin"), lck0 = proc_status_kb("VmLck");
	__u64 iova;

	ASSERT_NE(MAP_FAILED, big);
	ASSERT_LE(0, pin0);
	ASSERT_LE(0, lck0);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, big, len, IOVA_A);
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, big, len, &iova));
	EXPECT_EQ(pin0, proc_status_kb("VmPin"));
	EXPECT_EQ(lck0, proc_status_kb("VmLck"));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * len);
	EXPECT_EQ(pin0, proc_status_kb("VmPin"));
	munmap(big, len);
}

/* As uid 65534 with RLIMIT_MEMLOCK 64 KiB, map far more than that */
static void map_beyond_memlock(struct __test_metadata *_metadata, int fd,
			       __u32 ioas_id)
{
	size_t len = 16UL << 20;
	char *big = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	long pin0, lck0;
	unsigned int i;
	__u64 iova;

	ASSERT_NE(MAP_FAILED, big);
	ASSERT_EQ(0, drop_to_nobody(64 << 10));
	ASSERT_FALSE(have_cap(CAP_IPC_LOCK));
	pin0 = proc_status_kb("VmPin");
	lck0 = proc_status_kb("VmLck");
	ASSERT_EQ(0, pin0);
	ASSERT_EQ(0, lck0);

	ASSERT_MAP_FIXED(fd, ioas_id, big, len, IOVA_A);
	ASSERT_EQ(0, _map_auto(fd, ioas_id, big, len, &iova));
	EXPECT_EQ(0, proc_status_kb("VmPin"));
	EXPECT_EQ(0, proc_status_kb("VmLck"));
	/* Repeatedly, beyond any budget */
	for (i = 0; i != 16; i++) {
		ASSERT_MAP_FIXED(fd, ioas_id, big, len, 1ULL << 40);
		ASSERT_UNMAP(fd, ioas_id, 1ULL << 40, len, len);
	}
	ASSERT_UNMAP_ALL(fd, ioas_id, 2 * len);
	EXPECT_EQ(0, proc_status_kb("VmPin"));
	EXPECT_EQ(0, proc_status_kb("VmLck"));
	munmap(big, len);
}

TEST_F(ioas, no_pin_accounting_unprivileged_user_mode)
{
	SKIP_IF_NOT_ROOT();
	/* fd and IOAS were made as root; /dev/iommu is root-only */
	map_beyond_memlock(_metadata, self->fd, self->ioas_id);
}

TEST_F(iommufd, no_pin_accounting_unprivileged_mm_mode)
{
	__u32 ioas_id;

	SKIP_IF_NOT_ROOT();
	ASSERT_EQ(0, _rlimit_set(self->fd, 1));
	ASSERT_EQ(0, _ioas_alloc(self->fd, &ioas_id));
	map_beyond_memlock(_metadata, self->fd, ioas_id);
}

TEST_F(ioas, no_pin_accounting_memlock_0)
{
	__u64 iova;

	SKIP_IF_NOT_ROOT();
	ASSERT_EQ(0, drop_to_nobody(0));
	ASSERT_EQ(0, _map_auto(self->fd, self->ioas_id, self->buf,
			       BUF_PAGES * page_size, &iova));
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, page_size, 0);
	EXPECT_EQ(0, proc_status_kb("VmPin"));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, (BUF_PAGES + 1) * page_size);
}

TEST_HARNESS_MAIN
