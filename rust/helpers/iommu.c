// SPDX-License-Identifier: GPL-2.0

/* Inline functions of <linux/iommu.h> that kernel::iommu needs. */

#include <linux/iommu.h>

#ifdef CONFIG_IOMMU_API
__rust_helper void rust_helper_iommu_iotlb_gather_init(struct iommu_iotlb_gather *gather)
{
	iommu_iotlb_gather_init(gather);
}

__rust_helper void rust_helper_iommu_iotlb_sync(struct iommu_domain *domain,
						struct iommu_iotlb_gather *gather)
{
	iommu_iotlb_sync(domain, gather);
}

__rust_helper void rust_helper_iommu_dirty_bitmap_init(struct iommu_dirty_bitmap *dirty,
						       struct iova_bitmap *bitmap,
						       struct iommu_iotlb_gather *gather)
{
	iommu_dirty_bitmap_init(dirty, bitmap, gather);
}
#endif
