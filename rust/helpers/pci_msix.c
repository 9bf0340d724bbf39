// SPDX-License-Identifier: GPL-2.0

/*
 * The stubs kernel::pci::Vectors calls for dynamic MSI-X without
 * CONFIG_PCI_MSI (with it they are exported functions).
 */

#include <linux/pci.h>

#ifndef CONFIG_PCI_MSI
__rust_helper bool rust_helper_pci_msix_can_alloc_dyn(struct pci_dev *dev)
{
	return pci_msix_can_alloc_dyn(dev);
}

__rust_helper struct msi_map
rust_helper_pci_msix_alloc_irq_at(struct pci_dev *dev, unsigned int index,
				  const struct irq_affinity_desc *affdesc)
{
	return pci_msix_alloc_irq_at(dev, index, affdesc);
}
#endif
