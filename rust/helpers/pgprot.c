// SPDX-License-Identifier: GPL-2.0

/* Macros kernel::mm::virt needs for I/O mappings. */

#include <linux/mm.h>
#include <linux/pgtable.h>

__rust_helper pgprot_t rust_helper_pgprot_noncached(pgprot_t prot)
{
	return pgprot_noncached(prot);
}

__rust_helper pgprot_t rust_helper_pgprot_decrypted(pgprot_t prot)
{
	return pgprot_decrypted(prot);
}
