// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-pci's module parameters nointxmask, disable_idle_d3 and enable_sriov,
 * under upstream's names.
 *
 * Why a C file: Rust module parameters cannot be written at run time yet, and
 * vfio-pci is part of the vfio module (its driver API is Rust, which another
 * module cannot call). Built into the kernel, the parameter carries
 * upstream's "vfio_pci." prefix, which is also what gives the kernel a
 * /sys/module/vfio_pci directory, as upstream's built-in vfio_pci has: DPDK
 * refuses to use VFIO without it. Built as a module, it is one of vfio's
 * parameters.
 */
#include <linux/kernel.h>
#include <linux/moduleparam.h>

#ifndef MODULE
#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "vfio_pci."
#endif

static bool nointxmask;
module_param(nointxmask, bool, 0644);
MODULE_PARM_DESC(nointxmask,
		 "Do not mask INTx at the function (PCI 2.3 INTx disable): vfio-pci then offers no INTx for functions bound after this is set, as it has no other way of masking it yet. (default: false)");

bool vfio_pci_nointxmask(void);
bool vfio_pci_nointxmask(void)
{
	return READ_ONCE(nointxmask);
}

static bool disable_idle_d3;
module_param(disable_idle_d3, bool, 0644);
MODULE_PARM_DESC(disable_idle_d3,
		 "Keep functions bound to vfio-pci in D0 while nobody uses them, instead of letting them runtime suspend (D3hot where they can); read when a function is bound. (default: false)");

bool vfio_pci_disable_idle_d3(void);
bool vfio_pci_disable_idle_d3(void)
{
	return READ_ONCE(disable_idle_d3);
}

/*
 * As upstream, the parameter exists only with SR-IOV, and without it
 * vfio-pci never enables VFs.
 */
static bool enable_sriov;
#ifdef CONFIG_PCI_IOV
module_param(enable_sriov, bool, 0644);
MODULE_PARM_DESC(enable_sriov,
		 "Let sriov_numvfs enable VFs of a PF bound to vfio-pci. The PF's user then needs to support its VFs, which may not work otherwise. (default: false)");
#endif

bool vfio_pci_enable_sriov(void);
bool vfio_pci_enable_sriov(void)
{
	return READ_ONCE(enable_sriov);
}
