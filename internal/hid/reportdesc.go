package hid

import (
	"errors"
	"fmt"
)

// FIDOReportDescriptor is the HID report descriptor of a FIDO security key
// (CTAP 2.1 §11.2.8.1), byte for byte what a YubiKey's FIDO interface
// reports: usage page 0xF1D0, usage 0x01, one 64-byte input and one 64-byte
// output report, no report IDs. The virtual key presents it wherever a
// descriptor is asked for. Treat it as read-only.
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

// FIDO usage page and usage (CTAP 2.1 §11.2.8.1).
const (
	fidoUsagePage = 0xF1D0
	fidoUsage     = 0x01
)

// ReportInfo is what a HID report descriptor says about a device's first
// top-level application collection.
type ReportInfo struct {
	// UsagePage and Usage identify the collection; FIDO keys have 0xF1D0
	// and 0x01.
	UsagePage uint16
	Usage     uint16
	// InputReportLen and OutputReportLen are the lengths in bytes of the
	// collection's longest input and output report, without the report ID
	// byte that precedes reports when the descriptor declares report IDs.
	// Zero means the collection has no such report.
	InputReportLen, OutputReportLen int
}

// IsFIDO reports whether the collection is a FIDO authenticator's (usage
// page 0xF1D0, usage 0x01).
func (r ReportInfo) IsFIDO() bool { return r.UsagePage == fidoUsagePage && r.Usage == fidoUsage }

// ErrBadDescriptor is matched by every error of ParseReportDescriptor.
var ErrBadDescriptor = errors.New("hid: malformed report descriptor")

// DescriptorError is the error ParseReportDescriptor returns. It matches
// ErrBadDescriptor.
type DescriptorError struct {
	// Offset is the byte offset of the item at fault, or the descriptor's
	// length for a problem found at its end.
	Offset int
	// Truncated is set when the item at Offset runs past the end of the
	// descriptor, as when it was read into too small a buffer.
	Truncated bool
	// Reason says what is wrong.
	Reason string
}

func (e *DescriptorError) Error() string {
	return fmt.Sprintf("hid: malformed report descriptor: %s at offset %d", e.Reason, e.Offset)
}

// Is makes errors.Is(err, ErrBadDescriptor) hold.
func (e *DescriptorError) Is(target error) bool { return target == ErrBadDescriptor }

// Limits, mostly the Linux kernel's (drivers/hid/hid-core.c), so that what
// Linux rejects is rejected here and no input makes the parser work or
// report without bound.
const (
	maxDescriptorLen = 4096  // HID_MAX_DESCRIPTOR_SIZE
	maxReportSize    = 256   // bits per field
	maxReportCount   = 12288 // HID_MAX_USAGES
	maxReportLen     = 16384 // bytes, HID_MAX_BUFFER_SIZE
	maxGlobalStack   = 8     // Push depth
	maxCollections   = 64    // nesting depth
)

// HID 1.11 §6.2.2.2: bTag and bType of short items.
const (
	itemMain   = 0
	itemGlobal = 1
	itemLocal  = 2

	mainInput         = 0x8
	mainOutput        = 0x9
	mainCollection    = 0xA
	mainEndCollection = 0xC

	globalUsagePage   = 0x0
	globalReportSize  = 0x7
	globalReportID    = 0x8
	globalReportCount = 0x9
	globalPush        = 0xA
	globalPop         = 0xB

	localUsage        = 0x0
	localUsageMinimum = 0x1

	collectionApplication = 0x01
	longItemPrefix        = 0xFE
)

// globals is the global item state that Push and Pop save and restore.
type globals struct {
	usagePage   uint16
	reportSize  uint32
	reportCount uint32
	reportID    uint8
}

// ParseReportDescriptor reads a HID report descriptor (HID 1.11 §6.2.2),
// such as /sys/class/hidraw/hidrawN/device/report_descriptor, and returns
// the usage and report lengths of its first top-level application
// collection.
//
// It follows the short items that matter for that (Usage Page, Report
// Size, Report Count, Report ID, Push, Pop, Usage, Usage Minimum, Input,
// Output, Collection, End Collection), checks the size of every item, and
// skips long items and the rest. Report lengths add up Report Size × Report
// Count over the collection's Input or Output items, per report ID.
//
// Every error is a *DescriptorError: an item running past the end, a value
// out of range, unbalanced collections or Push/Pop, no top-level
// application collection, or a descriptor longer than 4096 bytes.
func ParseReportDescriptor(desc []byte) (ReportInfo, error) {
	var (
		info  ReportInfo
		g     globals
		stack []globals
		// Locals: the first usage since the last main item, which names a
		// collection. A 4-byte usage carries its own page.
		usage, usagePage       uint16
		hasUsage, usageHasPage bool
		depth                  int
		found, inApp           bool // the collection, and whether we are inside it
		inBits, outBits        [256]uint32
	)
	bad := func(off int, format string, args ...any) (ReportInfo, error) {
		return ReportInfo{}, &DescriptorError{Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	if len(desc) > maxDescriptorLen {
		return bad(maxDescriptorLen, "descriptor longer than %d bytes", maxDescriptorLen)
	}
	for off := 0; off < len(desc); {
		prefix := desc[off]
		if prefix == longItemPrefix {
			// HID 1.11 §6.2.2.3: 0xFE, bDataSize, bLongItemTag, data. No
			// long item tags are defined, so only the size matters.
			if off+3 > len(desc) || off+3+int(desc[off+1]) > len(desc) {
				return ReportInfo{}, &DescriptorError{Offset: off, Truncated: true, Reason: "long item runs past the end"}
			}
			off += 3 + int(desc[off+1])
			continue
		}
		size := int(prefix & 0x03)
		if size == 3 {
			size = 4
		}
		if off+1+size > len(desc) {
			return ReportInfo{}, &DescriptorError{Offset: off, Truncated: true, Reason: fmt.Sprintf("item 0x%02x needs %d data bytes", prefix, size)}
		}
		var v uint32 // little endian, unsigned; no item read here is signed
		for i := size - 1; i >= 0; i-- {
			v = v<<8 | uint32(desc[off+1+i])
		}
		typ, tag := (prefix>>2)&0x03, prefix>>4

		switch typ {
		case itemMain:
			switch tag {
			case mainInput, mainOutput:
				if inApp {
					bits := &inBits
					if tag == mainOutput {
						bits = &outBits
					}
					// At most 256 × 12288 bits per item, checked below
					// before sums can overflow.
					bits[g.reportID] += g.reportSize * g.reportCount
					if bits[g.reportID] > maxReportLen*8 {
						return bad(off, "report %d longer than %d bytes", g.reportID, maxReportLen)
					}
				}
			case mainCollection:
				if depth == maxCollections {
					return bad(off, "collections nested deeper than %d", maxCollections)
				}
				if depth == 0 && !found && v == collectionApplication {
					found, inApp = true, true
					info.UsagePage = g.usagePage
					if hasUsage {
						info.Usage = usage
						if usageHasPage {
							info.UsagePage = usagePage
						}
					}
				}
				depth++
			case mainEndCollection:
				if depth == 0 {
					return bad(off, "End Collection without Collection")
				}
				depth--
				if depth == 0 {
					inApp = false
				}
			}
			hasUsage, usageHasPage = false, false // main items end the locals' scope
		case itemGlobal:
			switch tag {
			case globalUsagePage:
				g.usagePage = uint16(v)
			case globalReportSize:
				if v > maxReportSize {
					return bad(off, "Report Size %d above %d", v, maxReportSize)
				}
				g.reportSize = v
			case globalReportCount:
				if v > maxReportCount {
					return bad(off, "Report Count %d above %d", v, maxReportCount)
				}
				g.reportCount = v
			case globalReportID:
				if v == 0 || v > 255 {
					return bad(off, "invalid Report ID %d", v)
				}
				g.reportID = uint8(v)
			case globalPush:
				if len(stack) == maxGlobalStack {
					return bad(off, "Push deeper than %d", maxGlobalStack)
				}
				stack = append(stack, g)
			case globalPop:
				if len(stack) == 0 {
					return bad(off, "Pop without Push")
				}
				g = stack[len(stack)-1]
				stack = stack[:len(stack)-1]
			}
		case itemLocal:
			if (tag == localUsage || tag == localUsageMinimum) && !hasUsage {
				hasUsage = true
				usage = uint16(v)
				// HID 1.11 §6.2.2.8: a 4-byte usage is page << 16 | ID.
				usageHasPage = size == 4
				usagePage = uint16(v >> 16)
			}
		}
		off += 1 + size
	}
	if depth != 0 {
		return bad(len(desc), "%d collections not closed", depth)
	}
	if !found {
		return bad(len(desc), "no top-level application collection")
	}
	for id := range inBits {
		info.InputReportLen = max(info.InputReportLen, int((inBits[id]+7)/8))
		info.OutputReportLen = max(info.OutputReportLen, int((outBits[id]+7)/8))
	}
	return info, nil
}
