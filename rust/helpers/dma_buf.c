// SPDX-License-Identifier: GPL-2.0

/* Inline functions kernel::dma_buf needs. */

#include <linux/io.h>

__rust_helper phys_addr_t rust_helper_virt_to_phys(volatile void *address)
{
	return virt_to_phys(address);
}
