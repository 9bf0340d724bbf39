// SPDX-License-Identifier: GPL-2.0
/*
 * The switch of VFIO's no-IOMMU mode (CONFIG_VFIO_NOIOMMU), a module parameter
 * under upstream's name that root can flip at run time
 * (/sys/module/vfio/parameters/enable_unsafe_noiommu_mode), which Rust module
 * parameters cannot be yet; noiommu.rs reads it.
 */
#include <linux/kernel.h>
#include <linux/moduleparam.h>
#include <linux/panic.h>

static bool vfio_noiommu __read_mostly;
module_param_named(enable_unsafe_noiommu_mode, vfio_noiommu, bool, 0644);
MODULE_PARM_DESC(enable_unsafe_noiommu_mode,
		 "Let VFIO hand userspace devices no IOMMU protects: they can DMA anywhere, cannot go to a virtual machine, need CAP_SYS_RAWIO, and taint the kernel. (default: false)");

bool vfio_noiommu_enabled(void);
bool vfio_noiommu_enabled(void)
{
	return READ_ONCE(vfio_noiommu);
}

void vfio_noiommu_taint(void);
void vfio_noiommu_taint(void)
{
	add_taint(TAINT_USER, LOCKDEP_STILL_OK);
}
