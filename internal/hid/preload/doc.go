// Package preload builds libfidokit-preload.so, a small LD_PRELOAD shim
// that lets libfido2, and every program on it (fido2-token, fido2-cred,
// fido2-assert, go-libfido2), open a fidokit virtual key's socket as if it
// were a hidraw node:
//
//	so, err := preload.Build(ctx, dir)
//	cmd := exec.Command("fido2-token", "-I", "/tmp/key.sock")
//	cmd.Env = append(os.Environ(), "LD_PRELOAD="+so)
//
// # Why a shim
//
// The virtual key's socket (github.com/fidokit/fidokit/fido/virtual,
// Key.Listen) already carries CTAPHID reports with hidraw framing on an
// AF_UNIX SOCK_SEQPACKET socket: the host writes 65 bytes (report ID 0,
// then the 64-byte report) and reads 64. libfido2 on Linux, however,
// opens a device path with open(2), refuses it unless fstat(2) says
// S_ISCHR, and reads its HID report descriptor with the HIDIOCGRDESCSIZE
// and HIDIOCGRDESC ioctls. On machines without /dev/uhid, CUSE or USB/IP
// no real character device can stand for the key, and FUSE files fail the
// S_ISCHR check. The shim (csrc/preload.c, one short C file) intercepts open,
// open64, fstat, fstat64, __fxstat, __fxstat64, ioctl and close; for a path
// that is a socket it connects, reports the descriptor as a character
// device and answers the hidraw ioctls with the FIDO report descriptor
// (usage page 0xF1D0, 64-byte reports) and a USB identity. read, write,
// ppoll and flock work on the socket as they are. Paths that are not
// sockets are left alone: the shim only acts where open fails with ENXIO,
// as it does on every socket.
//
// # Device paths
//
// libfido2 lists keys through udev, which knows nothing of sockets, so
// fido2-token -L does not show a virtual key. Pass the socket's path
// wherever a device path goes:
//
//	LD_PRELOAD=/path/libfidokit-preload.so fido2-token -I /tmp/key.sock
//
// # Go programs
//
// LD_PRELOAD is read by the dynamic loader when a process starts, and only
// a dynamically linked program (one built with cgo, as anything linking
// libfido2 is) loads it. A Go test that wants its own libfido2 calls under
// the shim must therefore run in a new process: [Reexec] runs the current
// test again in a child test binary with LD_PRELOAD set. Go code itself
// makes system calls directly, not through libc, so the shim does not
// touch it, and a virtual key served by the same process keeps working.
package preload
