/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the VFIO selftests share: finding QEMU's edu device (1234:11e8),
 * handing it to the vfio-test driver (CONFIG_VFIO_TEST_DRIVER) through
 * driver_override, finding its VFIO device and group, and small wrappers of
 * the ioctls they use.  Include after kselftest_harness.h.
 */
#ifndef VFIO_EDU_H
#define VFIO_EDU_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#define PCI_DEVICES "/sys/bus/pci/devices"
#define TEST_DRIVER "/sys/bus/pci/drivers/vfio-test"

/* The vfio-test driver's private ioctl: open_device and close_device counts. */
#define VFIO_TEST_DRIVER_COUNTS _IO(VFIO_TYPE, VFIO_BASE + 100)
/* And how many devices of the device's set are open (all its devices share one). */
#define VFIO_TEST_DRIVER_SET_OPEN _IO(VFIO_TYPE, VFIO_BASE + 101)

/* vfio-pci's regions: region N starts at N << 40 of the device file. */
#define VFIO_PCI_REGION(index) ((__u64)(index) << 40)
#define EDU_CONFIG VFIO_PCI_REGION(VFIO_PCI_CONFIG_REGION_INDEX)
#define EDU_BAR0 VFIO_PCI_REGION(VFIO_PCI_BAR0_REGION_INDEX)

/*
 * QEMU's edu: BAR0 is 1 MiB of registers, answering aligned dwords only. 0x00
 * reads 0x010000ed, 0x04 reads back the inverse of what was written; its DMA
 * engine copies between an IOVA (28 bits wide) and its own 4 KiB buffer at
 * device address 0x40000, clearing the start bit of the command when done.
 */
#define EDU_BAR0_SIZE (1 << 20)
#define EDU_ID 0x010000ed
#define EDU_LIVENESS 0x04
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_DMA_START 0x1
#define EDU_DMA_TO_RAM 0x2
#define EDU_DMA_IRQ 0x4		/* raise the interrupt (status 0x100) when done */
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64
#define EDU_IRQ_DMA 0x100
#define EDU_DMA_BUF 0x40000

#define EXPECT_ERRNO(expected_errno, cmd)         \
	({                                        \
		ASSERT_EQ(-1, cmd);               \
		EXPECT_EQ(expected_errno, errno); \
	})

static inline int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

static inline int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

/* Whether @bdf's IDs are @vendor and @device (as sysfs spells them: "0x1234"). */
static inline bool pci_ids_are(const char *bdf, const char *vendor, const char *device)
{
	char path[512], val[16];

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/vendor", bdf);
	if (read_file(path, val, sizeof(val)) || strncmp(val, vendor, strlen(vendor)))
		return false;
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/device", bdf);
	return !read_file(path, val, sizeof(val)) && !strncmp(val, device, strlen(device));
}

/* Whether @bdf is bound to the PCI driver @driver. */
static inline bool pci_bound_to(const char *bdf, const char *driver)
{
	char path[512];

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/%s", driver, bdf);
	return !access(path, F_OK);
}

/* The first PCI function for which @want holds, into @bdf; false if there is none. */
static inline bool find_pci(char *bdf, size_t size, bool (*want)(const char *bdf))
{
	DIR *dir = opendir(PCI_DEVICES);
	struct dirent *d;
	bool found = false;

	if (!dir)
		return false;
	while (!found && (d = readdir(dir))) {
		if (d->d_name[0] == '.' || !want(d->d_name))
			continue;
		snprintf(bdf, size, "%s", d->d_name);
		found = true;
	}
	closedir(dir);
	return found;
}

static inline bool is_edu(const char *bdf)
{
	return pci_ids_are(bdf, "0x1234", "0x11e8");
}

/* The BDF of the edu device into @bdf; false if there is none. */
static inline bool find_edu(char *bdf, size_t size)
{
	return find_pci(bdf, size, is_edu);
}

/*
 * Binds @bdf to the PCI driver @driver through driver_override, unbinding it
 * from any other driver first.
 */
static inline int bind_driver(const char *bdf, const char *driver)
{
	char path[512];
	int ret;

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/%s", driver, bdf);
	if (!access(path, F_OK))
		return 0;
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver/unbind", bdf);
	if (!access(path, F_OK)) {
		ret = write_file(path, bdf);
		if (ret)
			return ret;
	}
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver_override", bdf);
	ret = write_file(path, driver);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/bind", driver);
	return write_file(path, bdf);
}

static inline int bind_test_driver(const char *bdf)
{
	return bind_driver(bdf, "vfio-test");
}

/* The name vfioN of the VFIO device of @bdf, from its vfio-dev directory. */
static inline bool find_vfio_dev(const char *bdf, char *name, size_t size)
{
	char path[512];
	struct dirent *d;
	bool found = false;
	DIR *dir;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/vfio-dev", bdf);
	dir = opendir(path);
	if (!dir)
		return false;
	while (!found && (d = readdir(dir))) {
		if (!strncmp(d->d_name, "vfio", 4)) {
			snprintf(name, size, "%s", d->d_name);
			found = true;
		}
	}
	closedir(dir);
	return found;
}

static inline int bind_iommufd(int devfd, int iommufd, __u32 *devid)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = iommufd,
	};
	int ret = ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind);

	if (!ret && devid)
		*devid = bind.out_devid;
	return ret;
}

static inline int attach_pt(int devfd, __u32 *pt_id)
{
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = *pt_id,
	};
	int ret = ioctl(devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);

	if (!ret)
		*pt_id = attach.pt_id;
	return ret;
}

static inline int detach_pt(int devfd)
{
	struct vfio_device_detach_iommufd_pt detach = {
		.argsz = sizeof(detach),
	};

	return ioctl(devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach);
}

static inline int ioas_alloc(int iommufd, __u32 *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int ret = ioctl(iommufd, IOMMU_IOAS_ALLOC, &cmd);

	*id = cmd.out_ioas_id;
	return ret;
}

static inline int destroy(int iommufd, __u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(iommufd, IOMMU_DESTROY, &cmd);
}

static inline int counts(int devfd, __u32 *opens, __u32 *closes)
{
	__u32 c[2] = {};
	int ret = ioctl(devfd, VFIO_TEST_DRIVER_COUNTS, c);

	*opens = c[0];
	*closes = c[1];
	return ret;
}

/* The number of @bdf's IOMMU group into @id; false if it has none. */
static inline bool find_iommu_group(const char *bdf, int *id)
{
	char path[512], link[512];
	ssize_t n;
	char *slash;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	slash = strrchr(link, '/');
	return slash && sscanf(slash + 1, "%d", id) == 1;
}

/*
 * Lets go of a device opened one way or the other: the device file first,
 * then its group (if any), then the iommufd or container; each that is open
 * (>= 0) is closed and set to -1.
 */
static inline void close_device_fds(int *devfd, int *groupfd, int *iommu)
{
	int *fds[] = { devfd, groupfd, iommu };
	unsigned int i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Reads @offset of config space through the device file; 0xdeadbeef if it fails. */
static inline __u32 config_read32(int devfd, unsigned int offset)
{
	__u32 val = 0xdeadbeef;

	if (pread(devfd, &val, sizeof(val), EDU_CONFIG + offset) != sizeof(val))
		return 0xdeadbeef;
	return val;
}

static inline int config_write(int devfd, unsigned int offset, const void *val, size_t len)
{
	return pwrite(devfd, val, len, EDU_CONFIG + offset) == (ssize_t)len ? 0 : -1;
}

/* mmap of BARs (vfio_pci_core_mmap): the state a SIGBUS jumps back to. */
static sigjmp_buf bus_env __attribute__((unused));

static inline void on_sigbus(int sig)
{
	siglongjmp(bus_env, 1);
}

/* Reads a register through a mapping: false if the read raised SIGBUS. */
static inline bool mmio_read32(volatile __u32 *reg, __u32 *val)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	volatile bool ok = false;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &old))
		return false;
	if (!sigsetjmp(bus_env, 1)) {
		*val = *reg;
		ok = true;
	}
	sigaction(SIGBUS, &old, NULL);
	return ok;
}

/* A shared mapping of the first @len bytes of BAR 0; NULL if refused. */
static inline volatile __u32 *map_bar0(int devfd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, devfd, EDU_BAR0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * VFIO_DEVICE_FEATURE SET of the low-power feature @feature; for
 * LOW_POWER_ENTRY_WITH_WAKEUP, with @efd as the wake-up eventfd.
 */
static inline int low_power(int devfd, __u32 feature, int efd)
{
	struct {
		struct vfio_device_feature feature;
		struct vfio_device_low_power_entry_with_wakeup entry;
	} arg = {
		.feature.argsz = sizeof(arg.feature),
		.feature.flags = VFIO_DEVICE_FEATURE_SET | feature,
		.entry.wakeup_eventfd = efd,
	};

	if (feature == VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP)
		arg.feature.argsz = sizeof(arg);
	return ioctl(devfd, VFIO_DEVICE_FEATURE, &arg);
}

/*
 * Whether @bdf's attribute @attr (under its sysfs directory: "power_state",
 * "power/runtime_status") reads @val within @ms milliseconds.
 */
static inline bool pci_attr_becomes(const char *bdf, const char *attr, const char *val, int ms)
{
	struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
	char path[512], buf[32];

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/%s", bdf, attr);
	for (int waited = 0;; waited += 10) {
		if (read_file(path, buf, sizeof(buf)))
			return false;
		buf[strcspn(buf, "\n")] = 0;
		if (!strcmp(buf, val))
			return true;
		if (waited >= ms)
			return false;
		nanosleep(&tick, NULL);
	}
}

/* VFIO_DEVICE_SET_IRQS with one eventfd (or none: @fd < -1 sends DATA_NONE). */
static inline int set_irq(int devfd, __u32 index, __u32 action, __u32 count, int fd)
{
	struct {
		struct vfio_irq_set set;
		__s32 fd;
	} s = {
		.set = {
			.argsz = sizeof(s),
			.flags = action | (fd < -1 ? VFIO_IRQ_SET_DATA_NONE :
					   VFIO_IRQ_SET_DATA_EVENTFD),
			.index = index,
			.count = count,
		},
		.fd = fd,
	};

	return ioctl(devfd, VFIO_DEVICE_SET_IRQS, &s);
}

/* Writes edu's BAR0 register at @offset through vfio-pci's device file. */
static inline int edu_write32(int devfd, unsigned int offset, __u32 val)
{
	return pwrite(devfd, &val, 4, EDU_BAR0 + offset) == 4 ? 0 : -1;
}

/* Reads edu's BAR0 register at @offset; all ones if the read fails. */
static inline __u32 edu_read32(int devfd, unsigned int offset)
{
	__u32 val = 0xffffffff;

	if (pread(devfd, &val, 4, EDU_BAR0 + offset) != 4)
		return 0xffffffff;
	return val;
}

/* Turns bus mastering on through the command register (it passes through). */
static inline int edu_bus_master(int devfd)
{
	__u16 cmd;

	if (pread(devfd, &cmd, 2, EDU_CONFIG + PCI_COMMAND) != 2)
		return -1;
	cmd |= PCI_COMMAND_MASTER;
	return pwrite(devfd, &cmd, 2, EDU_CONFIG + PCI_COMMAND) == 2 ? 0 : -1;
}

/*
 * Starts one edu DMA of @len bytes between @iova and edu's buffer, towards
 * RAM if @to_ram; with @irq edu raises its interrupt when done.
 */
static inline int edu_dma_start(int devfd, __u64 iova, __u32 len, bool to_ram, bool irq)
{
	__u32 src = to_ram ? EDU_DMA_BUF : iova, dst = to_ram ? iova : EDU_DMA_BUF;

	if (edu_write32(devfd, EDU_DMA_SRC, src) || edu_write32(devfd, EDU_DMA_DST, dst) ||
	    edu_write32(devfd, EDU_DMA_COUNT, len) ||
	    edu_write32(devfd, EDU_DMA_CMD, EDU_DMA_START | (to_ram ? EDU_DMA_TO_RAM : 0) |
						(irq ? EDU_DMA_IRQ : 0)))
		return -1;
	return 0;
}

/*
 * Runs one edu DMA as edu_dma_start() does, without the interrupt, and polls
 * until the engine is done: 0, or -1 if it was not within 5 seconds.
 */
static inline int edu_dma(int devfd, __u64 iova, __u32 len, bool to_ram)
{
	struct timespec wait = { .tv_nsec = 10 * 1000 * 1000 };
	int i;

	if (edu_dma_start(devfd, iova, len, to_ram, false))
		return -1;
	for (i = 0; i < 500; i++) {
		if (!(edu_read32(devfd, EDU_DMA_CMD) & EDU_DMA_START))
			return 0;
		nanosleep(&wait, NULL);
	}
	return -1;
}

/*
 * Whether @container is iommufd's compat one (IOMMUFD_VFIO_CONTAINER), not
 * VFIO's own: it answers iommufd's ioctls (this leaves an IOAS behind).
 */
static inline bool is_iommufd_container(int container)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };

	return !ioctl(container, IOMMU_IOAS_ALLOC, &cmd);
}

/* An IOMMU_IOAS_MAP(_FILE) at a fixed IOVA devices may read and write. */
#define IOAS_MAP_FIXED_RW \
	(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)

/* A type1 mapping devices may read and write. */
#define DMA_RW (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

/* VFIO_IOMMU_MAP_DMA of @len bytes at @va to @iova, with @flags (READ, WRITE). */
static inline int container_map(int container, void *va, __u64 iova, __u64 len, __u32 flags)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = flags,
		.vaddr = (uintptr_t)va,
		.iova = iova,
		.size = len,
	};

	return ioctl(container, VFIO_IOMMU_MAP_DMA, &map);
}

/* VFIO_IOMMU_UNMAP_DMA of @len bytes at @iova: the size unmapped, or -errno. */
static inline long container_unmap(int container, __u64 iova, __u64 len)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = iova,
		.size = len,
	};

	if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap))
		return -errno;
	return unmap.size;
}

/*
 * Maps @len bytes at @va to @iova: in a VFIO container (@container) with
 * VFIO_IOMMU_MAP_DMA, else in IOAS @ioas_id of iommufd @fd.
 */
static inline int iommu_map_va(int fd, bool container, __u32 ioas_id, void *va, __u64 iova,
			       __u64 len)
{
	if (container) {
		return container_map(fd, va, iova, len, DMA_RW);
	} else {
		struct iommu_ioas_map map = {
			.size = sizeof(map),
			.flags = IOAS_MAP_FIXED_RW,
			.ioas_id = ioas_id,
			.user_va = (uintptr_t)va,
			.length = len,
			.iova = iova,
		};

		return ioctl(fd, IOMMU_IOAS_MAP, &map);
	}
}

/* Unmaps what iommu_map_va() mapped at @iova. */
static inline int iommu_unmap_iova(int fd, bool container, __u32 ioas_id, __u64 iova,
				   __u64 len)
{
	if (container) {
		long n = container_unmap(fd, iova, len);

		if (n < 0) {
			errno = -n;
			return -1;
		}
		return 0;
	} else {
		struct iommu_ioas_unmap unmap = {
			.size = sizeof(unmap),
			.ioas_id = ioas_id,
			.iova = iova,
			.length = len,
		};

		return ioctl(fd, IOMMU_IOAS_UNMAP, &unmap);
	}
}

/*
 * Copies into @line (of @size bytes) the first record of the kernel log, from
 * @kmsg's position on, that contains both @a and @b; waits up to a second for
 * it. False if there is none.
 */
static inline bool kmsg_logged(int kmsg, const char *a, const char *b, char *line, size_t size)
{
	struct timespec wait = { .tv_nsec = 10 * 1000 * 1000 };
	char rec[1024];
	char *text;
	ssize_t n;
	int i;

	for (i = 0; i < 100; i++) {
		while ((n = read(kmsg, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
			if (n <= 0)
				continue;
			rec[n] = 0;
			if (!strstr(rec, a) || !strstr(rec, b))
				continue;
			/* A /dev/kmsg record: "level,seq,time,flags;text". */
			text = strchr(rec, ';');
			snprintf(line, size, "%s", text ? text + 1 : rec);
			return true;
		}
		nanosleep(&wait, NULL);
	}
	return false;
}

/*
 * Copies into @line (of @size bytes) the first record of the kernel log, from
 * @kmsg's position on, where VT-d reports a DMA fault at @iova; waits up to a
 * second for it. False if there is none.
 */
static inline bool dmar_fault_logged(int kmsg, __u64 iova, char *line, size_t size)
{
	char addr[32];

	snprintf(addr, sizeof(addr), "fault addr 0x%llx", (unsigned long long)iova);
	return kmsg_logged(kmsg, "DMAR", addr, line, size);
}

/*
 * Runs an edu DMA as edu_dma() does, one that VT-d must block, and says
 * whether VT-d reported the fault at @fault_iova in the kernel log (the
 * record copied into @line of @size bytes). The DMAR driver rate-limits that
 * log (a burst of 10 per 5 seconds, and a fault takes about three), so a few
 * faults close together silence the next one: when the log stays quiet, the
 * DMA runs once more after the limit's interval.
 */
static inline bool edu_dma_fault_logged(int devfd, __u64 iova, __u32 len, bool to_ram,
					__u64 fault_iova, char *line, size_t size)
{
	struct timespec interval = { .tv_sec = 5, .tv_nsec = 200 * 1000 * 1000 };
	bool logged = false;
	int kmsg, try;

	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kmsg < 0)
		return false;
	for (try = 0; try < 2 && !logged; try++) {
		if (try)
			nanosleep(&interval, NULL);
		lseek(kmsg, 0, SEEK_END);
		if (edu_dma(devfd, iova, len, to_ram))
			break;
		logged = dmar_fault_logged(kmsg, fault_iova, line, size);
	}
	close(kmsg);
	return logged;
}

#endif /* VFIO_EDU_H */
