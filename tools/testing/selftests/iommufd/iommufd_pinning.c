// SPDX-License-Identifier: GPL-2.0-only
/*
 * Page pinning through the mock IOMMU (IOMMU_TEST_CMD, CONFIG_IOMMUFD_TEST):
 * what the kernel's own selftests (tools/testing/selftests/iommu) do not
 * check well. Every expectation is upstream 7.3 behaviour:
 *
 *  - Accounting (pages.c: iopt_pages_update_pinned and its callers): every
 *    pin of an iopt_pages adds to the source mm's pinned_vm (VmPin), in
 *    every accounting mode, CAP_IPC_LOCK or not; pins are per iopt_pages,
 *    so two IOAS_MAPs of the same memory pin twice while one map filled
 *    into several domains, or copied by IOAS_COPY, pins once (the later
 *    domains are filled from the first one). Without a domain (and without
 *    an access) nothing is pinned; detaching the last domain unpins.
 *  - RLIMIT_MEMLOCK: without CAP_IPC_LOCK the pins are charged to the
 *    user's locked_vm (IOPT_PAGES_ACCOUNT_USER, invisible in
 *    /proc/self/status) or, with IOMMU_OPTION_RLIMIT_MODE 1, to the mm's
 *    locked_vm (VmLck, IOPT_PAGES_ACCOUNT_MM); going past the limit fails
 *    with ENOMEM and undoes everything, also when the pins come from
 *    attaching a domain to an IOAS that already has areas.
 *  - Races between map/unmap and domains coming and going, and closing
 *    the file during IOAS_MAP, leave no pin behind.
 *  - fork(): pages pinned with FOLL_LONGTERM are copied for the child at
 *    fork (page_needs_cow_for_dma()), so the IOMMU keeps pointing at the
 *    parent's pages; a child's own map pins the child's pages.
 *  - Argument checks of MD_CHECK_REFS/MD_CHECK_MAP/MOCK_DOMAIN (selftest.c)
 *    and the lifetime rules of the mock device's objects (device.c,
 *    main.c: iommufd_object_remove gives EBUSY while an object has users).
 *
 * The file skips when /dev/iommu or IOMMU_TEST_CMD does not exist.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "iommufd_test_utils.h"

/* Pages of the fixture's buffer */
#define BUF_PAGES 16
/* Pages the RLIMIT_MEMLOCK tests allow */
#define LIMIT_PAGES 4
/* Device churns in the race test; the mapper runs until they are done */
#define RACE_CHURNS 64
/* Bound on the mapper's iterations, should the churner stall */
#define RACE_MAX_MAPS 100000

/* ------------------------------------------------------------------------
 * Helpers
 */

/*
 * Set RLIMIT_MEMLOCK to @limit bytes and become uid/gid 65534: a non-root
 * uid has no capabilities left (CAP_IPC_LOCK and CAP_SYS_RESOURCE
 * included). 0 on success.
 */
static int become_nobody(rlim_t limit)
{
	struct rlimit rl = { .rlim_cur = limit, .rlim_max = limit };

	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return -1;
	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return -1;
	return 0;
}

/*
 * IOMMU_HWPT_ALLOC of a paging HWPT on @ioas_id for the device @dev_id: a
 * domain of its own in the IOAS (MOCK_DOMAIN would reuse the IOAS's
 * automatic one), filled with the IOAS's areas at once.
 */
static int hwpt_alloc(int fd, __u32 dev_id, __u32 ioas_id, __u32 *hwpt_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.dev_id = dev_id,
		.pt_id = ioas_id,
		.out_hwpt_id = POISON_ID,
		.data_type = IOMMU_HWPT_DATA_NONE,
	};
	int ret;

	ret = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);
	if (!ret)
		*hwpt_id = cmd.out_hwpt_id;
	return ret;
}

/* waitpid() for @pid; its exit status, or -1 when it did not exit */
static int wait_exit(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * In a forked child, where the harness's ASSERTs must not be used: exit
 * with @line (a distinct nonzero code per check) when @cond is false.
 */
#define CHILD_CHECK(cond)                                                \
	do {                                                             \
		if (!(cond)) {                                           \
			int __code = __LINE__ & 0x7f;                    \
									 \
			fprintf(stderr, "child: %s failed (line %d, %s)\n", \
				#cond, __LINE__, strerror(errno));       \
			_exit(__code ? __code : 1);                      \
		}                                                        \
	} while (0)

/* ------------------------------------------------------------------------
 * Fixtures
 */

/*
 * An IOAS with one mock domain attached (stdev_id, hwpt_id, idev_id), a
 * buffer of BUF_PAGES written pages, and VmPin/VmLck as they were before
 * anything was pinned.
 */
FIXTURE(mock)
{
	int fd;
	__u32 ioas_id;
	__u32 stdev_id;
	__u32 hwpt_id;
	__u32 idev_id;
	char *buf;
	size_t len;
	long pin0;
	long lck0;
};

FIXTURE_SETUP(mock)
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
	/* Written: MD_CHECK_REFS would otherwise look at the zero page */
	memset(self->buf, 0x5a, self->len);
	self->pin0 = vm_pinned_kb();
	self->lck0 = vm_locked_kb();
	ASSERT_LE(0, self->pin0);
	ASSERT_LE(0, self->lck0);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &self->stdev_id,
				  &self->hwpt_id, &self->idev_id));
}

FIXTURE_TEARDOWN(mock)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->buf)
		munmap(self->buf, self->len);
}

/* The same without the mock domain: an empty IOAS */
FIXTURE(nodomain)
{
	int fd;
	__u32 ioas_id;
	char *buf;
	size_t len;
	long pin0;
};

FIXTURE_SETUP(nodomain)
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
	memset(self->buf, 0x5a, self->len);
	self->pin0 = vm_pinned_kb();
	ASSERT_LE(0, self->pin0);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
}

FIXTURE_TEARDOWN(nodomain)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->buf)
		munmap(self->buf, self->len);
}

/* ------------------------------------------------------------------------
 * 1. Accounting
 */

/*
 * Mapping N pages with a domain pins each page once and raises VmPin by N
 * pages (root has CAP_IPC_LOCK, so no rlimit is charged, but pinned_vm
 * still counts); unmapping unpins and brings VmPin back.
 */
TEST_F(mock, map_unmap_pins_and_unpins)
{
	ASSERT_REFS(self->fd, self->buf, self->len, 0);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 8 * page_size,
			 MOCK_IOVA);
	EXPECT_EQ(self->pin0 + PAGES_KB(8), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, 8 * page_size, 1);
	ASSERT_REFS(self->fd, self->buf + 8 * page_size, 8 * page_size, 0);
	ASSERT_CHECK_MAP(self->fd, self->hwpt_id, MOCK_IOVA, 8 * page_size,
			 self->buf);
	/* Root: the mm's locked_vm is not charged */
	EXPECT_EQ(self->lck0, vm_locked_kb());

	ASSERT_UNMAP(self->fd, self->ioas_id, MOCK_IOVA, 8 * page_size,
		     8 * page_size);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 0);
}

/* Closing the file with pinned areas unpins everything */
TEST_F(mock, close_unpins)
{
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	EXPECT_EQ(self->pin0 + PAGES_KB(BUF_PAGES), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 1);

	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	EXPECT_EQ(self->pin0, vm_pinned_kb());

	/* Another file to ask MD_CHECK_REFS with */
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_REFS(self->fd, self->buf, self->len, 0);
}

/*
 * Destroying the only device detaches the last domain: the area stays
 * mapped in the IOAS but its pages are unpinned; a new domain pins again.
 */
TEST_F(mock, detach_last_domain_unpins)
{
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	ASSERT_REFS(self->fd, self->buf, self->len, 1);

	ASSERT_DESTROY(self->fd, self->stdev_id);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 0);

	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &self->stdev_id,
				  &self->hwpt_id, NULL));
	EXPECT_EQ(self->pin0 + PAGES_KB(BUF_PAGES), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 1);
	ASSERT_CHECK_MAP(self->fd, self->hwpt_id, MOCK_IOVA, self->len,
			 self->buf);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, self->len);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
}

/*
 * Two IOAS_MAPs of the same memory are two iopt_pages: each pins, so the
 * pages are pinned twice and VmPin counts them twice.
 */
TEST_F(mock, same_memory_mapped_twice_counts_twice)
{
	const size_t n = 4;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, n * page_size,
			 MOCK_IOVA);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, n * page_size,
			 MOCK_IOVA + self->len);
	EXPECT_EQ(self->pin0 + PAGES_KB(2 * n), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, n * page_size, 2);
	ASSERT_CHECK_MAP(self->fd, self->hwpt_id, MOCK_IOVA, n * page_size,
			 self->buf);
	ASSERT_CHECK_MAP(self->fd, self->hwpt_id, MOCK_IOVA + self->len,
			 n * page_size, self->buf);

	ASSERT_UNMAP(self->fd, self->ioas_id, MOCK_IOVA, n * page_size,
		     n * page_size);
	EXPECT_EQ(self->pin0 + PAGES_KB(n), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, n * page_size, 1);

	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, n * page_size);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, n * page_size, 0);
}

/*
 * A second mock device attached to the IOAS shares its automatic domain
 * (iommufd_device_auto_get_domain() reuses a compatible one): same HWPT id,
 * nothing pinned again.
 */
TEST_F(mock, second_device_reuses_auto_domain)
{
	__u32 stdev2, hwpt2;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &stdev2, &hwpt2,
				  NULL));
	EXPECT_EQ(self->hwpt_id, hwpt2);
	EXPECT_EQ(self->pin0 + PAGES_KB(BUF_PAGES), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 1);

	/* The domain stays while one device uses it */
	ASSERT_DESTROY(self->fd, self->stdev_id);
	ASSERT_CHECK_MAP(self->fd, hwpt2, MOCK_IOVA, self->len, self->buf);
	ASSERT_REFS(self->fd, self->buf, self->len, 1);
	ASSERT_DESTROY(self->fd, stdev2);
	ASSERT_REFS(self->fd, self->buf, self->len, 0);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
}

/*
 * One map into an IOAS with two mock domains (the automatic one and one
 * from IOMMU_HWPT_ALLOC) pins once: whichever domain comes second is
 * filled from the pages the first one holds. Both domains translate to
 * the buffer, and removing one keeps the pin the other needs.
 */
TEST_F(mock, two_domains_count_once)
{
	__u32 hwpt2, hwpt3;

	/* Map first, then add a domain */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev_id, self->ioas_id,
				&hwpt2)) {
		TH_LOG("IOMMU_HWPT_ALLOC: %s", strerror(errno));
	}
	ASSERT_NE(self->hwpt_id, hwpt2);
	EXPECT_EQ(self->pin0 + PAGES_KB(BUF_PAGES), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 1);
	ASSERT_CHECK_MAP(self->fd, self->hwpt_id, MOCK_IOVA, self->len,
			 self->buf);
	ASSERT_CHECK_MAP(self->fd, hwpt2, MOCK_IOVA, self->len, self->buf);

	/* Two domains first, then map (a second iopt_pages: pinned again) */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA + self->len);
	EXPECT_EQ(self->pin0 + PAGES_KB(2 * BUF_PAGES), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 2);
	ASSERT_CHECK_MAP(self->fd, hwpt2, MOCK_IOVA + self->len, self->len,
			 self->buf);
	ASSERT_UNMAP(self->fd, self->ioas_id, MOCK_IOVA + self->len, self->len,
		     self->len);
	EXPECT_EQ(self->pin0 + PAGES_KB(BUF_PAGES), vm_pinned_kb());

	/* A third domain, then take the automatic one away */
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev_id, self->ioas_id,
				&hwpt3)) {
		TH_LOG("IOMMU_HWPT_ALLOC: %s", strerror(errno));
	}
	ASSERT_DESTROY(self->fd, self->stdev_id);
	EXPECT_EQ(self->pin0 + PAGES_KB(BUF_PAGES), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 1);
	ASSERT_CHECK_MAP(self->fd, hwpt3, MOCK_IOVA, self->len, self->buf);

	ASSERT_DESTROY(self->fd, hwpt2);
	ASSERT_REFS(self->fd, self->buf, self->len, 1);
	ASSERT_DESTROY(self->fd, hwpt3);
	ASSERT_REFS(self->fd, self->buf, self->len, 0);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, self->len);
}

/*
 * IOAS_COPY shares the source area's iopt_pages: filling the destination
 * IOAS's domain reads the pages from the source's domain and does not
 * pin again (refs stay 1, VmPin does not move). The copy keeps them
 * pinned after the source area is gone; unmapping it unpins.
 */
TEST_F(mock, ioas_copy_does_not_pin_again)
{
	__u32 ioas2, stdev2, hwpt2;
	struct iommu_ioas_copy copy = {
		.size = sizeof(copy),
		.flags = RW | FIXED,
		.src_ioas_id = self->ioas_id,
		.src_iova = MOCK_IOVA,
		.length = self->len,
		.dst_iova = MOCK_IOVA + 2 * self->len,
	};

	ASSERT_EQ(0, _ioas_alloc(self->fd, &ioas2));
	ASSERT_EQ(0, _mock_domain(self->fd, ioas2, &stdev2, &hwpt2, NULL));
	copy.dst_ioas_id = ioas2;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_COPY, &copy));
	EXPECT_EQ(self->pin0 + PAGES_KB(BUF_PAGES), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 1);
	ASSERT_CHECK_MAP(self->fd, hwpt2, MOCK_IOVA + 2 * self->len,
			 self->len, self->buf);

	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, self->len);
	EXPECT_EQ(self->pin0 + PAGES_KB(BUF_PAGES), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 1);
	ASSERT_CHECK_MAP(self->fd, hwpt2, MOCK_IOVA + 2 * self->len,
			 self->len, self->buf);

	ASSERT_UNMAP_ALL(self->fd, ioas2, self->len);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 0);
}

/*
 * Without a domain IOAS_MAP only records the area: nothing is pinned and
 * VmPin does not move. Attaching a domain then pins the area.
 */
TEST_F(nodomain, map_without_domain_pins_nothing)
{
	__u32 stdev;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 0);

	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &stdev, NULL,
				  NULL));
	EXPECT_EQ(self->pin0 + PAGES_KB(BUF_PAGES), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 1);

	ASSERT_DESTROY(self->fd, stdev);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 0);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, self->len);
}

/* ------------------------------------------------------------------------
 * 2. RLIMIT_MEMLOCK, as an unprivileged user
 *
 * The test process (the harness forks one per test) opens /dev/iommu as
 * root (the node is root's, mode 0660), then drops to uid/gid 65534 with
 * RLIMIT_MEMLOCK of LIMIT_PAGES pages and attaches the mock domain itself.
 */

/*
 * Default mode (IOPT_PAGES_ACCOUNT_USER): the pins are charged to the
 * user's locked_vm against RLIMIT_MEMLOCK. A map that would go past it
 * fails with ENOMEM and leaves nothing mapped or pinned; up to the limit
 * works. VmPin counts the pins, VmLck stays as it was.
 */
TEST_F(nodomain, rlimit_user_mode)
{
	char *b = self->buf;
	__u64 unmapped;
	long lck0 = vm_locked_kb();

	SKIP_IF_NOT_ROOT();
	ASSERT_EQ(0, become_nobody(LIMIT_PAGES * page_size));
	ASSERT_FALSE(have_cap(CAP_IPC_LOCK));
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, NULL, NULL, NULL));

	/* LIMIT_PAGES - 1 pages: within the limit */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, b,
			 (LIMIT_PAGES - 1) * page_size, MOCK_IOVA);
	EXPECT_EQ(self->pin0 + PAGES_KB(LIMIT_PAGES - 1), vm_pinned_kb());
	EXPECT_EQ(lck0, vm_locked_kb());

	/* Two more would make LIMIT_PAGES + 1 */
	EXPECT_ERRNO(ENOMEM,
		     _map_fixed(self->fd, self->ioas_id, b + 8 * page_size,
				2 * page_size, MOCK_IOVA + self->len));
	EXPECT_EQ(self->pin0 + PAGES_KB(LIMIT_PAGES - 1), vm_pinned_kb());
	ASSERT_REFS(self->fd, b + 8 * page_size, 2 * page_size, 0);
	/* Nothing was left at the failed map's IOVA */
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id,
				    MOCK_IOVA + self->len, 2 * page_size,
				    &unmapped));

	/* One more reaches the limit exactly */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, b + 8 * page_size,
			 page_size, MOCK_IOVA + self->len);
	EXPECT_EQ(self->pin0 + PAGES_KB(LIMIT_PAGES), vm_pinned_kb());
	EXPECT_ERRNO(ENOMEM,
		     _map_fixed(self->fd, self->ioas_id, b + 12 * page_size,
				page_size, MOCK_IOVA + 2 * self->len));

	/* Unmapping gives the charge back: the failed IOVA is free to use */
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, LIMIT_PAGES * page_size);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, b + 8 * page_size,
			 2 * page_size, MOCK_IOVA + self->len);
	EXPECT_EQ(self->pin0 + PAGES_KB(2), vm_pinned_kb());
	ASSERT_REFS(self->fd, b + 8 * page_size, 2 * page_size, 1);
	EXPECT_EQ(lck0, vm_locked_kb());
}

/*
 * IOMMU_OPTION_RLIMIT_MODE 1 (set as root: it needs CAP_SYS_RESOURCE,
 * and the file must hold no object yet, else EBUSY) charges the pins to the mm's locked_vm as VFIO type1 does: VmLck grows
 * with VmPin, against the same RLIMIT_MEMLOCK; ENOMEM past it, and
 * nothing charged by the failed map.
 */
TEST_F(nodomain, rlimit_mm_mode_charges_vmlck)
{
	char *b = self->buf;
	long lck0 = vm_locked_kb();

	SKIP_IF_NOT_ROOT();
	/* The mode can only change while the file holds no object */
	EXPECT_ERRNO(EBUSY, _rlimit_set(self->fd, 1));
	ASSERT_DESTROY(self->fd, self->ioas_id);
	ASSERT_EQ(0, _rlimit_set(self->fd, 1));
	ASSERT_EQ(0, become_nobody(LIMIT_PAGES * page_size));
	ASSERT_EQ(1, rlimit_get(self->fd));
	/* Without CAP_SYS_RESOURCE it cannot change any more */
	EXPECT_ERRNO(EPERM, _rlimit_set(self->fd, 0));
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, NULL, NULL, NULL));

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, b,
			 (LIMIT_PAGES - 1) * page_size, MOCK_IOVA);
	EXPECT_EQ(lck0 + PAGES_KB(LIMIT_PAGES - 1), vm_locked_kb());
	EXPECT_EQ(self->pin0 + PAGES_KB(LIMIT_PAGES - 1), vm_pinned_kb());

	EXPECT_ERRNO(ENOMEM,
		     _map_fixed(self->fd, self->ioas_id, b + 8 * page_size,
				2 * page_size, MOCK_IOVA + self->len));
	EXPECT_EQ(lck0 + PAGES_KB(LIMIT_PAGES - 1), vm_locked_kb());
	EXPECT_EQ(self->pin0 + PAGES_KB(LIMIT_PAGES - 1), vm_pinned_kb());
	ASSERT_REFS(self->fd, b + 8 * page_size, 2 * page_size, 0);

	ASSERT_UNMAP_ALL(self->fd, self->ioas_id,
			 (LIMIT_PAGES - 1) * page_size);
	EXPECT_EQ(lck0, vm_locked_kb());
	EXPECT_EQ(self->pin0, vm_pinned_kb());

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, b + 8 * page_size,
			 2 * page_size, MOCK_IOVA + self->len);
	EXPECT_EQ(lck0 + PAGES_KB(2), vm_locked_kb());
	EXPECT_EQ(self->pin0 + PAGES_KB(2), vm_pinned_kb());
}

/*
 * The limit also holds when the pins come from attaching a domain to an
 * IOAS whose areas were mapped without one: MOCK_DOMAIN fails with ENOMEM,
 * the areas stay mapped and unpinned. Within the limit it attaches.
 */
TEST_F(nodomain, rlimit_enforced_on_domain_attach)
{
	__u32 stdev;

	SKIP_IF_NOT_ROOT();
	ASSERT_EQ(0, become_nobody(LIMIT_PAGES * page_size));

	/* Without a domain nothing is charged: past the limit maps fine */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf,
			 (LIMIT_PAGES + 2) * page_size, MOCK_IOVA);
	EXPECT_ERRNO(ENOMEM, _mock_domain(self->fd, self->ioas_id, &stdev,
					  NULL, NULL));
	EXPECT_EQ(self->pin0, vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, (LIMIT_PAGES + 2) * page_size, 0);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id,
			 (LIMIT_PAGES + 2) * page_size);

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf,
			 LIMIT_PAGES * page_size, MOCK_IOVA);
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &stdev, NULL,
				  NULL));
	EXPECT_EQ(self->pin0 + PAGES_KB(LIMIT_PAGES), vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, LIMIT_PAGES * page_size, 1);
}

/*
 * With CAP_IPC_LOCK (root) nothing is charged to RLIMIT_MEMLOCK
 * (IOPT_PAGES_ACCOUNT_NONE): a tiny limit does not stop the map, and only
 * VmPin moves.
 */
TEST_F(mock, rlimit_ignored_with_cap_ipc_lock)
{
	struct rlimit rl = { .rlim_cur = page_size, .rlim_max = page_size };

	SKIP_IF_NOT_ROOT();
	ASSERT_TRUE(have_cap(CAP_IPC_LOCK));
	ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &rl));
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	EXPECT_EQ(self->pin0 + PAGES_KB(BUF_PAGES), vm_pinned_kb());
	EXPECT_EQ(self->lck0, vm_locked_kb());
}

/* ------------------------------------------------------------------------
 * 3. Races
 */

struct race {
	int fd;
	__u32 ioas_id;
	__u32 stdev_id;
	char *buf;
	size_t len;
	/* First unexpected failure of each thread: step and errno */
	int map_fail_step, map_errno;
	int churn_fail_step, churn_errno;
	int ioas_destroyed;
	int churns;
	int maps;
	volatile int stop;
};

/* Map and unmap the whole buffer until the churner is done */
static void *race_map_thread(void *arg)
{
	struct race *r = arg;
	__u64 unmapped;

	for (; r->maps < RACE_MAX_MAPS && !r->stop; r->maps++) {
		if (_map_fixed(r->fd, r->ioas_id, r->buf, r->len, MOCK_IOVA)) {
			r->map_fail_step = 1;
			r->map_errno = errno;
			break;
		}
		if (_unmap(r->fd, r->ioas_id, MOCK_IOVA, r->len, &unmapped) ||
		    unmapped != r->len) {
			r->map_fail_step = 2;
			r->map_errno = errno;
			break;
		}
	}
	return NULL;
}

/*
 * RACE_CHURNS times: try to destroy the IOAS (EBUSY: the device's HWPT
 * holds it), destroy the mock device, create a new one.
 */
static void *race_churn_thread(void *arg)
{
	struct race *r = arg;

	for (; r->churns < RACE_CHURNS; r->churns++) {
		if (!_destroy(r->fd, r->ioas_id)) {
			r->ioas_destroyed = 1;
			break;
		}
		if (errno != EBUSY) {
			r->churn_fail_step = 1;
			r->churn_errno = errno;
			break;
		}
		if (_destroy(r->fd, r->stdev_id)) {
			r->churn_fail_step = 2;
			r->churn_errno = errno;
			break;
		}
		if (_mock_domain(r->fd, r->ioas_id, &r->stdev_id, NULL, NULL)) {
			r->churn_fail_step = 3;
			r->churn_errno = errno;
			break;
		}
	}
	r->stop = 1;
	return NULL;
}

/*
 * Map/unmap racing with the IOAS's domain being removed and added, and
 * with attempts to destroy the IOAS: every map and unmap succeeds, the
 * IOAS cannot be destroyed while a device is attached, and afterwards no
 * page is left pinned and VmPin is back where it started.
 */
TEST_F_TIMEOUT(mock, race_map_unmap_vs_device_churn, 120)
{
	struct race r = {
		.fd = self->fd,
		.ioas_id = self->ioas_id,
		.stdev_id = self->stdev_id,
		.buf = self->buf,
		.len = self->len,
	};
	pthread_t mapper, churner;

	ASSERT_EQ(0, pthread_create(&mapper, NULL, race_map_thread, &r));
	ASSERT_EQ(0, pthread_create(&churner, NULL, race_churn_thread, &r));
	ASSERT_EQ(0, pthread_join(mapper, NULL));
	ASSERT_EQ(0, pthread_join(churner, NULL));
	TH_LOG("%d device churns during %d map/unmap", r.churns, r.maps);
	EXPECT_EQ(0, r.map_fail_step);
	EXPECT_EQ(0, r.map_errno);
	EXPECT_EQ(0, r.churn_fail_step);
	EXPECT_EQ(0, r.churn_errno);
	EXPECT_EQ(0, r.ioas_destroyed);

	ASSERT_EMPTY(self->fd, self->ioas_id);
	ASSERT_REFS(self->fd, self->buf, self->len, 0);
	EXPECT_EQ(self->pin0, vm_pinned_kb());

	/* Still usable, and the IOAS goes once the device is gone */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	ASSERT_REFS(self->fd, self->buf, self->len, 1);
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, self->ioas_id));
	ASSERT_DESTROY(self->fd, r.stdev_id);
	ASSERT_DESTROY(self->fd, self->ioas_id);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 0);
}

/* Big maps until the file is closed under us (EBADF) */
struct close_race {
	int fd;
	__u32 ioas_id;
	char *buf;
	size_t len;
	int maps;
	int last_errno;
	volatile int started;
};

static void *close_race_map_thread(void *arg)
{
	struct close_race *c = arg;
	__u64 iova = MOCK_IOVA;

	c->started = 1;
	for (;;) {
		if (_map_fixed(c->fd, c->ioas_id, c->buf, c->len, iova)) {
			c->last_errno = errno;
			break;
		}
		c->maps++;
		iova += c->len;
		/* Stay inside the mock aperture: start over when full */
		if (iova + c->len > MOCK_APERTURE_LAST) {
			__u64 unmapped;

			if (_unmap(c->fd, c->ioas_id, 0, UINT64_MAX,
				   &unmapped)) {
				c->last_errno = errno;
				break;
			}
			iova = MOCK_IOVA;
		}
	}
	return NULL;
}

/*
 * Closing the file while another thread is inside IOAS_MAP: the ioctl
 * holds its own reference to the file, so it completes, the release runs
 * after it and unpins everything; the mapper's next call sees EBADF.
 * Repeated with different delays so that the close lands mid-map.
 */
TEST_F_TIMEOUT(nodomain, race_close_during_map, 120)
{
	const size_t big_pages = 256;
	char *big = anon(big_pages * page_size, PROT_READ | PROT_WRITE);
	int round;

	ASSERT_NE(NULL, big);
	memset(big, 0x33, big_pages * page_size);
	/* The fixture's file is not used */
	close(self->fd);
	self->fd = -1;

	for (round = 0; round < 20; round++) {
		struct close_race c = {
			.buf = big,
			.len = big_pages * page_size,
		};
		pthread_t t;
		int fd;

		fd = open(IOMMU_DEV, O_RDWR);
		ASSERT_LE(0, fd);
		c.fd = fd;
		ASSERT_EQ(0, _ioas_alloc(fd, &c.ioas_id));
		ASSERT_EQ(0, _mock_domain(fd, c.ioas_id, NULL, NULL, NULL));
		ASSERT_EQ(0, pthread_create(&t, NULL, close_race_map_thread,
					    &c));
		while (!c.started)
			sched_yield();
		usleep(1000 * (round % 10));
		ASSERT_EQ(0, close(fd));
		ASSERT_EQ(0, pthread_join(t, NULL));
		TH_LOG("round %d: %d maps before the close", round, c.maps);
		EXPECT_EQ(EBADF, c.last_errno);
		EXPECT_EQ(self->pin0, vm_pinned_kb());
	}

	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_REFS(self->fd, big, big_pages * page_size, 0);
	munmap(big, big_pages * page_size);
}

/* ------------------------------------------------------------------------
 * 4. fork()
 */

/*
 * Pages pinned with FOLL_LONGTERM are copied for the child at fork() (not
 * shared copy-on-write), so the child's writes go to its own pages and
 * the domain still translates to the parent's pages: MD_CHECK_MAP against
 * the parent's buffer succeeds, against the child's fails (EINVAL, asked
 * by the child through the inherited file). The parent's writes after the
 * fork stay in the pinned pages too.
 */
TEST_F(mock, fork_keeps_parent_pages_in_domain)
{
	pid_t pid;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);
	ASSERT_REFS(self->fd, self->buf, self->len, 1);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		memset(self->buf, 0xcc, self->len);
		CHILD_CHECK(_check_map(self->fd, self->hwpt_id, MOCK_IOVA,
				       self->len, self->buf) == -1 &&
			    errno == EINVAL);
		/* The child's copies are not pinned */
		CHILD_CHECK(_check_refs(self->fd, self->buf, self->len, 0) ==
			    0);
		_exit(0);
	}
	ASSERT_EQ(0, wait_exit(pid));

	EXPECT_EQ(0x5a, self->buf[0]);
	EXPECT_EQ(0x5a, self->buf[self->len - 1]);
	ASSERT_CHECK_MAP(self->fd, self->hwpt_id, MOCK_IOVA, self->len,
			 self->buf);
	ASSERT_REFS(self->fd, self->buf, self->len, 1);

	memset(self->buf, 0x77, self->len);
	ASSERT_CHECK_MAP(self->fd, self->hwpt_id, MOCK_IOVA, self->len,
			 self->buf);
	EXPECT_EQ(self->pin0 + PAGES_KB(BUF_PAGES), vm_pinned_kb());
}

/*
 * A child that maps after fork() (through the inherited file and IOAS)
 * pins its own pages: the copy-on-write sharing with the parent is broken
 * for the pin, the child's VmPin rises, the parent's does not, and the
 * domain translates to the child's pages, not the parent's. The area
 * outlives the child; the parent can unmap it.
 */
TEST_F(mock, fork_child_map_pins_own_pages)
{
	const __u64 iova = MOCK_IOVA + self->len;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		long pin = vm_pinned_kb();

		CHILD_CHECK(_map_fixed(self->fd, self->ioas_id, self->buf,
				       self->len, iova) == 0);
		CHILD_CHECK(vm_pinned_kb() == pin + PAGES_KB(BUF_PAGES));
		CHILD_CHECK(_check_map(self->fd, self->hwpt_id, iova,
				       self->len, self->buf) == 0);
		CHILD_CHECK(_check_refs(self->fd, self->buf, self->len, 1) ==
			    0);
		_exit(0);
	}
	ASSERT_EQ(0, wait_exit(pid));

	EXPECT_EQ(self->pin0, vm_pinned_kb());
	ASSERT_REFS(self->fd, self->buf, self->len, 0);
	EXPECT_ERRNO(EINVAL, _check_map(self->fd, self->hwpt_id, iova,
					self->len, self->buf));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, self->len);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
}

/* ------------------------------------------------------------------------
 * 5. Bad input and object lifetimes
 */

/*
 * MD_CHECK_REFS wants a page-aligned pointer, a length that is a multiple
 * of PAGE_SIZE, and no wrap of uptr + length: EINVAL otherwise. A count
 * that differs is EIO.
 */
TEST_F(iommufd, check_refs_bad_args_are_einval)
{
	char *b;

	SKIP_IF_NO_TEST_CMD(self->fd);
	b = anon(2 * page_size, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, b);
	memset(b, 1, 2 * page_size);

	EXPECT_ERRNO(EINVAL, _check_refs(self->fd, b + 1, page_size, 0));
	EXPECT_ERRNO(EINVAL, _check_refs(self->fd, b, page_size - 1, 0));
	EXPECT_ERRNO(EINVAL, _check_refs(self->fd, b, 1, 0));
	EXPECT_ERRNO(EINVAL,
		     _check_refs(self->fd, b,
				 UINT64_MAX & ~(__u64)(page_size - 1), 0));
	/* Well formed but wrong */
	EXPECT_ERRNO(EIO, _check_refs(self->fd, b, page_size, 1));
	ASSERT_REFS(self->fd, b, 2 * page_size, 0);
	munmap(b, 2 * page_size);
}

/*
 * MD_CHECK_MAP works in the mock domain's 2 KiB pages: iova, length and
 * uptr must be multiples of that and uptr + length must not wrap (EINVAL);
 * the id must be a mock paging HWPT (an IOAS id is ENOENT); a translation
 * to other pages is EINVAL. Half pages that do match are accepted.
 */
TEST_F(mock, check_map_bad_args)
{
	const __u64 mp = MOCK_PAGE_SIZE;

	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 4 * page_size,
			 MOCK_IOVA);
	ASSERT_CHECK_MAP(self->fd, self->hwpt_id, MOCK_IOVA, 4 * page_size,
			 self->buf);
	ASSERT_CHECK_MAP(self->fd, self->hwpt_id, MOCK_IOVA + mp, mp,
			 self->buf + mp);

	EXPECT_ERRNO(EINVAL, _check_map(self->fd, self->hwpt_id, MOCK_IOVA + 1,
					mp, self->buf));
	EXPECT_ERRNO(EINVAL, _check_map(self->fd, self->hwpt_id, MOCK_IOVA,
					mp + 1, self->buf));
	EXPECT_ERRNO(EINVAL, _check_map(self->fd, self->hwpt_id, MOCK_IOVA, 1,
					self->buf));
	EXPECT_ERRNO(EINVAL, _check_map(self->fd, self->hwpt_id, MOCK_IOVA, mp,
					self->buf + 1));
	EXPECT_ERRNO(EINVAL,
		     _check_map(self->fd, self->hwpt_id, MOCK_IOVA,
				UINT64_MAX & ~(mp - 1), self->buf));
	/* Mapped, but to other pages */
	EXPECT_ERRNO(EINVAL, _check_map(self->fd, self->hwpt_id, MOCK_IOVA,
					page_size, self->buf + page_size));
	EXPECT_ERRNO(ENOENT, _check_map(self->fd, self->ioas_id, MOCK_IOVA,
					page_size, self->buf));
}

/* MOCK_DOMAIN attaches to an existing IOAS or HWPT: any other id is ENOENT */
TEST_F(nodomain, mock_domain_unknown_id_is_enoent)
{
	EXPECT_ERRNO(ENOENT, _mock_domain(self->fd, self->ioas_id + 1000, NULL,
					  NULL, NULL));
	EXPECT_ERRNO(ENOENT, _mock_domain(self->fd, 0, NULL, NULL, NULL));
	/* Nothing was left behind: the IOAS is the only object */
	ASSERT_DESTROY(self->fd, self->ioas_id);
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, self->ioas_id + 1));
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, self->ioas_id + 2));
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, self->ioas_id + 3));
}

/*
 * MOCK_DOMAIN_FLAGS accepts only MOCK_FLAGS_DEVICE_NO_DIRTY and
 * MOCK_FLAGS_DEVICE_PASID: any other bit is EINVAL.
 */
TEST_F(nodomain, mock_domain_flags_unknown_is_einval)
{
	__u32 stdev;

	EXPECT_ERRNO(EINVAL, _mock_domain_flags(self->fd, self->ioas_id,
						1U << 1, NULL, NULL, NULL));
	EXPECT_ERRNO(EINVAL, _mock_domain_flags(self->fd, self->ioas_id,
						1U << 31, NULL, NULL, NULL));
	EXPECT_ERRNO(EINVAL,
		     _mock_domain_flags(self->fd, self->ioas_id,
					MOCK_FLAGS_DEVICE_NO_DIRTY | 1U << 3,
					NULL, NULL, NULL));
	ASSERT_EQ(0, _mock_domain_flags(self->fd, self->ioas_id,
					MOCK_FLAGS_DEVICE_NO_DIRTY, &stdev,
					NULL, NULL));
	ASSERT_DESTROY(self->fd, stdev);
}

/*
 * The objects of a mock device: the automatic HWPT is held by the
 * attachment (EBUSY), the device object by the kernel-side binding
 * (EBUSY), the IOAS by the HWPT (EBUSY). Destroying the selftest object
 * (stdev id) detaches, unbinds and frees the automatic HWPT with the last
 * device; then the HWPT and device ids are gone (ENOENT) and the IOAS can
 * be destroyed.
 */
TEST_F(mock, mock_device_object_lifetimes)
{
	EXPECT_NE(self->stdev_id, self->hwpt_id);
	EXPECT_NE(self->stdev_id, self->idev_id);
	EXPECT_NE(self->hwpt_id, self->idev_id);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, self->len,
			 MOCK_IOVA);

	EXPECT_ERRNO(EBUSY, _destroy(self->fd, self->hwpt_id));
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, self->idev_id));
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, self->ioas_id));
	/* Nothing changed */
	ASSERT_CHECK_MAP(self->fd, self->hwpt_id, MOCK_IOVA, self->len,
			 self->buf);
	ASSERT_REFS(self->fd, self->buf, self->len, 1);

	ASSERT_DESTROY(self->fd, self->stdev_id);
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, self->hwpt_id));
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, self->idev_id));
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, self->stdev_id));
	ASSERT_REFS(self->fd, self->buf, self->len, 0);
	ASSERT_DESTROY(self->fd, self->ioas_id);
	EXPECT_EQ(self->pin0, vm_pinned_kb());
}

TEST_HARNESS_MAIN
