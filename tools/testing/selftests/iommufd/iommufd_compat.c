// SPDX-License-Identifier: GPL-2.0-only
/*
 * IOMMU_IOAS_COPY, IOMMU_VFIO_IOAS and the VFIO type1 container ioctls that
 * /dev/iommu answers (vfio-compat), all on IOASes without devices or
 * domains (IOVA alignment 1, or PAGE_SIZE once huge pages are disabled).
 *
 * Every expectation below is what upstream drivers/iommu/iommufd/ioas.c
 * (iommufd_ioas_copy), io_pagetable.c (iopt_get_pages, iopt_map_pages,
 * iopt_alloc_area_pages, iopt_alloc_iova, iopt_check_iova,
 * iopt_insert_area, iopt_unmap_iova, iopt_cut_iova, iopt_area_split,
 * iopt_disable_large_pages), main.c (iommufd_fops_ioctl, the destroy path)
 * and vfio_compat.c do:
 *
 *  - IOAS_COPY checks, in this order: unknown flags -> EOPNOTSUPP; length,
 *    src_iova or dst_iova >= ULONG_MAX -> EOVERFLOW (dst_iova even without
 *    FIXED_IOVA); neither READABLE nor WRITEABLE -> EINVAL; the source IOAS
 *    id -> ENOENT; length 0 -> EINVAL; src_iova + length - 1 wrapping ->
 *    EOVERFLOW; [src_iova, +length) not completely covered by contiguous
 *    areas -> ENOENT; the destination IOAS id -> ENOENT; then as IOAS_MAP:
 *    length not a multiple of the destination's IOVA alignment -> EINVAL;
 *    FIXED_IOVA: dst_iova unaligned -> EINVAL, wrap -> EOVERFLOW, overlap
 *    -> EEXIST; otherwise the IOVA is allocated like IOAS_MAP does for the
 *    user VA behind src_iova (ENOSPC without room); WRITEABLE from a source
 *    mapped without write -> EPERM; the source's offset in its page not
 *    aligned to the destination's alignment -> EINVAL. A failed copy leaves
 *    nothing behind. Each source area the range touches becomes one area
 *    in the destination. Only dst_iova is written back, on success.
 *  - The copy holds the pages itself: it survives unmapping the source and
 *    destroying the source IOAS.
 *  - IOMMU_VFIO_IOAS: __reserved -> EOPNOTSUPP; GET without a compat IOAS
 *    -> ENODEV (nothing written); SET checks the id is an IOAS (ENOENT) and
 *    does not write back; CLEAR always succeeds; unknown op -> EOPNOTSUPP.
 *    Destroying the compat IOAS clears it (GET -> ENODEV).
 *  - Every ioctl number outside the iommufd table goes to the VFIO
 *    emulation; a command it does not know gives ENOTTY.
 *  - VFIO_GET_API_VERSION returns VFIO_API_VERSION (0). CHECK_EXTENSION:
 *    TYPE1, TYPE1v2, UNMAP_ALL -> 1 (no compat IOAS needed); DMA_CC_IOMMU
 *    -> 1 with a compat IOAS without domains, ENODEV without one;
 *    NOIOMMU -> IS_ENABLED(CONFIG_VFIO_NOIOMMU); anything else -> 0.
 *  - SET_IOMMU: a type other than TYPE1/TYPE1v2 -> EINVAL (before the
 *    compat IOAS is looked at); no compat IOAS -> ENODEV. TYPE1 disables
 *    huge pages (IOMMU_OPTION_HUGE_PAGES reads 0, IOVA alignment becomes
 *    PAGE_SIZE; EADDRINUSE if an existing area is not page aligned) and is
 *    not undone by a later TYPE1v2.
 *  - MAP_DMA: argsz < 32 or flags beyond READ|WRITE -> EINVAL (before the
 *    compat IOAS: ENODEV); maps at the given iova like a FIXED_IOVA
 *    IOAS_MAP, flags 0 included, with no iova/size >= ULONG_MAX check.
 *  - UNMAP_DMA: argsz < 24 or flags beyond ALL -> EINVAL; no compat IOAS
 *    -> ENODEV; ALL with iova or size nonzero -> EINVAL; otherwise the
 *    first 24 bytes are written back with size = bytes unmapped, also when
 *    the unmap itself fails (size 0 -> EINVAL, wrap -> EOVERFLOW, an area
 *    only partly inside -> ENOENT after the earlier areas went). Nothing
 *    mapped in the range is success with size 0. After SET_IOMMU TYPE1 the
 *    areas are first split at both ends of the range (an unaligned split
 *    -> EINVAL, nothing written back).
 *  - GET_INFO: argsz < 16 -> EINVAL; no compat IOAS -> ENODEV; flags =
 *    PGSIZES | CAPS, iova_pgsizes = PAGE_MASK without domains, argsz = 72
 *    (24 + DMA_AVAIL 16 + IOVA_RANGE 32); the caps follow the struct in
 *    that order at 24 and 40 when they fit, cap_offset is 24 only when
 *    everything fit (else 0), min(argsz, 24) bytes of the struct are
 *    written, padding between caps is not. DMA_AVAIL avail = U32_MAX;
 *    IOVA_RANGE lists the holes of the reserved ranges only: [0, ULONG_MAX].
 *
 * The file skips when /dev/iommu does not exist.
 */
#define _GNU_SOURCE

#include <linux/vfio.h>

#include "iommufd_test_utils.h"

/* Sentinel for output bytes the kernel must not write */
#define POISON_BYTE 0xa5

#define RD IOMMU_IOAS_MAP_READABLE
#define WR IOMMU_IOAS_MAP_WRITEABLE

#define DMA_RW (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

/* Pages of the fixtures' buffers */
#define BUF_PAGES 16

/* The minimum sizes vfio_compat.c accepts */
#define MAP_DMA_MINSZ offsetofend(struct vfio_iommu_type1_dma_map, size)
#define UNMAP_DMA_MINSZ offsetofend(struct vfio_iommu_type1_dma_unmap, size)
#define INFO_MINSZ offsetofend(struct vfio_iommu_type1_info, iova_pgsizes)

/* VFIO_IOMMU_GET_INFO layout without domains: info, DMA_AVAIL, IOVA_RANGE */
#define INFO_SZ 24
#define DMA_AVAIL_OFF 24
#define DMA_AVAIL_SZ 12 /* padded to 16 */
#define IOVA_RANGE_OFF 40
#define IOVA_RANGE_SZ 32 /* one range */
#define INFO_TOTAL 72

_Static_assert(MAP_DMA_MINSZ == 32, "vfio_iommu_type1_dma_map");
_Static_assert(UNMAP_DMA_MINSZ == 24, "vfio_iommu_type1_dma_unmap");
_Static_assert(INFO_MINSZ == 16, "vfio_iommu_type1_info minsz");
_Static_assert(sizeof(struct vfio_iommu_type1_info) == INFO_SZ,
	       "vfio_iommu_type1_info");
_Static_assert(sizeof(struct vfio_iommu_type1_info_dma_avail) ==
		       DMA_AVAIL_SZ,
	       "vfio_iommu_type1_info_dma_avail");
_Static_assert(sizeof(struct vfio_iommu_type1_info_cap_iova_range) +
			       sizeof(struct vfio_iova_range) ==
		       IOVA_RANGE_SZ,
	       "vfio_iommu_type1_info_cap_iova_range");

/* PAGE_MASK as a u64 */
#define PAGE_MASK64 (~((uint64_t)page_size - 1))

/* ------------------------------------------------------------------------
 * iommufd helpers
 */

/*
 * IOMMU_IOAS_COPY; *@dst_iova is the input and receives what the struct
 * holds afterwards.
 */
static int _copy(int fd, __u32 flags, __u32 dst_id, __u32 src_id,
		 __u64 src_iova, __u64 length, __u64 *dst_iova)
{
	struct iommu_ioas_copy cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dst_ioas_id = dst_id,
		.src_ioas_id = src_id,
		.length = length,
		.dst_iova = *dst_iova,
		.src_iova = src_iova,
	};
	int ret;

	ret = ioctl(fd, IOMMU_IOAS_COPY, &cmd);
	*dst_iova = cmd.dst_iova;
	return ret;
}

/* Read-write copy to a fixed IOVA */
static int _copy_fixed(int fd, __u32 dst_id, __u32 src_id, __u64 src_iova,
		       __u64 length, __u64 dst_iova)
{
	return _copy(fd, RW | FIXED, dst_id, src_id, src_iova, length,
		     &dst_iova);
}

#define ASSERT_COPY_FIXED(fd, dst_id, src_id, src_iova, length, dst_iova) \
	ASSERT_EQ(0, _copy_fixed(fd, dst_id, src_id, src_iova, length,    \
				 dst_iova))

/* A copy that must fail with @err and not write dst_iova back */
#define EXPECT_COPY_ERRNO(err, fd, flags, dst_id, src_id, src_iova, length, \
			  dst_iova_in)                                        \
	({                                                                    \
		__u64 __d = (dst_iova_in);                                    \
		EXPECT_ERRNO(err, _copy(fd, flags, dst_id, src_id, src_iova,  \
					length, &__d));                       \
		EXPECT_EQ((__u64)(dst_iova_in), __d);                         \
	})

/* ------------------------------------------------------------------------
 * IOMMU_VFIO_IOAS and VFIO helpers
 */

static int _vfio_ioas(int fd, __u16 op, __u16 reserved, __u32 *ioas_id)
{
	struct iommu_vfio_ioas cmd = {
		.size = sizeof(cmd),
		.ioas_id = *ioas_id,
		.op = op,
		.__reserved = reserved,
	};
	int ret;

	ret = ioctl(fd, IOMMU_VFIO_IOAS, &cmd);
	*ioas_id = cmd.ioas_id;
	return ret;
}

static int _compat_set(int fd, __u32 ioas_id)
{
	return _vfio_ioas(fd, IOMMU_VFIO_IOAS_SET, 0, &ioas_id);
}

static int _compat_clear(int fd)
{
	__u32 id = 0;

	return _vfio_ioas(fd, IOMMU_VFIO_IOAS_CLEAR, 0, &id);
}

/* GET must succeed and return @expected */
#define ASSERT_COMPAT_IS(fd, expected)                                     \
	({                                                                 \
		__u32 __id = POISON_ID;                                    \
		ASSERT_EQ(0, _vfio_ioas(fd, IOMMU_VFIO_IOAS_GET, 0, &__id)); \
		ASSERT_EQ((__u32)(expected), __id);                        \
	})

/* GET must fail with ENODEV and leave ioas_id alone */
#define ASSERT_NO_COMPAT(fd)                                               \
	({                                                                 \
		__u32 __id = POISON_ID;                                    \
		EXPECT_ERRNO(ENODEV,                                       \
			     _vfio_ioas(fd, IOMMU_VFIO_IOAS_GET, 0, &__id)); \
		ASSERT_EQ(POISON_ID, __id);                                \
	})

static int _map_dma_sz(int fd, __u32 argsz, __u32 flags, const void *va,
		       __u64 iova, __u64 size)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = argsz,
		.flags = flags,
		.vaddr = (uintptr_t)va,
		.iova = iova,
		.size = size,
	};

	return ioctl(fd, VFIO_IOMMU_MAP_DMA, &map);
}

static int _map_dma(int fd, __u32 flags, const void *va, __u64 iova,
		    __u64 size)
{
	return _map_dma_sz(fd, sizeof(struct vfio_iommu_type1_dma_map), flags,
			   va, iova, size);
}

#define ASSERT_MAP_DMA(fd, va, iova, size) \
	ASSERT_EQ(0, _map_dma(fd, DMA_RW, va, iova, size))

/* VFIO_IOMMU_UNMAP_DMA; @out receives the whole struct afterwards */
static int _unmap_dma_sz(int fd, __u32 argsz, __u32 flags, __u64 iova,
			 __u64 size, struct vfio_iommu_type1_dma_unmap *out)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = argsz,
		.flags = flags,
		.iova = iova,
		.size = size,
	};
	int ret;

	ret = ioctl(fd, VFIO_IOMMU_UNMAP_DMA, &unmap);
	if (out)
		*out = unmap;
	return ret;
}

static int _unmap_dma(int fd, __u32 flags, __u64 iova, __u64 size,
		      __u64 *out_size)
{
	struct vfio_iommu_type1_dma_unmap out;
	int ret;

	ret = _unmap_dma_sz(fd, sizeof(out), flags, iova, size, &out);
	if (out_size)
		*out_size = out.size;
	return ret;
}

/* UNMAP_DMA must succeed, report @expected and keep the other fields */
#define ASSERT_UNMAP_DMA(fd, _flags, _iova, _size, expected)               \
	({                                                                 \
		struct vfio_iommu_type1_dma_unmap __o;                     \
		ASSERT_EQ(0, _unmap_dma_sz(fd, sizeof(__o), _flags, _iova, \
					   _size, &__o));                  \
		ASSERT_EQ((__u64)(expected), __o.size);                    \
		ASSERT_EQ(sizeof(__o), __o.argsz);                         \
		ASSERT_EQ((__u32)(_flags), __o.flags);                     \
		ASSERT_EQ((__u64)(_iova), __o.iova);                       \
	})

static int check_ext(int fd, unsigned long ext)
{
	return ioctl(fd, VFIO_CHECK_EXTENSION, ext);
}

static int set_iommu(int fd, unsigned long type)
{
	return ioctl(fd, VFIO_SET_IOMMU, type);
}

/* A VFIO_IOMMU_GET_INFO buffer, POISON_BYTE everywhere but argsz */
struct info_buf {
	union {
		struct vfio_iommu_type1_info info;
		__u8 b[4096];
	};
};

static int get_info(int fd, struct info_buf *buf, __u32 argsz)
{
	memset(buf, POISON_BYTE, sizeof(*buf));
	buf->info.argsz = argsz;
	return ioctl(fd, VFIO_IOMMU_GET_INFO, buf);
}

/* Whether bytes [from, to) of @buf still hold POISON_BYTE */
static bool untouched(const struct info_buf *buf, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++)
		if (buf->b[i] != POISON_BYTE)
			return false;
	return true;
}

#define CAP_AT(buf, off) ((struct vfio_info_cap_header *)&(buf)->b[off])

/* The DMA_AVAIL capability at DMA_AVAIL_OFF, its next being @nxt */
#define ASSERT_DMA_AVAIL_CAP(buf, nxt)                                     \
	({                                                                  \
		struct vfio_iommu_type1_info_dma_avail *__c =               \
			(void *)&(buf)->b[DMA_AVAIL_OFF];                   \
		ASSERT_EQ(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, __c->header.id); \
		ASSERT_EQ(1, __c->header.version);                          \
		ASSERT_EQ((__u32)(nxt), __c->header.next);                 \
		ASSERT_EQ(UINT32_MAX, __c->avail);                          \
	})

/* The IOVA_RANGE capability at IOVA_RANGE_OFF: [0, ULONG_MAX], last */
#define ASSERT_IOVA_RANGE_CAP(buf)                                          \
	({                                                                  \
		struct vfio_iommu_type1_info_cap_iova_range *__c =          \
			(void *)&(buf)->b[IOVA_RANGE_OFF];                  \
		ASSERT_EQ(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,             \
			  __c->header.id);                                  \
		ASSERT_EQ(1, __c->header.version);                          \
		ASSERT_EQ(0, __c->header.next);                             \
		ASSERT_EQ(1, __c->nr_iovas);                                \
		ASSERT_EQ(0, __c->reserved);                                \
		ASSERT_EQ(0, __c->iova_ranges[0].start);                    \
		ASSERT_EQ(IOVA_MAX, __c->iova_ranges[0].end);               \
	})

/* ------------------------------------------------------------------------
 * Fixtures (the bare iommufd one is in the header)
 */

/* Two IOASes, src and dst, and two BUF_PAGES read-write buffers */
FIXTURE(copy)
{
	int fd;
	__u32 src;
	__u32 dst;
	char *buf;
	char *buf2;
};

FIXTURE_SETUP(copy)
{
	self->fd = -1;
	self->buf = NULL;
	self->buf2 = NULL;
	SKIP_IF_NO_IOMMU_DEV();
	ASSERT_NE(NULL, probe_buf);
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->src));
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->dst));
	self->buf = anon(BUF_PAGES * page_size, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, self->buf);
	self->buf2 = anon(BUF_PAGES * page_size, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, self->buf2);
}

FIXTURE_TEARDOWN(copy)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->buf)
		munmap(self->buf, BUF_PAGES * page_size);
	if (self->buf2)
		munmap(self->buf2, BUF_PAGES * page_size);
}

/* An IOAS made the compat IOAS with IOMMU_VFIO_IOAS_SET, and a buffer */
FIXTURE(compat)
{
	int fd;
	__u32 ioas_id;
	char *buf;
};

FIXTURE_SETUP(compat)
{
	self->fd = -1;
	self->buf = NULL;
	SKIP_IF_NO_IOMMU_DEV();
	ASSERT_NE(NULL, probe_buf);
	self->fd = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &self->ioas_id));
	ASSERT_EQ(0, _compat_set(self->fd, self->ioas_id));
	self->buf = anon(BUF_PAGES * page_size, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(compat)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->buf)
		munmap(self->buf, BUF_PAGES * page_size);
}

/* ------------------------------------------------------------------------
 * IOMMU_IOAS_COPY: success
 */

TEST_F(copy, copy_fixed_to_other_ioas)
{
	__u64 len = 4 * page_size;
	struct iommu_ioas_copy cmd = {
		.size = sizeof(cmd),
		.flags = RW | FIXED,
		.dst_ioas_id = self->dst,
		.src_ioas_id = self->src,
		.length = len,
		.dst_iova = IOVA_B,
		.src_iova = IOVA_A,
	};

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, len, IOVA_A);
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_COPY, &cmd));
	EXPECT_EQ(sizeof(cmd), cmd.size);
	EXPECT_EQ(RW | FIXED, cmd.flags);
	EXPECT_EQ(self->dst, cmd.dst_ioas_id);
	EXPECT_EQ(self->src, cmd.src_ioas_id);
	EXPECT_EQ(len, cmd.length);
	EXPECT_EQ(IOVA_B, cmd.dst_iova);
	EXPECT_EQ(IOVA_A, cmd.src_iova);

	ASSERT_FREE(self->fd, self->dst, IOVA_B - 1);
	ASSERT_MAPPED(self->fd, self->dst, IOVA_B);
	ASSERT_MAPPED(self->fd, self->dst, IOVA_B + len - 1);
	ASSERT_FREE(self->fd, self->dst, IOVA_B + len);
	/* Nothing at the source's IOVA in dst, nothing new in src */
	ASSERT_FREE(self->fd, self->dst, IOVA_A);
	ASSERT_FREE(self->fd, self->src, IOVA_B);
	/* One area each, of the full length */
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->dst, IOVA_B, page_size,
				    NULL));
	ASSERT_UNMAP(self->fd, self->dst, IOVA_B, len, len);
	ASSERT_UNMAP_ALL(self->fd, self->src, len);
	ASSERT_EMPTY(self->fd, self->dst);
}

TEST_F(copy, copy_allocated_dst_iova)
{
	__u64 len = 4 * page_size;
	__u64 expect = auto_place_empty((uintptr_t)self->buf, len);
	__u64 iova, iova2;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, len, IOVA_A);
	/* Without FIXED_IOVA the input dst_iova is ignored */
	iova = IOVA_B;
	ASSERT_EQ(0, _copy(self->fd, RW, self->dst, self->src, IOVA_A, len,
			   &iova));
	ASSERT_EQ(expect, iova);
	ASSERT_NE(IOVA_B, iova);
	ASSERT_FREE(self->fd, self->dst, IOVA_B);
	ASSERT_MAPPED(self->fd, self->dst, iova);
	ASSERT_MAPPED(self->fd, self->dst, iova + len - 1);
	ASSERT_FREE(self->fd, self->dst, iova + len);

	/* A second one goes after the first (alignment at most len) */
	iova2 = POISON64;
	ASSERT_EQ(0, _copy(self->fd, RD, self->dst, self->src, IOVA_A, len,
			   &iova2));
	ASSERT_LE(iova + len, iova2);
	ASSERT_EQ(0, iova2 % page_size);
	ASSERT_UNMAP(self->fd, self->dst, iova2, len, len);
	ASSERT_UNMAP(self->fd, self->dst, iova, len, len);
	ASSERT_EMPTY(self->fd, self->dst);
}

TEST_F(copy, copy_allocated_dst_iova_keeps_page_offset)
{
	__u64 off = 0x10, len = 0x20;
	__u64 expect = auto_place_empty((uintptr_t)self->buf + off, len);
	__u64 iova = POISON64;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, 4 * page_size,
			 IOVA_A);
	ASSERT_EQ(0, _copy(self->fd, RW, self->dst, self->src, IOVA_A + off,
			   len, &iova));
	ASSERT_EQ(expect, iova);
	ASSERT_EQ(off, iova % page_size);
	ASSERT_FREE(self->fd, self->dst, iova - 1);
	ASSERT_FREE(self->fd, self->dst, iova + len);
	ASSERT_UNMAP(self->fd, self->dst, iova, len, len);
	/* A fixed sub-page copy keeps any offset with alignment 1 */
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A + off, len,
			  IOVA_B + 3);
	ASSERT_UNMAP_ALL(self->fd, self->dst, len);
}

TEST_F(copy, copy_from_middle_of_area)
{
	__u64 len = 4 * page_size;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, len, IOVA_A);
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A + page_size,
			  2 * page_size, IOVA_B);
	ASSERT_FREE(self->fd, self->dst, IOVA_B - 1);
	ASSERT_FREE(self->fd, self->dst, IOVA_B + 2 * page_size);
	/* A single area: a part of it cannot be unmapped */
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->dst, IOVA_B, page_size,
				    NULL));
	ASSERT_UNMAP(self->fd, self->dst, IOVA_B, 2 * page_size,
		     2 * page_size);
	/* The source area is unchanged */
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->src, IOVA_A + page_size,
				    2 * page_size, NULL));
	/* The last byte and a single byte inside */
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A + len - 1, 1,
			  IOVA_C);
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A + 5, 1,
			  IOVA_C + 1);
	ASSERT_UNMAP(self->fd, self->dst, IOVA_C, 2, 2);
	ASSERT_UNMAP_ALL(self->fd, self->src, len);
}

TEST_F(copy, copy_across_adjacent_areas)
{
	__u64 p = page_size;

	/* Two areas, different memory, IOVA-adjacent */
	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, 2 * p, IOVA_A);
	ASSERT_MAP_FIXED(self->fd, self->src, self->buf2, 2 * p,
			 IOVA_A + 2 * p);
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A + p, 2 * p,
			  IOVA_B);
	/* One destination area per source area touched */
	ASSERT_UNMAP(self->fd, self->dst, IOVA_B, p, p);
	ASSERT_MAPPED(self->fd, self->dst, IOVA_B + p);
	ASSERT_UNMAP(self->fd, self->dst, IOVA_B + p, p, p);

	/* All of both: again two areas of two pages */
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A, 4 * p,
			  IOVA_B);
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->dst, IOVA_B, p, NULL));
	ASSERT_UNMAP(self->fd, self->dst, IOVA_B, 2 * p, 2 * p);
	ASSERT_UNMAP(self->fd, self->dst, IOVA_B + 2 * p, 2 * p, 2 * p);
	ASSERT_EMPTY(self->fd, self->dst);
	ASSERT_UNMAP_ALL(self->fd, self->src, 4 * p);
}

TEST_F(copy, copy_into_same_ioas)
{
	__u64 len = 2 * page_size;
	__u64 iova = POISON64;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, len, IOVA_A);
	ASSERT_COPY_FIXED(self->fd, self->src, self->src, IOVA_A, len, IOVA_B);
	/* Allocated: in the first hole, clear of both */
	ASSERT_EQ(0, _copy(self->fd, RW, self->src, self->src, IOVA_A, len,
			   &iova));
	ASSERT_EQ(auto_place_empty((uintptr_t)self->buf, len), iova);
	ASSERT_UNMAP(self->fd, self->src, IOVA_B, len, len);
	ASSERT_UNMAP(self->fd, self->src, iova, len, len);
	ASSERT_UNMAP(self->fd, self->src, IOVA_A, len, len);
	ASSERT_EMPTY(self->fd, self->src);
	ASSERT_EMPTY(self->fd, self->dst);
}

TEST_F(copy, copy_survives_source_unmap)
{
	__u64 len = 3 * page_size;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, len, IOVA_A);
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A, len, IOVA_B);
	ASSERT_UNMAP(self->fd, self->src, IOVA_A, len, len);
	ASSERT_EMPTY(self->fd, self->src);
	/* The source is gone ... */
	EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, self->dst, self->src,
			  IOVA_A, len, IOVA_C);
	/* ... the copy is not, and can itself be copied back */
	ASSERT_MAPPED(self->fd, self->dst, IOVA_B + len - 1);
	ASSERT_COPY_FIXED(self->fd, self->src, self->dst, IOVA_B, len, IOVA_A);
	ASSERT_UNMAP(self->fd, self->dst, IOVA_B, len, len);
	ASSERT_UNMAP(self->fd, self->src, IOVA_A, len, len);
}

TEST_F(copy, copy_survives_source_ioas_destroy)
{
	__u64 len = 2 * page_size;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, len, IOVA_A);
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A, len, IOVA_B);
	ASSERT_EQ(0, _destroy(self->fd, self->src));
	EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, self->dst, self->src,
			  IOVA_A, len, IOVA_C);
	ASSERT_MAPPED(self->fd, self->dst, IOVA_B);
	ASSERT_UNMAP(self->fd, self->dst, IOVA_B, len, len);
}

TEST_F(copy, copy_access_flags)
{
	__u64 p = page_size;
	__u64 d;

	/* Any of READABLE/WRITEABLE from a read-write source */
	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, p, IOVA_A);
	ASSERT_EQ(0, _copy_fixed(self->fd, self->dst, self->src, IOVA_A, p,
				 IOVA_A));
	d = IOVA_B;
	ASSERT_EQ(0, _copy(self->fd, RD | FIXED, self->dst, self->src, IOVA_A,
			   p, &d));
	d = IOVA_C;
	ASSERT_EQ(0, _copy(self->fd, WR | FIXED, self->dst, self->src, IOVA_A,
			   p, &d));
	ASSERT_UNMAP_ALL(self->fd, self->dst, 3 * p);

	/* A write-only source can be copied read-only */
	ASSERT_EQ(0, _map_prot(self->fd, self->src, WR, self->buf, p, IOVA_B));
	d = IOVA_B;
	ASSERT_EQ(0, _copy(self->fd, RD | FIXED, self->dst, self->src, IOVA_B,
			   p, &d));
	ASSERT_UNMAP_ALL(self->fd, self->dst, p);
	ASSERT_UNMAP_ALL(self->fd, self->src, 2 * p);
}

/* ------------------------------------------------------------------------
 * IOMMU_IOAS_COPY: errors
 */

TEST_F(copy, copy_unknown_flags_is_eopnotsupp)
{
	__u32 bad[] = { 1U << 3, 1U << 4, 1U << 31, ~0U };
	unsigned int i;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, page_size, IOVA_A);
	for (i = 0; i != ARRAY_SIZE(bad); i++) {
		EXPECT_COPY_ERRNO(EOPNOTSUPP, self->fd, RW | FIXED | bad[i],
				  self->dst, self->src, IOVA_A, page_size,
				  IOVA_B);
		EXPECT_COPY_ERRNO(EOPNOTSUPP, self->fd, bad[i] & ~FIXED,
				  self->dst, self->src, IOVA_A, page_size,
				  POISON64);
		/* Before every other check */
		EXPECT_COPY_ERRNO(EOPNOTSUPP, self->fd, bad[i], 0, 0, IOVA_MAX,
				  UINT64_MAX, IOVA_MAX);
	}
	ASSERT_EMPTY(self->fd, self->dst);
}

TEST_F(copy, copy_ulong_max_is_eoverflow)
{
	__u32 flags[] = { RW | FIXED, RW };
	unsigned int i;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, page_size, IOVA_A);
	for (i = 0; i != ARRAY_SIZE(flags); i++) {
		EXPECT_COPY_ERRNO(EOVERFLOW, self->fd, flags[i], self->dst,
				  self->src, IOVA_A, UINT64_MAX, IOVA_B);
		EXPECT_COPY_ERRNO(EOVERFLOW, self->fd, flags[i], self->dst,
				  self->src, IOVA_MAX, page_size, IOVA_B);
		/* dst_iova even when it is not used */
		EXPECT_COPY_ERRNO(EOVERFLOW, self->fd, flags[i], self->dst,
				  self->src, IOVA_A, page_size, IOVA_MAX);
		/* Before the access flags and the ids */
		EXPECT_COPY_ERRNO(EOVERFLOW, self->fd, flags[i] & FIXED, 0, 0,
				  IOVA_A, UINT64_MAX, IOVA_B);
	}
	/* ULONG_MAX - 1 passes that check: nothing is mapped there */
	EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, self->dst, self->src,
			  IOVA_MAX - 1, 1, IOVA_B);
	ASSERT_EMPTY(self->fd, self->dst);
}

TEST_F(copy, copy_wrap_is_eoverflow)
{
	/* src_iova + length - 1 wraps: after the source id, before areas */
	EXPECT_COPY_ERRNO(EOVERFLOW, self->fd, RW | FIXED, self->dst,
			  self->src, IOVA_MAX - 1, 3, IOVA_B);
	EXPECT_COPY_ERRNO(EOVERFLOW, self->fd, RW | FIXED, self->dst,
			  self->src, 1ULL << 63, (1ULL << 63) + 1, IOVA_B);
	EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, self->dst, 0,
			  IOVA_MAX - 1, 3, IOVA_B);

	/* dst_iova + length - 1 wraps with FIXED_IOVA */
	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, 2 * page_size,
			 IOVA_A);
	EXPECT_COPY_ERRNO(EOVERFLOW, self->fd, RW | FIXED, self->dst,
			  self->src, IOVA_A, 2 * page_size,
			  IOVA_MAX - page_size + 1);
	/* Up to exactly ULONG_MAX is fine */
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A, 2,
			  IOVA_MAX - 1);
	ASSERT_MAPPED(self->fd, self->dst, IOVA_MAX - 1);
	ASSERT_UNMAP(self->fd, self->dst, IOVA_MAX - 1, 2, 2);
	ASSERT_EMPTY(self->fd, self->dst);
}

TEST_F(copy, copy_without_access_flags_is_einval)
{
	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, page_size, IOVA_A);
	EXPECT_COPY_ERRNO(EINVAL, self->fd, FIXED, self->dst, self->src,
			  IOVA_A, page_size, IOVA_B);
	EXPECT_COPY_ERRNO(EINVAL, self->fd, 0, self->dst, self->src, IOVA_A,
			  page_size, POISON64);
	/* Before the ids */
	EXPECT_COPY_ERRNO(EINVAL, self->fd, 0, 0, 0, IOVA_A, page_size,
			  IOVA_B);
	ASSERT_EMPTY(self->fd, self->dst);
}

TEST_F(copy, copy_unknown_ioas_is_enoent)
{
	__u32 gone;
	int fault_fd;
	__u32 fault_id;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, page_size, IOVA_A);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &gone));
	ASSERT_EQ(0, _destroy(self->fd, gone));

	EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, self->dst, 0, IOVA_A,
			  page_size, IOVA_B);
	EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, self->dst, gone,
			  IOVA_A, page_size, IOVA_B);
	EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, 0, self->src, IOVA_A,
			  page_size, IOVA_B);
	EXPECT_COPY_ERRNO(ENOENT, self->fd, RW, gone, self->src, IOVA_A,
			  page_size, POISON64);
	/* An object that is not an IOAS */
	if (!_fault_alloc(self->fd, &fault_id, &fault_fd)) {
		EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, fault_id,
				  self->src, IOVA_A, page_size, IOVA_B);
		EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, self->dst,
				  fault_id, IOVA_A, page_size, IOVA_B);
		close(fault_fd);
	}
	ASSERT_EMPTY(self->fd, self->dst);
	ASSERT_UNMAP_ALL(self->fd, self->src, page_size);
}

TEST_F(copy, copy_length_0_is_einval)
{
	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, page_size, IOVA_A);
	EXPECT_COPY_ERRNO(EINVAL, self->fd, RW | FIXED, self->dst, self->src,
			  IOVA_A, 0, IOVA_B);
	EXPECT_COPY_ERRNO(EINVAL, self->fd, RW, self->dst, self->src, IOVA_A,
			  0, POISON64);
	/* After the source id, before the source range and the dst id */
	EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, self->dst, 0, IOVA_A,
			  0, IOVA_B);
	EXPECT_COPY_ERRNO(EINVAL, self->fd, RW | FIXED, 0, self->src, IOVA_C,
			  0, IOVA_B);
	ASSERT_EMPTY(self->fd, self->dst);
}

TEST_F(copy, copy_source_not_mapped_is_enoent)
{
	__u64 p = page_size;
	struct {
		__u64 iova, length;
	} bad[] = {
		{ IOVA_C, p },			/* nothing there */
		{ IOVA_A, 3 * p },		/* across the gap */
		{ IOVA_A + p, p },		/* the gap itself */
		{ IOVA_A + p - 1, 2 },		/* into the gap */
		{ IOVA_A - 1, 2 },		/* from before the first */
		{ IOVA_A + 2 * p, 2 * p },	/* past the second's end */
		{ IOVA_A + 3 * p, 1 },		/* the byte after */
		{ 0, IOVA_MAX - 1 },		/* nearly everything */
	};
	unsigned int i;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, p, IOVA_A);
	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, p, IOVA_A + 2 * p);
	for (i = 0; i != ARRAY_SIZE(bad); i++) {
		EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, self->dst,
				  self->src, bad[i].iova, bad[i].length,
				  IOVA_B);
		EXPECT_COPY_ERRNO(ENOENT, self->fd, RW, self->dst, self->src,
				  bad[i].iova, bad[i].length, POISON64);
	}
	/* An empty IOAS */
	EXPECT_COPY_ERRNO(ENOENT, self->fd, RW | FIXED, self->src, self->dst,
			  IOVA_A, p, IOVA_C);
	ASSERT_EMPTY(self->fd, self->dst);
	ASSERT_UNMAP_ALL(self->fd, self->src, 2 * p);
}

TEST_F(copy, copy_writeable_from_read_only_is_eperm)
{
	__u64 p = page_size;
	__u64 d;

	ASSERT_EQ(0, _map_prot(self->fd, self->src, RD, self->buf, p, IOVA_A));
	EXPECT_COPY_ERRNO(EPERM, self->fd, WR | FIXED, self->dst, self->src,
			  IOVA_A, p, IOVA_B);
	EXPECT_COPY_ERRNO(EPERM, self->fd, RW | FIXED, self->dst, self->src,
			  IOVA_A, p, IOVA_B);
	EXPECT_COPY_ERRNO(EPERM, self->fd, RW, self->dst, self->src, IOVA_A,
			  p, POISON64);
	ASSERT_EMPTY(self->fd, self->dst);
	/* Overlap is found first */
	ASSERT_MAP_FIXED(self->fd, self->dst, self->buf, p, IOVA_B);
	EXPECT_COPY_ERRNO(EEXIST, self->fd, RW | FIXED, self->dst, self->src,
			  IOVA_A, p, IOVA_B);
	ASSERT_UNMAP_ALL(self->fd, self->dst, p);
	/* Read-only is fine */
	d = IOVA_B;
	ASSERT_EQ(0, _copy(self->fd, RD | FIXED, self->dst, self->src, IOVA_A,
			   p, &d));
	ASSERT_UNMAP_ALL(self->fd, self->dst, p);

	/* A writable area then a read-only one: nothing of it stays */
	ASSERT_MAP_FIXED(self->fd, self->src, self->buf2, p, IOVA_A - p);
	EXPECT_COPY_ERRNO(EPERM, self->fd, RW | FIXED, self->dst, self->src,
			  IOVA_A - p, 2 * p, IOVA_B);
	ASSERT_EMPTY(self->fd, self->dst);
	ASSERT_FREE(self->fd, self->dst, IOVA_B);
	d = IOVA_B;
	ASSERT_EQ(0, _copy(self->fd, RD | FIXED, self->dst, self->src,
			   IOVA_A - p, 2 * p, &d));
	ASSERT_UNMAP_ALL(self->fd, self->dst, 2 * p);
	ASSERT_UNMAP_ALL(self->fd, self->src, 2 * p);
}

TEST_F(copy, copy_dst_overlap_is_eexist)
{
	__u64 p = page_size;
	struct {
		__u64 iova, length;
	} bad[] = {
		{ IOVA_B, 2 * p },		/* the same */
		{ IOVA_B - p, 2 * p },		/* over the start */
		{ IOVA_B + 2 * p - 1, 1 },	/* the last byte */
		{ IOVA_B - 1, 4 * p },		/* superset */
	};
	unsigned int i;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, 4 * p, IOVA_A);
	ASSERT_MAP_FIXED(self->fd, self->dst, self->buf2, 2 * p, IOVA_B);
	for (i = 0; i != ARRAY_SIZE(bad); i++)
		EXPECT_COPY_ERRNO(EEXIST, self->fd, RW | FIXED, self->dst,
				  self->src, IOVA_A, bad[i].length,
				  bad[i].iova);
	/* Onto its own source in the same IOAS */
	EXPECT_COPY_ERRNO(EEXIST, self->fd, RW | FIXED, self->src, self->src,
			  IOVA_A, 2 * p, IOVA_A + p);
	/* Adjacent is fine */
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A, p,
			  IOVA_B - p);
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A, p,
			  IOVA_B + 2 * p);
	/* The existing area is intact */
	ASSERT_UNMAP(self->fd, self->dst, IOVA_B, 2 * p, 2 * p);
	ASSERT_UNMAP_ALL(self->fd, self->dst, 2 * p);
	ASSERT_UNMAP_ALL(self->fd, self->src, 4 * p);
}

TEST_F(copy, copy_allocation_follows_allowed_iovas)
{
	__u64 p = page_size;
	struct iommu_iova_range allowed = {
		.start = IOVA_C, .last = IOVA_C + p - 1,
	};
	__u64 iova;

	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, 2 * p, IOVA_A);
	ASSERT_EQ(0, _allow_iovas(self->fd, self->dst, &allowed, 1));
	EXPECT_COPY_ERRNO(ENOSPC, self->fd, RW, self->dst, self->src, IOVA_A,
			  2 * p, POISON64);
	iova = POISON64;
	ASSERT_EQ(0, _copy(self->fd, RW, self->dst, self->src, IOVA_A, p,
			   &iova));
	ASSERT_EQ(IOVA_C, iova);
	/* Full now */
	EXPECT_COPY_ERRNO(ENOSPC, self->fd, RW, self->dst, self->src, IOVA_A,
			  1, POISON64);
	/* FIXED_IOVA ignores the allowed ranges */
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A, p, IOVA_A);
	ASSERT_UNMAP_ALL(self->fd, self->dst, 2 * p);
	ASSERT_UNMAP_ALL(self->fd, self->src, 2 * p);
}

TEST_F(copy, copy_to_page_aligned_dst)
{
	__u64 p = page_size;

	/* dst without huge pages: IOVA alignment PAGE_SIZE */
	ASSERT_EQ(0, _huge_set(self->fd, self->dst, 0));
	ASSERT_EQ(p, _iova_alignment(self->fd, self->dst));
	ASSERT_MAP_FIXED(self->fd, self->src, self->buf, 4 * p, IOVA_A);
	/* Length not a multiple */
	EXPECT_COPY_ERRNO(EINVAL, self->fd, RW | FIXED, self->dst, self->src,
			  IOVA_A, p / 2, IOVA_B);
	EXPECT_COPY_ERRNO(EINVAL, self->fd, RW, self->dst, self->src, IOVA_A,
			  p + 1, POISON64);
	/* dst_iova not aligned */
	EXPECT_COPY_ERRNO(EINVAL, self->fd, RW | FIXED, self->dst, self->src,
			  IOVA_A, p, IOVA_B + 1);
	/* The source's offset in its page not aligned */
	EXPECT_COPY_ERRNO(EINVAL, self->fd, RW | FIXED, self->dst, self->src,
			  IOVA_A + 0x10, p, IOVA_B);
	ASSERT_EMPTY(self->fd, self->dst);
	/* Aligned is fine, from the middle of the area too */
	ASSERT_COPY_FIXED(self->fd, self->dst, self->src, IOVA_A + p, 2 * p,
			  IOVA_B);
	ASSERT_UNMAP_ALL(self->fd, self->dst, 2 * p);
	ASSERT_UNMAP_ALL(self->fd, self->src, 4 * p);
}

/* ------------------------------------------------------------------------
 * IOMMU_VFIO_IOAS
 */

TEST_F(iommufd, vfio_ioas_get_without_compat_is_enodev)
{
	ASSERT_NO_COMPAT(self->fd);
}

TEST_F(iommufd, vfio_ioas_set_get)
{
	__u32 a, b, id;
	int fd2;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &a));
	ASSERT_EQ(0, _ioas_alloc(self->fd, &b));
	ASSERT_NO_COMPAT(self->fd);

	/* SET does not write back */
	id = a;
	ASSERT_EQ(0, _vfio_ioas(self->fd, IOMMU_VFIO_IOAS_SET, 0, &id));
	ASSERT_EQ(a, id);
	ASSERT_COMPAT_IS(self->fd, a);
	/* GET ignores the input id */
	id = b;
	ASSERT_EQ(0, _vfio_ioas(self->fd, IOMMU_VFIO_IOAS_GET, 0, &id));
	ASSERT_EQ(a, id);
	ASSERT_COMPAT_IS(self->fd, a);

	/* SET replaces; the same one again is fine */
	ASSERT_EQ(0, _compat_set(self->fd, b));
	ASSERT_COMPAT_IS(self->fd, b);
	ASSERT_EQ(0, _compat_set(self->fd, b));
	ASSERT_COMPAT_IS(self->fd, b);
	ASSERT_EQ(0, _compat_set(self->fd, a));
	ASSERT_COMPAT_IS(self->fd, a);

	/* Per fd */
	fd2 = open(IOMMU_DEV, O_RDWR);
	ASSERT_LE(0, fd2);
	ASSERT_NO_COMPAT(fd2);
	close(fd2);
}

TEST_F(iommufd, vfio_ioas_clear)
{
	__u32 a;

	/* Nothing to clear is fine */
	ASSERT_EQ(0, _compat_clear(self->fd));
	ASSERT_NO_COMPAT(self->fd);

	ASSERT_EQ(0, _ioas_alloc(self->fd, &a));
	ASSERT_EQ(0, _compat_set(self->fd, a));
	ASSERT_COMPAT_IS(self->fd, a);
	ASSERT_EQ(0, _compat_clear(self->fd));
	ASSERT_NO_COMPAT(self->fd);
	ASSERT_EQ(0, _compat_clear(self->fd));
	ASSERT_NO_COMPAT(self->fd);
	/* The IOAS itself is still there */
	ASSERT_EQ(0, _compat_set(self->fd, a));
	ASSERT_COMPAT_IS(self->fd, a);
	ASSERT_EQ(0, _destroy(self->fd, a));
}

TEST_F(iommufd, vfio_ioas_set_unknown_id_is_enoent)
{
	__u32 a, gone;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &a));
	ASSERT_EQ(0, _ioas_alloc(self->fd, &gone));
	ASSERT_EQ(0, _destroy(self->fd, gone));

	EXPECT_ERRNO(ENOENT, _compat_set(self->fd, 0));
	EXPECT_ERRNO(ENOENT, _compat_set(self->fd, gone));
	EXPECT_ERRNO(ENOENT, _compat_set(self->fd, POISON_ID));
	ASSERT_NO_COMPAT(self->fd);

	/* A failed SET leaves the current one */
	ASSERT_EQ(0, _compat_set(self->fd, a));
	EXPECT_ERRNO(ENOENT, _compat_set(self->fd, gone));
	ASSERT_COMPAT_IS(self->fd, a);
}

TEST_F(iommufd, vfio_ioas_set_non_ioas_is_enoent)
{
	__u32 fault_id, a;
	int fault_fd;

	if (_fault_alloc(self->fd, &fault_id, &fault_fd))
		SKIP(return, "no IOMMU_FAULT_QUEUE_ALLOC (%s)",
		     strerror(errno));
	EXPECT_ERRNO(ENOENT, _compat_set(self->fd, fault_id));
	ASSERT_NO_COMPAT(self->fd);
	ASSERT_EQ(0, _ioas_alloc(self->fd, &a));
	ASSERT_EQ(0, _compat_set(self->fd, a));
	EXPECT_ERRNO(ENOENT, _compat_set(self->fd, fault_id));
	ASSERT_COMPAT_IS(self->fd, a);
	close(fault_fd);
}

TEST_F(iommufd, vfio_ioas_unknown_op_or_reserved_is_eopnotsupp)
{
	__u16 ops[] = { IOMMU_VFIO_IOAS_GET, IOMMU_VFIO_IOAS_SET,
			IOMMU_VFIO_IOAS_CLEAR };
	__u16 bad_ops[] = { 3, 4, 0x100, 0xffff };
	unsigned int i;
	__u32 a, id;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &a));
	ASSERT_EQ(0, _compat_set(self->fd, a));
	for (i = 0; i != ARRAY_SIZE(bad_ops); i++) {
		id = a;
		EXPECT_ERRNO(EOPNOTSUPP,
			     _vfio_ioas(self->fd, bad_ops[i], 0, &id));
		EXPECT_EQ(a, id);
	}
	for (i = 0; i != ARRAY_SIZE(ops); i++) {
		id = POISON_ID;
		EXPECT_ERRNO(EOPNOTSUPP, _vfio_ioas(self->fd, ops[i], 1, &id));
		EXPECT_EQ(POISON_ID, id);
		id = a;
		EXPECT_ERRNO(EOPNOTSUPP,
			     _vfio_ioas(self->fd, ops[i], 0x8000, &id));
	}
	/* __reserved before the id */
	id = 0;
	EXPECT_ERRNO(EOPNOTSUPP,
		     _vfio_ioas(self->fd, IOMMU_VFIO_IOAS_SET, 1, &id));
	/* Neither CLEAR nor SET happened */
	ASSERT_COMPAT_IS(self->fd, a);
}

TEST_F(iommufd, vfio_ioas_destroyed_compat_is_enodev)
{
	__u32 a, b;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &a));
	ASSERT_EQ(0, _ioas_alloc(self->fd, &b));
	ASSERT_EQ(0, _compat_set(self->fd, a));
	/* Destroying another IOAS changes nothing */
	ASSERT_EQ(0, _destroy(self->fd, b));
	ASSERT_COMPAT_IS(self->fd, a);
	/* Being the compat IOAS does not keep it alive */
	ASSERT_EQ(0, _destroy(self->fd, a));
	ASSERT_NO_COMPAT(self->fd);
	EXPECT_ERRNO(ENODEV, _map_dma(self->fd, DMA_RW, probe_buf, IOVA_A,
				      page_size));
	EXPECT_ERRNO(ENODEV, set_iommu(self->fd, VFIO_TYPE1v2_IOMMU));
	/* A new IOAS does not become it */
	ASSERT_EQ(0, _ioas_alloc(self->fd, &b));
	ASSERT_NO_COMPAT(self->fd);
}

/* ------------------------------------------------------------------------
 * VFIO container ioctls on /dev/iommu
 */

TEST_F(iommufd, vfio_get_api_version)
{
	ASSERT_EQ(VFIO_API_VERSION, ioctl(self->fd, VFIO_GET_API_VERSION));
	ASSERT_EQ(0, VFIO_API_VERSION);
	/* The argument does not matter */
	ASSERT_EQ(VFIO_API_VERSION,
		  ioctl(self->fd, VFIO_GET_API_VERSION, 0x1234UL));
}

TEST_F(compat, vfio_get_api_version)
{
	ASSERT_EQ(VFIO_API_VERSION, ioctl(self->fd, VFIO_GET_API_VERSION));
}

TEST_F(compat, vfio_check_extension)
{
	unsigned long zero[] = { 0,
				 VFIO_SPAPR_TCE_IOMMU,
				 5,
				 __VFIO_RESERVED_TYPE1_NESTING_IOMMU,
				 VFIO_SPAPR_TCE_v2_IOMMU,
				 VFIO_UPDATE_VADDR,
				 11,
				 100,
				 0x80000001UL,
				 ~0UL };
	unsigned int i;
	int noiommu;

	ASSERT_EQ(1, check_ext(self->fd, VFIO_TYPE1_IOMMU));
	ASSERT_EQ(1, check_ext(self->fd, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(1, check_ext(self->fd, VFIO_UNMAP_ALL));
	/* No domain that could lack coherency */
	ASSERT_EQ(1, check_ext(self->fd, VFIO_DMA_CC_IOMMU));
	for (i = 0; i != ARRAY_SIZE(zero); i++) {
		EXPECT_EQ(0, check_ext(self->fd, zero[i]))
			TH_LOG("extension %lu", zero[i]);
	}
	/* IS_ENABLED(CONFIG_VFIO_NOIOMMU) */
	noiommu = check_ext(self->fd, VFIO_NOIOMMU_IOMMU);
	ASSERT_TRUE(noiommu == 0 || noiommu == 1);
	ASSERT_EQ(noiommu, check_ext(self->fd, VFIO_NOIOMMU_IOMMU));
	/* Still all the same after SET_IOMMU */
	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(1, check_ext(self->fd, VFIO_TYPE1_IOMMU));
	ASSERT_EQ(1, check_ext(self->fd, VFIO_DMA_CC_IOMMU));
	ASSERT_EQ(0, check_ext(self->fd, VFIO_UPDATE_VADDR));
}

TEST_F(iommufd, vfio_check_extension_without_compat)
{
	/* Only DMA_CC_IOMMU looks at the compat IOAS */
	ASSERT_EQ(1, check_ext(self->fd, VFIO_TYPE1_IOMMU));
	ASSERT_EQ(1, check_ext(self->fd, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(1, check_ext(self->fd, VFIO_UNMAP_ALL));
	ASSERT_EQ(0, check_ext(self->fd, VFIO_UPDATE_VADDR));
	ASSERT_EQ(0, check_ext(self->fd, 12345));
	EXPECT_ERRNO(ENODEV, check_ext(self->fd, VFIO_DMA_CC_IOMMU));
}

TEST_F(compat, vfio_set_iommu_type1v2)
{
	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(1, huge_get(self->fd, self->ioas_id));
	ASSERT_EQ(1, _iova_alignment(self->fd, self->ioas_id));
	/* Again is fine */
	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(1, huge_get(self->fd, self->ioas_id));
	/* Byte granular maps still work */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 1, IOVA_A + 1);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 1);
}

TEST_F(compat, vfio_set_iommu_type1_disables_huge_pages)
{
	__u32 other;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &other));
	ASSERT_EQ(1, huge_get(self->fd, self->ioas_id));
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 2 * page_size,
			 IOVA_A);
	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1_IOMMU));
	ASSERT_EQ(0, huge_get(self->fd, self->ioas_id));
	ASSERT_EQ(page_size, _iova_alignment(self->fd, self->ioas_id));
	/* Only the compat IOAS */
	ASSERT_EQ(1, huge_get(self->fd, other));
	/* Maps now need PAGE_SIZE alignment */
	EXPECT_ERRNO(EINVAL, _map_prot(self->fd, self->ioas_id, RW, self->buf,
				       1, IOVA_B));
	/* TYPE1 again and TYPE1v2 do not turn them back on */
	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1_IOMMU));
	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(0, huge_get(self->fd, self->ioas_id));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * page_size);
}

TEST_F(compat, vfio_set_iommu_type1_with_unaligned_area_is_eaddrinuse)
{
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 1, IOVA_A + 1);
	EXPECT_ERRNO(EADDRINUSE, set_iommu(self->fd, VFIO_TYPE1_IOMMU));
	ASSERT_EQ(1, huge_get(self->fd, self->ioas_id));
	ASSERT_EQ(1, _iova_alignment(self->fd, self->ioas_id));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 1);
	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1_IOMMU));
	ASSERT_EQ(0, huge_get(self->fd, self->ioas_id));
}

TEST_F(compat, vfio_set_iommu_other_type_is_einval)
{
	unsigned long bad[] = { 0,
				VFIO_SPAPR_TCE_IOMMU,
				VFIO_DMA_CC_IOMMU,
				__VFIO_RESERVED_TYPE1_NESTING_IOMMU,
				VFIO_SPAPR_TCE_v2_IOMMU,
				VFIO_NOIOMMU_IOMMU,
				VFIO_UNMAP_ALL,
				VFIO_UPDATE_VADDR,
				0x100000001UL,
				~0UL };
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(bad); i++)
		EXPECT_ERRNO(EINVAL, set_iommu(self->fd, bad[i]));
	ASSERT_EQ(1, huge_get(self->fd, self->ioas_id));
}

TEST_F(iommufd, vfio_set_iommu_without_compat)
{
	EXPECT_ERRNO(ENODEV, set_iommu(self->fd, VFIO_TYPE1v2_IOMMU));
	EXPECT_ERRNO(ENODEV, set_iommu(self->fd, VFIO_TYPE1_IOMMU));
	/* The type is checked first */
	EXPECT_ERRNO(EINVAL, set_iommu(self->fd, VFIO_SPAPR_TCE_IOMMU));
	EXPECT_ERRNO(EINVAL, set_iommu(self->fd, VFIO_NOIOMMU_IOMMU));
}

TEST_F(compat, vfio_map_dma)
{
	__u64 len = 4 * page_size;

	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, len);
	/* At exactly that IOVA, as one area */
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A);
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A + len - 1);
	ASSERT_FREE(self->fd, self->ioas_id, IOVA_A - 1);
	ASSERT_FREE(self->fd, self->ioas_id, IOVA_A + len);
	EXPECT_ERRNO(EEXIST, _map_dma(self->fd, DMA_RW, self->buf, IOVA_A,
				      len));
	EXPECT_ERRNO(EEXIST, _map_dma(self->fd, DMA_RW, self->buf,
				      IOVA_A + len - 1, page_size));
	EXPECT_ERRNO(EEXIST, _map_dma(self->fd, DMA_RW, self->buf,
				      IOVA_A - page_size, 2 * page_size));
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, IOVA_A,
				    page_size, NULL));
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A, len, len);

	/* Any iova and size with alignment 1; a larger argsz is fine */
	ASSERT_EQ(0, _map_dma(self->fd, DMA_RW, self->buf + 3, IOVA_B + 1, 5));
	ASSERT_EQ(0, _map_dma_sz(self->fd, 4096, DMA_RW, self->buf, IOVA_C,
				 page_size));
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_B + 1, 5, 5);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

TEST_F(compat, vfio_map_dma_bad_argsz_or_flags_is_einval)
{
	__u32 bad_flags[] = { VFIO_DMA_MAP_FLAG_VADDR,
			      DMA_RW | VFIO_DMA_MAP_FLAG_VADDR, 1U << 3,
			      1U << 31, ~0U };
	unsigned int i;

	EXPECT_ERRNO(EINVAL, _map_dma_sz(self->fd, MAP_DMA_MINSZ - 1, DMA_RW,
					 self->buf, IOVA_A, page_size));
	EXPECT_ERRNO(EINVAL, _map_dma_sz(self->fd, 0, DMA_RW, self->buf,
					 IOVA_A, page_size));
	for (i = 0; i != ARRAY_SIZE(bad_flags); i++)
		EXPECT_ERRNO(EINVAL, _map_dma(self->fd, bad_flags[i],
					      self->buf, IOVA_A, page_size));
	ASSERT_EMPTY(self->fd, self->ioas_id);
	ASSERT_EQ(0, _map_dma_sz(self->fd, MAP_DMA_MINSZ, DMA_RW, self->buf,
				 IOVA_A, page_size));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

TEST_F(compat, vfio_map_dma_access_flags)
{
	__u64 p = page_size, d;
	__u32 other;

	ASSERT_EQ(0, _ioas_alloc(self->fd, &other));
	ASSERT_EQ(0, _map_dma(self->fd, VFIO_DMA_MAP_FLAG_READ, self->buf,
			      IOVA_A, p));
	ASSERT_EQ(0, _map_dma(self->fd, VFIO_DMA_MAP_FLAG_WRITE, self->buf,
			      IOVA_B, p));
	/* No access flag at all is accepted */
	ASSERT_EQ(0, _map_dma(self->fd, 0, self->buf, IOVA_C, p));
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_C);

	/* Only WRITE makes the pages writable */
	EXPECT_COPY_ERRNO(EPERM, self->fd, RW | FIXED, other, self->ioas_id,
			  IOVA_A, p, IOVA_A);
	EXPECT_COPY_ERRNO(EPERM, self->fd, RW | FIXED, other, self->ioas_id,
			  IOVA_C, p, IOVA_C);
	d = IOVA_A;
	ASSERT_EQ(0, _copy(self->fd, RD | FIXED, other, self->ioas_id, IOVA_A,
			   p, &d));
	ASSERT_COPY_FIXED(self->fd, other, self->ioas_id, IOVA_B, p, IOVA_B);
	d = IOVA_C;
	ASSERT_EQ(0, _copy(self->fd, RD | FIXED, other, self->ioas_id, IOVA_C,
			   p, &d));
	ASSERT_UNMAP_ALL(self->fd, other, 3 * p);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 3 * p);
}

TEST_F(compat, vfio_map_dma_range_errors)
{
	/* size 0 */
	EXPECT_ERRNO(EINVAL, _map_dma(self->fd, DMA_RW, self->buf, IOVA_A, 0));
	/* vaddr + size wraps */
	EXPECT_ERRNO(EOVERFLOW, _map_dma(self->fd, DMA_RW,
					 (void *)(uintptr_t)(UINT64_MAX - 1),
					 IOVA_A, 2));
	/* iova + size - 1 wraps */
	EXPECT_ERRNO(EOVERFLOW, _map_dma(self->fd, DMA_RW, self->buf,
					 IOVA_MAX - page_size + 1,
					 2 * page_size));
	ASSERT_EMPTY(self->fd, self->ioas_id);

	/* No ULONG_MAX check: the very last byte can be mapped ... */
	ASSERT_EQ(0, _map_dma(self->fd, DMA_RW, self->buf, IOVA_MAX, 1));
	ASSERT_EQ(1, probe_len(self->fd, self->ioas_id, IOVA_MAX - 1, 2));
	/* ... IOAS_UNMAP cannot name it, UNMAP_DMA can */
	EXPECT_ERRNO(EOVERFLOW, _unmap(self->fd, self->ioas_id, IOVA_MAX, 1,
				       NULL));
	ASSERT_UNMAP_DMA(self->fd, 0, IOVA_MAX, 1, 1);
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(compat, vfio_map_dma_after_type1_needs_page_alignment)
{
	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1_IOMMU));
	EXPECT_ERRNO(EINVAL, _map_dma(self->fd, DMA_RW, self->buf, IOVA_A, 1));
	EXPECT_ERRNO(EINVAL, _map_dma(self->fd, DMA_RW, self->buf, IOVA_A + 1,
				      page_size));
	EXPECT_ERRNO(EINVAL, _map_dma(self->fd, DMA_RW, self->buf + 1, IOVA_A,
				      page_size));
	ASSERT_EMPTY(self->fd, self->ioas_id);
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, page_size);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

TEST_F(iommufd, vfio_map_unmap_dma_without_compat)
{
	EXPECT_ERRNO(ENODEV, _map_dma(self->fd, DMA_RW, probe_buf, IOVA_A,
				      page_size));
	EXPECT_ERRNO(ENODEV, _unmap_dma(self->fd, 0, IOVA_A, page_size, NULL));
	EXPECT_ERRNO(ENODEV, _unmap_dma(self->fd, VFIO_DMA_UNMAP_FLAG_ALL, 0,
					0, NULL));
	/* argsz and flags are checked first */
	EXPECT_ERRNO(EINVAL, _map_dma_sz(self->fd, MAP_DMA_MINSZ - 1, DMA_RW,
					 probe_buf, IOVA_A, page_size));
	EXPECT_ERRNO(EINVAL, _map_dma(self->fd, 1U << 3, probe_buf, IOVA_A,
				      page_size));
	EXPECT_ERRNO(EINVAL, _unmap_dma_sz(self->fd, UNMAP_DMA_MINSZ - 1, 0,
					   IOVA_A, page_size, NULL));
	EXPECT_ERRNO(EINVAL, _unmap_dma(self->fd, 1U << 3, IOVA_A, page_size,
					NULL));
}

TEST_F(compat, vfio_unmap_dma_exact)
{
	__u64 len = 4 * page_size;

	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, len);
	ASSERT_UNMAP_DMA(self->fd, 0, IOVA_A, len, len);
	ASSERT_EMPTY(self->fd, self->ioas_id);

	/* Maps made with IOAS_MAP too, several at once */
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, len, IOVA_A);
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_B, page_size);
	ASSERT_UNMAP_DMA(self->fd, 0, IOVA_A - page_size,
			 IOVA_B + 2 * page_size - IOVA_A,
			 len + page_size);
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(compat, vfio_unmap_dma_nothing_mapped_is_success)
{
	ASSERT_UNMAP_DMA(self->fd, 0, IOVA_A, page_size, 0);
	/* Between two areas */
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, page_size);
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_C, page_size);
	ASSERT_UNMAP_DMA(self->fd, 0, IOVA_A + page_size,
			 IOVA_C - IOVA_A - page_size, 0);
	/* Unlike IOAS_UNMAP */
	EXPECT_ERRNO(ENOENT, _unmap(self->fd, self->ioas_id, IOVA_B,
				    page_size, NULL));
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * page_size);
}

TEST_F(compat, vfio_unmap_dma_partial_area_is_enoent)
{
	__u64 p = page_size;
	struct vfio_iommu_type1_dma_unmap out;

	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1v2_IOMMU));
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, 4 * p);
	/* The struct is written back on failure too: size 0 */
	EXPECT_ERRNO(ENOENT, _unmap_dma_sz(self->fd, sizeof(out), 0,
					   IOVA_A + p, p, &out));
	EXPECT_EQ(0, out.size);
	EXPECT_EQ(IOVA_A + p, out.iova);
	EXPECT_ERRNO(ENOENT, _unmap_dma_sz(self->fd, sizeof(out), 0, IOVA_A,
					   p, &out));
	EXPECT_EQ(0, out.size);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 4 * p);

	/* Areas before the partial one are gone, and counted */
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, 2 * p);
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A + 2 * p, 2 * p);
	EXPECT_ERRNO(ENOENT, _unmap_dma_sz(self->fd, sizeof(out), 0, IOVA_A,
					   3 * p, &out));
	EXPECT_EQ(2 * p, out.size);
	EXPECT_EQ(sizeof(out), out.argsz);
	EXPECT_EQ(0, out.flags);
	EXPECT_EQ(IOVA_A, out.iova);
	ASSERT_FREE(self->fd, self->ioas_id, IOVA_A);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, 2 * p);
}

TEST_F(compat, vfio_unmap_dma_size_errors)
{
	struct vfio_iommu_type1_dma_unmap out;

	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, page_size);
	/* size 0 without FLAG_ALL; written back */
	EXPECT_ERRNO(EINVAL, _unmap_dma_sz(self->fd, sizeof(out), 0, IOVA_A, 0,
					   &out));
	EXPECT_EQ(0, out.size);
	/* Wrap; written back with size 0 */
	EXPECT_ERRNO(EOVERFLOW, _unmap_dma_sz(self->fd, sizeof(out), 0,
					      IOVA_MAX, 2, &out));
	EXPECT_EQ(0, out.size);
	EXPECT_EQ(IOVA_MAX, out.iova);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

TEST_F(compat, vfio_unmap_dma_all)
{
	__u64 p = page_size;
	struct vfio_iommu_type1_dma_unmap out;
	__u32 all = VFIO_DMA_UNMAP_FLAG_ALL;

	/* Empty: success, 0 */
	ASSERT_UNMAP_DMA(self->fd, all, 0, 0, 0);

	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, p);
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_B, 2 * p);
	ASSERT_MAP_FIXED(self->fd, self->ioas_id, self->buf, 3 * p, IOVA_C);
	/* iova or size nonzero: EINVAL, nothing written back */
	EXPECT_ERRNO(EINVAL, _unmap_dma_sz(self->fd, sizeof(out), all, IOVA_A,
					   0, &out));
	EXPECT_ERRNO(EINVAL, _unmap_dma_sz(self->fd, sizeof(out), all, 0, p,
					   &out));
	EXPECT_EQ(p, out.size);
	EXPECT_ERRNO(EINVAL, _unmap_dma(self->fd, all, 0, UINT64_MAX, NULL));
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A);

	ASSERT_UNMAP_DMA(self->fd, all, 0, 0, 6 * p);
	ASSERT_EMPTY(self->fd, self->ioas_id);
	ASSERT_UNMAP_DMA(self->fd, all, 0, 0, 0);
}

TEST_F(compat, vfio_unmap_dma_bad_argsz_or_flags_is_einval)
{
	__u32 bad[] = { VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
			VFIO_DMA_UNMAP_FLAG_VADDR,
			VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR,
			1U << 3, 1U << 31, ~0U };
	struct vfio_iommu_type1_dma_unmap out;
	unsigned int i;

	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, page_size);
	/* Sizes covering the area: a write back would say 0 or page_size */
	for (i = 0; i != ARRAY_SIZE(bad); i++) {
		EXPECT_ERRNO(EINVAL, _unmap_dma_sz(self->fd, sizeof(out),
						   bad[i], IOVA_A,
						   2 * page_size, &out));
		/* Not written back */
		EXPECT_EQ(2 * page_size, out.size);
	}
	EXPECT_ERRNO(EINVAL, _unmap_dma_sz(self->fd, UNMAP_DMA_MINSZ - 1, 0,
					   IOVA_A, 2 * page_size, &out));
	EXPECT_EQ(2 * page_size, out.size);
	EXPECT_ERRNO(EINVAL, _unmap_dma_sz(self->fd, 0, 0, IOVA_A, page_size,
					   NULL));
	ASSERT_MAPPED(self->fd, self->ioas_id, IOVA_A);
	/* A larger argsz is fine */
	ASSERT_EQ(0, _unmap_dma_sz(self->fd, 4096, 0, IOVA_A, page_size,
				   &out));
	EXPECT_EQ(page_size, out.size);
	EXPECT_EQ(4096, out.argsz);
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(compat, vfio_unmap_dma_type1_splits_areas)
{
	__u64 p = page_size;

	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1_IOMMU));
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, 4 * p);
	/* A hole in the middle */
	ASSERT_UNMAP_DMA(self->fd, 0, IOVA_A + p, p, p);
	ASSERT_PAGE_MAPPED(self->fd, self->ioas_id, IOVA_A);
	ASSERT_PAGE_FREE(self->fd, self->ioas_id, IOVA_A + p);
	ASSERT_PAGE_MAPPED(self->fd, self->ioas_id, IOVA_A + 2 * p);
	/* The pieces are areas of their own */
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A, p, p);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A + 2 * p, 2 * p, 2 * p);
	ASSERT_EMPTY(self->fd, self->ioas_id);

	/* Across two areas, cutting both */
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, 2 * p);
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A + 2 * p, 2 * p);
	ASSERT_UNMAP_DMA(self->fd, 0, IOVA_A + p, 2 * p, 2 * p);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A, p, p);
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A + 3 * p, p, p);
	ASSERT_EMPTY(self->fd, self->ioas_id);

	/* From IOVA 0 */
	ASSERT_MAP_DMA(self->fd, self->buf, 0, 2 * p);
	ASSERT_UNMAP_DMA(self->fd, 0, 0, p, p);
	ASSERT_UNMAP(self->fd, self->ioas_id, p, p, p);
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_F(compat, vfio_unmap_dma_type1_unaligned_cut_is_einval)
{
	__u64 p = page_size;
	struct vfio_iommu_type1_dma_unmap out;

	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1_IOMMU));
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, 4 * p);
	/* The cut after IOVA_A + p would start an area at IOVA_A + p + 1 */
	EXPECT_ERRNO(EINVAL, _unmap_dma_sz(self->fd, sizeof(out), 0,
					   IOVA_A + p, 1, &out));
	/* Not written back */
	EXPECT_EQ(1, out.size);
	EXPECT_ERRNO(EINVAL, _unmap_dma_sz(self->fd, sizeof(out), 0,
					   IOVA_A + p + 1, p, &out));
	EXPECT_EQ(p, out.size);
	/* Still the one area */
	ASSERT_UNMAP(self->fd, self->ioas_id, IOVA_A, 4 * p, 4 * p);
}

TEST_F(compat, vfio_get_info_argsz_too_small_is_einval)
{
	struct info_buf buf;

	EXPECT_ERRNO(EINVAL, get_info(self->fd, &buf, INFO_MINSZ - 1));
	EXPECT_ERRNO(EINVAL, get_info(self->fd, &buf, 0));
	ASSERT_TRUE(untouched(&buf, 4, sizeof(buf)));
}

TEST_F(compat, vfio_get_info_minsz)
{
	struct info_buf buf;

	/* Only the first 16 bytes are written */
	ASSERT_EQ(0, get_info(self->fd, &buf, INFO_MINSZ));
	ASSERT_EQ(INFO_TOTAL, buf.info.argsz);
	ASSERT_EQ(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS,
		  buf.info.flags);
	ASSERT_EQ(PAGE_MASK64, buf.info.iova_pgsizes);
	ASSERT_TRUE(untouched(&buf, INFO_MINSZ, sizeof(buf)));
}

TEST_F(compat, vfio_get_info_struct_only)
{
	struct info_buf buf;

	ASSERT_EQ(0, get_info(self->fd, &buf, INFO_SZ));
	ASSERT_EQ(INFO_TOTAL, buf.info.argsz);
	ASSERT_EQ(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS,
		  buf.info.flags);
	ASSERT_EQ(PAGE_MASK64, buf.info.iova_pgsizes);
	/* The caps did not fit */
	ASSERT_EQ(0, buf.info.cap_offset);
	ASSERT_EQ(0, buf.info.pad);
	ASSERT_TRUE(untouched(&buf, INFO_SZ, sizeof(buf)));

	/* Between the struct and the first cap: the same */
	ASSERT_EQ(0, get_info(self->fd, &buf, INFO_SZ + 8));
	ASSERT_EQ(INFO_TOTAL, buf.info.argsz);
	ASSERT_EQ(0, buf.info.cap_offset);
	ASSERT_TRUE(untouched(&buf, INFO_SZ, sizeof(buf)));
}

TEST_F(compat, vfio_get_info_full)
{
	__u32 sizes[] = { INFO_TOTAL, sizeof(struct info_buf) };
	struct vfio_info_cap_header *hdr = NULL;
	struct info_buf buf;
	unsigned int i, n;
	__u32 off;

	for (i = 0; i != ARRAY_SIZE(sizes); i++) {
		ASSERT_EQ(0, get_info(self->fd, &buf, sizes[i]));
		ASSERT_EQ(INFO_TOTAL, buf.info.argsz);
		ASSERT_EQ(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS,
			  buf.info.flags);
		ASSERT_EQ(PAGE_MASK64, buf.info.iova_pgsizes);
		ASSERT_EQ(INFO_SZ, buf.info.cap_offset);
		ASSERT_EQ(0, buf.info.pad);
		ASSERT_DMA_AVAIL_CAP(&buf, IOVA_RANGE_OFF);
		/* The padding after DMA_AVAIL is not written */
		ASSERT_TRUE(untouched(&buf, DMA_AVAIL_OFF + DMA_AVAIL_SZ,
				      IOVA_RANGE_OFF));
		ASSERT_IOVA_RANGE_CAP(&buf);
		ASSERT_TRUE(untouched(&buf, INFO_TOTAL, sizeof(buf)));

		/* Walking the chain finds exactly the two */
		n = 0;
		for (off = buf.info.cap_offset; off; off = hdr->next) {
			ASSERT_LE(off + sizeof(*hdr), INFO_TOTAL);
			hdr = CAP_AT(&buf, off);
			n++;
			ASSERT_GE(2, n);
		}
		ASSERT_EQ(2, n);
	}
}

TEST_F(compat, vfio_get_info_partial_caps)
{
	struct info_buf buf;

	/*
	 * Room for DMA_AVAIL only: it is written, and its next already
	 * points at where IOVA_RANGE would be; cap_offset stays 0.
	 */
	ASSERT_EQ(0, get_info(self->fd, &buf, IOVA_RANGE_OFF));
	ASSERT_EQ(INFO_TOTAL, buf.info.argsz);
	ASSERT_EQ(0, buf.info.cap_offset);
	ASSERT_DMA_AVAIL_CAP(&buf, IOVA_RANGE_OFF);
	ASSERT_TRUE(untouched(&buf, DMA_AVAIL_OFF + DMA_AVAIL_SZ,
			      sizeof(buf)));

	/* One byte short of everything: IOVA_RANGE is not written at all */
	ASSERT_EQ(0, get_info(self->fd, &buf, INFO_TOTAL - 1));
	ASSERT_EQ(INFO_TOTAL, buf.info.argsz);
	ASSERT_EQ(0, buf.info.cap_offset);
	ASSERT_DMA_AVAIL_CAP(&buf, IOVA_RANGE_OFF);
	ASSERT_TRUE(untouched(&buf, DMA_AVAIL_OFF + DMA_AVAIL_SZ,
			      sizeof(buf)));

	/* Not even room for DMA_AVAIL: nothing after the struct */
	ASSERT_EQ(0, get_info(self->fd, &buf,
			      DMA_AVAIL_OFF + DMA_AVAIL_SZ - 1));
	ASSERT_EQ(INFO_TOTAL, buf.info.argsz);
	ASSERT_EQ(0, buf.info.cap_offset);
	ASSERT_TRUE(untouched(&buf, INFO_SZ, sizeof(buf)));
}

TEST_F(compat, vfio_get_info_ignores_allowed_iovas_and_maps)
{
	struct iommu_iova_range allowed = {
		.start = IOVA_A, .last = IOVA_C - 1,
	};
	struct info_buf buf;

	ASSERT_EQ(0, _allow_iovas(self->fd, self->ioas_id, &allowed, 1));
	ASSERT_MAP_DMA(self->fd, self->buf, IOVA_A, page_size);
	ASSERT_EQ(0, get_info(self->fd, &buf, sizeof(buf)));
	ASSERT_EQ(INFO_TOTAL, buf.info.argsz);
	ASSERT_EQ(INFO_SZ, buf.info.cap_offset);
	ASSERT_IOVA_RANGE_CAP(&buf);
	ASSERT_UNMAP_ALL(self->fd, self->ioas_id, page_size);
}

TEST_F(compat, vfio_get_info_after_type1)
{
	struct info_buf buf;

	ASSERT_EQ(0, set_iommu(self->fd, VFIO_TYPE1_IOMMU));
	ASSERT_EQ(0, get_info(self->fd, &buf, sizeof(buf)));
	/* max(PAGE_MASK, PAGE_SIZE) */
	ASSERT_EQ(PAGE_MASK64, buf.info.iova_pgsizes);
	ASSERT_EQ(INFO_TOTAL, buf.info.argsz);
	ASSERT_IOVA_RANGE_CAP(&buf);
}

TEST_F(iommufd, vfio_get_info_without_compat)
{
	struct info_buf buf;

	EXPECT_ERRNO(ENODEV, get_info(self->fd, &buf, sizeof(buf)));
	ASSERT_TRUE(untouched(&buf, 4, sizeof(buf)));
	/* argsz first */
	EXPECT_ERRNO(EINVAL, get_info(self->fd, &buf, INFO_MINSZ - 1));
}

TEST_F(compat, vfio_unknown_ioctl_is_enotty)
{
	unsigned long bad[] = {
		VFIO_IOMMU_DIRTY_PAGES,
		VFIO_IOMMU_ENABLE,
		VFIO_IOMMU_DISABLE,
		VFIO_GROUP_GET_STATUS,
		VFIO_DEVICE_GET_INFO,
		_IO(VFIO_TYPE, VFIO_BASE + 27),
		/* The whole number must match, not only the nr */
		_IOW(VFIO_TYPE, VFIO_BASE + 0, int),
		_IO('x', VFIO_BASE + 0),
		_IOR(VFIO_TYPE, VFIO_BASE + 13,
		     struct vfio_iommu_type1_dma_map),
		/* iommufd numbers below the table also go here */
		_IO(IOMMUFD_TYPE, 0x7f),
		_IO(IOMMUFD_TYPE, 0),
	};
	__u32 arg[64] = {};
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(bad); i++) {
		arg[0] = sizeof(arg);
		ASSERT_EQ(-1, ioctl(self->fd, bad[i], arg))
			TH_LOG("ioctl 0x%lx", bad[i]);
		EXPECT_EQ(ENOTTY, errno) TH_LOG("ioctl 0x%lx", bad[i]);
	}
	ASSERT_EMPTY(self->fd, self->ioas_id);
}

TEST_HARNESS_MAIN
