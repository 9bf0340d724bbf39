// SPDX-License-Identifier: GPL-2.0
/*
 * Exports the device kAPI of iommufd (kapi.rs, written in Rust) under upstream's
 * names and namespace, for VFIO.  The prototypes come from <linux/iommufd.h>, so
 * the compiler checks them against what the callers see.
 */
#include <linux/export.h>
#include <linux/iommufd.h>

/* Ours, not upstream's: for VFIO's own container (see kapi.rs). */
struct iommufd_ctx *iommufd_ctx_create(void);
long iommufd_vfio_compat_ioctl(struct iommufd_ctx *ictx, unsigned int cmd,
			       unsigned long arg);

EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_file, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_fd, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_get, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_put, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_has_group, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_device_bind, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_device_unbind, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_device_attach, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_device_replace, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_device_detach, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_ictx, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_id, "IOMMUFD");
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_ioas_create, "IOMMUFD_VFIO");
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_ioas_get_id, "IOMMUFD_VFIO");
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_set_no_iommu, "IOMMUFD_VFIO");
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_create, "IOMMUFD_VFIO");
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_ioctl, "IOMMUFD_VFIO");
