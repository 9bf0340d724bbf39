// SPDX-License-Identifier: GPL-2.0-only
/*
 * /dev/iommu object table and ioctl argument handling.
 *
 * Covers what does not need an IOMMU device: open/close, IOMMU_IOAS_ALLOC,
 * IOMMU_DESTROY, the generic ioctl argument rules of iommufd_fops_ioctl()
 * (size word, copy_struct_from_user() tail handling, EFAULT, ENOTTY), object
 * id allocation (xarray with XA_FLAGS_ALLOC1: ids start at 1 and the lowest
 * free id is handed out), per-file object tables, and races between
 * alloc/destroy/close.
 *
 * Every expectation below is what upstream drivers/iommu/iommufd/main.c and
 * ioas.c do; the file skips when /dev/iommu does not exist.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

#include "iommufd_test_utils.h"

#ifndef MISC_MAJOR
#define MISC_MAJOR 10
#endif

/* Minimum sizes the kernel accepts (IOCTL_OP(..., _last) in main.c) */
#define IOAS_ALLOC_MIN_SIZE offsetofend(struct iommu_ioas_alloc, out_ioas_id)
#define DESTROY_MIN_SIZE offsetofend(struct iommu_destroy, id)

/* Allocate an IOAS on @fd and require it to get id @want */
#define ASSERT_IOAS_ALLOC_ID(fd, want)                       \
	({                                                   \
		__u32 __id = 0;                              \
		ASSERT_EQ(0, _ioas_alloc(fd, &__id));        \
		ASSERT_EQ((__u32)(want), __id);              \
	})

/*
 * Require that the object table of @fd is empty below @want: the next
 * IOAS_ALLOC returns @want (lowest free id). The IOAS is destroyed again.
 * Used to prove that a failed ioctl consumed no id / left no object.
 */
#define ASSERT_NEXT_ID(fd, want)                 \
	({                                       \
		ASSERT_IOAS_ALLOC_ID(fd, want);  \
		ASSERT_DESTROY(fd, want);        \
	})

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------
 * The device node and open/close
 */

TEST(dev_iommu_is_char_device_mode_0660)
{
	struct stat st;

	SKIP_IF_NO_IOMMU_DEV();
	ASSERT_EQ(0, stat(IOMMU_DEV, &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	/* miscdevice iommu_misc_dev.mode = 0660 */
	EXPECT_EQ(0660, st.st_mode & 07777);
}

TEST(dev_iommu_is_misc_device)
{
	struct stat st;

	SKIP_IF_NO_IOMMU_DEV();
	ASSERT_EQ(0, stat(IOMMU_DEV, &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	/* misc_register() with MISC_DYNAMIC_MINOR: major is MISC_MAJOR */
	EXPECT_EQ(MISC_MAJOR, major(st.st_rdev));
}

TEST(open_close_repeatedly)
{
	int i;

	SKIP_IF_NO_IOMMU_DEV();
	for (i = 0; i != 200; i++) {
		int fd = open(IOMMU_DEV, O_RDWR);

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, close(fd));
	}
}

TEST(open_many_files_at_once)
{
	int fds[64];
	int i;

	SKIP_IF_NO_IOMMU_DEV();
	for (i = 0; i != 64; i++) {
		fds[i] = open(IOMMU_DEV, O_RDWR);
		ASSERT_LE(0, fds[i]);
	}
	/* Each open file is a separate context with its own id space */
	for (i = 0; i != 64; i++)
		ASSERT_IOAS_ALLOC_ID(fds[i], 1);
	for (i = 0; i != 64; i++)
		ASSERT_EQ(0, close(fds[i]));
}

TEST_F(iommufd, simple_close)
{
}

/* ------------------------------------------------------------------------
 * IOMMU_IOAS_ALLOC / IOMMU_DESTROY and id allocation
 */

TEST_F(iommufd, ioas_alloc_first_id_is_1)
{
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
}

TEST_F(iommufd, ioas_alloc_ids_are_sequential)
{
	__u32 i;

	for (i = 1; i <= 32; i++)
		ASSERT_IOAS_ALLOC_ID(self->fd, i);
}

TEST_F(iommufd, ioas_alloc_writes_out_id_and_keeps_input_fields)
{
	struct iommu_ioas_alloc cmd = {
		.size = sizeof(cmd),
		.flags = 0,
		.out_ioas_id = POISON_ID,
	};

	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOC, &cmd));
	EXPECT_EQ(1, cmd.out_ioas_id);
	EXPECT_EQ(sizeof(cmd), cmd.size);
	EXPECT_EQ(0, cmd.flags);

	/* The input value of out_ioas_id is ignored */
	cmd.out_ioas_id = 1;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOC, &cmd));
	EXPECT_EQ(2, cmd.out_ioas_id);
}

TEST_F(iommufd, destroy_ioas_succeeds_once)
{
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	ASSERT_DESTROY(self->fd, 1);
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, 1));
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, 1));
}

TEST_F(iommufd, destroy_id_0_is_enoent)
{
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, 0));
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, 0));
	/* The live object is unaffected */
	ASSERT_DESTROY(self->fd, 1);
}

TEST_F(iommufd, destroy_unknown_id_is_enoent)
{
	static const __u32 ids[] = {
		2, 3, 1000, 0x7fffffff, 0x80000000, 0xfffffffe, UINT32_MAX,
	};
	unsigned int i;

	/* Empty table */
	for (i = 0; i != sizeof(ids) / sizeof(ids[0]); i++)
		EXPECT_ERRNO(ENOENT, _destroy(self->fd, ids[i]));

	/* Table with object 1 in it */
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	for (i = 0; i != sizeof(ids) / sizeof(ids[0]); i++)
		EXPECT_ERRNO(ENOENT, _destroy(self->fd, ids[i]));
	ASSERT_DESTROY(self->fd, 1);
	ASSERT_NEXT_ID(self->fd, 1);
}

TEST_F(iommufd, lowest_free_id_is_reused_after_destroy)
{
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	ASSERT_IOAS_ALLOC_ID(self->fd, 2);
	ASSERT_IOAS_ALLOC_ID(self->fd, 3);
	ASSERT_IOAS_ALLOC_ID(self->fd, 4);

	/* A hole in the middle is filled first */
	ASSERT_DESTROY(self->fd, 2);
	ASSERT_IOAS_ALLOC_ID(self->fd, 2);

	/* With several holes the lowest one wins */
	ASSERT_DESTROY(self->fd, 3);
	ASSERT_DESTROY(self->fd, 1);
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	ASSERT_IOAS_ALLOC_ID(self->fd, 3);
	ASSERT_IOAS_ALLOC_ID(self->fd, 5);

	/* Freeing the highest id makes it the next one again */
	ASSERT_DESTROY(self->fd, 5);
	ASSERT_IOAS_ALLOC_ID(self->fd, 5);
}

TEST_F(iommufd, ids_unique_among_live_objects)
{
	__u32 i, id;

	for (i = 1; i <= 64; i++)
		ASSERT_IOAS_ALLOC_ID(self->fd, i);
	/* Free the odd ids; the even ones stay live */
	for (i = 1; i <= 64; i += 2)
		ASSERT_DESTROY(self->fd, i);
	/* Re-allocation hands out exactly the freed ids, lowest first */
	for (i = 1; i <= 64; i += 2)
		ASSERT_IOAS_ALLOC_ID(self->fd, i);
	/* Then continues after the highest live id */
	ASSERT_EQ(0, _ioas_alloc(self->fd, &id));
	ASSERT_EQ(65, id);
	/* Every one of them is a distinct live object */
	for (i = 1; i <= 65; i++)
		ASSERT_DESTROY(self->fd, i);
	for (i = 1; i <= 65; i++)
		EXPECT_ERRNO(ENOENT, _destroy(self->fd, i));
}

TEST_F(iommufd, many_ioas_alloc_destroy_1000)
{
	const __u32 n = 1000;
	__u32 i;

	for (i = 1; i <= n; i++)
		ASSERT_IOAS_ALLOC_ID(self->fd, i);
	/* Destroy in a scattered order: i * 7 mod 1000 is a permutation */
	for (i = 0; i != n; i++)
		ASSERT_DESTROY(self->fd, (i * 7) % n + 1);
	for (i = 1; i <= n; i++)
		EXPECT_ERRNO(ENOENT, _destroy(self->fd, i));
	ASSERT_NEXT_ID(self->fd, 1);
}

TEST_F(iommufd, many_ioas_alloc_destroy_cycles)
{
	int i;

	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	/* Alloc/destroy churn above a live object always reuses id 2 */
	for (i = 0; i != 1000; i++) {
		ASSERT_IOAS_ALLOC_ID(self->fd, 2);
		ASSERT_DESTROY(self->fd, 2);
	}
	ASSERT_DESTROY(self->fd, 1);
}

/* ------------------------------------------------------------------------
 * Object tables belong to the open file
 */

TEST_F(iommufd, objects_are_per_file)
{
	int fd2 = open(IOMMU_DEV, O_RDWR);

	ASSERT_LE(0, fd2);
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	ASSERT_IOAS_ALLOC_ID(self->fd, 2);

	/* ids of the first file are unknown on the second */
	EXPECT_ERRNO(ENOENT, _destroy(fd2, 1));
	EXPECT_ERRNO(ENOENT, _destroy(fd2, 2));

	/* The second file has its own id space starting at 1 */
	ASSERT_IOAS_ALLOC_ID(fd2, 1);
	EXPECT_ERRNO(ENOENT, _destroy(fd2, 2));
	ASSERT_DESTROY(fd2, 1);
	EXPECT_ERRNO(ENOENT, _destroy(fd2, 1));

	/* ... and destroying there did not touch the first file */
	ASSERT_DESTROY(self->fd, 1);
	ASSERT_DESTROY(self->fd, 2);
	ASSERT_EQ(0, close(fd2));
}

TEST_F(iommufd, objects_survive_close_of_duplicated_fd)
{
	int fd2 = dup(self->fd);

	ASSERT_LE(0, fd2);
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	/* Closing one descriptor does not release the open file */
	ASSERT_EQ(0, close(self->fd));
	self->fd = fd2;
	ASSERT_IOAS_ALLOC_ID(self->fd, 2);
	ASSERT_DESTROY(self->fd, 1);
	ASSERT_DESTROY(self->fd, 2);
}

TEST_F(iommufd, objects_shared_with_forked_child)
{
	int status;
	pid_t pid;

	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		__u32 id = 0;
		int ok;

		/* Same open file: sees object 1 and continues at id 2 */
		ok = !_ioas_alloc(self->fd, &id) && id == 2;
		ok = ok && !_destroy(self->fd, 1);
		_exit(ok ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	/* The child's changes are visible to the parent */
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, 1));
	ASSERT_DESTROY(self->fd, 2);
}

TEST(close_with_live_objects)
{
	int round, i;

	SKIP_IF_NO_IOMMU_DEV();
	/* Releasing objects on close can only be checked by kmemleak */
	for (round = 0; round != 20; round++) {
		int fd = open(IOMMU_DEV, O_RDWR);

		ASSERT_LE(0, fd);
		for (i = 1; i <= 100; i++)
			ASSERT_IOAS_ALLOC_ID(fd, i);
		/* Leave holes so the table is not contiguous */
		for (i = 1; i <= 100; i += 3)
			ASSERT_DESTROY(fd, i);
		ASSERT_EQ(0, close(fd));
	}
}

TEST(close_with_1000_live_objects)
{
	int fd, i;

	SKIP_IF_NO_IOMMU_DEV();
	fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, fd);
	for (i = 1; i <= 1000; i++)
		ASSERT_IOAS_ALLOC_ID(fd, i);
	ASSERT_EQ(0, close(fd));
}

TEST(ioctl_on_closed_fd_is_ebadf)
{
	int fd;

	SKIP_IF_NO_IOMMU_DEV();
	fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_IOAS_ALLOC_ID(fd, 1);
	ASSERT_EQ(0, close(fd));
	EXPECT_ERRNO(EBADF, _destroy(fd, 1));
	EXPECT_ERRNO(EBADF, _ioas_alloc(fd, NULL));
}

/* ------------------------------------------------------------------------
 * IOMMU_IOAS_ALLOC flags
 */

TEST_F(iommufd, ioas_alloc_nonzero_flags_is_eopnotsupp)
{
	static const __u32 flags[] = { 1, 2, 0x80000000, UINT32_MAX };
	unsigned int i;

	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	for (i = 0; i != sizeof(flags) / sizeof(flags[0]); i++) {
		struct iommu_ioas_alloc cmd = {
			.size = sizeof(cmd),
			.flags = flags[i],
			.out_ioas_id = POISON_ID,
		};

		EXPECT_ERRNO(EOPNOTSUPP,
			     ioctl(self->fd, IOMMU_IOAS_ALLOC, &cmd));
		/* Nothing was written back */
		EXPECT_EQ(POISON_ID, cmd.out_ioas_id);
		EXPECT_EQ(flags[i], cmd.flags);
	}
	/* No id was consumed */
	ASSERT_NEXT_ID(self->fd, 2);
}

/* ------------------------------------------------------------------------
 * The size word: minimum size, zero tail, E2BIG, order of checks
 */

TEST_F(iommufd, ioas_alloc_size_below_minimum_is_einval)
{
	static const __u32 sizes[] = { 0, 1, 4, 8, IOAS_ALLOC_MIN_SIZE - 1 };
	unsigned int i;

	for (i = 0; i != sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct iommu_ioas_alloc cmd = {
			.size = sizes[i],
			.out_ioas_id = POISON_ID,
		};

		EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_IOAS_ALLOC, &cmd));
		EXPECT_EQ(POISON_ID, cmd.out_ioas_id);
	}
	ASSERT_NEXT_ID(self->fd, 1);
}

TEST_F(iommufd, destroy_size_below_minimum_is_einval)
{
	static const __u32 sizes[] = { 0, 1, 4, DESTROY_MIN_SIZE - 1 };
	unsigned int i;

	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	for (i = 0; i != sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct iommu_destroy cmd = { .size = sizes[i], .id = 1 };

		EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_DESTROY, &cmd));
	}
	/* The object was not destroyed */
	ASSERT_DESTROY(self->fd, 1);
}

TEST_F(iommufd, ioas_alloc_size_larger_with_zero_tail_succeeds)
{
	const size_t npages = 3;
	char *buf = map_with_guard(npages);
	const __u32 sizes[] = {
		sizeof(struct iommu_ioas_alloc) + 1,
		sizeof(struct iommu_ioas_alloc) + 4,
		sizeof(struct iommu_ioas_alloc) + 8,
		64,
		page_size,
		page_size + 1,
		npages * page_size,
	};
	__u32 expect_id = 1;
	unsigned int i;
	size_t j;

	ASSERT_NE(NULL, buf);
	for (i = 0; i != sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct iommu_ioas_alloc *cmd = (void *)buf;

		cmd->size = sizes[i];
		cmd->flags = 0;
		cmd->out_ioas_id = POISON_ID;
		ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOC, cmd));
		EXPECT_EQ(expect_id, cmd->out_ioas_id);
		EXPECT_EQ(sizes[i], cmd->size);
		/* Only the kernel's struct is written back; tail stays zero */
		for (j = sizeof(*cmd); j != npages * page_size; j++)
			if (buf[j])
				break;
		EXPECT_EQ(npages * page_size, j);
		expect_id++;
	}
	unmap_with_guard(buf, npages);
}

TEST_F(iommufd, ioas_alloc_size_larger_with_nonzero_tail_is_e2big)
{
	const size_t npages = 2;
	char *buf = map_with_guard(npages);
	struct {
		__u32 size;
		size_t nonzero_at;
	} cases[] = {
		{ sizeof(struct iommu_ioas_alloc) + 1, 12 },
		{ 16, 12 },
		{ 16, 15 },
		{ 64, 63 },
		{ page_size, page_size - 1 },
		{ npages * page_size, page_size },
		{ npages * page_size, npages * page_size - 1 },
	};
	struct iommu_ioas_alloc *cmd = (void *)buf;
	unsigned int i;

	ASSERT_NE(NULL, buf);
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	for (i = 0; i != sizeof(cases) / sizeof(cases[0]); i++) {
		memset(buf, 0, npages * page_size);
		cmd->size = cases[i].size;
		cmd->out_ioas_id = POISON_ID;
		buf[cases[i].nonzero_at] = 0x5a;
		EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_IOAS_ALLOC, cmd));
		EXPECT_EQ(POISON_ID, cmd->out_ioas_id);
	}
	/* No id was consumed */
	ASSERT_NEXT_ID(self->fd, 2);
	unmap_with_guard(buf, npages);
}

TEST_F(iommufd, ioas_alloc_bytes_beyond_size_are_ignored)
{
	struct {
		struct iommu_ioas_alloc cmd;
		__u8 extra[8];
	} s = { .cmd = { .size = sizeof(s.cmd) } };

	/* Garbage after the user's declared size is not the kernel's concern */
	memset(s.extra, 0xff, sizeof(s.extra));
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOC, &s));
	EXPECT_EQ(1, s.cmd.out_ioas_id);

	s.cmd.size = sizeof(s.cmd) + 4;
	memset(s.extra, 0, 4);
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOC, &s));
	EXPECT_EQ(2, s.cmd.out_ioas_id);
	/* Bytes past the size were left alone */
	EXPECT_EQ(0xff, s.extra[4]);
	EXPECT_EQ(0xff, s.extra[7]);
}

TEST_F(iommufd, destroy_size_larger_with_zero_tail_succeeds)
{
	struct {
		struct iommu_destroy cmd;
		__u64 future[4];
	} s = {};

	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	ASSERT_IOAS_ALLOC_ID(self->fd, 2);

	s.cmd.size = sizeof(s);
	s.cmd.id = 1;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_DESTROY, &s));
	s.cmd.size = sizeof(s.cmd) + 1;
	s.cmd.id = 2;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_DESTROY, &s));

	/* A longer command still reports ENOENT for an unknown id */
	s.cmd.size = sizeof(s);
	EXPECT_ERRNO(ENOENT, ioctl(self->fd, IOMMU_DESTROY, &s));
}

TEST_F(iommufd, destroy_size_larger_with_nonzero_tail_is_e2big)
{
	struct {
		struct iommu_destroy cmd;
		__u8 future[16];
	} s = {};
	unsigned int i;

	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	for (i = 0; i != sizeof(s.future); i++) {
		memset(s.future, 0, sizeof(s.future));
		s.future[i] = 1;
		s.cmd.size = sizeof(s);
		s.cmd.id = 1;
		EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_DESTROY, &s));
	}
	/* The object survived all of them */
	ASSERT_DESTROY(self->fd, 1);
}

TEST_F(iommufd, size_checked_before_command_runs)
{
	struct {
		struct iommu_ioas_alloc cmd;
		__u32 extra;
	} a = {};
	struct {
		struct iommu_destroy cmd;
		__u32 extra;
	} d = {};

	/* Too small: EINVAL wins over EOPNOTSUPP (bad flags) */
	a.cmd.size = IOAS_ALLOC_MIN_SIZE - 4;
	a.cmd.flags = 1;
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_IOAS_ALLOC, &a));
	/* Nonzero tail: E2BIG wins over EOPNOTSUPP */
	a.cmd.size = sizeof(a);
	a.extra = 1;
	EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_IOAS_ALLOC, &a));

	/* Too small: EINVAL wins over ENOENT (unknown id) */
	d.cmd.size = DESTROY_MIN_SIZE - 4;
	d.cmd.id = 1234;
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_DESTROY, &d));
	/* Nonzero tail: E2BIG wins over ENOENT */
	d.cmd.size = sizeof(d);
	d.extra = 1;
	EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_DESTROY, &d));

	ASSERT_NEXT_ID(self->fd, 1);
}

TEST_F(iommufd, size_tail_reaching_unmapped_memory_is_efault)
{
	const size_t npages = 1;
	char *buf = map_with_guard(npages);
	static const __u32 extra[] = { 0, 1, 8, 4096, UINT32_MAX };
	struct iommu_ioas_alloc *a = (void *)buf;
	struct iommu_destroy *d = (void *)buf;
	unsigned int i;

	ASSERT_NE(NULL, buf);
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	for (i = 0; i != sizeof(extra) / sizeof(extra[0]); i++) {
		/* An all-zero tail that runs into the PROT_NONE guard page */
		__u64 size = npages * page_size + extra[i] + 1;

		if (size > UINT32_MAX)
			size = UINT32_MAX;
		memset(buf, 0, npages * page_size);
		a->size = size;
		a->out_ioas_id = POISON_ID;
		EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, a));
		EXPECT_EQ(POISON_ID, a->out_ioas_id);

		memset(buf, 0, npages * page_size);
		d->size = size;
		d->id = 1;
		EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, d));
	}
	/* Object 1 survived, no new id was consumed */
	ASSERT_NEXT_ID(self->fd, 2);
	ASSERT_DESTROY(self->fd, 1);
	unmap_with_guard(buf, npages);
}

TEST_F(iommufd, nonzero_tail_before_unmapped_memory_is_e2big)
{
	const size_t npages = 1;
	char *buf = map_with_guard(npages);
	struct iommu_ioas_alloc *a = (void *)buf;
	struct iommu_destroy *d = (void *)buf;

	ASSERT_NE(NULL, buf);
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);

	/*
	 * check_zeroed_user() stops at the first nonzero byte, so a nonzero
	 * byte before the unmapped page gives E2BIG, not EFAULT.
	 */
	memset(buf, 0, page_size);
	a->size = 2 * page_size;
	buf[100] = 1;
	EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_IOAS_ALLOC, a));

	memset(buf, 0, page_size);
	d->size = 2 * page_size;
	d->id = 1;
	buf[page_size - 1] = 1;
	EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_DESTROY, d));

	ASSERT_NEXT_ID(self->fd, 2);
	ASSERT_DESTROY(self->fd, 1);
	unmap_with_guard(buf, npages);
}

/* ------------------------------------------------------------------------
 * Bad user pointers
 */

TEST_F(iommufd, null_pointer_is_efault)
{
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, NULL));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, NULL));
	ASSERT_NEXT_ID(self->fd, 2);
	ASSERT_DESTROY(self->fd, 1);
}

TEST_F(iommufd, prot_none_pointer_is_efault)
{
	char *p = mmap(NULL, page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, p));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, p));
	ASSERT_NEXT_ID(self->fd, 2);
	ASSERT_DESTROY(self->fd, 1);
	munmap(p, page_size);
}

TEST_F(iommufd, unmapped_pointer_is_efault)
{
	char *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, munmap(p, page_size));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, p));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, p));
	ASSERT_NEXT_ID(self->fd, 1);
}

TEST_F(iommufd, kernel_and_noncanonical_pointers_are_efault)
{
#if __SIZEOF_LONG__ == 8
	static const unsigned long addrs[] = {
		0xffffffff81000000UL,	/* kernel text */
		0xffff888000000000UL,	/* direct map */
		0xfffffffffffff000UL,	/* last page */
		0x8000000000000000UL,	/* non-canonical */
		0x0000800000000000UL,	/* just above 47-bit user space */
	};
#else
	static const unsigned long addrs[] = { 0xc0000000UL, 0xfffff000UL };
#endif
	unsigned int i;

	for (i = 0; i != sizeof(addrs) / sizeof(addrs[0]); i++) {
		EXPECT_ERRNO(EFAULT,
			     ioctl(self->fd, IOMMU_IOAS_ALLOC, addrs[i]));
		EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, addrs[i]));
	}
	ASSERT_NEXT_ID(self->fd, 1);
}

TEST_F(iommufd, struct_straddling_unmapped_page_is_efault)
{
	char *buf = map_with_guard(1);
	struct iommu_ioas_alloc *a;
	struct iommu_destroy *d;

	ASSERT_NE(NULL, buf);
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);

	/* Only the size word is readable; the rest is in the guard page */
	a = (void *)(buf + page_size - sizeof(__u32));
	a->size = sizeof(*a);
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, a));

	d = (void *)(buf + page_size - sizeof(__u32));
	d->size = sizeof(*d);
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, d));

	/* size and flags readable, out_ioas_id not */
	a = (void *)(buf + page_size - 2 * sizeof(__u32));
	a->size = sizeof(*a);
	a->flags = 0;
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, a));

	ASSERT_NEXT_ID(self->fd, 2);
	ASSERT_DESTROY(self->fd, 1);
	unmap_with_guard(buf, 1);
}

TEST_F(iommufd, ioas_alloc_readonly_result_is_efault_and_leaves_no_object)
{
	char *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iommu_ioas_alloc *cmd = (void *)p;
	int i;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);

	cmd->size = sizeof(*cmd);
	cmd->flags = 0;
	cmd->out_ioas_id = POISON_ID;
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ));

	/* The object that would have been id 2 is aborted, every time */
	for (i = 0; i != 10; i++) {
		EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, cmd));
		EXPECT_EQ(POISON_ID, cmd->out_ioas_id);
		EXPECT_ERRNO(ENOENT, _destroy(self->fd, 2));
	}
	/* The next successful alloc gets the id the failed one would have had */
	ASSERT_IOAS_ALLOC_ID(self->fd, 2);
	ASSERT_DESTROY(self->fd, 1);
	ASSERT_DESTROY(self->fd, 2);
	munmap(p, page_size);
}

TEST_F(iommufd, ioas_alloc_result_straddling_readonly_page_is_efault)
{
	char *p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iommu_ioas_alloc *cmd;

	ASSERT_NE(MAP_FAILED, p);
	/* size and flags in a writable page, out_ioas_id in a read-only one */
	cmd = (void *)(p + page_size - 2 * sizeof(__u32));
	cmd->size = sizeof(*cmd);
	cmd->flags = 0;
	cmd->out_ioas_id = POISON_ID;
	ASSERT_EQ(0, mprotect(p + page_size, page_size, PROT_READ));

	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, cmd));
	EXPECT_EQ(POISON_ID, cmd->out_ioas_id);
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, 1));
	ASSERT_NEXT_ID(self->fd, 1);
	munmap(p, 2 * page_size);
}

TEST_F(iommufd, destroy_accepts_readonly_struct)
{
	char *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iommu_destroy *cmd = (void *)p;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	cmd->size = sizeof(*cmd);
	cmd->id = 1;
	ASSERT_EQ(0, mprotect(p, page_size, PROT_READ));
	/* IOMMU_DESTROY has no output, so nothing is written back */
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_DESTROY, cmd));
	EXPECT_ERRNO(ENOENT, ioctl(self->fd, IOMMU_DESTROY, cmd));
	munmap(p, page_size);
}

/* ------------------------------------------------------------------------
 * Unknown ioctl numbers
 */

TEST_F(iommufd, unknown_ioctl_below_cmd_base_is_enotty)
{
	/*
	 * nr below IOMMUFD_CMD_BASE goes to the VFIO compat handler, which
	 * only knows the exact VFIO_* numbers (nr 100..102, 112..114); every
	 * other command is ENOTTY without touching the argument.
	 */
	static const unsigned int cmds[] = {
		_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE - 1),
		_IO(IOMMUFD_TYPE, 0),
		_IO(IOMMUFD_TYPE, 1),
		_IO(IOMMUFD_TYPE, 0x63),
		_IO(IOMMUFD_TYPE, 0x7e),
	};
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	unsigned int i;

	for (i = 0; i != sizeof(cmds) / sizeof(cmds[0]); i++) {
		EXPECT_ERRNO(ENOTTY, ioctl(self->fd, cmds[i], &cmd));
		EXPECT_ERRNO(ENOTTY, ioctl(self->fd, cmds[i], NULL));
	}
	ASSERT_NEXT_ID(self->fd, 1);
}

TEST_F(iommufd, unknown_ioctl_beyond_table_is_enotty)
{
	/*
	 * Past the last 7.3 command (IOMMU_IOAS_NOIOMMU_GET_PA, 0x95). With
	 * CONFIG_IOMMUFD_TEST these are empty slots of the command table, so
	 * upstream reads the size word first: pass a valid argument.
	 */
	static const unsigned int cmds_valid_arg[] = {
		_IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA + 1),
		_IO(IOMMUFD_TYPE, 0x9f),
	};
	/* Above even the IOMMU_TEST_CMD slot (0xa0): never in the table */
	static const unsigned int cmds_any_arg[] = {
		_IO(IOMMUFD_TYPE, 0xb0),
		_IO(IOMMUFD_TYPE, 0xc0),
		_IO(IOMMUFD_TYPE, 0xff),
	};
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	unsigned int i;

	for (i = 0; i != sizeof(cmds_valid_arg) / sizeof(cmds_valid_arg[0]);
	     i++)
		EXPECT_ERRNO(ENOTTY, ioctl(self->fd, cmds_valid_arg[i], &cmd));
	for (i = 0; i != sizeof(cmds_any_arg) / sizeof(cmds_any_arg[0]); i++) {
		EXPECT_ERRNO(ENOTTY, ioctl(self->fd, cmds_any_arg[i], &cmd));
		EXPECT_ERRNO(ENOTTY, ioctl(self->fd, cmds_any_arg[i], NULL));
	}
	ASSERT_NEXT_ID(self->fd, 1);
}

TEST_F(iommufd, wrong_encoding_of_valid_nr_is_enotty)
{
	static const unsigned int alloc_cmds[] = {
		_IOW(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC,
		     struct iommu_ioas_alloc),
		_IOR(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC,
		     struct iommu_ioas_alloc),
		_IOWR(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC,
		      struct iommu_ioas_alloc),
		_IOC(_IOC_NONE, IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC,
		     sizeof(struct iommu_ioas_alloc)),
		_IO('x', IOMMUFD_CMD_IOAS_ALLOC),
		_IO(IOMMUFD_TYPE + 1, IOMMUFD_CMD_IOAS_ALLOC),
	};
	static const unsigned int destroy_cmds[] = {
		_IOW(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY, struct iommu_destroy),
		_IOWR(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY, struct iommu_destroy),
		_IOC(_IOC_NONE, IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY, 8),
		_IO('x', IOMMUFD_CMD_DESTROY),
	};
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	struct iommu_destroy d = { .size = sizeof(d), .id = 1 };
	unsigned int i;

	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	for (i = 0; i != sizeof(alloc_cmds) / sizeof(alloc_cmds[0]); i++) {
		a.out_ioas_id = POISON_ID;
		EXPECT_ERRNO(ENOTTY, ioctl(self->fd, alloc_cmds[i], &a));
		EXPECT_EQ(POISON_ID, a.out_ioas_id);
	}
	for (i = 0; i != sizeof(destroy_cmds) / sizeof(destroy_cmds[0]); i++)
		EXPECT_ERRNO(ENOTTY, ioctl(self->fd, destroy_cmds[i], &d));
	/* Object 1 is still there and no id was consumed */
	ASSERT_NEXT_ID(self->fd, 2);
	ASSERT_DESTROY(self->fd, 1);
}

TEST_F(iommufd, wrong_encoding_of_valid_nr_with_bad_pointer_is_efault)
{
	/*
	 * Upstream reads the size word (get_user) before comparing the full
	 * command number, so for an nr inside the command table a bad pointer
	 * is reported as EFAULT even when the encoding is wrong.
	 */
	EXPECT_ERRNO(EFAULT,
		     ioctl(self->fd,
			   _IOW(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC,
				struct iommu_ioas_alloc),
			   NULL));
	EXPECT_ERRNO(EFAULT,
		     ioctl(self->fd, _IO('x', IOMMUFD_CMD_DESTROY), NULL));
}

/* ------------------------------------------------------------------------
 * Concurrency
 */

#define RACE_THREADS 8
#define RACE_BATCH 8
#define RACE_MAX_ID (RACE_THREADS * RACE_BATCH)
#define RACE_SECONDS 3.0

struct alloc_worker {
	pthread_t thread;
	int fd;
	unsigned int idx;
	unsigned int *owner; /* owner[id] = idx + 1 while the id is ours */
	pthread_barrier_t *start;
	double deadline;
	unsigned long rounds;
	bool failed;
	char msg[160];
};

static void *alloc_destroy_worker(void *arg)
{
	struct alloc_worker *w = arg;
	__u32 ids[RACE_BATCH];
	unsigned int k;

	pthread_barrier_wait(w->start);
	while (w->rounds < 100000 && now_sec() < w->deadline) {
		for (k = 0; k != RACE_BATCH; k++) {
			unsigned int expected = 0;

			if (_ioas_alloc(w->fd, &ids[k])) {
				snprintf(w->msg, sizeof(w->msg),
					 "IOAS_ALLOC failed: %s",
					 strerror(errno));
				goto fail;
			}
			/*
			 * At most RACE_MAX_ID objects are live at any time,
			 * so the lowest free id is never above that.
			 */
			if (ids[k] == 0 || ids[k] > RACE_MAX_ID) {
				snprintf(w->msg, sizeof(w->msg),
					 "id %u outside 1..%u", ids[k],
					 RACE_MAX_ID);
				goto fail;
			}
			if (!__atomic_compare_exchange_n(
				    &w->owner[ids[k]], &expected, w->idx + 1,
				    false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST)) {
				snprintf(w->msg, sizeof(w->msg),
					 "id %u handed out while live (owner %u)",
					 ids[k], expected - 1);
				goto fail;
			}
		}
		/* Destroy in an order that varies between threads and rounds */
		for (k = 0; k != RACE_BATCH; k++) {
			unsigned int j = (k * 3 + w->idx + w->rounds) % RACE_BATCH;

			/* Release ownership first: after destroy the id is free */
			__atomic_store_n(&w->owner[ids[j]], 0, __ATOMIC_SEQ_CST);
			if (_destroy(w->fd, ids[j])) {
				snprintf(w->msg, sizeof(w->msg),
					 "DESTROY of own id %u failed: %s",
					 ids[j], strerror(errno));
				goto fail;
			}
		}
		w->rounds++;
	}
	return NULL;
fail:
	w->failed = true;
	return NULL;
}

TEST_F_TIMEOUT(iommufd, concurrent_alloc_destroy_threads, 60)
{
	static unsigned int owner[RACE_MAX_ID + 1];
	struct alloc_worker w[RACE_THREADS] = {};
	pthread_barrier_t start;
	unsigned long total = 0;
	double deadline;
	unsigned int i;

	ASSERT_EQ(0, pthread_barrier_init(&start, NULL, RACE_THREADS));
	deadline = now_sec() + RACE_SECONDS;
	for (i = 0; i != RACE_THREADS; i++) {
		w[i].fd = self->fd;
		w[i].idx = i;
		w[i].owner = owner;
		w[i].start = &start;
		w[i].deadline = deadline;
		ASSERT_EQ(0, pthread_create(&w[i].thread, NULL,
					    alloc_destroy_worker, &w[i]));
	}
	for (i = 0; i != RACE_THREADS; i++)
		ASSERT_EQ(0, pthread_join(w[i].thread, NULL));
	pthread_barrier_destroy(&start);

	for (i = 0; i != RACE_THREADS; i++) {
		EXPECT_FALSE(w[i].failed)
			TH_LOG("thread %u: %s", i, w[i].msg);
		total += w[i].rounds;
	}
	TH_LOG("%lu alloc/destroy batches of %u", total, RACE_BATCH);
	EXPECT_LT(0, total);
	/* Everything was destroyed: the table is empty again */
	ASSERT_NEXT_ID(self->fd, 1);
}

struct destroy_worker {
	pthread_t thread;
	int fd;
	pthread_barrier_t *start, *done;
	volatile __u32 *target;
	volatile bool *stop;
	int result; /* 0 or errno */
};

static void *destroy_same_id_worker(void *arg)
{
	struct destroy_worker *w = arg;

	for (;;) {
		pthread_barrier_wait(w->start);
		if (*w->stop)
			return NULL;
		w->result = _destroy(w->fd, *w->target) ? errno : 0;
		pthread_barrier_wait(w->done);
	}
}

TEST_F_TIMEOUT(iommufd, concurrent_destroy_of_same_id_succeeds_once, 60)
{
	const unsigned int nthreads = 4;
	struct destroy_worker w[4] = {};
	pthread_barrier_t start, done;
	volatile __u32 target = 0;
	volatile bool stop = false;
	unsigned int i, round;
	double deadline;

	ASSERT_EQ(0, pthread_barrier_init(&start, NULL, nthreads + 1));
	ASSERT_EQ(0, pthread_barrier_init(&done, NULL, nthreads + 1));
	for (i = 0; i != nthreads; i++) {
		w[i].fd = self->fd;
		w[i].start = &start;
		w[i].done = &done;
		w[i].target = &target;
		w[i].stop = &stop;
		ASSERT_EQ(0, pthread_create(&w[i].thread, NULL,
					    destroy_same_id_worker, &w[i]));
	}

	ASSERT_IOAS_ALLOC_ID(self->fd, 1);
	deadline = now_sec() + RACE_SECONDS;
	for (round = 0; round != 2000 && now_sec() < deadline; round++) {
		unsigned int ok = 0, enoent = 0;
		__u32 id;

		/* Object 1 stays live, so the racing id is always 2 */
		ASSERT_EQ(0, _ioas_alloc(self->fd, &id));
		ASSERT_EQ(2, id);
		target = id;
		pthread_barrier_wait(&start);
		pthread_barrier_wait(&done);
		for (i = 0; i != nthreads; i++) {
			if (w[i].result == 0)
				ok++;
			else if (w[i].result == ENOENT)
				enoent++;
			else
				TH_LOG("round %u thread %u: %s", round, i,
				       strerror(w[i].result));
		}
		ASSERT_EQ(1, ok) TH_LOG("round %u", round);
		ASSERT_EQ(nthreads - 1, enoent) TH_LOG("round %u", round);
	}
	stop = true;
	pthread_barrier_wait(&start);
	for (i = 0; i != nthreads; i++)
		ASSERT_EQ(0, pthread_join(w[i].thread, NULL));
	pthread_barrier_destroy(&start);
	pthread_barrier_destroy(&done);
	ASSERT_DESTROY(self->fd, 1);
	ASSERT_NEXT_ID(self->fd, 1);
}

#define CLOSE_RACE_THREADS 4
#define CLOSE_RACE_IDS 64

struct close_race_worker {
	pthread_t thread;
	int fd;
	unsigned int idx;
	pthread_barrier_t *start;
	unsigned long ok, ebadf;
	bool failed;
	char msg[160];
};

static void *close_race_worker(void *arg)
{
	struct close_race_worker *w = arg;
	unsigned long iter;
	__u32 id;

	pthread_barrier_wait(w->start);
	/* First destroy this thread's share of the pre-allocated objects */
	for (id = w->idx + 1; id <= CLOSE_RACE_IDS; id += CLOSE_RACE_THREADS) {
		if (!_destroy(w->fd, id)) {
			w->ok++;
			continue;
		}
		if (errno == EBADF)
			return NULL;
		snprintf(w->msg, sizeof(w->msg), "DESTROY %u: %s", id,
			 strerror(errno));
		goto fail;
	}
	/* Then churn until the descriptor goes away */
	for (iter = 0; iter != 1000000; iter++) {
		if (_ioas_alloc(w->fd, &id)) {
			if (errno == EBADF)
				return NULL;
			snprintf(w->msg, sizeof(w->msg), "IOAS_ALLOC: %s",
				 strerror(errno));
			goto fail;
		}
		if (_destroy(w->fd, id)) {
			if (errno == EBADF)
				return NULL;
			snprintf(w->msg, sizeof(w->msg), "DESTROY own %u: %s",
				 id, strerror(errno));
			goto fail;
		}
		w->ok++;
	}
	snprintf(w->msg, sizeof(w->msg), "never saw EBADF after close");
fail:
	w->failed = true;
	return NULL;
}

TEST_F_TIMEOUT(iommufd, destroy_racing_close, 60)
{
	struct close_race_worker w[CLOSE_RACE_THREADS];
	pthread_barrier_t start;
	unsigned int i, round;
	double deadline;
	__u32 id;

	/* The fixture's fd is not used; each round has its own file */
	deadline = now_sec() + RACE_SECONDS;
	for (round = 0; round != 200 && now_sec() < deadline; round++) {
		int fd = open(IOMMU_DEV, O_RDWR);

		ASSERT_LE(0, fd);
		for (id = 1; id <= CLOSE_RACE_IDS; id++)
			ASSERT_IOAS_ALLOC_ID(fd, id);

		memset(w, 0, sizeof(w));
		ASSERT_EQ(0, pthread_barrier_init(&start, NULL,
						  CLOSE_RACE_THREADS + 1));
		for (i = 0; i != CLOSE_RACE_THREADS; i++) {
			w[i].fd = fd;
			w[i].idx = i;
			w[i].start = &start;
			ASSERT_EQ(0, pthread_create(&w[i].thread, NULL,
						    close_race_worker, &w[i]));
		}
		pthread_barrier_wait(&start);
		/* Vary the moment of the close between rounds */
		if (round % 4)
			usleep((round * 37) % 300);
		ASSERT_EQ(0, close(fd));
		for (i = 0; i != CLOSE_RACE_THREADS; i++)
			ASSERT_EQ(0, pthread_join(w[i].thread, NULL));
		pthread_barrier_destroy(&start);
		for (i = 0; i != CLOSE_RACE_THREADS; i++)
			EXPECT_FALSE(w[i].failed)
				TH_LOG("round %u thread %u: %s", round, i,
				       w[i].msg);
	}
	TH_LOG("%u rounds", round);
}

TEST_HARNESS_MAIN
