/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kprof.h: a small sampling profiler of the kernel time the calling thread
 * spends, for finding out where a benchmark case goes in both kernels.
 *
 * perf_event_open() samples the software CPU clock of this thread in kernel
 * mode only, with short call chains; kprof_report() reads the samples back,
 * names their addresses from /proc/kallsyms and prints the functions that
 * took the most samples, by their own time ("self") and by time in them and
 * what they called ("total"), as '#' commentary lines.  There is no perf tool
 * in the test VMs, and this needs nothing but the syscall and kallsyms.
 *
 * Samples that do not fit the ring buffer are lost (and counted): the period
 * is chosen so that a case of about a second fits.
 */
#ifndef KPROF_H
#define KPROF_H

#include <linux/perf_event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KPROF_PAGES 2048	/* ring buffer data pages (8 MiB) */
#define KPROF_STACK 24		/* call chain entries kept per sample */
#define KPROF_TOP 30		/* functions printed per list */

struct kprof_sym {
	uint64_t addr;
	char *name;
	unsigned long self, total, seen;	/* seen: last sample that counted total */
};

static struct {
	int fd;
	void *ring;
	size_t ring_len;
	struct kprof_sym *syms;
	size_t nsyms;
} kprof = { .fd = -1 };

static int kprof_sym_cmp(const void *a, const void *b)
{
	const struct kprof_sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The text symbols of /proc/kallsyms, sorted by address. */
static int kprof_load_syms(void)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	size_t cap = 0;
	char line[512];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long addr;
		char type, name[256];

		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3)
			continue;
		if (type != 't' && type != 'T')
			continue;
		if (kprof.nsyms == cap) {
			cap = cap ? cap * 2 : 65536;
			kprof.syms = realloc(kprof.syms, cap * sizeof(*kprof.syms));
			if (!kprof.syms) {
				fclose(f);
				return -1;
			}
		}
		kprof.syms[kprof.nsyms++] = (struct kprof_sym){ .addr = addr, .name = strdup(name) };
	}
	fclose(f);
	qsort(kprof.syms, kprof.nsyms, sizeof(*kprof.syms), kprof_sym_cmp);
	return kprof.nsyms && kprof.syms[kprof.nsyms - 1].addr ? 0 : -1;
}

static struct kprof_sym *kprof_find(uint64_t ip)
{
	size_t lo = 0, hi = kprof.nsyms;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (kprof.syms[mid].addr <= ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &kprof.syms[lo - 1] : NULL;
}

/*
 * Sets up sampling of this thread's kernel time every period_ns, paused:
 * kprof_on() and kprof_off() around what to measure.  0 or -1.
 */
static int kprof_open(unsigned long period_ns)
{
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.sample_period = period_ns,
		.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_CALLCHAIN,
		.exclude_user = 1,
		.exclude_hv = 1,
		.exclude_callchain_user = 1,
		.sample_max_stack = KPROF_STACK,
		.disabled = 1,
	};

	if (!kprof.syms && kprof_load_syms()) {
		printf("# kprof: no usable /proc/kallsyms\n");
		return -1;
	}
	kprof.fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
	if (kprof.fd < 0) {
		printf("# kprof: perf_event_open: %m\n");
		return -1;
	}
	kprof.ring_len = (KPROF_PAGES + 1) * sysconf(_SC_PAGESIZE);
	kprof.ring = mmap(NULL, kprof.ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, kprof.fd, 0);
	if (kprof.ring == MAP_FAILED) {
		printf("# kprof: mmap: %m\n");
		close(kprof.fd);
		kprof.fd = -1;
		return -1;
	}
	for (size_t i = 0; i < kprof.nsyms; i++)
		kprof.syms[i].self = kprof.syms[i].total = kprof.syms[i].seen = 0;
	return 0;
}

static void kprof_on(void)
{
	if (kprof.fd >= 0)
		ioctl(kprof.fd, PERF_EVENT_IOC_ENABLE, 0);
}

static void kprof_off(void)
{
	if (kprof.fd >= 0)
		ioctl(kprof.fd, PERF_EVENT_IOC_DISABLE, 0);
}

static int kprof_by_self(const void *a, const void *b)
{
	const struct kprof_sym *x = *(struct kprof_sym *const *)a, *y = *(struct kprof_sym *const *)b;

	return x->self < y->self ? 1 : x->self > y->self ? -1 : 0;
}

static int kprof_by_total(const void *a, const void *b)
{
	const struct kprof_sym *x = *(struct kprof_sym *const *)a, *y = *(struct kprof_sym *const *)b;

	return x->total < y->total ? 1 : x->total > y->total ? -1 : 0;
}

static void kprof_print(const char *label, const char *what, struct kprof_sym **order,
			size_t n, unsigned long samples, bool self)
{
	printf("# kprof %s: %s\n", label, what);
	for (size_t i = 0; i < n && i < KPROF_TOP; i++) {
		unsigned long c = self ? order[i]->self : order[i]->total;

		if (!c)
			break;
		printf("# kprof %s %5.1f%% %6lu %s\n", label, 100.0 * c / samples, c, order[i]->name);
	}
}

/* Prints where the sampled kernel time went, and closes the profiler. */
static void kprof_report(const char *label)
{
	struct perf_event_mmap_page *meta = kprof.ring;
	const size_t page = sysconf(_SC_PAGESIZE), size = KPROF_PAGES * page;
	const char *data = (const char *)kprof.ring + page;
	unsigned long samples = 0, lost = 0;
	struct kprof_sym **order;
	uint64_t head, tail;
	size_t n = 0;

	if (kprof.fd < 0)
		return;
	kprof_off();
	head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
	for (tail = meta->data_tail; tail < head;) {
		struct perf_event_header hdr;
		uint64_t rec[2 + KPROF_STACK + 8];
		size_t len;

		for (size_t i = 0; i < sizeof(hdr); i++)
			((char *)&hdr)[i] = data[(tail + i) % size];
		len = hdr.size < sizeof(rec) ? hdr.size : sizeof(rec);
		for (size_t i = 0; i < len; i++)
			((char *)rec)[i] = data[(tail + i) % size];
		tail += hdr.size ? hdr.size : sizeof(hdr);
		if (hdr.type == PERF_RECORD_LOST) {
			lost += rec[2];
			continue;
		}
		if (hdr.type != PERF_RECORD_SAMPLE || len < 3 * sizeof(uint64_t))
			continue;
		/* rec[1] = ip, rec[2] = nr, rec[3..] = the chain (context markers included). */
		struct kprof_sym *s = kprof_find(rec[1]);
		uint64_t nr = rec[2], max = len / sizeof(uint64_t) - 3;

		samples++;
		if (s)
			s->self++;
		for (uint64_t i = 0; i < nr && i < max; i++) {
			if (rec[3 + i] >= PERF_CONTEXT_MAX)
				continue;
			s = kprof_find(rec[3 + i]);
			if (s && s->seen != samples) {
				s->seen = samples;
				s->total++;
			}
		}
	}
	munmap(kprof.ring, kprof.ring_len);
	close(kprof.fd);
	kprof.fd = -1;
	printf("# kprof %s: %lu samples, %lu lost\n", label, samples, lost);
	if (!samples)
		return;
	order = malloc(kprof.nsyms * sizeof(*order));
	if (!order)
		return;
	for (size_t i = 0; i < kprof.nsyms; i++)
		if (kprof.syms[i].total || kprof.syms[i].self)
			order[n++] = &kprof.syms[i];
	qsort(order, n, sizeof(*order), kprof_by_self);
	kprof_print(label, "self", order, n, samples, true);
	qsort(order, n, sizeof(*order), kprof_by_total);
	kprof_print(label, "total", order, n, samples, false);
	free(order);
}

#endif
