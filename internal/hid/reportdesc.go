package hid

import (
	"errors"
	"fmt"
)

// FIDOReportDescriptor is the HID report descriptor of a FIDO security key
// (CTAP 2.1 §11.2.8.1): usage page 0xF1D0, usage 0x01, 64-byte input and
// output reports.
var FIDOReportDescriptor = []byte{
	0x06, 0xd0, 0xf1, // Usage Page (FIDO Alliance)
	0x09, 0x01, // Usage (U2F Authenticator Device)
	0xa1, 0x01, // Collection (Application)
	0x09, 0x20, //   Usage (Input Report Data)
	0x15, 0x00, //   Logical Minimum (0)
	0x26, 0xff, 0x00, //   Logical Maximum (255)
	0x75, 0x08, //   Report Size (8)
	0x95, 0x40, //   Report Count (64)
	0x81, 0x02, //   Input (Data, Var, Abs)
	0x09, 0x21, //   Usage (Output Report Data)
	0x15, 0x00, //   Logical Minimum (0)
	0x26, 0xff, 0x00, //   Logical Maximum (255)
	0x75, 0x08, //   Report Size (8)
	0x95, 0x40, //   Report Count (64)
	0x91, 0x02, //   Output (Data, Var, Abs)
	0xc0, // End Collection
}

// ReportInfo is what matters about a HID device for FIDO: the usage of
// its first top-level application collection and its report lengths.
type ReportInfo struct {
	UsagePage, Usage                uint16
	InputReportLen, OutputReportLen int // in bytes
}

// IsFIDO reports whether the device is a FIDO authenticator.
func (r ReportInfo) IsFIDO() bool { return r.UsagePage == 0xF1D0 && r.Usage == 0x01 }

// ErrBadDescriptor is wrapped by every error of ParseReportDescriptor.
var ErrBadDescriptor = errors.New("hid: malformed report descriptor")

// maxDescriptor bounds the descriptor size, as the kernel does
// (HID_MAX_DESCRIPTOR_SIZE).
const maxDescriptor = 4096

// ParseReportDescriptor reads the short items of a HID report descriptor
// (HID 1.11 §6.2.2) and long items' sizes. It returns the first top-level
// collection's usage page and usage, and the total input and output report
// bits of the descriptor in bytes, rounded up.
func ParseReportDescriptor(desc []byte) (ReportInfo, error) {
	var (
		info            ReportInfo
		page            uint32
		size, count     uint32
		usages          []usage
		depth           int
		seenTop         bool
		inBits, outBits uint64
	)
	if len(desc) > maxDescriptor {
		return info, fmt.Errorf("%w: %d bytes", ErrBadDescriptor, len(desc))
	}
	for i := 0; i < len(desc); {
		prefix := desc[i]
		if prefix == 0xFE { // long item: size, tag, data
			if i+2 >= len(desc) {
				return info, fmt.Errorf("%w: truncated long item at %d", ErrBadDescriptor, i)
			}
			i += 3 + int(desc[i+1])
			if i > len(desc) {
				return info, fmt.Errorf("%w: truncated long item", ErrBadDescriptor)
			}
			continue
		}
		n := int(prefix & 0x03)
		if n == 3 {
			n = 4
		}
		if i+1+n > len(desc) {
			return info, fmt.Errorf("%w: truncated item at %d", ErrBadDescriptor, i)
		}
		var v uint32
		for j := n - 1; j >= 0; j-- {
			v = v<<8 | uint32(desc[i+1+j])
		}
		i += 1 + n
		typ, tag := (prefix>>2)&0x03, prefix>>4
		switch typ {
		case 0: // main
			switch tag {
			case 0x8: // Input
				inBits += uint64(size) * uint64(count)
			case 0x9: // Output
				outBits += uint64(size) * uint64(count)
			case 0xA: // Collection
				if depth == 0 && !seenTop {
					seenTop = true
					info.UsagePage = uint16(page)
					if len(usages) > 0 {
						u := usages[0]
						if u.extended { // a 4-byte usage carries its own page
							info.UsagePage = uint16(u.v >> 16)
						}
						info.Usage = uint16(u.v)
					}
				}
				depth++
			case 0xC: // End Collection
				if depth == 0 {
					return info, fmt.Errorf("%w: End Collection without Collection", ErrBadDescriptor)
				}
				depth--
			}
			usages = usages[:0]
		case 1: // global
			switch tag {
			case 0x0:
				page = v
			case 0x7:
				size = v
			case 0x9:
				count = v
			}
		case 2: // local
			if tag == 0x0 && len(usages) < 256 {
				usages = append(usages, usage{v: v, extended: n == 4})
			}
		}
	}
	if !seenTop {
		return info, fmt.Errorf("%w: no collection", ErrBadDescriptor)
	}
	if inBits > uint64(len(desc))*8*0xFFFF || outBits > uint64(len(desc))*8*0xFFFF {
		return info, fmt.Errorf("%w: report size overflow", ErrBadDescriptor)
	}
	info.InputReportLen = int((inBits + 7) / 8)
	info.OutputReportLen = int((outBits + 7) / 8)
	return info, nil
}

type usage struct {
	v        uint32
	extended bool
}
