// SPDX-License-Identifier: GPL-2.0
/*
 * Exports the functions KVM reaches VFIO through (kvm.rs, written in Rust) under
 * upstream's names.  The prototypes come from <linux/vfio.h>, so the compiler
 * checks them against what kvm-vfio sees.
 */
#include <linux/export.h>
#include <linux/vfio.h>

EXPORT_SYMBOL_GPL(vfio_file_is_valid);
EXPORT_SYMBOL_GPL(vfio_file_enforced_coherent);
EXPORT_SYMBOL_GPL(vfio_file_set_kvm);
EXPORT_SYMBOL_GPL(vfio_file_iommu_group);
#if IS_ENABLED(CONFIG_VFIO_GROUP)
EXPORT_SYMBOL_GPL(vfio_file_is_group);
#endif
