// SPDX-License-Identifier: GPL-2.0-only
/*
 * iommufd_map_bench: times IOMMU_IOAS_MAP and IOMMU_IOAS_UNMAP of 1 GiB of
 * user memory on /dev/iommu, for four kinds of memory and two kinds of IOAS.
 *
 * Memory (each 1 GiB, touched first so that both kernels pin the same
 * resident pages):
 *   anon4k      anonymous memory in 4K pages (MADV_NOHUGEPAGE, and THP off
 *               for the process with PR_SET_THP_DISABLE)
 *   thp         anonymous memory, 2M aligned, in THPs (MADV_HUGEPAGE)
 *   hugetlb     a memfd_create(MFD_HUGETLB) file of 2M pages, mapped with
 *               IOMMU_IOAS_MAP_FILE (fd + offset)
 *   hugetlb-va  the same file's mmap(), mapped with IOMMU_IOAS_MAP (user VA)
 *
 * IOAS: one with no domain attached
 * (where both the C and the Rust iommufd record the mapping without pinning
 * anything, so this measures the bookkeeping path), and one with the mock
 * domain of IOMMU_TEST_CMD (where pages are pinned and mapped into the mock
 * page table).  A kernel without IOMMU_TEST_CMD (ENOTTY) gets its mock-domain
 * cases reported as not available.
 *
 * The emulated VT-d (QEMU's intel-iommu), through QEMU's edu device bound to
 * vfio-pci (the helpers of ../testing/selftests/vfio/vfio_edu.h), two ways in,
 * each opened anew for every memory kind (the two cannot hold the device at
 * once) and closed after it:
 *   vtd-cdev   /dev/vfio/devices/vfioN bound to /dev/iommu
 *              (VFIO_DEVICE_BIND_IOMMUFD) and attached to an IOAS
 *              (VFIO_DEVICE_ATTACH_IOMMUFD_PT, which makes a VT-d domain);
 *              IOMMU_IOAS_MAP(_FILE)/IOMMU_IOAS_UNMAP at IOVAs the kernel picks
 *   vtd-group  /dev/vfio/$group in a /dev/vfio/vfio container with
 *              VFIO_TYPE1v2_IOMMU, the device opened (VFIO_GROUP_GET_DEVICE_FD:
 *              a container on iommufd attaches its domain then, C type1 at
 *              VFIO_SET_IOMMU); VFIO_IOMMU_MAP_DMA/UNMAP_DMA at IOVAs from
 *              4 GiB up (offset in the 1 GiB + 4 GiB); no file mappings there,
 *              so no "hugetlb" kind (its pages are mapped as hugetlb-va)
 * The pages are pinned and mapped into VT-d's page table (and the IOTLB
 * invalidated, caching mode); the device does no DMA.  The C type1 container
 * holds at most dma_entry_limit (65535) mappings: the program raises the
 * module parameter so that the 4K ladder can climb past it.
 *
 * Cases, per domain and memory kind:
 *   map1G / unmap1G          one mapping of the whole 1 GiB, then its unmap,
 *                            repeated for a few rounds
 *   map4K.nN / unmap4K.nN    N separate 4 KiB mappings at IOVAs the kernel
 *                            allocates, then N unmaps; N climbs 256, 1024,
 *                            ... 262144 (= 1 GiB) while the next step is
 *                            predicted to fit the time budget
 *
 * Dirty tracking (the pseudo-kind "dirty" of -k): IOMMU_HWPT_GET_DIRTY_BITMAP
 * on a mock HWPT made with IOMMU_HWPT_ALLOC_DIRTY_TRACKING (tracking on), with
 * a bit per 4 KiB, over
 *   1G-4k     1 GiB of anonymous 4K pages on an IOAS with IOMMU_OPTION_HUGE_PAGES
 *             off (the default mock page table: 256K entries of 4 KiB)
 *   64G-huge  64 GiB of IOVA: the same 1 GiB hugetlb memfd mapped 64 times at
 *             fixed IOVAs into a MOCK_IOMMUPT_HUGE page table (1 MiB entries),
 *             the way upstream's selftest runs its _huge variants; 16M bits
 * Each round marks pages dirty with IOMMU_TEST_OP_DIRTY (not timed) and then
 * times one GET_DIRTY_BITMAP of the whole range, which reads and clears:
 *   clean     nothing marked: the cost of the walk alone
 *   sparse    one page marked every 2 MiB (1G-4k) or every 64 MiB (64G-huge)
 *   all       every page marked
 * The HWPT has no device attached: it is allocated for the mock device on an
 * IOAS of its own, so the device's default domain (2 GiB aperture) does not
 * restrict the IOVA.
 *
 * Output, one line per case: `BENCH <domain>.<kind>.<case> <ns>`, the median
 * over the rounds of the ns one operation took (for the 4K cases: a round's
 * total divided by N).  `BENCH-NA <domain>[.<kind>] <reason>` says a case
 * could not run.  Lines starting with '#' are commentary.
 *
 * usage: iommufd_map_bench [-r ROUNDS] [-b BUDGET_S] [-n MAX_SMALL] [-k KINDS] [-d DOMAINS] [-T]
 *                          [-p PERIOD_US]
 *   -r  rounds of the 1 GiB case (default 5)
 *   -b  time budget per case in seconds (default 15): rounds stop once it is
 *       spent (at least one round runs), the 4K ladder stops climbing when
 *       the next step would not fit
 *   -n  largest number of 4K mappings (default 262144; 0: no 4K cases)
 *   -k  the memory kinds to run, separated by ',' or '+' (default all four,
 *       and "dirty" for the dirty-tracking cases)
 *   -d  the domains to run, separated by ',' or '+' (default all: none,
 *       mock, vtd-cdev, vtd-group)
 *   -T  do not touch (fault in) the memory before mapping it
 *   -p  profile: after each 1 GiB case, run its maps and its unmaps again
 *       (as many rounds) while sampling the kernel every P microseconds
 *       (kprof.h), and print the functions that took the time
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/iommufd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* IOMMU_TEST_CMD: the test-only ABI of drivers/iommu/iommufd (not in uapi). */
#include "iommufd_test.h"
#include "kprof.h"
/* edu and vfio-pci: find_edu(), bind_driver(), ioas_alloc(), iommu_map_va()... */
#include "vfio_edu.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

#define SZ_4K (4096UL)
#define SZ_2M (2UL << 20)
#define SZ_1G (1UL << 30)
#define MAX_ROUNDS 64

static int rounds = 5;
static double budget_s = 15;
static unsigned long max_small = SZ_1G / SZ_4K;
static bool touch = true;
static const char *only_kinds;
static const char *only_domains;
static unsigned long profile_us;

/* 1 GiB of one kind of memory, as the benchmark maps it. */
struct mem {
	const char *kind;	/* "anon4k", "thp", "hugetlb", "hugetlb-va" */
	char *va;		/* the 1 GiB (2M aligned for thp) */
	int fd;			/* >= 0: map the memfd with IOMMU_IOAS_MAP_FILE */
	void *map_base;		/* for munmap() */
	size_t map_len;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(const char *dom, const char *kind, const char *what,
		   uint64_t *v, int n)
{
	printf("BENCH %s.%s.%s %llu\n", dom, kind, what,
	       (unsigned long long)median(v, n));
	fflush(stdout);
}

/* Where vtd-group maps: offset in the memory + this (the container takes fixed IOVAs). */
#define GROUP_IOVA (4UL << 30)

/* An IOAS and its domain, or a type1 container. */
struct target {
	const char *name;	/* "none", "mock", "vtd-cdev" or "vtd-group" */
	int fd;			/* /dev/iommu, or the container /dev/vfio/vfio */
	__u32 ioas_id;
	bool container;		/* VFIO_IOMMU_MAP_DMA at GROUP_IOVA + offset */
	bool vtd;		/* opened per memory kind by vtd_open() */
	int devfd, groupfd;	/* vtd-cdev's device, vtd-group's group */
	bool ok;
	char why[512];		/* why not, when !ok */
};

/* Maps len bytes at offset off of the memory at an IOVA the kernel picks. */
static int map(struct target *t, const struct mem *mem, size_t off, size_t len,
	       __u64 *iova)
{
	const __u32 flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

	if (t->container) {
		*iova = GROUP_IOVA + off;
		return iommu_map_va(t->fd, true, 0, mem->va + off, *iova, len);
	}
	if (mem->fd >= 0) {
		struct iommu_ioas_map_file cmd = {
			.size = sizeof(cmd),
			.flags = flags,
			.ioas_id = t->ioas_id,
			.fd = mem->fd,
			.start = off,
			.length = len,
		};

		if (ioctl(t->fd, IOMMU_IOAS_MAP_FILE, &cmd))
			return -1;
		*iova = cmd.iova;
	} else {
		struct iommu_ioas_map cmd = {
			.size = sizeof(cmd),
			.flags = flags,
			.ioas_id = t->ioas_id,
			.user_va = (uintptr_t)(mem->va + off),
			.length = len,
		};

		if (ioctl(t->fd, IOMMU_IOAS_MAP, &cmd))
			return -1;
		*iova = cmd.iova;
	}
	return 0;
}

static int unmap(struct target *t, __u64 iova, __u64 len)
{
	if (t->container)
		return iommu_unmap_iova(t->fd, true, 0, iova, len);

	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = t->ioas_id,
		.iova = iova,
		.length = len,
	};

	return ioctl(t->fd, IOMMU_IOAS_UNMAP, &cmd);
}

static void unmap_all(struct target *t)
{
	if (t->container) {
		struct vfio_iommu_type1_dma_unmap cmd = {
			.argsz = sizeof(cmd),
			.flags = VFIO_DMA_UNMAP_FLAG_ALL,
		};

		ioctl(t->fd, VFIO_IOMMU_UNMAP_DMA, &cmd);
		return;
	}
	unmap(t, 0, UINT64_MAX);
}

static void setup(struct target *t, const char *name, bool mock)
{
	t->name = name;
	t->ok = false;
	t->fd = open("/dev/iommu", O_RDWR);
	if (t->fd < 0) {
		snprintf(t->why, sizeof(t->why), "open /dev/iommu: %s", strerror(errno));
		return;
	}
	if (ioas_alloc(t->fd, &t->ioas_id)) {
		snprintf(t->why, sizeof(t->why), "IOMMU_IOAS_ALLOC: %s", strerror(errno));
		return;
	}
	if (mock) {
		struct iommu_test_cmd cmd = {
			.size = sizeof(cmd),
			.op = IOMMU_TEST_OP_MOCK_DOMAIN,
			.id = t->ioas_id,
		};

		if (ioctl(t->fd, IOMMU_TEST_CMD, &cmd)) {
			if (errno == ENOTTY)
				snprintf(t->why, sizeof(t->why), "no mock domain yet (IOMMU_TEST_CMD: ENOTTY)");
			else
				snprintf(t->why, sizeof(t->why), "IOMMU_TEST_OP_MOCK_DOMAIN: %s", strerror(errno));
			return;
		}
		printf("# mock domain: hwpt %u, device %u on IOAS %u\n",
		       cmd.mock_domain.out_hwpt_id, cmd.mock_domain.out_idev_id, t->ioas_id);
	}
	t->ok = true;
}

/* The edu device's BDF, bound to vfio-pci by vtd_prepare(); "" if none. */
static char edu_bdf[256];
static char vtd_why[512];

/*
 * Binds edu to vfio-pci for the VT-d targets, and raises the C type1
 * container's limit of mappings (dma_entry_limit, 65535; ours has none) so
 * that the 4K ladder of vtd-group can climb to 262144 mappings.
 */
static bool vtd_prepare(void)
{
	const char *limit = "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit";
	int ret;

	if (!find_edu(edu_bdf, sizeof(edu_bdf))) {
		edu_bdf[0] = 0;
		snprintf(vtd_why, sizeof(vtd_why), "no edu device (1234:11e8)");
		return false;
	}
	if (access("/sys/bus/pci/drivers/vfio-pci", F_OK)) {
		snprintf(vtd_why, sizeof(vtd_why), "no vfio-pci driver");
		return false;
	}
	ret = bind_driver(edu_bdf, "vfio-pci");
	if (ret) {
		snprintf(vtd_why, sizeof(vtd_why), "binding %s to vfio-pci: %s", edu_bdf, strerror(-ret));
		return false;
	}
	if (!access(limit, F_OK)) {
		ret = write_file(limit, "1048576");
		printf("# type1 dma_entry_limit raised to 1048576: %s\n", ret ? strerror(-ret) : "ok");
	}
	printf("# edu %s bound to vfio-pci\n", edu_bdf);
	return true;
}

static void vtd_close(struct target *t)
{
	close_device_fds(&t->devfd, &t->groupfd, &t->fd);
	t->ok = false;
}

#define VTD_FAIL(t, ...)                                           \
	({                                                         \
		snprintf((t)->why, sizeof((t)->why), __VA_ARGS__); \
		vtd_close(t);                                      \
		return false;                                      \
	})

/* vtd-cdev: edu's device cdev bound to a new iommufd, attached to an IOAS. */
static bool vtd_open_cdev(struct target *t)
{
	char name[256], path[300];
	__u32 devid, pt;

	if (!find_vfio_dev(edu_bdf, name, sizeof(name)))
		VTD_FAIL(t, "no vfio-dev of %s (VFIO_DEVICE_CDEV)", edu_bdf);
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", name);
	t->devfd = open(path, O_RDWR);
	if (t->devfd < 0)
		VTD_FAIL(t, "open %s: %s", path, strerror(errno));
	t->fd = open("/dev/iommu", O_RDWR);
	if (t->fd < 0)
		VTD_FAIL(t, "open /dev/iommu: %s", strerror(errno));
	if (bind_iommufd(t->devfd, t->fd, &devid))
		VTD_FAIL(t, "VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno));
	if (ioas_alloc(t->fd, &t->ioas_id))
		VTD_FAIL(t, "IOMMU_IOAS_ALLOC: %s", strerror(errno));
	pt = t->ioas_id;
	if (attach_pt(t->devfd, &pt))
		VTD_FAIL(t, "VFIO_DEVICE_ATTACH_IOMMUFD_PT: %s", strerror(errno));
	printf("# vtd-cdev: %s (%s) bound as device %u, attached to IOAS %u through hwpt %u\n",
	       path, edu_bdf, devid, t->ioas_id, pt);
	return true;
}

/* vtd-group: edu's group in a type1v2 container. */
static bool vtd_open_group(struct target *t)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	char path[64];
	int group;

	if (!find_iommu_group(edu_bdf, &group))
		VTD_FAIL(t, "%s has no IOMMU group", edu_bdf);
	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	t->groupfd = open(path, O_RDWR);
	if (t->groupfd < 0)
		VTD_FAIL(t, "open %s: %s", path, strerror(errno));
	if (ioctl(t->groupfd, VFIO_GROUP_GET_STATUS, &status))
		VTD_FAIL(t, "VFIO_GROUP_GET_STATUS: %s", strerror(errno));
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		VTD_FAIL(t, "group %d is not viable", group);
	t->fd = open("/dev/vfio/vfio", O_RDWR);
	if (t->fd < 0)
		VTD_FAIL(t, "open /dev/vfio/vfio: %s", strerror(errno));
	if (ioctl(t->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0)
		VTD_FAIL(t, "no VFIO_TYPE1v2_IOMMU");
	if (ioctl(t->groupfd, VFIO_GROUP_SET_CONTAINER, &t->fd))
		VTD_FAIL(t, "VFIO_GROUP_SET_CONTAINER: %s", strerror(errno));
	if (ioctl(t->fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		VTD_FAIL(t, "VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU): %s", strerror(errno));
	/*
	 * The device open too: C type1 attaches the group to its VT-d domain at
	 * VFIO_SET_IOMMU, but a container on iommufd (ours, and upstream's
	 * IOMMUFD_VFIO_CONTAINER) attaches the device when it is opened; until
	 * then the mappings are only recorded.
	 */
	t->devfd = ioctl(t->groupfd, VFIO_GROUP_GET_DEVICE_FD, edu_bdf);
	if (t->devfd < 0)
		VTD_FAIL(t, "VFIO_GROUP_GET_DEVICE_FD: %s", strerror(errno));
	printf("# vtd-group: %s (%s) in a type1v2 container, device open\n", path, edu_bdf);
	return true;
}

/* Opens a VT-d target for one memory kind; false (and t->why) if it cannot. */
static bool vtd_open(struct target *t)
{
	t->fd = t->devfd = t->groupfd = -1;
	t->ok = false;
	if (!edu_bdf[0]) {
		snprintf(t->why, sizeof(t->why), "%s", vtd_why);
		return false;
	}
	t->ok = t->container ? vtd_open_group(t) : vtd_open_cdev(t);
	return t->ok;
}

/* Rounds of map + unmap of 1 GiB with the maps (or the unmaps) profiled. */
static void profile_1g(struct target *t, const struct mem *mem, int n, bool maps)
{
	char label[64];

	snprintf(label, sizeof(label), "%s.%s.%s1G", t->name, mem->kind, maps ? "map" : "unmap");
	if (kprof_open(profile_us * 1000))
		return;
	/*
	 * The sampling clock may tick no faster than the timer interrupt
	 * (kernels without high resolution timers): go on until enough time
	 * was sampled to mean something.
	 */
	uint64_t sampled = 0, start = now_ns();
	int i;

	for (i = 0; i < n || (sampled < 3e9 && now_ns() - start < 4 * budget_s * 1e9); i++) {
		uint64_t t0 = now_ns(), t1, t2;
		__u64 iova;
		int err;

		if (maps)
			kprof_on();
		err = map(t, mem, 0, SZ_1G, &iova);
		kprof_off();
		t1 = now_ns();
		if (err)
			break;
		if (!maps)
			kprof_on();
		err = unmap(t, iova, SZ_1G);
		kprof_off();
		t2 = now_ns();
		if (err)
			break;
		sampled += maps ? t1 - t0 : t2 - t1;
	}
	printf("# kprof %s: %d rounds, %.2fs sampled\n", label, i, sampled / 1e9);
	kprof_report(label);
}

/*
 * Without a domain, or of 4 KiB, an operation takes microseconds, less than
 * turning the sampling on and off around it costs: the maps and unmaps of
 * len bytes are sampled together, 3 s of them at once.
 */
static void profile_batch(struct target *t, const struct mem *mem, size_t len)
{
	uint64_t start = now_ns();
	char label[64];
	int i;

	snprintf(label, sizeof(label), "%s.%s.map+unmap%s", t->name, mem->kind,
		 len == SZ_1G ? "1G" : "4K");
	if (kprof_open(profile_us * 1000))
		return;
	kprof_on();
	for (i = 0; now_ns() - start < 3e9; i++) {
		__u64 iova;

		if (map(t, mem, 0, len, &iova) || unmap(t, iova, len))
			break;
	}
	kprof_off();
	printf("# kprof %s: %d rounds, %.2fs sampled\n", label, i, (now_ns() - start) / 1e9);
	kprof_report(label);
}

/*
 * 1 GiB at once: rounds of map + unmap. Without a domain an ioctl takes a few
 * microseconds, close to the clock's own cost and noise: a round there is the
 * mean of NONE_REPS of them.
 */
#define NONE_REPS 256
static int bench_1g(struct target *t, const struct mem *mem)
{
	const char *kind = mem->kind;
	uint64_t m[MAX_ROUNDS], u[MAX_ROUNDS], start = now_ns();
	int reps = strcmp(t->name, "none") ? 1 : NONE_REPS;
	int n;

	for (n = 0; n < rounds && n < MAX_ROUNDS; n++) {
		if (n > 0 && now_ns() - start > budget_s * 1e9)
			break;
		m[n] = u[n] = 0;
		for (int r = 0; r < reps; r++) {
			uint64_t t0, t1, t2;
			__u64 iova;

			t0 = now_ns();
			if (map(t, mem, 0, SZ_1G, &iova)) {
				printf("# %s.%s.map1G: %s failed: %s\n", t->name, kind,
				       mem->fd >= 0 ? "IOMMU_IOAS_MAP_FILE" : "IOMMU_IOAS_MAP",
				       strerror(errno));
				printf("BENCH-NA %s.%s.map1G map failed: %s\n", t->name, kind,
				       strerror(errno));
				return -1;
			}
			t1 = now_ns();
			if (unmap(t, iova, SZ_1G)) {
				printf("BENCH-NA %s.%s.unmap1G unmap failed: %s\n", t->name, kind,
				       strerror(errno));
				unmap_all(t);
				return -1;
			}
			t2 = now_ns();
			m[n] += t1 - t0;
			u[n] += t2 - t1;
		}
		m[n] /= reps;
		u[n] /= reps;
	}
	printf("# %s.%s 1G: %d rounds (each the mean of %d); map ms:", t->name, kind, n, reps);
	for (int i = 0; i < n; i++)
		printf(" %.3g", m[i] / 1e6);
	printf("; unmap ms:");
	for (int i = 0; i < n; i++)
		printf(" %.3g", u[i] / 1e6);
	printf("\n");
	report(t->name, kind, "map1G", m, n);
	report(t->name, kind, "unmap1G", u, n);
	if (profile_us && !strcmp(t->name, "none")) {
		profile_batch(t, mem, SZ_1G);
	} else if (profile_us) {
		profile_1g(t, mem, n, true);
		profile_1g(t, mem, n, false);
	}
	if (profile_us)
		profile_batch(t, mem, SZ_4K);
	return 0;
}

/* One round of count separate 4K maps then count unmaps; the totals in ns. */
static int small_round(struct target *t, const struct mem *mem,
		       unsigned long count, __u64 *iovas, uint64_t *map_ns,
		       uint64_t *unmap_ns)
{
	const char *kind = mem->kind;
	unsigned long i;
	uint64_t t0, t1, t2;

	t0 = now_ns();
	for (i = 0; i < count; i++) {
		if (map(t, mem, i * SZ_4K, SZ_4K, &iovas[i])) {
			printf("BENCH-NA %s.%s.map4K.n%lu map %lu failed: %s\n",
			       t->name, kind, count, i, strerror(errno));
			unmap_all(t);
			return -1;
		}
	}
	t1 = now_ns();
	for (i = 0; i < count; i++) {
		if (unmap(t, iovas[i], SZ_4K)) {
			printf("BENCH-NA %s.%s.unmap4K.n%lu unmap %lu failed: %s\n",
			       t->name, kind, count, i, strerror(errno));
			unmap_all(t);
			return -1;
		}
	}
	t2 = now_ns();
	*map_ns = t1 - t0;
	*unmap_ns = t2 - t1;
	return 0;
}

static int bench_small(struct target *t, const struct mem *mem)
{
	const char *kind = mem->kind;
	__u64 *iovas = calloc(max_small, sizeof(*iovas));
	double prev_per_op = 0;
	unsigned long count;

	if (!iovas)
		return -1;
	for (count = 256; count <= max_small; count *= 4) {
		uint64_t m[3], u[3], start = now_ns(), spent;
		double per_op, next;
		int n;

		for (n = 0; n < 3; n++) {
			if (n > 0 && now_ns() - start > budget_s * 1e9 / 3)
				break;
			if (small_round(t, mem, count, iovas, &m[n], &u[n])) {
				free(iovas);
				return -1;
			}
		}
		spent = now_ns() - start;
		printf("# %s.%s 4K x %lu: %d rounds, %.1fs\n", t->name, kind, count, n, spent / 1e9);
		for (int i = 0; i < n; i++) {
			m[i] /= count;
			u[i] /= count;
		}
		per_op = (double)(spent / n) / count;
		char what[64];

		snprintf(what, sizeof(what), "map4K.n%lu", count);
		report(t->name, kind, what, m, n);
		snprintf(what, sizeof(what), "unmap4K.n%lu", count);
		report(t->name, kind, what, u, n);
		/*
		 * One round of the next step (4x the mappings), assuming the cost
		 * per operation grows again as it did from the last step.
		 */
		next = 4.0 * count * per_op * (prev_per_op > 0 && per_op > prev_per_op ? per_op / prev_per_op : 1);
		prev_per_op = per_op;
		if (count * 4 <= max_small && next > budget_s * 1e9) {
			printf("# %s.%s: stopping the 4K ladder at %lu mappings: the next step would take ~%.0fs (budget %.0fs)\n",
			       t->name, kind, count, next / 1e9, budget_s);
			printf("BENCH-NA %s.%s.map4K.n%lu over the time budget\n", t->name, kind, count * 4);
			break;
		}
	}
	free(iovas);
	return 0;
}

static void touch_mem(char *buf, size_t len)
{
	for (size_t off = 0; off < len; off += SZ_4K)
		buf[off] = 1;
}

static unsigned long meminfo(const char *file, const char *key)
{
	char line[256];
	unsigned long v = 0;
	FILE *f = fopen(file, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = strtoul(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

/* Makes sure 1 GiB of 2M hugetlb pages is free, raising nr_hugepages. */
static bool hugetlb_ready(void)
{
	unsigned long need = SZ_1G / SZ_2M, free_pages, total;

	free_pages = meminfo("/proc/meminfo", "HugePages_Free");
	if (free_pages >= need)
		return true;
	total = meminfo("/proc/meminfo", "HugePages_Total");
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "w");

	if (f) {
		fprintf(f, "%lu\n", total + need - free_pages);
		fclose(f);
	}
	free_pages = meminfo("/proc/meminfo", "HugePages_Free");
	printf("# hugetlb: %lu of %lu 2M pages free\n", free_pages, need);
	return free_pages >= need;
}

enum kind { ANON4K, THP, HUGETLB };
static const char *const kind_names[] = { "anon4k", "thp", "hugetlb" };

/*
 * Whether the list, separated by ',' or '+' (BENCH_ARGS turns commas into
 * blanks), names the word; true when there is no list.
 */
static bool listed(const char *p, const char *kind)
{
	size_t len = strlen(kind);

	if (!p)
		return true;
	while (*p) {
		if (!strncmp(p, kind, len) && (p[len] == ',' || p[len] == '+' || !p[len]))
			return true;
		p += strcspn(p, ",+");
		if (!*p)
			break;
		p++;
	}
	return false;
}

/* Whether -k asked for the kind (all when -k was not given). */
static bool wanted(const char *kind)
{
	return listed(only_kinds, kind);
}

/*
 * 1 GiB of the kind into *mem, or false (with a BENCH-NA line).  The hugetlb
 * kind keeps its memfd open (mem->fd), for IOMMU_IOAS_MAP_FILE.
 */
static bool alloc_kind(enum kind k, struct mem *mem)
{
	char *p;

	*mem = (struct mem){ .kind = kind_names[k], .fd = -1 };
	/*
	 * A kernel without madvise() (ADVISE_SYSCALLS=n, as in our tinyconfig
	 * based test kernels) only has THP for everything or nothing
	 * (transparent_hugepage/enabled = always or never), and the process-wide
	 * PR_SET_THP_DISABLE: both are used as well.
	 */
	prctl(PR_SET_THP_DISABLE, k == ANON4K, 0, 0, 0);
	switch (k) {
	case ANON4K:
		p = mmap(NULL, SZ_1G, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			break;
		if (madvise(p, SZ_1G, MADV_NOHUGEPAGE) && errno != ENOSYS)
			printf("# anon4k: MADV_NOHUGEPAGE: %s\n", strerror(errno));
		mem->va = mem->map_base = p;
		mem->map_len = SZ_1G;
		return true;
	case THP:
		p = mmap(NULL, SZ_1G + SZ_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			break;
		mem->map_base = p;
		mem->map_len = SZ_1G + SZ_2M;
		mem->va = (char *)(((uintptr_t)p + SZ_2M - 1) & ~(SZ_2M - 1));
		if (madvise(mem->va, SZ_1G, MADV_HUGEPAGE) && errno != ENOSYS)
			printf("# thp: MADV_HUGEPAGE: %s\n", strerror(errno));
		return true;
	case HUGETLB: {
		int fd;

		if (!hugetlb_ready()) {
			printf("BENCH-NA *.hugetlb not enough free 2M hugetlb pages\n");
			printf("BENCH-NA *.hugetlb-va not enough free 2M hugetlb pages\n");
			return false;
		}
		fd = memfd_create("bench", MFD_HUGETLB);
		if (fd < 0) {
			printf("BENCH-NA *.hugetlb memfd_create(MFD_HUGETLB): %s\n", strerror(errno));
			return false;
		}
		if (ftruncate(fd, SZ_1G)) {
			printf("BENCH-NA *.hugetlb ftruncate: %s\n", strerror(errno));
			close(fd);
			return false;
		}
		/* The mmap() is for touching the pages (and for hugetlb-va). */
		p = mmap(NULL, SZ_1G, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			printf("BENCH-NA *.hugetlb mmap: %s\n", strerror(errno));
			close(fd);
			return false;
		}
		mem->va = mem->map_base = p;
		mem->map_len = SZ_1G;
		mem->fd = fd;
		return true;
	}
	}
	printf("BENCH-NA *.%s mmap: %s\n", kind_names[k], strerror(errno));
	return false;
}

/* Dirty tracking: see the header comment. */
struct dirty_space {
	const char *name;
	int fd;			/* /dev/iommu */
	__u32 ioas_id, hwpt_id;
	__u64 iova, length;
	__u64 sparse_step;	/* bytes between two pages marked in "sparse" */
	__u64 mark_page;	/* bytes per bit of IOMMU_TEST_OP_DIRTY */
};

static int hwpt_alloc_dirty(int fd, __u32 dev_id, __u32 ioas_id, __u32 pt_type,
			    __u32 *hwpt_id)
{
	struct iommu_hwpt_selftest data = { .pagetable_type = pt_type };
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
		.dev_id = dev_id,
		.pt_id = ioas_id,
		.data_type = IOMMU_HWPT_DATA_SELFTEST,
		.data_len = sizeof(data),
		.data_uptr = (uintptr_t)&data,
	};

	if (ioctl(fd, IOMMU_HWPT_ALLOC, &cmd))
		return -1;
	*hwpt_id = cmd.out_hwpt_id;
	return 0;
}

/*
 * A context with a mock device on an IOAS of its own, and a second IOAS with a
 * dirty-tracking HWPT of pt_type made for that device, tracking on.
 */
static int dirty_setup(struct dirty_space *d, __u32 pt_type, bool huge_pages)
{
	struct iommu_test_cmd mock = { .size = sizeof(mock), .op = IOMMU_TEST_OP_MOCK_DOMAIN };
	struct iommu_option opt = {
		.size = sizeof(opt),
		.option_id = IOMMU_OPTION_HUGE_PAGES,
		.op = IOMMU_OPTION_OP_SET,
		.val64 = huge_pages,
	};
	struct iommu_hwpt_set_dirty_tracking set = {
		.size = sizeof(set),
		.flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
	};
	__u32 dev_ioas;

	d->fd = open("/dev/iommu", O_RDWR);
	if (d->fd < 0 || ioas_alloc(d->fd, &dev_ioas) || ioas_alloc(d->fd, &d->ioas_id)) {
		printf("BENCH-NA dirty.%s setup: %s\n", d->name, strerror(errno));
		return -1;
	}
	mock.id = dev_ioas;
	if (ioctl(d->fd, IOMMU_TEST_CMD, &mock)) {
		printf("BENCH-NA dirty.%s IOMMU_TEST_OP_MOCK_DOMAIN: %s\n", d->name, strerror(errno));
		return -1;
	}
	opt.object_id = d->ioas_id;
	if (ioctl(d->fd, IOMMU_OPTION, &opt)) {
		printf("BENCH-NA dirty.%s IOMMU_OPTION_HUGE_PAGES: %s\n", d->name, strerror(errno));
		return -1;
	}
	if (hwpt_alloc_dirty(d->fd, mock.mock_domain.out_idev_id, d->ioas_id, pt_type, &d->hwpt_id)) {
		printf("BENCH-NA dirty.%s IOMMU_HWPT_ALLOC(DIRTY_TRACKING): %s\n", d->name, strerror(errno));
		return -1;
	}
	set.hwpt_id = d->hwpt_id;
	if (ioctl(d->fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &set)) {
		printf("BENCH-NA dirty.%s IOMMU_HWPT_SET_DIRTY_TRACKING: %s\n", d->name, strerror(errno));
		return -1;
	}
	return 0;
}

/* Marks the pages whose bits are set in bits (one per d->mark_page bytes). */
static int dirty_mark(struct dirty_space *d, __u64 *bits, __u64 *count)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_DIRTY,
		.id = d->hwpt_id,
		.dirty = {
			.iova = d->iova,
			.length = d->length,
			.page_size = d->mark_page,
			.uptr = (uintptr_t)bits,
		},
	};

	if (ioctl(d->fd, IOMMU_TEST_CMD, &cmd))
		return -1;
	*count = cmd.dirty.out_nr_dirty;
	return 0;
}

static int dirty_get(struct dirty_space *d, __u64 *bitmap)
{
	struct iommu_hwpt_get_dirty_bitmap cmd = {
		.size = sizeof(cmd),
		.hwpt_id = d->hwpt_id,
		.iova = d->iova,
		.length = d->length,
		.page_size = SZ_4K,
		.data = (uintptr_t)bitmap,
	};

	return ioctl(d->fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &cmd);
}

/* The three patterns on a set-up space; the mapping is d's to undo. */
static void dirty_cases(struct dirty_space *d)
{
	static const char *const patterns[] = { "clean", "sparse", "all" };
	__u64 mark_bits = d->length / d->mark_page, get_bits = d->length / SZ_4K;
	__u64 *mark = calloc((mark_bits + 63) / 64, 8);
	__u64 *bitmap = calloc((get_bits + 63) / 64, 8);

	if (!mark || !bitmap) {
		printf("BENCH-NA dirty.%s out of memory\n", d->name);
		goto out;
	}
	for (int p = 0; p < 3; p++) {
		uint64_t v[MAX_ROUNDS], start = now_ns();
		__u64 count = 0, set_bits = 0;
		int n;

		memset(mark, 0, (mark_bits + 63) / 64 * 8);
		for (__u64 i = 0; p && i < mark_bits; i++)
			if (p == 2 || (i * d->mark_page) % d->sparse_step == 0)
				mark[i / 64] |= 1ULL << (i % 64);
		for (n = 0; n < rounds && n < MAX_ROUNDS; n++) {
			uint64_t t0;

			if (n > 0 && now_ns() - start > budget_s * 1e9)
				break;
			if (p && dirty_mark(d, mark, &count)) {
				printf("BENCH-NA dirty.%s.%s IOMMU_TEST_OP_DIRTY: %s\n", d->name,
				       patterns[p], strerror(errno));
				goto out;
			}
			memset(bitmap, 0, (get_bits + 63) / 64 * 8);
			t0 = now_ns();
			if (dirty_get(d, bitmap)) {
				printf("BENCH-NA dirty.%s.%s IOMMU_HWPT_GET_DIRTY_BITMAP: %s\n", d->name,
				       patterns[p], strerror(errno));
				goto out;
			}
			v[n] = now_ns() - t0;
		}
		for (__u64 i = 0; i < (get_bits + 63) / 64; i++)
			set_bits += __builtin_popcountll(bitmap[i]);
		printf("# dirty.%s.%s: %d rounds, %llu marked, %llu of %llu bits read dirty; ms:",
		       d->name, patterns[p], n, (unsigned long long)count,
		       (unsigned long long)set_bits, (unsigned long long)get_bits);
		for (int i = 0; i < n; i++)
			printf(" %.2f", v[i] / 1e6);
		printf("\n");
		report("dirty", d->name, patterns[p], v, n);
	}
out:
	free(mark);
	free(bitmap);
}

/* 1G-4k: 1 GiB of 4K anonymous pages, the default mock page table. */
static void bench_dirty_4k(void)
{
	struct dirty_space d = {
		.name = "1G-4k", .fd = -1, .length = SZ_1G, .sparse_step = SZ_2M, .mark_page = SZ_4K,
	};
	struct target t;
	struct mem mem;

	if (dirty_setup(&d, MOCK_IOMMUPT_DEFAULT, false))
		goto out;
	if (!alloc_kind(ANON4K, &mem))
		goto out;
	touch_mem(mem.va, SZ_1G);
	t = (struct target){ .name = "dirty", .fd = d.fd, .ioas_id = d.ioas_id, .ok = true };
	if (map(&t, &mem, 0, SZ_1G, &d.iova)) {
		printf("BENCH-NA dirty.%s IOMMU_IOAS_MAP: %s\n", d.name, strerror(errno));
	} else {
		printf("# dirty.%s: 1 GiB mapped at IOVA 0x%llx\n", d.name, (unsigned long long)d.iova);
		dirty_cases(&d);
	}
	munmap(mem.map_base, mem.map_len);
out:
	if (d.fd >= 0)
		close(d.fd);
}

/* 64G-huge: one 1 GiB hugetlb memfd, 64 times, into a MOCK_IOMMUPT_HUGE table. */
static void bench_dirty_huge(void)
{
	struct dirty_space d = {
		.name = "64G-huge", .fd = -1, .iova = SZ_1G, .length = 64 * SZ_1G,
		.sparse_step = 64UL << 20, .mark_page = 1UL << 20,
	};
	int memfd = -1;
	unsigned int i;
	uint64_t t0;

	if (dirty_setup(&d, MOCK_IOMMUPT_HUGE, true))
		goto out;
	if (!hugetlb_ready()) {
		printf("BENCH-NA dirty.%s not enough free 2M hugetlb pages\n", d.name);
		goto out;
	}
	memfd = memfd_create("dirty", MFD_HUGETLB);
	if (memfd < 0 || ftruncate(memfd, SZ_1G) || fallocate(memfd, 0, 0, SZ_1G)) {
		printf("BENCH-NA dirty.%s hugetlb memfd: %s\n", d.name, strerror(errno));
		goto out;
	}
	t0 = now_ns();
	for (i = 0; i < 64; i++) {
		struct iommu_ioas_map_file cmd = {
			.size = sizeof(cmd),
			.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
				 IOMMU_IOAS_MAP_WRITEABLE,
			.ioas_id = d.ioas_id,
			.fd = memfd,
			.length = SZ_1G,
			.iova = d.iova + i * SZ_1G,
		};

		if (ioctl(d.fd, IOMMU_IOAS_MAP_FILE, &cmd)) {
			printf("BENCH-NA dirty.%s IOMMU_IOAS_MAP_FILE %u: %s\n", d.name, i, strerror(errno));
			goto out;
		}
	}
	printf("# dirty.%s: 64 x 1 GiB mapped at IOVA 0x%llx in %.2fs\n", d.name,
	       (unsigned long long)d.iova, (now_ns() - t0) / 1e9);
	dirty_cases(&d);
out:
	if (d.fd >= 0)
		close(d.fd);
	if (memfd >= 0)
		close(memfd);
}

/* Every case of one memory kind on every target. */
static void bench_mem(struct target *targets, int ntargets, const struct mem *mem)
{
	if (!wanted(mem->kind))
		return;
	for (int i = 0; i < ntargets; i++) {
		struct target *t = &targets[i];

		if (!listed(only_domains, t->name))
			continue;
		/* The container maps user VAs only: hugetlb is hugetlb-va there. */
		if (t->container && mem->fd >= 0)
			continue;
		if (t->vtd && !vtd_open(t)) {
			printf("BENCH-NA %s.%s %s\n", t->name, mem->kind, t->why);
			continue;
		}
		if (t->ok && !bench_1g(t, mem) && max_small)
			bench_small(t, mem);
		if (t->vtd)
			vtd_close(t);
	}
}

int main(int argc, char **argv)
{
	struct target targets[4];
	const int ntargets = 4;
	struct utsname u;
	int opt;

	while ((opt = getopt(argc, argv, "r:b:n:k:d:Tp:")) != -1) {
		switch (opt) {
		case 'r': rounds = atoi(optarg); break;
		case 'b': budget_s = atof(optarg); break;
		case 'n': max_small = strtoul(optarg, NULL, 0); break;
		case 'k': only_kinds = optarg; break;
		case 'd': only_domains = optarg; break;
		case 'T': touch = false; break;
		case 'p': profile_us = strtoul(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: %s [-r ROUNDS] [-b BUDGET_S] [-n MAX_SMALL] [-k KINDS] [-d DOMAINS] [-T] [-p PERIOD_US]\n",
				argv[0]);
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS)
		rounds = 5;
	if (max_small > SZ_1G / SZ_4K)
		max_small = SZ_1G / SZ_4K;
	setvbuf(stdout, NULL, _IOLBF, 0);
	uname(&u);
	printf("# iommufd_map_bench on %s %s: 1 GiB, %d rounds, budget %.0fs per case, up to %lu 4K mappings%s\n",
	       u.sysname, u.release, rounds, budget_s, max_small, touch ? ", memory touched first" : "");
	printf("# domain 'none': an IOAS with no domain; IOMMU_IOAS_MAP/UNMAP only record the\n"
	       "#   mapping (no pinning, no page table), on the C and the Rust iommufd alike:\n"
	       "#   these numbers measure the bookkeeping path\n");
	printf("# domain 'mock': an IOAS with the mock domain of IOMMU_TEST_CMD: pages are pinned and mapped\n");
	printf("# domains 'vtd-cdev', 'vtd-group': the emulated VT-d through edu on vfio-pci, by the device\n"
	       "#   cdev and an IOAS, and by the group in a type1v2 container: pinned and mapped into VT-d\n");

	setup(&targets[0], "none", false);
	setup(&targets[1], "mock", true);
	if (!targets[0].ok) {
		printf("BENCH-NA none %s\n", targets[0].why);
		return 1;
	}
	if (!targets[1].ok)
		printf("BENCH-NA mock %s\n", targets[1].why);
	targets[2] = (struct target){ .name = "vtd-cdev", .vtd = true };
	targets[3] = (struct target){ .name = "vtd-group", .vtd = true, .container = true };
	if ((listed(only_domains, "vtd-cdev") || listed(only_domains, "vtd-group")) && !vtd_prepare())
		printf("# VT-d cases: %s\n", vtd_why);

	for (enum kind k = ANON4K; k <= HUGETLB; k++) {
		struct mem mem;
		uint64_t t0;

		if (!wanted(kind_names[k]) && !(k == HUGETLB && wanted("hugetlb-va")))
			continue;
		if (!alloc_kind(k, &mem))
			continue;
		if (touch) {
			t0 = now_ns();
			touch_mem(mem.va, SZ_1G);
			printf("# %s: touched 1 GiB in %.2fs\n", mem.kind, (now_ns() - t0) / 1e9);
		}
		if (k != HUGETLB)
			printf("# %s: AnonHugePages %lu kB after touching\n", mem.kind,
			       meminfo("/proc/meminfo", "AnonHugePages"));
		else
			printf("# hugetlb: HugePages_Free %lu after touching\n",
			       meminfo("/proc/meminfo", "HugePages_Free"));
		bench_mem(targets, ntargets, &mem);
		if (k == HUGETLB) {
			/* The same pages again, through their user VA. */
			struct mem va = mem;

			va.kind = "hugetlb-va";
			va.fd = -1;
			bench_mem(targets, ntargets, &va);
			close(mem.fd);
		}
		munmap(mem.map_base, mem.map_len);
	}
	if (wanted("dirty") && targets[1].ok) {
		bench_dirty_4k();
		bench_dirty_huge();
	} else if (wanted("dirty")) {
		printf("BENCH-NA dirty %s\n", targets[1].why);
	}
	printf("# done\n");
	return 0;
}
