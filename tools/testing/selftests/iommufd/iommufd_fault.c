// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fault queues (IOMMU_FAULT_QUEUE_ALLOC) and nested HWPTs, through the mock
 * IOMMU (IOMMU_TEST_CMD, CONFIG_IOMMUFD_TEST): what the kernel's own
 * selftests (tools/testing/selftests/iommu) do not check. Every expectation
 * is upstream 7.3 behaviour:
 *
 *  - The queue's file (eventq.c): read() takes whole struct
 *    iommu_hwpt_pgfault records (ESPIPE for another length or an offset,
 *    EINVAL when not even one fits, 0 when empty: no blocking); write()
 *    takes struct iommu_hwpt_page_response entries (ESPIPE likewise, EINVAL
 *    for an unknown code or cookie, what went before counts); poll() is
 *    always POLLOUT, and POLLIN | POLLRDNORM while a fault waits; cookies
 *    are the lowest free from 1 (an allocating xarray).
 *  - The queue object is in use while its file is open or a HWPT reports
 *    to it (EBUSY), and the file keeps the context alive.
 *  - Faults of an attachment that ends (replace, detach) are answered by
 *    the kernel and leave the queue (iommufd_auto_response_faults); a
 *    replace onto the same HWPT changes nothing.
 *  - Where a mock fault goes (io-pgfault.c find_fault_handler, mock
 *    user_pasid_table): without a PASID to the HWPT of the device; with one
 *    only to a nested HWPT.
 *
 * The file skips when /dev/iommu or IOMMU_TEST_CMD does not exist.
 */
#define _GNU_SOURCE
#include <poll.h>

#include "iommufd_test_utils.h"

#define RECORD sizeof(struct iommu_hwpt_pgfault)
#define RESPONSE sizeof(struct iommu_hwpt_page_response)

/* An unreadable, unwritable user address, hidden from the compiler */
static void *volatile bad_ptr;

/* The address and group the tests' faults carry */
#define FAULT_ADDR 0xdeadbeafULL
#define FAULT_GRPID 2

/* ------------------------------------------------------------------------
 * Helpers
 */

static int hwpt_alloc(int fd, __u32 dev_id, __u32 pt_id, __u32 flags,
		      __u32 fault_id, __u32 data_type, void *data,
		      __u32 data_len, __u32 *hwpt_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
		.out_hwpt_id = POISON_ID,
		.data_type = data_type,
		.data_len = data_len,
		.data_uptr = (uintptr_t)data,
		.fault_id = fault_id,
	};
	int ret;

	ret = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);
	if (!ret && hwpt_id)
		*hwpt_id = cmd.out_hwpt_id;
	return ret;
}

/* A nested HWPT over @parent_id, its page faults to @fault_id if nonzero */
static int nested_alloc(int fd, __u32 dev_id, __u32 parent_id, __u32 fault_id,
			__u32 *hwpt_id)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };

	return hwpt_alloc(fd, dev_id, parent_id,
			  fault_id ? IOMMU_HWPT_FAULT_ID_VALID : 0, fault_id,
			  IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data),
			  hwpt_id);
}

static int replace(int fd, __u32 stdev_id, __u32 pt_id)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		.id = stdev_id,
		.mock_domain_replace = { .pt_id = pt_id },
	};

	return _test_cmd(fd, &cmd);
}

/* The mock device @dev_id faults (a last-page request) with @pasid */
static int trigger(int fd, __u32 dev_id, __u32 pasid)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
		.trigger_iopf = {
			.dev_id = dev_id,
			.pasid = pasid,
			.grpid = FAULT_GRPID,
			.perm = IOMMU_PGFAULT_PERM_READ |
				IOMMU_PGFAULT_PERM_WRITE,
			.addr = FAULT_ADDR,
		},
	};

	return _test_cmd(fd, &cmd);
}

static ssize_t respond(int fault_fd, __u32 cookie, __u32 code)
{
	struct iommu_hwpt_page_response r = { .cookie = cookie, .code = code };

	return write(fault_fd, &r, sizeof(r));
}

static short poll_events(int fault_fd)
{
	struct pollfd p = { .fd = fault_fd, .events = POLLIN | POLLOUT };

	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents;
}

/* ------------------------------------------------------------------------
 * IOMMU_FAULT_QUEUE_ALLOC itself
 */

TEST_F(iommufd, fault_alloc_arguments)
{
	struct iommu_fault_alloc cmd = {
		.size = sizeof(cmd),
		.flags = 1,
		.out_fault_id = POISON_ID,
		.out_fault_fd = POISON_ID,
	};
	__u32 id = 0;
	int fault_fd = -1;

	FAULT_ALLOC_OR_SKIP(self->fd, &id, &fault_fd);
	EXPECT_EQ(1, id);
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_FAULT_QUEUE_ALLOC, &cmd));
	cmd.flags = 0;
	cmd.size = offsetofend(struct iommu_fault_alloc, out_fault_fd) - 1;
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_FAULT_QUEUE_ALLOC, &cmd));
	EXPECT_EQ(POISON_ID, cmd.out_fault_id);
	/* Nothing was left behind: the next object is id 2 */
	cmd.size = sizeof(cmd);
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_FAULT_QUEUE_ALLOC, &cmd));
	EXPECT_EQ(2, cmd.out_fault_id);
	EXPECT_NE(fault_fd, (int)cmd.out_fault_fd);
	/* The descriptor is close-on-exec */
	EXPECT_EQ(FD_CLOEXEC, fcntl(cmd.out_fault_fd, F_GETFD));
	close(cmd.out_fault_fd);
	close(fault_fd);
}

/* ------------------------------------------------------------------------
 * Fixture: a mock device on an IOAS, a nesting parent, a fault queue and a
 * nested HWPT reporting to it
 */

FIXTURE(fault)
{
	int fd;
	__u32 ioas_id;
	__u32 stdev_id;
	__u32 idev_id;
	__u32 parent_id;
	__u32 fault_id;
	int fault_fd;
	__u32 nested_id;
};

FIXTURE_SETUP(fault)
{
	self->fd = -1;
	self->fault_fd = -1;
	SKIP_IF_NO_IOMMU_DEV();
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	SKIP_IF_NO_TEST_CMD(self->fd);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, &self->stdev_id,
				  NULL, &self->idev_id));
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev_id, self->ioas_id,
				IOMMU_HWPT_ALLOC_NEST_PARENT, 0,
				IOMMU_HWPT_DATA_NONE, NULL, 0,
				&self->parent_id));
	FAULT_ALLOC_OR_SKIP(self->fd, &self->fault_id, &self->fault_fd);
	ASSERT_EQ(0, nested_alloc(self->fd, self->idev_id, self->parent_id,
				  self->fault_id, &self->nested_id));
}

FIXTURE_TEARDOWN(fault)
{
	if (self->fault_fd >= 0)
		close(self->fault_fd);
	if (self->fd >= 0)
		close(self->fd);
}

/* ------------------------------------------------------------------------
 * The file
 */

TEST_F(fault, read_and_write_lengths)
{
	struct iommu_hwpt_pgfault rec[2];
	char buf[RECORD * 2];

	/* Empty: a whole record's room reads nothing, without blocking */
	EXPECT_EQ(0, read(self->fault_fd, rec, RECORD));
	EXPECT_EQ(0, read(self->fault_fd, rec, 0));
	EXPECT_ERRNO(ESPIPE, read(self->fault_fd, buf, RECORD - 1));
	EXPECT_ERRNO(ESPIPE, read(self->fault_fd, buf, RECORD + 1));
	EXPECT_ERRNO(ESPIPE, pread(self->fault_fd, rec, RECORD, RECORD));
	EXPECT_ERRNO(ESPIPE, write(self->fault_fd, buf, RESPONSE - 1));
	EXPECT_ERRNO(ESPIPE, pwrite(self->fault_fd, buf, RESPONSE, 1));
	EXPECT_EQ(0, write(self->fault_fd, buf, 0));

	ASSERT_EQ(0, replace(self->fd, self->stdev_id, self->nested_id));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	/* Not even one record fits */
	EXPECT_ERRNO(EINVAL, read(self->fault_fd, rec, 0));
	/* Unreadable memory: the fault stays for the next read */
	EXPECT_ERRNO(EFAULT, read(self->fault_fd, bad_ptr, RECORD));
	EXPECT_EQ(RECORD, read(self->fault_fd, rec, sizeof(rec)));
	EXPECT_EQ(1, rec[0].cookie);
}

TEST_F(fault, record_contents_and_cookies)
{
	struct iommu_hwpt_pgfault rec[3];

	ASSERT_EQ(0, replace(self->fd, self->stdev_id, self->nested_id));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0x1));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0x5));

	memset(rec, 0xff, sizeof(rec));
	/* Room for one: the oldest */
	ASSERT_EQ(RECORD, read(self->fault_fd, rec, RECORD));
	EXPECT_EQ(IOMMU_PGFAULT_FLAGS_PASID_VALID |
			  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
		  rec[0].flags);
	EXPECT_EQ(self->idev_id, rec[0].dev_id);
	EXPECT_EQ(0x1, rec[0].pasid);
	EXPECT_EQ(FAULT_GRPID, rec[0].grpid);
	EXPECT_EQ(IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE,
		  rec[0].perm);
	EXPECT_EQ(0, rec[0].__reserved);
	EXPECT_EQ(FAULT_ADDR, rec[0].addr);
	EXPECT_EQ(0, rec[0].length);
	EXPECT_EQ(1, rec[0].cookie);

	ASSERT_EQ(2 * RECORD, read(self->fault_fd, rec, sizeof(rec)));
	EXPECT_EQ(IOMMU_PGFAULT_FLAGS_LAST_PAGE, rec[0].flags);
	EXPECT_EQ(0, rec[0].pasid);
	EXPECT_EQ(2, rec[0].cookie);
	EXPECT_EQ(0x5, rec[1].pasid);
	EXPECT_EQ(3, rec[1].cookie);

	/* Answering frees the cookie for the next fault */
	EXPECT_EQ(RESPONSE, respond(self->fault_fd, 2,
				    IOMMUFD_PAGE_RESP_SUCCESS));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	ASSERT_EQ(RECORD, read(self->fault_fd, rec, RECORD));
	EXPECT_EQ(2, rec[0].cookie);
}

TEST_F(fault, responses)
{
	struct iommu_hwpt_page_response r[3] = {
		{ .cookie = 1, .code = IOMMUFD_PAGE_RESP_INVALID },
		{ .cookie = 2, .code = 7 },
		{ .cookie = 2, .code = IOMMUFD_PAGE_RESP_SUCCESS },
	};
	struct iommu_hwpt_pgfault rec[2];

	ASSERT_EQ(0, replace(self->fd, self->stdev_id, self->nested_id));
	/* Only faults read can be answered */
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	EXPECT_ERRNO(EINVAL, respond(self->fault_fd, 1,
				     IOMMUFD_PAGE_RESP_SUCCESS));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	ASSERT_EQ(2 * RECORD, read(self->fault_fd, rec, sizeof(rec)));

	/* The second entry's code is unknown: the first one counts */
	EXPECT_EQ(RESPONSE, write(self->fault_fd, r, sizeof(r)));
	EXPECT_ERRNO(EINVAL, respond(self->fault_fd, 1,
				     IOMMUFD_PAGE_RESP_SUCCESS));
	EXPECT_ERRNO(EINVAL, write(self->fault_fd, &r[1], RESPONSE));
	EXPECT_ERRNO(EFAULT, write(self->fault_fd, bad_ptr, RESPONSE));
	EXPECT_EQ(RESPONSE, write(self->fault_fd, &r[2], RESPONSE));
	EXPECT_ERRNO(EINVAL, write(self->fault_fd, &r[2], RESPONSE));
}

TEST_F(fault, poll)
{
	struct iommu_hwpt_pgfault rec;

	EXPECT_EQ(POLLOUT, poll_events(self->fault_fd));
	ASSERT_EQ(0, replace(self->fd, self->stdev_id, self->nested_id));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	EXPECT_EQ(POLLIN | POLLOUT, poll_events(self->fault_fd));
	ASSERT_EQ(RECORD, read(self->fault_fd, &rec, RECORD));
	/* Read but not answered: nothing more to read */
	EXPECT_EQ(POLLOUT, poll_events(self->fault_fd));
}

/* ------------------------------------------------------------------------
 * Lifetimes
 */

TEST_F(fault, object_in_use_while_file_open_or_hwpt_reports)
{
	ASSERT_EQ(0, _destroy(self->fd, self->nested_id));
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, self->fault_id));
	ASSERT_EQ(0, close(self->fault_fd));
	self->fault_fd = -1;
	ASSERT_DESTROY(self->fd, self->fault_id);
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, self->fault_id));
}

TEST_F(fault, hwpt_keeps_object_after_file_closes)
{
	ASSERT_EQ(0, close(self->fault_fd));
	self->fault_fd = -1;
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, self->fault_id));
	ASSERT_DESTROY(self->fd, self->nested_id);
	ASSERT_DESTROY(self->fd, self->fault_id);
}

TEST_F(fault, file_outlives_context)
{
	struct iommu_hwpt_pgfault rec;

	ASSERT_EQ(0, replace(self->fd, self->stdev_id, self->nested_id));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	ASSERT_EQ(RECORD, read(self->fault_fd, &rec, RECORD));
	EXPECT_EQ(RESPONSE, respond(self->fault_fd, rec.cookie,
				    IOMMUFD_PAGE_RESP_SUCCESS));
}

TEST_F(fault, faults_of_an_ended_attachment_are_answered)
{
	struct iommu_hwpt_pgfault rec[2];
	__u32 other_id;

	ASSERT_EQ(0, nested_alloc(self->fd, self->idev_id, self->parent_id,
				  self->fault_id, &other_id));
	ASSERT_EQ(0, replace(self->fd, self->stdev_id, self->nested_id));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	ASSERT_EQ(RECORD, read(self->fault_fd, rec, RECORD));

	/* Onto the same HWPT: nothing changes */
	ASSERT_EQ(0, replace(self->fd, self->stdev_id, self->nested_id));
	EXPECT_EQ(POLLIN | POLLOUT, poll_events(self->fault_fd));

	/* Another HWPT, even one reporting to the same queue: both go */
	ASSERT_EQ(0, replace(self->fd, self->stdev_id, other_id));
	EXPECT_EQ(0, read(self->fault_fd, rec, sizeof(rec)));
	EXPECT_ERRNO(EINVAL, respond(self->fault_fd, 1,
				     IOMMUFD_PAGE_RESP_SUCCESS));

	/* The new attachment's faults are delivered */
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	ASSERT_EQ(RECORD, read(self->fault_fd, rec, sizeof(rec)));
	EXPECT_EQ(1, rec[0].cookie);

	/* Detaching (destroying the device) answers them too */
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	ASSERT_DESTROY(self->fd, self->stdev_id);
	EXPECT_EQ(0, read(self->fault_fd, rec, sizeof(rec)));
	EXPECT_ERRNO(EINVAL, respond(self->fault_fd, 1,
				     IOMMUFD_PAGE_RESP_SUCCESS));
}

/* ------------------------------------------------------------------------
 * Where a fault goes
 */

TEST_F(fault, pasid_faults_go_to_nested_hwpts_only)
{
	struct iommu_hwpt_pgfault rec;
	__u32 paging_id;

	/* A paging HWPT with a fault queue takes faults without a PASID */
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev_id, self->ioas_id,
				IOMMU_HWPT_FAULT_ID_VALID, self->fault_id,
				IOMMU_HWPT_DATA_NONE, NULL, 0, &paging_id));
	ASSERT_EQ(0, replace(self->fd, self->stdev_id, paging_id));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0x3));
	EXPECT_EQ(0, read(self->fault_fd, &rec, RECORD));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	ASSERT_EQ(RECORD, read(self->fault_fd, &rec, RECORD));
	EXPECT_EQ(IOMMU_PGFAULT_FLAGS_LAST_PAGE, rec.flags);

	/* A HWPT without one takes none */
	ASSERT_EQ(0, replace(self->fd, self->stdev_id, self->parent_id));
	ASSERT_EQ(0, trigger(self->fd, self->idev_id, 0));
	EXPECT_EQ(0, read(self->fault_fd, &rec, RECORD));

	/* Not a device (the selftest object), or nothing */
	EXPECT_ERRNO(ENOENT, trigger(self->fd, self->stdev_id, 0));
	EXPECT_ERRNO(ENOENT, trigger(self->fd, 1000, 0));
}

/* ------------------------------------------------------------------------
 * Nested HWPTs
 */

TEST_F(fault, nested_hwpt_rules)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	__u32 auto_id, id;

	/* FAULT_ID_VALID with NEST_PARENT, on a paging HWPT */
	EXPECT_ERRNO(EOPNOTSUPP,
		     hwpt_alloc(self->fd, self->idev_id, self->ioas_id,
				IOMMU_HWPT_ALLOC_NEST_PARENT |
					IOMMU_HWPT_FAULT_ID_VALID,
				self->fault_id, IOMMU_HWPT_DATA_NONE, NULL, 0,
				&id));
	/* The automatic HWPT cannot be a parent */
	ASSERT_EQ(0, _mock_domain(self->fd, self->ioas_id, NULL, &auto_id,
				  NULL));
	EXPECT_ERRNO(EINVAL, nested_alloc(self->fd, self->idev_id, auto_id, 0,
					  &id));
	/* Data longer than the kernel's struct, even if zero: EINVAL */
	EXPECT_ERRNO(EINVAL,
		     hwpt_alloc(self->fd, self->idev_id, self->parent_id, 0, 0,
				IOMMU_HWPT_DATA_SELFTEST, &data,
				sizeof(data) + 4, &id));
	/* A bad fault id comes after the data's errors */
	EXPECT_ERRNO(EOPNOTSUPP,
		     hwpt_alloc(self->fd, self->idev_id, self->parent_id,
				IOMMU_HWPT_FAULT_ID_VALID, self->ioas_id,
				IOMMU_HWPT_DATA_SELFTEST + 1, &data,
				sizeof(data), &id));
	EXPECT_ERRNO(ENOENT,
		     hwpt_alloc(self->fd, self->idev_id, self->parent_id,
				IOMMU_HWPT_FAULT_ID_VALID, self->ioas_id,
				IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data),
				&id));
	/* The parent is in use; failed allocations left no user behind */
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, self->parent_id));
	ASSERT_DESTROY(self->fd, self->nested_id);
	ASSERT_DESTROY(self->fd, self->parent_id);
}

TEST_HARNESS_MAIN
