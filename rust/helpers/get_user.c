// SPDX-License-Identifier: GPL-2.0

/* get_user() is a macro: a 4-byte read of a uAPI struct's leading size word. */

#include <linux/uaccess.h>

__rust_helper int rust_helper_get_user_u32(u32 *val, const u32 __user *ptr)
{
	return get_user(*val, ptr);
}
