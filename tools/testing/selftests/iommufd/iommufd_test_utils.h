/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the iommufd selftests: ioctl wrappers that fill in the
 * size word and report what the kernel wrote back, the assertion macros
 * built on them, and small mmap/capability utilities. Everything is
 * static inline or a macro; each test file includes this once.
 *
 * The wrappers poison output fields they expect the kernel to write, so a
 * test can tell "written" from "left alone".
 */
#ifndef __SELFTEST_IOMMUFD_TEST_UTILS_H
#define __SELFTEST_IOMMUFD_TEST_UTILS_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/iommufd.h>

/* IOMMU_TEST_CMD: our copy of drivers/iommu/iommufd/iommufd_test.h */
#include "../../../../iommufd/iommufd_test.h"

#include "kselftest_harness.h"

#define IOMMU_DEV "/dev/iommu"

#ifndef offsetofend
#define offsetofend(TYPE, MEMBER) \
	(offsetof(TYPE, MEMBER) + sizeof(((TYPE *)0)->MEMBER))
#endif

/* Sentinels written into output fields to detect (un)expected writes */
#define POISON_ID 0xdeadbeefU
#define POISON64 0xdeadbeefcafef00dULL

/* The kernel's ULONG_MAX; these tests are built for 64-bit userspace */
#define IOVA_MAX UINT64_MAX

#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define FIXED IOMMU_IOAS_MAP_FIXED_IOVA

/* Fixed IOVAs, away from 0 and each other, 1 MiB aligned */
#define IOVA_A 0x100000ULL
#define IOVA_B 0x200000ULL
#define IOVA_C 0x300000ULL

/* ------------------------------------------------------------------------
 * Sizes and the probe page, set up before any test runs
 */

static size_t page_size;
/* iopt_alloc_iova()'s cap: HPAGE_SIZE with THP, else PAGE_SIZE */
static uint64_t max_alignment;
/* One page for probe_len(); never touched by the kernel without a domain */
static char *probe_buf;

/* Runs before the harness's (default priority) constructors */
static __attribute__((constructor(101))) void iommufd_test_setup_sizes(void)
{
	unsigned long long v;
	FILE *f;

	page_size = sysconf(_SC_PAGE_SIZE);
	max_alignment = page_size;
	/* The file exists exactly when CONFIG_TRANSPARENT_HUGEPAGE=y */
	f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
	if (f) {
		if (fscanf(f, "%llu", &v) == 1 && v >= page_size)
			max_alignment = v;
		fclose(f);
	}
	probe_buf = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (probe_buf == MAP_FAILED)
		probe_buf = NULL;
}

/* ------------------------------------------------------------------------
 * Assertion and skip macros
 */

/* The ioctl must fail with exactly this errno */
#define EXPECT_ERRNO(expected_errno, cmd)         \
	({                                        \
		ASSERT_EQ(-1, cmd);               \
		EXPECT_EQ(expected_errno, errno); \
	})

#define SKIP_IF_NO_IOMMU_DEV()                                          \
	do {                                                            \
		if (access(IOMMU_DEV, F_OK))                            \
			SKIP(return, IOMMU_DEV " does not exist (%s)", \
			     strerror(errno));                          \
	} while (0)

/* ------------------------------------------------------------------------
 * Objects: IOAS, destroy, fault queue
 */

static inline int _ioas_alloc(int fd, __u32 *id)
{
	struct iommu_ioas_alloc cmd = {
		.size = sizeof(cmd),
		.out_ioas_id = POISON_ID,
	};
	int ret;

	ret = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);
	if (!ret && id)
		*id = cmd.out_ioas_id;
	return ret;
}

static inline int _destroy(int fd, __u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd);
}

#define ASSERT_DESTROY(fd, id) ASSERT_EQ(0, _destroy(fd, id))

/*
 * A fault queue: the one object besides an IOAS that needs no device, used
 * as an id of the wrong type (see FAULT_ALLOC_OR_SKIP).
 */
static inline int _fault_alloc(int fd, __u32 *id, int *fault_fd)
{
	struct iommu_fault_alloc cmd = {
		.size = sizeof(cmd),
		.out_fault_id = POISON_ID,
		.out_fault_fd = POISON_ID,
	};
	int ret;

	ret = ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &cmd);
	if (!ret) {
		*id = cmd.out_fault_id;
		*fault_fd = cmd.out_fault_fd;
	}
	return ret;
}

/* Skips the test when the kernel lacks IOMMU_FAULT_QUEUE_ALLOC */
#define FAULT_ALLOC_OR_SKIP(fd, id, fault_fd)                               \
	do {                                                                \
		if (_fault_alloc(fd, id, fault_fd)) {                       \
			if (errno == ENOTTY)                                \
				SKIP(return, "no IOMMU_FAULT_QUEUE_ALLOC"); \
			ASSERT_EQ(0, errno);                                \
		}                                                           \
	} while (0)

/* ------------------------------------------------------------------------
 * IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP
 */

/*
 * IOMMU_IOAS_MAP with every field given; *@iova is the input and receives
 * what the struct holds afterwards.
 */
static inline int _map(int fd, __u32 ioas_id, __u32 flags, __u64 user_va,
		       __u64 length, __u64 *iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas_id,
		.user_va = user_va,
		.length = length,
		.iova = *iova,
	};
	int ret;

	ret = ioctl(fd, IOMMU_IOAS_MAP, &cmd);
	*iova = cmd.iova;
	return ret;
}

/* Map at a fixed IOVA with the given access flags */
static inline int _map_prot(int fd, __u32 ioas_id, __u32 prot,
			    const void *va, __u64 length, __u64 iova)
{
	return _map(fd, ioas_id, prot | FIXED, (uintptr_t)va, length, &iova);
}

/* Read-write map at a fixed IOVA */
static inline int _map_fixed(int fd, __u32 ioas_id, const void *va,
			     __u64 length, __u64 iova)
{
	return _map_prot(fd, ioas_id, RW, va, length, iova);
}

/* Read-write map at an IOVA the kernel picks (POISON64 goes in) */
static inline int _map_auto(int fd, __u32 ioas_id, const void *va,
			    __u64 length, __u64 *iova)
{
	*iova = POISON64;
	return _map(fd, ioas_id, RW, (uintptr_t)va, length, iova);
}

#define ASSERT_MAP_FIXED(fd, ioas_id, va, length, iova) \
	ASSERT_EQ(0, _map_fixed(fd, ioas_id, va, length, iova))

/* IOMMU_IOAS_UNMAP; *@unmapped receives the length field afterwards */
static inline int _unmap(int fd, __u32 ioas_id, __u64 iova, __u64 length,
			 __u64 *unmapped)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = length,
	};
	int ret;

	ret = ioctl(fd, IOMMU_IOAS_UNMAP, &cmd);
	if (unmapped)
		*unmapped = cmd.length;
	return ret;
}

/* UNMAP of [iova, iova + length) must succeed and report @expected bytes */
#define ASSERT_UNMAP(fd, ioas_id, iova, length, expected)              \
	({                                                             \
		__u64 __u = POISON64;                                  \
		ASSERT_EQ(0, _unmap(fd, ioas_id, iova, length, &__u)); \
		ASSERT_EQ((__u64)(expected), __u);                     \
	})

/* UNMAP of everything must succeed and report @expected bytes */
#define ASSERT_UNMAP_ALL(fd, ioas_id, expected) \
	ASSERT_UNMAP(fd, ioas_id, 0, UINT64_MAX, expected)

/* Nothing is mapped: unmap-all succeeds with 0 */
#define ASSERT_EMPTY(fd, ioas_id) ASSERT_UNMAP_ALL(fd, ioas_id, 0)

/*
 * Whether [iova, iova + len) is (partly) mapped, without changing anything
 * for long: a FIXED map of probe_buf there fails with EEXIST when it is,
 * and is undone when it is not. @len must be a multiple of the IOAS's IOVA
 * alignment (and at most a page). 1: mapped, 0: free, -1: something else
 * happened.
 */
static inline int probe_len(int fd, __u32 ioas_id, __u64 iova, __u64 len)
{
	__u64 unmapped = 0;

	if (!_map_fixed(fd, ioas_id, probe_buf, len, iova)) {
		if (_unmap(fd, ioas_id, iova, len, &unmapped) ||
		    unmapped != len)
			return -1;
		return 0;
	}
	return errno == EEXIST ? 1 : -1;
}

/* For IOVA alignment 1: the byte at @iova */
#define ASSERT_MAPPED(fd, ioas_id, iova) \
	ASSERT_EQ(1, probe_len(fd, ioas_id, iova, 1))
#define ASSERT_FREE(fd, ioas_id, iova) \
	ASSERT_EQ(0, probe_len(fd, ioas_id, iova, 1))
/* For IOVA alignment PAGE_SIZE: the page at @iova */
#define ASSERT_PAGE_MAPPED(fd, ioas_id, iova) \
	ASSERT_EQ(1, probe_len(fd, ioas_id, iova, page_size))
#define ASSERT_PAGE_FREE(fd, ioas_id, iova) \
	ASSERT_EQ(0, probe_len(fd, ioas_id, iova, page_size))

/* ------------------------------------------------------------------------
 * IOMMU_IOAS_IOVA_RANGES / IOMMU_IOAS_ALLOW_IOVAS
 */

/* [start, start + len - 1] */
#define RANGE(s, len) \
	{ .start = (s), .last = (s) + (len) - 1 }

/* IOMMU_IOAS_IOVA_RANGES into @cmd (poisoned output), @num slots at @ranges */
static inline int _iova_ranges(int fd, __u32 ioas_id, __u32 num, void *ranges,
			       struct iommu_ioas_iova_ranges *cmd)
{
	*cmd = (struct iommu_ioas_iova_ranges){
		.size = sizeof(*cmd),
		.ioas_id = ioas_id,
		.num_iovas = num,
		.allowed_iovas = (uintptr_t)ranges,
		.out_iova_alignment = POISON64,
	};
	return ioctl(fd, IOMMU_IOAS_IOVA_RANGES, cmd);
}

/* out_iova_alignment of IOVA_RANGES; POISON64 when the ioctl fails */
static inline __u64 _iova_alignment(int fd, __u32 ioas_id)
{
	struct iommu_ioas_iova_ranges cmd;
	struct iommu_iova_range r;

	if (_iova_ranges(fd, ioas_id, 1, &r, &cmd))
		return POISON64;
	return cmd.out_iova_alignment;
}

static inline int _allow_iovas(int fd, __u32 ioas_id, const void *ranges,
			       __u32 num)
{
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.num_iovas = num,
		.allowed_iovas = (uintptr_t)ranges,
	};

	return ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd);
}

/* ------------------------------------------------------------------------
 * IOMMU_OPTION
 */

/* IOMMU_OPTION; *@val64 is the input and receives what the kernel wrote */
static inline int _option(int fd, __u32 option_id, __u16 op, __u32 object_id,
			  __u64 *val64)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = option_id,
		.op = op,
		.object_id = object_id,
		.val64 = *val64,
	};
	int ret;

	ret = ioctl(fd, IOMMU_OPTION, &cmd);
	*val64 = cmd.val64;
	return ret;
}

/* Read an option's value; POISON64 when the GET fails */
static inline __u64 _option_get(int fd, __u32 option_id, __u32 object_id)
{
	__u64 val = POISON64;

	if (_option(fd, option_id, IOMMU_OPTION_OP_GET, object_id, &val))
		return POISON64;
	return val;
}

static inline int _rlimit_set(int fd, __u64 val)
{
	return _option(fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0,
		       &val);
}

static inline int _huge_set(int fd, __u32 ioas_id, __u64 val)
{
	return _option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET,
		       ioas_id, &val);
}

#define rlimit_get(fd) _option_get(fd, IOMMU_OPTION_RLIMIT_MODE, 0)
#define huge_get(fd, id) _option_get(fd, IOMMU_OPTION_HUGE_PAGES, id)

/* ------------------------------------------------------------------------
 * Where automatic IOVA allocation puts a map (iopt_alloc_iova())
 */

static inline uint64_t roundup_pow_of_two(uint64_t x)
{
	uint64_t r = 1;

	while (r < x)
		r <<= 1;
	return r;
}

/*
 * The alignment for a map of @length bytes at user VA @addr:
 * min(roundup_pow_of_two(length), lowest set bit of addr, max_alignment).
 */
static inline uint64_t auto_alignment(uint64_t addr, uint64_t length)
{
	uint64_t a = roundup_pow_of_two(length);

	if (addr && (addr & -addr) < a)
		a = addr & -addr;
	if (a >= max_alignment)
		a = max_alignment;
	return a;
}

/*
 * Where such a map goes in a hole starting at @start (IOAS alignment 1):
 * the first aligned address from @start, ORed with addr's offset in its page.
 */
static inline uint64_t auto_place(uint64_t start, uint64_t addr,
				  uint64_t length)
{
	uint64_t a = auto_alignment(addr, length);

	return ((start + a - 1) & ~(a - 1)) | (addr % page_size);
}

/* In an empty IOAS: the allocator never returns an IOVA below PAGE_SIZE */
static inline uint64_t auto_place_empty(uint64_t addr, uint64_t length)
{
	return auto_place(page_size, addr, length);
}

/* ------------------------------------------------------------------------
 * Memory
 */

/* @len bytes of fresh anonymous memory with @prot; NULL on failure */
static inline char *anon(size_t len, int prot)
{
	char *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* @npages read-write pages followed by one PROT_NONE guard page */
static inline char *map_with_guard(size_t npages)
{
	char *p = anon((npages + 1) * page_size, PROT_READ | PROT_WRITE);

	if (!p)
		return NULL;
	if (mprotect(p + npages * page_size, page_size, PROT_NONE)) {
		munmap(p, (npages + 1) * page_size);
		return NULL;
	}
	return p;
}

static inline void unmap_with_guard(char *p, size_t npages)
{
	munmap(p, (npages + 1) * page_size);
}

/* ------------------------------------------------------------------------
 * Capabilities (raw capget/capset, no libcap)
 */

static inline int get_caps(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};

	return syscall(SYS_capget, &hdr, data);
}

/* Effective set: only @cap when @only, else everything but @cap */
static inline int set_effective_caps(int cap, bool only)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];
	__u32 bit = 1U << (cap % 32);

	if (get_caps(data))
		return -1;
	if (only) {
		data[0].effective = 0;
		data[1].effective = 0;
		data[cap / 32].effective = bit;
	} else {
		data[cap / 32].effective &= ~bit;
	}
	return syscall(SYS_capset, &hdr, data);
}

static inline bool have_cap(int cap)
{
	struct __user_cap_data_struct data[2];

	if (get_caps(data))
		return false;
	return data[cap / 32].effective & (1U << (cap % 32));
}

/* RLIMIT_MODE SET needs CAP_SYS_RESOURCE; dropping privileges needs root */
#define SKIP_IF_NOT_ROOT()                                                \
	do {                                                              \
		if (geteuid() != 0 || !have_cap(CAP_SYS_RESOURCE) ||      \
		    !have_cap(CAP_SETUID))                                \
			SKIP(return, "needs root with CAP_SYS_RESOURCE"); \
	} while (0)

/* ------------------------------------------------------------------------
 * /proc/self/status
 */

/*
 * A "Key:" line of /proc/self/status in kB (VmPin is mm->pinned_vm, VmLck
 * mm->locked_vm); -1 when it is missing.
 */
static inline long proc_status_kb(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long val = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, n) && line[n] == ':') {
			val = strtol(line + n + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return val;
}

#define vm_pinned_kb() proc_status_kb("VmPin")
#define vm_locked_kb() proc_status_kb("VmLck")

/* @npages pages in the kB of /proc/self/status */
#define PAGES_KB(npages) ((long)((npages) * page_size / 1024))

/* ------------------------------------------------------------------------
 * IOMMU_TEST_CMD (CONFIG_IOMMUFD_TEST): the mock IOMMU
 *
 * MOCK_DOMAIN creates a mock device, binds it and attaches it to an IOAS
 * (or HWPT), which gives the IOAS a mock domain (aperture
 * [MOCK_APERTURE_START, MOCK_APERTURE_LAST], 2 KiB pages): from then on
 * IOAS_MAP pins the user pages. The device goes away only when its
 * selftest object (stdev id) is destroyed.
 */

/* The first IOVA the mock domain can map */
#define MOCK_IOVA ((__u64)MOCK_APERTURE_START)

static inline int _test_cmd(int fd, struct iommu_test_cmd *cmd)
{
	cmd->size = sizeof(*cmd);
	return ioctl(fd, IOMMU_TEST_CMD, cmd);
}

/* MOCK_DOMAIN_FLAGS (MOCK_DOMAIN when @dev_flags is 0); ids may be NULL */
static inline int _mock_domain_flags(int fd, __u32 pt_id, __u32 dev_flags,
				     __u32 *stdev_id, __u32 *hwpt_id,
				     __u32 *idev_id)
{
	struct iommu_test_cmd cmd = {
		.op = dev_flags ? IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS :
				  IOMMU_TEST_OP_MOCK_DOMAIN,
		.id = pt_id,
		.mock_domain_flags = {
			.out_stdev_id = POISON_ID,
			.out_hwpt_id = POISON_ID,
			.out_idev_id = POISON_ID,
			.dev_flags = dev_flags,
		},
	};
	int ret;

	ret = _test_cmd(fd, &cmd);
	if (ret)
		return ret;
	if (stdev_id)
		*stdev_id = cmd.mock_domain_flags.out_stdev_id;
	if (hwpt_id)
		*hwpt_id = cmd.mock_domain_flags.out_hwpt_id;
	if (idev_id)
		*idev_id = cmd.mock_domain_flags.out_idev_id;
	return 0;
}

#define _mock_domain(fd, pt_id, stdev_id, hwpt_id, idev_id) \
	_mock_domain_flags(fd, pt_id, 0, stdev_id, hwpt_id, idev_id)

/*
 * MD_CHECK_REFS: every page of [@ptr, @ptr + @length) is pinned exactly
 * @refs times (compound pages are not checked). 0 or -1 with errno (EIO:
 * a count differs).
 */
static inline int _check_refs(int fd, const void *ptr, __u64 length,
			      __u32 refs)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_MD_CHECK_REFS,
		.check_refs = {
			.length = length,
			.uptr = (uintptr_t)ptr,
			.refs = refs,
		},
	};

	return _test_cmd(fd, &cmd);
}

/*
 * MD_CHECK_MAP: the mock domain @hwpt_id translates each page of
 * [@iova, @iova + @length) to the physical page now behind the same offset
 * of @ptr in the caller's address space. 0 or -1 with errno (EINVAL: a
 * page differs, or bad arguments).
 */
static inline int _check_map(int fd, __u32 hwpt_id, __u64 iova, __u64 length,
			     const void *ptr)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_MD_CHECK_MAP,
		.id = hwpt_id,
		.check_map = {
			.iova = iova,
			.length = length,
			.uptr = (uintptr_t)ptr,
		},
	};

	return _test_cmd(fd, &cmd);
}

#define ASSERT_REFS(fd, ptr, length, refs) \
	ASSERT_EQ(0, _check_refs(fd, ptr, length, refs))
#define ASSERT_CHECK_MAP(fd, hwpt_id, iova, length, ptr) \
	ASSERT_EQ(0, _check_map(fd, hwpt_id, iova, length, ptr))

/* Skips when the kernel has no IOMMU_TEST_CMD (CONFIG_IOMMUFD_TEST=n) */
#define SKIP_IF_NO_TEST_CMD(fd)                                              \
	do {                                                                 \
		if (_check_refs(fd, NULL, 0, 0) && errno == ENOTTY)          \
			SKIP(return, "no IOMMU_TEST_CMD (CONFIG_IOMMUFD_TEST)"); \
	} while (0)

/* ------------------------------------------------------------------------
 * The common fixture: a bare /dev/iommu file
 */

FIXTURE(iommufd)
{
	int fd;
};

FIXTURE_SETUP(iommufd)
{
	self->fd = -1;
	SKIP_IF_NO_IOMMU_DEV();
	ASSERT_NE(NULL, probe_buf);
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(iommufd)
{
	if (self->fd >= 0)
		close(self->fd);
}

#endif /* __SELFTEST_IOMMUFD_TEST_UTILS_H */
