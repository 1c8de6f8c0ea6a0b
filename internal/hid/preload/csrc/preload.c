/*
 * libfidokit-preload: lets a hidraw-speaking program such as libfido2 (and
 * fido2-token, fido2-cred, fido2-assert or go-libfido2 on it) open a
 * fidokit virtual key's socket as if it were /dev/hidrawN.
 *
 *	gcc -shared -fPIC -O2 -Wall -Werror -o libfidokit-preload.so preload.c -ldl
 *	LD_PRELOAD=./libfidokit-preload.so fido2-token -I /tmp/key.sock
 *
 * The virtual key already speaks hidraw framing on an AF_UNIX SOCK_SEQPACKET
 * socket (write 65 bytes: report ID 0 then the report; read 64 bytes), so
 * read, write, ppoll and flock work on the connected socket unchanged. What
 * a socket lacks is what makes a hidraw node: open() fails on it (ENXIO),
 * libfido2 checks S_ISCHR after fstat(), and it reads the report descriptor
 * with ioctls. The shim fills exactly those gaps, for file descriptors it
 * connected itself and for nothing else:
 *
 *	open/open64	on a path that is a socket: connect to it
 *	fstat & co.	report such a descriptor as a character device
 *	ioctl		answer the hidraw ioctls with a FIDO key's
 *			report descriptor and USB identity
 *	close		forget the descriptor
 *
 * libfido2 1.12 (Debian bookworm, glibc 2.36) imports open, fstat
 * (fstat@GLIBC_2.33), ioctl, flock, ppoll, read, write and close; `nm -D
 * libfido2.so.1` shows them. Builds against glibc older than 2.33 call
 * __fxstat64 or __fxstat instead of fstat, so those are covered too.
 * libfido2 does not use openat.
 *
 * Discovery is not covered: libfido2 enumerates hidraw devices through
 * udev, which knows nothing of sockets, so pass the socket's path where a
 * device path is expected (fido2-token -I /tmp/key.sock).
 */

#define _GNU_SOURCE
/*
 * Fortified headers turn open() into an inline wrapper, which a definition
 * of open() here would clash with.
 */
#undef _FORTIFY_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/hidraw.h>
#include <linux/input.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * The HID report descriptor of a FIDO key (CTAP 2.1 section 11.2.8.1):
 * usage page 0xF1D0, usage 1, one 64-byte input and one 64-byte output
 * report, no report IDs. It is internal/hid.FIDOReportDescriptor byte for
 * byte; the package's tests check that.
 */
static const unsigned char fido_report_descriptor[] = {
	0x06, 0xd0, 0xf1,	/* Usage Page (FIDO Alliance) */
	0x09, 0x01,		/* Usage (U2F Authenticator Device) */
	0xa1, 0x01,		/* Collection (Application) */
	0x09, 0x20,		/*   Usage (Input Report Data) */
	0x15, 0x00,		/*   Logical Minimum (0) */
	0x26, 0xff, 0x00,	/*   Logical Maximum (255) */
	0x75, 0x08,		/*   Report Size (8) */
	0x95, 0x40,		/*   Report Count (64) */
	0x81, 0x02,		/*   Input (Data, Var, Abs) */
	0x09, 0x21,		/*   Usage (Output Report Data) */
	0x15, 0x00,		/*   Logical Minimum (0) */
	0x26, 0xff, 0x00,	/*   Logical Maximum (255) */
	0x75, 0x08,		/*   Report Size (8) */
	0x95, 0x40,		/*   Report Count (64) */
	0x91, 0x02,		/*   Output (Data, Var, Abs) */
	0xc0,			/* End Collection */
};

/*
 * HIDIOCGRAWINFO's answer: a USB device with pid.codes' open-source vendor
 * ID and a test product ID, so that nothing mistakes it for a real model.
 */
#define SHIM_VENDOR  0x1209
#define SHIM_PRODUCT 0x0001
#define SHIM_NAME    "fidokit virtual key"

/*
 * Which descriptors are connected sockets the shim opened, one byte per
 * descriptor. Programs may open and close from several threads, so the
 * flags are read and written atomically; descriptors past the table are
 * refused rather than served half-way.
 */
#define MAX_FD 65536
static unsigned char shim_fds[MAX_FD];

static int
is_shim_fd(int fd)
{
	return fd >= 0 && fd < MAX_FD &&
	    __atomic_load_n(&shim_fds[fd], __ATOMIC_ACQUIRE);
}

static void
set_shim_fd(int fd, unsigned char v)
{
	if (fd >= 0 && fd < MAX_FD)
		__atomic_store_n(&shim_fds[fd], v, __ATOMIC_RELEASE);
}

/*
 * The definitions the shim hides, found with dlsym(RTLD_NEXT). They are
 * looked up when the library is loaded and, should another library's
 * constructor call in first, on that first call; either way every lookup
 * stores the same values, so a second thread racing the first does no
 * harm. A symbol this libc lacks (__fxstat on a new glibc build without
 * compatibility symbols, say) stays NULL and its wrapper fails with ENOSYS.
 */
static struct {
	int	resolved;
	int	(*open)(const char *, int, ...);
	int	(*open64)(const char *, int, ...);
	int	(*fstat)(int, struct stat *);
	int	(*fstat64)(int, struct stat64 *);
	int	(*fxstat)(int, int, struct stat *);
	int	(*fxstat64)(int, int, struct stat64 *);
	int	(*ioctl)(int, unsigned long, ...);
	int	(*close)(int);
} real;

__attribute__((constructor)) static void
resolve(void)
{
	if (__atomic_load_n(&real.resolved, __ATOMIC_ACQUIRE))
		return;
	real.open = dlsym(RTLD_NEXT, "open");
	real.open64 = dlsym(RTLD_NEXT, "open64");
	real.fstat = dlsym(RTLD_NEXT, "fstat");
	real.fstat64 = dlsym(RTLD_NEXT, "fstat64");
	real.fxstat = dlsym(RTLD_NEXT, "__fxstat");
	real.fxstat64 = dlsym(RTLD_NEXT, "__fxstat64");
	real.ioctl = dlsym(RTLD_NEXT, "ioctl");
	real.close = dlsym(RTLD_NEXT, "close");
	__atomic_store_n(&real.resolved, 1, __ATOMIC_RELEASE);
}

/*
 * REAL makes sure the hidden definition of fn is known; if libc has none,
 * the calling wrapper returns -1 with errno ENOSYS.
 */
#define REAL(fn) do {							\
	resolve();							\
	if (real.fn == NULL) {						\
		errno = ENOSYS;						\
		return -1;						\
	}								\
} while (0)

/*
 * connect_socket connects to the SOCK_SEQPACKET socket at path, keeping
 * the O_NONBLOCK and O_CLOEXEC of flags. It returns the descriptor, or -1
 * with errno set; errno is ENXIO, what open() says of a socket, when path
 * is too long or the socket is of another type.
 */
static int
connect_socket(const char *path, int flags)
{
	struct sockaddr_un sa;
	int type = SOCK_SEQPACKET;
	int fd, saved;

	if ((flags & O_ACCMODE) != O_RDWR) {
		/* A hidraw host reads and writes; anything else is not us. */
		errno = ENXIO;
		return -1;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENXIO;
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	if (flags & O_NONBLOCK)
		type |= SOCK_NONBLOCK;
	if (flags & O_CLOEXEC)
		type |= SOCK_CLOEXEC;
	if ((fd = socket(AF_UNIX, type, 0)) == -1)
		return -1;
	if (fd >= MAX_FD) {
		close(fd);
		errno = EMFILE;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		saved = errno;
		close(fd);
		/* A stream or datagram socket is somebody else's. */
		errno = saved == EPROTOTYPE ? ENXIO : saved;
		return -1;
	}
	set_shim_fd(fd, 1);
	return fd;
}

/*
 * open_common runs the real open and, only where it fails with ENXIO (as
 * it does on every socket), retries the path as a virtual key. Other paths
 * cost the program nothing.
 */
static int
open_common(int (*open_fn)(const char *, int, ...), const char *path,
    int flags, mode_t mode)
{
	struct stat st;
	int fd, saved;

	fd = open_fn(path, flags, mode);
	if (fd != -1 || errno != ENXIO || path == NULL)
		return fd;
	saved = errno;
	if (stat(path, &st) == -1 || !S_ISSOCK(st.st_mode)) {
		errno = saved;
		return -1;
	}
	return connect_socket(path, flags);
}

/* open's mode argument is there only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags, mode) do {					\
	va_list ap;							\
	if ((flags) & (O_CREAT | O_TMPFILE)) {				\
		va_start(ap, flags);					\
		mode = va_arg(ap, int);					\
		va_end(ap);						\
	}								\
} while (0)

int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	OPEN_MODE(flags, mode);
	REAL(open);
	return open_common(real.open, path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	OPEN_MODE(flags, mode);
	REAL(open64);
	return open_common(real.open64, path, flags, mode);
}

/*
 * as_chardev makes a socket's stat read as a character device. The rest
 * (inode, times, owner) stays the socket's.
 */
static void
as_chardev(mode_t *m)
{
	*m = (*m & ~S_IFMT) | S_IFCHR;
}

/*
 * Before glibc 2.33 the headers defined fstat inline (calling __fxstat),
 * so there is no fstat to interpose, and defining one would clash.
 */
#if __GLIBC_PREREQ(2, 33)
int
fstat(int fd, struct stat *st)
{
	int r;

	REAL(fstat);
	if ((r = real.fstat(fd, st)) == 0 && is_shim_fd(fd))
		as_chardev(&st->st_mode);
	return r;
}

int
fstat64(int fd, struct stat64 *st)
{
	int r;

	REAL(fstat64);
	if ((r = real.fstat64(fd, st)) == 0 && is_shim_fd(fd))
		as_chardev(&st->st_mode);
	return r;
}
#endif

/*
 * What programs built against glibc before 2.33 call for fstat. Newer
 * glibc keeps the symbols for them but no longer declares them.
 */
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);

int
__fxstat(int ver, int fd, struct stat *st)
{
	int r;

	REAL(fxstat);
	if ((r = real.fxstat(ver, fd, st)) == 0 && is_shim_fd(fd))
		as_chardev(&st->st_mode);
	return r;
}

int
__fxstat64(int ver, int fd, struct stat64 *st)
{
	int r;

	REAL(fxstat64);
	if ((r = real.fxstat64(ver, fd, st)) == 0 && is_shim_fd(fd))
		as_chardev(&st->st_mode);
	return r;
}

/*
 * copy_string answers the variable-length string ioctls as the kernel
 * does: at most len bytes, NUL-terminated when it fits, returning the
 * length copied.
 */
static int
copy_string(void *arg, size_t len, const char *s)
{
	size_t n = strlen(s) + 1;

	if (n > len)
		n = len;
	memcpy(arg, s, n);
	return (int)n;
}

/* hid_ioctl answers a hidraw ioctl on a shim descriptor. */
static int
hid_ioctl(unsigned long req, void *arg)
{
	struct hidraw_report_descriptor *rd;
	struct hidraw_devinfo *info;
	size_t len = _IOC_SIZE(req);

	if (arg == NULL) {
		errno = EFAULT;
		return -1;
	}
	switch (req) {
	case HIDIOCGRDESCSIZE:
		*(int *)arg = (int)sizeof(fido_report_descriptor);
		return 0;
	case HIDIOCGRDESC:
		/* As the kernel: copy at most the size the caller asked. */
		rd = arg;
		if (rd->size > HID_MAX_DESCRIPTOR_SIZE) {
			errno = EINVAL;
			return -1;
		}
		len = rd->size < sizeof(fido_report_descriptor) ?
		    rd->size : sizeof(fido_report_descriptor);
		memcpy(rd->value, fido_report_descriptor, len);
		return 0;
	case HIDIOCGRAWINFO:
		info = arg;
		info->bustype = BUS_USB;
		info->vendor = (__s16)SHIM_VENDOR;
		info->product = (__s16)SHIM_PRODUCT;
		return 0;
	}
	/* The string ioctls carry the buffer length in the request. */
	if (_IOC_TYPE(req) == 'H' && _IOC_DIR(req) == _IOC_READ) {
		switch (_IOC_NR(req)) {
		case _IOC_NR(HIDIOCGRAWNAME(0)):
			return copy_string(arg, len, SHIM_NAME);
		case _IOC_NR(HIDIOCGRAWPHYS(0)):
			return copy_string(arg, len, "fidokit");
		case _IOC_NR(HIDIOCGRAWUNIQ(0)):
			return copy_string(arg, len, "");
		}
	}
	/* Feature reports and the rest: a FIDO key has none. */
	errno = EINVAL;
	return -1;
}

/*
 * glibc declares ioctl(int, unsigned long, ...); every request the shim
 * answers takes one pointer argument.
 */
int
ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (is_shim_fd(fd))
		return hid_ioctl(req, arg);
	REAL(ioctl);
	return real.ioctl(fd, req, arg);
}

int
close(int fd)
{
	REAL(close);
	/*
	 * Forget the descriptor first: once closed, its number may be
	 * reused at once by another thread's open.
	 */
	set_shim_fd(fd, 0);
	return real.close(fd);
}
