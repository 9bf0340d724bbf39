// SPDX-License-Identifier: GPL-2.0
/*
 * A short tour of what works, run inside the VM by `make run`: opens
 * /dev/iommu and /dev/vfio/vfio and shows the ioctls answering, including
 * the errors a careless program gets.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

static int ioas_alloc(int fd, __u32 *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int rc = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);

	*id = cmd.out_ioas_id;
	return rc ? -errno : 0;
}

static int destroy(int fd, __u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd) ? -errno : 0;
}

static const char *err(int rc)
{
	return rc ? strerror(-rc) : "ok";
}

int main(void)
{
	__u32 a, b, c;
	int fd, vfd, rc;

	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0) {
		perror("open /dev/iommu");
		return 1;
	}
	printf("opened /dev/iommu\n");
	rc = ioas_alloc(fd, &a);
	printf("IOMMU_IOAS_ALLOC          -> %s, ioas id %u\n", err(rc), a);
	rc = ioas_alloc(fd, &b);
	printf("IOMMU_IOAS_ALLOC          -> %s, ioas id %u\n", err(rc), b);
	printf("IOMMU_DESTROY id %u        -> %s\n", a, err(destroy(fd, a)));
	printf("IOMMU_DESTROY id %u again  -> %s (expected: no such object)\n", a, err(destroy(fd, a)));
	rc = ioas_alloc(fd, &c);
	printf("IOMMU_IOAS_ALLOC          -> %s, ioas id %u (the freed id is reused)\n", err(rc), c);
	{
		struct iommu_ioas_alloc cmd = { .size = sizeof(cmd), .flags = 1 };

		rc = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd) ? -errno : 0;
		printf("IOMMU_IOAS_ALLOC flags=1  -> %s (unknown flags are refused)\n", err(rc));
	}
	rc = ioctl(fd, IOMMU_IOAS_ALLOC, NULL) ? -errno : 0;
	printf("IOMMU_IOAS_ALLOC NULL     -> %s\n", err(rc));
	close(fd);

	vfd = open("/dev/vfio/vfio", O_RDWR);
	if (vfd < 0) {
		perror("open /dev/vfio/vfio");
		return 1;
	}
	printf("opened /dev/vfio/vfio\n");
	printf("VFIO_GET_API_VERSION      -> %d\n", ioctl(vfd, VFIO_GET_API_VERSION));
	printf("VFIO_CHECK_EXTENSION(TYPE1v2) -> %d (no backend yet)\n",
	       ioctl(vfd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU));
	rc = ioctl(vfd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) ? -errno : 0;
	printf("VFIO_SET_IOMMU            -> %s (no group in the container)\n", err(rc));
	close(vfd);
	return 0;
}
