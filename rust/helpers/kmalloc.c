// SPDX-License-Identifier: GPL-2.0

/*
 * kmalloc_node() is a macro.  Kmalloc allocates through it, rather than
 * through krealloc_node_align() with a NULL pointer, which costs two more
 * calls and their checks on every allocation.
 */

#include <linux/slab.h>

__rust_helper void *__must_check __alloc_size(1)
rust_helper_kmalloc_node(size_t size, gfp_t flags, int node)
{
	return kmalloc_node(size, flags, node);
}
