// SPDX-License-Identifier: GPL-2.0

/* Inline functions and macros kernel::pfnmap needs to tell device memory from RAM. */

#include <linux/mm.h>

__rust_helper bool rust_helper_pfn_valid(unsigned long pfn)
{
	return pfn_valid(pfn);
}

__rust_helper struct page *rust_helper_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

__rust_helper bool rust_helper_PageReserved(const struct page *page)
{
	return PageReserved(page);
}
