// SPDX-License-Identifier: GPL-2.0-only
/*
 * PASID attachments of mock devices (IOMMU_TEST_OP_PASID_*): what the
 * kernel's own iommufd_device_pasid test does not check. Every expectation
 * is upstream 7.3 behaviour (device.c iommufd_hwpt_pasid_compat and the
 * attach/replace/detach paths, iommu.c iommu_attach_device_pasid, the
 * mock's set_dev_pasid and io-pgfault.c find_fault_handler):
 *
 *  - While any PASID is attached, the RID takes only HWPTs made with
 *    IOMMU_HWPT_ALLOC_PASID, and a PASID only such a HWPT, and only while
 *    the RID uses one (or nothing): EINVAL otherwise. An IOAS is never
 *    PASID-compatible (its automatic HWPTs are not).
 *  - A PASID past the device's (1 << MOCK_PASID_WIDTH) is EINVAL; a device
 *    without PASIDs is left out by the IOMMU core, so its attachments are
 *    bookkeeping only and succeed.
 *  - PASID 0 is the RID: the test ops on it attach, replace, detach and
 *    check the device's own attachment.
 *  - A HWPT attached to a PASID is in use (EBUSY on destroy).
 *  - A fault with a PASID goes to the HWPT attached to that PASID; its
 *    faults are answered when the attachment ends.
 *  - Ours, where upstream warns (its device teardown detaches only the
 *    RID): destroying a mock device or closing the file with PASIDs
 *    attached detaches them and releases everything.
 *
 * The file skips when /dev/iommu or IOMMU_TEST_CMD does not exist.
 */
#define _GNU_SOURCE
#include "iommufd_test_utils.h"

#define PASID 100

/* A paging HWPT over @pt_id (an IOAS), or a nested one over @pt_id (a HWPT) */
static int _hwpt_alloc(int fd, __u32 dev_id, __u32 pt_id, __u32 flags,
		       __u32 fault_id, bool nested, __u32 *hwpt_id)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
		.fault_id = fault_id,
	};
	int ret;

	if (nested) {
		cmd.data_type = IOMMU_HWPT_DATA_SELFTEST;
		cmd.data_len = sizeof(data);
		cmd.data_uptr = (uintptr_t)&data;
	}
	ret = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);
	if (!ret && hwpt_id)
		*hwpt_id = cmd.out_hwpt_id;
	return ret;
}

#define hwpt_alloc(fd, dev, pt, flags, id) \
	_hwpt_alloc(fd, dev, pt, flags, 0, false, id)
#define nested_alloc(fd, dev, pt, flags, fault, id) \
	_hwpt_alloc(fd, dev, pt, flags, fault, true, id)

static int pasid_op(int fd, __u32 op, __u32 stdev_id, __u32 pasid,
		    __u32 pt_id, __u32 *out_id)
{
	struct iommu_test_cmd cmd = {
		.op = op,
		.id = stdev_id,
		.pasid_attach = { .pasid = pasid, .pt_id = pt_id },
	};
	int ret;

	ret = _test_cmd(fd, &cmd);
	if (!ret && out_id)
		*out_id = cmd.pasid_attach.pt_id;
	return ret;
}

#define attach(fd, st, p, pt) \
	pasid_op(fd, IOMMU_TEST_OP_PASID_ATTACH, st, p, pt, NULL)
#define replace(fd, st, p, pt) \
	pasid_op(fd, IOMMU_TEST_OP_PASID_REPLACE, st, p, pt, NULL)
#define detach(fd, st, p) pasid_op(fd, IOMMU_TEST_OP_PASID_DETACH, st, p, 0, NULL)

/* 0 if @pasid of @stdev_id is attached to @hwpt_id (to nothing for 0) */
static int check(int fd, __u32 stdev_id, __u32 pasid, __u32 hwpt_id)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_PASID_CHECK_HWPT,
		.id = stdev_id,
		.pasid_check = { .pasid = pasid, .hwpt_id = hwpt_id },
	};

	return _test_cmd(fd, &cmd);
}

static int rid_replace(int fd, __u32 stdev_id, __u32 pt_id)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		.id = stdev_id,
		.mock_domain_replace = { .pt_id = pt_id },
	};

	return _test_cmd(fd, &cmd);
}

FIXTURE(pasid)
{
	int fd;
	__u32 ioas_id;
	/* A device with PASIDs, on its automatic HWPT */
	__u32 stdev_id;
	__u32 idev_id;
	__u32 auto_id;
	/* HWPTs over the IOAS: PASID-compatible and not */
	__u32 s2_id;
	__u32 plain_id;
};

FIXTURE_SETUP(pasid)
{
	self->fd = -1;
	SKIP_IF_NO_IOMMU_DEV();
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	SKIP_IF_NO_TEST_CMD(self->fd);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
	ASSERT_EQ(0, _mock_domain_flags(self->fd, self->ioas_id,
					MOCK_FLAGS_DEVICE_PASID,
					&self->stdev_id, &self->auto_id,
					&self->idev_id));
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev_id, self->ioas_id,
				IOMMU_HWPT_ALLOC_PASID, &self->s2_id));
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev_id, self->ioas_id, 0,
				&self->plain_id));
}

FIXTURE_TEARDOWN(pasid)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(pasid, rid_must_be_compatible)
{
	/* The RID on an automatic HWPT: no PASID may attach */
	EXPECT_ERRNO(EINVAL, attach(self->fd, self->stdev_id, PASID,
				    self->s2_id));
	ASSERT_EQ(0, rid_replace(self->fd, self->stdev_id, self->s2_id));
	ASSERT_EQ(0, attach(self->fd, self->stdev_id, PASID, self->s2_id));
	/* Now the RID cannot leave for an incompatible HWPT, nor an IOAS */
	EXPECT_ERRNO(EINVAL, rid_replace(self->fd, self->stdev_id,
					 self->plain_id));
	EXPECT_ERRNO(EINVAL, rid_replace(self->fd, self->stdev_id,
					 self->ioas_id));
	EXPECT_EQ(0, check(self->fd, self->stdev_id, 0, self->s2_id));
	/* The failed IOAS replace left no automatic HWPT behind */
	EXPECT_ERRNO(ENOENT, _destroy(self->fd, self->auto_id));
	ASSERT_EQ(0, detach(self->fd, self->stdev_id, PASID));
	ASSERT_EQ(0, rid_replace(self->fd, self->stdev_id, self->ioas_id));
}

TEST_F(pasid, pasid_zero_is_the_rid)
{
	__u32 id;

	EXPECT_EQ(0, check(self->fd, self->stdev_id, 0, self->auto_id));
	/* Already attached */
	EXPECT_ERRNO(EBUSY, attach(self->fd, self->stdev_id, 0, self->s2_id));
	ASSERT_EQ(0, pasid_op(self->fd, IOMMU_TEST_OP_PASID_REPLACE,
			      self->stdev_id, 0, self->plain_id, &id));
	EXPECT_EQ(self->plain_id, id);
	ASSERT_EQ(0, detach(self->fd, self->stdev_id, 0));
	EXPECT_EQ(0, check(self->fd, self->stdev_id, 0, 0));
	EXPECT_ERRNO(EINVAL, replace(self->fd, self->stdev_id, 0,
				     self->s2_id));

	/* A detached RID does not stop a PASID */
	ASSERT_EQ(0, attach(self->fd, self->stdev_id, PASID, self->s2_id));
	EXPECT_ERRNO(EINVAL, attach(self->fd, self->stdev_id, 0,
				    self->plain_id));
	/* Through an IOAS: its automatic HWPTs are not compatible either */
	EXPECT_ERRNO(EINVAL, attach(self->fd, self->stdev_id, 0,
				    self->ioas_id));
	ASSERT_EQ(0, pasid_op(self->fd, IOMMU_TEST_OP_PASID_ATTACH,
			      self->stdev_id, 0, self->s2_id, &id));
	EXPECT_EQ(self->s2_id, id);
	ASSERT_EQ(0, detach(self->fd, self->stdev_id, PASID));
}

TEST_F(pasid, pasid_range_and_ids)
{
	ASSERT_EQ(0, rid_replace(self->fd, self->stdev_id, self->s2_id));
	EXPECT_ERRNO(EINVAL, attach(self->fd, self->stdev_id,
				    1U << MOCK_PASID_WIDTH, self->s2_id));
	EXPECT_ERRNO(EINVAL, attach(self->fd, self->stdev_id, ~0U,
				    self->s2_id));
	ASSERT_EQ(0, attach(self->fd, self->stdev_id,
			    (1U << MOCK_PASID_WIDTH) - 1, self->s2_id));
	ASSERT_EQ(0, detach(self->fd, self->stdev_id,
			    (1U << MOCK_PASID_WIDTH) - 1));
	/* Not an object, not a HWPT or IOAS, not a mock device */
	EXPECT_ERRNO(ENOENT, attach(self->fd, self->stdev_id, PASID, 9999));
	EXPECT_ERRNO(EINVAL, attach(self->fd, self->stdev_id, PASID,
				    self->idev_id));
	EXPECT_ERRNO(ENOENT, attach(self->fd, self->idev_id, PASID,
				    self->s2_id));
	/* Nothing was attached by any of that */
	EXPECT_EQ(0, check(self->fd, self->stdev_id, PASID, 0));
	ASSERT_DESTROY(self->fd, self->plain_id);
}

TEST_F(pasid, attached_hwpt_in_use)
{
	__u32 id;

	ASSERT_EQ(0, rid_replace(self->fd, self->stdev_id, self->s2_id));
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev_id, self->ioas_id,
				IOMMU_HWPT_ALLOC_PASID, &id));
	ASSERT_EQ(0, attach(self->fd, self->stdev_id, PASID, id));
	ASSERT_EQ(0, attach(self->fd, self->stdev_id, PASID + 1, id));
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, id));
	/* Taken: EBUSY, but the object is looked up first */
	EXPECT_ERRNO(EBUSY, attach(self->fd, self->stdev_id, PASID,
				   self->s2_id));
	EXPECT_ERRNO(EBUSY, attach(self->fd, self->stdev_id, PASID,
				   self->ioas_id));
	EXPECT_ERRNO(ENOENT, attach(self->fd, self->stdev_id, PASID, 9999));
	EXPECT_ERRNO(EINVAL, attach(self->fd, self->stdev_id, PASID,
				    self->idev_id));
	EXPECT_ERRNO(ENOENT, attach(self->fd, self->stdev_id, 0, 9999));
	/* Replacing with the same HWPT changes nothing */
	ASSERT_EQ(0, replace(self->fd, self->stdev_id, PASID, id));
	EXPECT_EQ(0, check(self->fd, self->stdev_id, PASID, id));
	ASSERT_EQ(0, replace(self->fd, self->stdev_id, PASID, self->s2_id));
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, id));
	ASSERT_EQ(0, detach(self->fd, self->stdev_id, PASID + 1));
	ASSERT_DESTROY(self->fd, id);
	/* A failed replace keeps the HWPT it had */
	EXPECT_ERRNO(EINVAL, replace(self->fd, self->stdev_id, PASID,
				     self->plain_id));
	EXPECT_EQ(0, check(self->fd, self->stdev_id, PASID, self->s2_id));
	EXPECT_ERRNO(EBUSY, _destroy(self->fd, self->s2_id));
	ASSERT_EQ(0, detach(self->fd, self->stdev_id, PASID));
	/* Detaching twice is fine */
	ASSERT_EQ(0, detach(self->fd, self->stdev_id, PASID));
	ASSERT_EQ(0, rid_replace(self->fd, self->stdev_id, self->ioas_id));
	ASSERT_DESTROY(self->fd, self->s2_id);
}

TEST_F(pasid, device_without_pasids)
{
	__u32 st, idev, other;

	ASSERT_EQ(0, _mock_domain(self->fd, self->s2_id, &st, NULL, &idev));
	/* The IOMMU core leaves it out: its attachments are bookkeeping */
	ASSERT_EQ(0, attach(self->fd, st, PASID, self->s2_id));
	EXPECT_EQ(0, check(self->fd, st, PASID, self->s2_id));
	/* PASID 1024's fake replace failure is the driver's: not asked */
	ASSERT_EQ(0, attach(self->fd, st, 1024, self->s2_id));
	ASSERT_EQ(0, hwpt_alloc(self->fd, idev, self->ioas_id,
				IOMMU_HWPT_ALLOC_PASID, &other));
	ASSERT_EQ(0, replace(self->fd, st, 1024, other));
	EXPECT_EQ(0, check(self->fd, st, 1024, other));
	/* The compatibility rules still hold */
	EXPECT_ERRNO(EINVAL, rid_replace(self->fd, st, self->ioas_id));
	ASSERT_EQ(0, detach(self->fd, st, PASID));
	ASSERT_EQ(0, detach(self->fd, st, 1024));
	ASSERT_EQ(0, rid_replace(self->fd, st, self->ioas_id));
	EXPECT_ERRNO(EINVAL, attach(self->fd, st, PASID, self->s2_id));
	ASSERT_DESTROY(self->fd, st);
}

TEST_F(pasid, faults_follow_the_pasid)
{
	struct iommu_hwpt_pgfault rec;
	struct iommu_hwpt_page_response resp = {
		.code = IOMMUFD_PAGE_RESP_SUCCESS,
	};
	struct iommu_test_cmd trigger = {
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
		.trigger_iopf = {
			.dev_id = self->idev_id,
			.pasid = PASID,
			.grpid = 2,
			.perm = IOMMU_PGFAULT_PERM_READ,
			.addr = 0x1000,
		},
	};
	__u32 parent_id, iopf_id, fault_id = 0;
	int fault_fd = -1;

	FAULT_ALLOC_OR_SKIP(self->fd, &fault_id, &fault_fd);
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev_id, self->ioas_id,
				IOMMU_HWPT_ALLOC_NEST_PARENT, &parent_id));
	ASSERT_EQ(0, nested_alloc(self->fd, self->idev_id, parent_id,
				  IOMMU_HWPT_ALLOC_PASID |
					  IOMMU_HWPT_FAULT_ID_VALID,
				  fault_id, &iopf_id));
	ASSERT_EQ(0, rid_replace(self->fd, self->stdev_id, self->s2_id));

	/* Nothing on the PASID: the fault is lost */
	ASSERT_EQ(0, _test_cmd(self->fd, &trigger));
	EXPECT_EQ(0, read(fault_fd, &rec, sizeof(rec)));

	ASSERT_EQ(0, attach(self->fd, self->stdev_id, PASID, iopf_id));
	ASSERT_EQ(0, _test_cmd(self->fd, &trigger));
	ASSERT_EQ(sizeof(rec), read(fault_fd, &rec, sizeof(rec)));
	EXPECT_EQ(IOMMU_PGFAULT_FLAGS_PASID_VALID |
			  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
		  rec.flags);
	EXPECT_EQ(PASID, rec.pasid);
	EXPECT_EQ(self->idev_id, rec.dev_id);
	EXPECT_EQ(0x1000, rec.addr);
	/* Another PASID, or none, does not reach it */
	trigger.trigger_iopf.pasid = PASID + 1;
	ASSERT_EQ(0, _test_cmd(self->fd, &trigger));
	trigger.trigger_iopf.pasid = 0;
	ASSERT_EQ(0, _test_cmd(self->fd, &trigger));
	EXPECT_EQ(0, read(fault_fd, &rec, sizeof(rec)));

	/* Detaching answers the pending fault: its cookie is gone */
	ASSERT_EQ(0, detach(self->fd, self->stdev_id, PASID));
	resp.cookie = rec.cookie;
	EXPECT_ERRNO(EINVAL, write(fault_fd, &resp, sizeof(resp)));

	/* Replace answers them too */
	ASSERT_EQ(0, attach(self->fd, self->stdev_id, PASID, iopf_id));
	trigger.trigger_iopf.pasid = PASID;
	ASSERT_EQ(0, _test_cmd(self->fd, &trigger));
	ASSERT_EQ(sizeof(rec), read(fault_fd, &rec, sizeof(rec)));
	ASSERT_EQ(0, replace(self->fd, self->stdev_id, PASID, self->s2_id));
	resp.cookie = rec.cookie;
	EXPECT_ERRNO(EINVAL, write(fault_fd, &resp, sizeof(resp)));

	ASSERT_EQ(0, detach(self->fd, self->stdev_id, PASID));
	ASSERT_DESTROY(self->fd, iopf_id);
	close(fault_fd);
}

TEST_F(pasid, close_with_pasids_attached)
{
	__u32 parent_id, nested_id;

	ASSERT_EQ(0, rid_replace(self->fd, self->stdev_id, self->s2_id));
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev_id, self->ioas_id,
				IOMMU_HWPT_ALLOC_NEST_PARENT, &parent_id));
	ASSERT_EQ(0, nested_alloc(self->fd, self->idev_id, parent_id,
				  IOMMU_HWPT_ALLOC_PASID, 0, &nested_id));
	ASSERT_EQ(0, attach(self->fd, self->stdev_id, PASID, nested_id));
	ASSERT_EQ(0, attach(self->fd, self->stdev_id, 1024, self->s2_id));
	ASSERT_EQ(0, attach(self->fd, self->stdev_id, 7, self->s2_id));
	/* Destroying the device detaches its PASIDs too */
	ASSERT_DESTROY(self->fd, self->stdev_id);
	ASSERT_DESTROY(self->fd, nested_id);
	ASSERT_DESTROY(self->fd, parent_id);
	ASSERT_DESTROY(self->fd, self->s2_id);

	/* And closing the file with some attached leaks nothing */
	ASSERT_EQ(0, _mock_domain_flags(self->fd, self->ioas_id,
					MOCK_FLAGS_DEVICE_PASID,
					&self->stdev_id, NULL, &self->idev_id));
	ASSERT_EQ(0, hwpt_alloc(self->fd, self->idev_id, self->ioas_id,
				IOMMU_HWPT_ALLOC_PASID, &self->s2_id));
	ASSERT_EQ(0, rid_replace(self->fd, self->stdev_id, self->s2_id));
	ASSERT_EQ(0, attach(self->fd, self->stdev_id, PASID, self->s2_id));
}

TEST_HARNESS_MAIN
