// SPDX-License-Identifier: GPL-2.0

/*
 * What kernel::pci's SR-IOV code needs that is inline: always pci_physfn(),
 * and without CONFIG_PCI_IOV the stubs that stand in for the SR-IOV calls.
 */

#include <linux/pci.h>

__rust_helper struct pci_dev *rust_helper_pci_physfn(struct pci_dev *dev)
{
	return pci_physfn(dev);
}

#ifndef CONFIG_PCI_IOV
__rust_helper int rust_helper_pci_num_vf(struct pci_dev *dev)
{
	return pci_num_vf(dev);
}

__rust_helper int rust_helper_pci_enable_sriov(struct pci_dev *dev,
					       int nr_virtfn)
{
	return pci_enable_sriov(dev, nr_virtfn);
}

__rust_helper void rust_helper_pci_disable_sriov(struct pci_dev *dev)
{
	pci_disable_sriov(dev);
}
#endif
