// SPDX-License-Identifier: GPL-2.0

/* Inline functions and macros kernel::user_pin needs to pin and charge user memory. */

#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/cred.h>
#include <linux/hugetlb.h>
#include <linux/shmem_fs.h>

__rust_helper phys_addr_t rust_helper_page_to_phys(struct page *page)
{
	return page_to_phys(page);
}

__rust_helper struct user_struct *rust_helper_get_current_user(void)
{
	return get_current_user();
}

/* The current task's user, without a reference: for comparing addresses only. */
__rust_helper struct user_struct *rust_helper_current_user_ptr(void)
{
	return current_user();
}

__rust_helper unsigned long rust_helper_task_rlimit(const struct task_struct *task,
						    unsigned int limit)
{
	return task_rlimit(task, limit);
}

__rust_helper void rust_helper_mmap_write_lock(struct mm_struct *mm)
{
	mmap_write_lock(mm);
}

__rust_helper void rust_helper_mmap_write_unlock(struct mm_struct *mm)
{
	mmap_write_unlock(mm);
}

__rust_helper bool rust_helper_PageCompound(const struct page *page)
{
	return PageCompound(page);
}

__rust_helper int rust_helper_page_ref_count(const struct page *page)
{
	return page_ref_count(page);
}

__rust_helper void rust_helper_put_page(struct page *page)
{
	put_page(page);
}

__rust_helper long rust_helper_folio_nr_pages(const struct folio *folio)
{
	return folio_nr_pages(folio);
}

__rust_helper struct page *rust_helper_folio_page(struct folio *folio, unsigned long n)
{
	return folio_page(folio, n);
}

__rust_helper unsigned long rust_helper_page_to_pfn(const struct page *page)
{
	return page_to_pfn(page);
}

/* Whether the file's memory is what memfd_pin_folios() pins: shmem or hugetlbfs. */
__rust_helper bool rust_helper_file_is_memfd(struct file *file)
{
	return shmem_file(file) || is_file_hugepages(file);
}
