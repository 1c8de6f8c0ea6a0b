/*
 * probe opens a path the way libfido2 opens a hidraw node and prints what
 * it sees, one "name: value" line per step, for preload_test.go:
 *
 *	probe PATH	open O_RDWR, fstat, the hidraw ioctls, flock, then
 *			one CTAPHID INIT on the broadcast channel
 *	probe -o PATH	only open O_RDWR and say how that went
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/hidraw.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static void
hex(const char *name, const unsigned char *p, size_t n)
{
	printf("%s: ", name);
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

int
main(int argc, char **argv)
{
	struct hidraw_report_descriptor rd;
	struct hidraw_devinfo info;
	unsigned char out[65], in[64];
	char name[64];
	struct stat st;
	int fd, size, n;

	if (argc == 3 && strcmp(argv[1], "-o") == 0) {
		if ((fd = open(argv[2], O_RDWR)) == -1) {
			printf("open: %s\n", strerrorname_np(errno));
			return 0;
		}
		printf("open: ok\n");
		return close(fd) == 0 ? 0 : 1;
	}
	if (argc != 2)
		return 2;
	if ((fd = open(argv[1], O_RDWR)) == -1) {
		printf("open: %s\n", strerrorname_np(errno));
		return 1;
	}
	printf("open: ok\n");
	if (fstat(fd, &st) == -1)
		return 1;
	printf("fstat: %s\n", S_ISCHR(st.st_mode) ? "chr" : "other");
	if (ioctl(fd, HIDIOCGRDESCSIZE, &size) == -1)
		return 1;
	printf("rdescsize: %d\n", size);
	memset(&rd, 0, sizeof(rd));
	rd.size = (unsigned)size;
	if (ioctl(fd, HIDIOCGRDESC, &rd) == -1)
		return 1;
	hex("rdesc", rd.value, rd.size);
	if (ioctl(fd, HIDIOCGRAWINFO, &info) == -1)
		return 1;
	printf("rawinfo: bus=%u vendor=%04x product=%04x\n", info.bustype,
	    (unsigned short)info.vendor, (unsigned short)info.product);
	if ((n = ioctl(fd, HIDIOCGRAWNAME(sizeof(name)), name)) == -1)
		return 1;
	printf("rawname: %s\n", name);
	printf("feature: %s\n", ioctl(fd, HIDIOCGFEATURE(8), name) == -1 ?
	    strerrorname_np(errno) : "ok");
	printf("flock: %s\n", flock(fd, LOCK_EX | LOCK_NB) == 0 ? "ok" :
	    strerrorname_np(errno));

	/* CTAPHID_INIT (CTAP 2.1 section 11.2.9.1.3) with an 8-byte nonce. */
	memset(out, 0, sizeof(out));
	memset(out + 1, 0xff, 4);	/* broadcast CID after report ID 0 */
	out[5] = 0x86;			/* INIT | 0x80 */
	out[7] = 8;			/* BCNT */
	memcpy(out + 8, "fidokit!", 8);
	if (write(fd, out, sizeof(out)) != sizeof(out))
		return 1;
	if ((n = read(fd, in, sizeof(in))) != sizeof(in))
		return 1;
	hex("init", in, 17);
	printf("close: %s\n", close(fd) == 0 ? "ok" : strerrorname_np(errno));
	return 0;
}
