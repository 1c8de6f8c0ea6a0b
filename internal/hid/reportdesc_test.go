package hid

import (
	"bytes"
	"errors"
	"testing"
)

// Report descriptors seen on real devices.
var (
	// keyboardDescriptor is the boot keyboard of HID 1.11 Appendix E.6.
	keyboardDescriptor = []byte{
		0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, // Generic Desktop, Keyboard, Collection (Application)
		0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01, // modifier usages
		0x75, 0x01, 0x95, 0x08, 0x81, 0x02, // Input: 8 × 1 bit
		0x95, 0x01, 0x75, 0x08, 0x81, 0x01, // Input (Constant): 1 × 8 bits
		0x95, 0x05, 0x75, 0x01, 0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, // Output: LEDs, 5 × 1 bit
		0x95, 0x01, 0x75, 0x03, 0x91, 0x01, // Output padding: 1 × 3 bits
		0x95, 0x06, 0x75, 0x08, 0x15, 0x00, 0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65, 0x81, 0x00, // Input: 6 keys
		0xc0,
	}
	// twoReportsDescriptor has a mouse and a consumer-control collection
	// with report IDs, as wireless receivers do.
	twoReportsDescriptor = []byte{
		0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x85, 0x01, // Mouse, Collection (Application), Report ID 1
		0x09, 0x01, 0xa1, 0x00, // Pointer, Collection (Physical)
		0x75, 0x08, 0x95, 0x03, 0x81, 0x06, // Input: 3 bytes
		0xc0,
		0x85, 0x02, 0x75, 0x08, 0x95, 0x05, 0x81, 0x02, // Report ID 2, Input: 5 bytes
		0xc0,
		0x05, 0x0c, 0x09, 0x01, 0xa1, 0x01, 0x85, 0x03, // Consumer Control, Report ID 3
		0x75, 0x10, 0x95, 0x10, 0x81, 0x00, // Input: 32 bytes, not the mouse's
		0xc0,
	}
)

// cat joins byte slices into a new one.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestFIDOReportDescriptor(t *testing.T) {
	// The canonical bytes, as a YubiKey's FIDO interface reports them.
	want := []byte{0x06, 0xd0, 0xf1, 0x09, 0x01, 0xa1, 0x01, 0x09, 0x20, 0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08,
		0x95, 0x40, 0x81, 0x02, 0x09, 0x21, 0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x40, 0x91, 0x02, 0xc0}
	if !bytes.Equal(FIDOReportDescriptor, want) {
		t.Fatalf("FIDOReportDescriptor = % x\nwant                   % x", FIDOReportDescriptor, want)
	}
}

func TestParseReportDescriptor(t *testing.T) {
	fido := ReportInfo{UsagePage: 0xF1D0, Usage: 0x01, InputReportLen: 64, OutputReportLen: 64}
	tests := []struct {
		name string
		desc []byte
		want ReportInfo
	}{
		{"FIDO", FIDOReportDescriptor, fido},
		{"keyboard", keyboardDescriptor, ReportInfo{UsagePage: 0x01, Usage: 0x06, InputReportLen: 8, OutputReportLen: 1}},
		{"first application collection, longest report per ID", twoReportsDescriptor, ReportInfo{UsagePage: 0x01, Usage: 0x02, InputReportLen: 5}},
		{"long items skipped", cat([]byte{0xfe, 0x02, 0x10, 0xaa, 0xbb, 0xfe, 0x00, 0x11}, FIDOReportDescriptor), fido},
		{"4-byte usage names its page", []byte{0x05, 0x01, 0x0b, 0x01, 0x00, 0xd0, 0xf1, 0xa1, 0x01, 0xc0}, ReportInfo{UsagePage: 0xF1D0, Usage: 1}},
		{"4-byte usage page", []byte{0x07, 0xd0, 0xf1, 0x00, 0x00, 0x09, 0x01, 0xa1, 0x01, 0xc0}, ReportInfo{UsagePage: 0xF1D0, Usage: 1}},
		{"page set after the usage applies", []byte{0x09, 0x01, 0x06, 0xd0, 0xf1, 0xa1, 0x01, 0xc0}, ReportInfo{UsagePage: 0xF1D0, Usage: 1}},
		{"usage minimum names the collection", []byte{0x06, 0xd0, 0xf1, 0x19, 0x01, 0x29, 0x02, 0xa1, 0x01, 0xc0}, ReportInfo{UsagePage: 0xF1D0, Usage: 1}},
		{"first usage wins", []byte{0x06, 0xd0, 0xf1, 0x09, 0x01, 0x09, 0x02, 0xa1, 0x01, 0xc0}, ReportInfo{UsagePage: 0xF1D0, Usage: 1}},
		{"usage consumed by an earlier main item", []byte{0x06, 0xd0, 0xf1, 0x09, 0x01, 0x81, 0x00, 0xa1, 0x01, 0xc0}, ReportInfo{UsagePage: 0xF1D0}},
		{"physical top-level collection skipped", cat([]byte{0x05, 0x01, 0x09, 0x02, 0xa1, 0x00, 0xc0}, FIDOReportDescriptor), fido},
		{"reports outside the collection not counted", cat(FIDOReportDescriptor, []byte{0x75, 0x08, 0x95, 0xff, 0x81, 0x02}), fido},
		{"push and pop", []byte{
			0x06, 0xd0, 0xf1, 0x09, 0x01, 0xa1, 0x01,
			0x75, 0x08, 0x95, 0x40, 0xa4, // Push size 8 count 64
			0x95, 0x02, 0x81, 0x02, // Input: 2 bytes
			0xb4, 0x91, 0x02, // Pop, Output: 64 bytes
			0xc0}, ReportInfo{UsagePage: 0xF1D0, Usage: 1, InputReportLen: 2, OutputReportLen: 64}},
		{"bits rounded up to bytes", []byte{0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x75, 0x01, 0x95, 0x03, 0x81, 0x02, 0xc0}, ReportInfo{UsagePage: 1, Usage: 2, InputReportLen: 1}},
		{"feature reports not counted", []byte{0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x75, 0x08, 0x95, 0x10, 0xb1, 0x02, 0xc0}, ReportInfo{UsagePage: 1, Usage: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReportDescriptor(tt.desc)
			if err != nil {
				t.Fatalf("ParseReportDescriptor: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseReportDescriptorErrors(t *testing.T) {
	tests := []struct {
		name          string
		desc          []byte
		wantOffset    int
		wantTruncated bool
	}{
		{"empty", nil, 0, false},
		{"truncated usage page", FIDOReportDescriptor[:2], 0, true},
		{"truncated after a whole item", FIDOReportDescriptor[:12], 11, true},
		{"truncated 4-byte item", []byte{0x07, 0xd0, 0xf1, 0x00}, 0, true},
		{"truncated long item header", []byte{0xfe, 0x05}, 0, true},
		{"truncated long item data", cat(FIDOReportDescriptor[:5], []byte{0xfe, 0x05, 0x10, 0x00}), 5, true},
		{"no collection", []byte{0x06, 0xd0, 0xf1, 0x09, 0x01}, 5, false},
		{"only a physical collection", []byte{0x09, 0x01, 0xa1, 0x00, 0xc0}, 5, false},
		{"End Collection without Collection", []byte{0x09, 0x01, 0xc0}, 2, false},
		{"unclosed collection", FIDOReportDescriptor[:len(FIDOReportDescriptor)-1], len(FIDOReportDescriptor) - 1, false},
		{"report ID 0", []byte{0x85, 0x00}, 0, false},
		{"report size over 256", []byte{0x76, 0x01, 0x01}, 0, false},
		{"report count over 12288", []byte{0x96, 0x01, 0x30}, 0, false},
		{"pop without push", []byte{0xb4}, 0, false},
		{"push too deep", bytes.Repeat([]byte{0xa4}, maxGlobalStack+1), maxGlobalStack, false},
		{"collections too deep", bytes.Repeat([]byte{0xa1, 0x01}, maxCollections+1), 2 * maxCollections, false},
		{"report too long", []byte{
			0x06, 0xd0, 0xf1, 0x09, 0x01, 0xa1, 0x01,
			0x76, 0x00, 0x01, 0x96, 0x00, 0x30, // 256 bits × 12288
			0x81, 0x02, 0xc0}, 13, false},
		{"too long", make([]byte, maxDescriptorLen+1), maxDescriptorLen, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ParseReportDescriptor(tt.desc)
			if !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("err = %v, want ErrBadDescriptor", err)
			}
			var de *DescriptorError
			if !errors.As(err, &de) {
				t.Fatalf("err = %T, want *DescriptorError", err)
			}
			if de.Offset != tt.wantOffset || de.Truncated != tt.wantTruncated {
				t.Fatalf("err = %+v, want offset %d, truncated %v", de, tt.wantOffset, tt.wantTruncated)
			}
			if info != (ReportInfo{}) {
				t.Fatalf("info = %+v with an error, want zero", info)
			}
		})
	}
}

func TestReportInfoIsFIDO(t *testing.T) {
	tests := []struct {
		info ReportInfo
		want bool
	}{
		{ReportInfo{UsagePage: 0xF1D0, Usage: 1}, true},
		{ReportInfo{UsagePage: 0xF1D0, Usage: 1, InputReportLen: 64, OutputReportLen: 64}, true},
		{ReportInfo{UsagePage: 0xF1D0, Usage: 2}, false},
		{ReportInfo{UsagePage: 0x01, Usage: 1}, false},
		{ReportInfo{}, false},
	}
	for _, tt := range tests {
		if got := tt.info.IsFIDO(); got != tt.want {
			t.Errorf("%+v.IsFIDO() = %v, want %v", tt.info, got, tt.want)
		}
	}
}

// FuzzParseReportDescriptor checks, for any input, that the parser returns
// a *DescriptorError within the input or a result within the HID limits,
// leaves its input alone, skips long items transparently and notices a
// truncated item wherever it ends.
func FuzzParseReportDescriptor(f *testing.F) {
	f.Add(FIDOReportDescriptor)
	f.Add(keyboardDescriptor)
	f.Add(twoReportsDescriptor)
	f.Add(FIDOReportDescriptor[:len(FIDOReportDescriptor)-3])
	f.Add([]byte{0xfe, 0xff, 0x00})
	f.Fuzz(func(t *testing.T, desc []byte) {
		orig := bytes.Clone(desc)
		info, err := ParseReportDescriptor(desc)
		if !bytes.Equal(desc, orig) {
			t.Fatal("the parser modified its input")
		}
		if info2, err2 := ParseReportDescriptor(desc); info2 != info || (err == nil) != (err2 == nil) {
			t.Fatal("two parses disagree")
		}
		var de *DescriptorError
		if err != nil {
			if !errors.As(err, &de) || !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("err = %v (%T), want a *DescriptorError", err, err)
			}
			if de.Offset < 0 || de.Offset > len(desc) || (de.Truncated && de.Offset >= len(desc)) {
				t.Fatalf("error %+v outside a %d-byte descriptor", de, len(desc))
			}
			if info != (ReportInfo{}) {
				t.Fatalf("info = %+v with an error", info)
			}
		} else {
			// Every Input or Output item is at least 1 byte and carries at
			// most 256 × 12288 bits.
			limit := min(maxReportLen, len(desc)*maxReportSize*maxReportCount/8)
			if info.InputReportLen < 0 || info.InputReportLen > limit || info.OutputReportLen < 0 || info.OutputReportLen > limit {
				t.Fatalf("report lengths %d, %d from a %d-byte descriptor", info.InputReportLen, info.OutputReportLen, len(desc))
			}
			if info.IsFIDO() != (info.UsagePage == 0xF1D0 && info.Usage == 1) {
				t.Fatalf("IsFIDO wrong for %+v", info)
			}
		}
		if len(desc)+3 > maxDescriptorLen {
			return
		}
		// A long item in front changes nothing but error offsets.
		info2, err2 := ParseReportDescriptor(cat([]byte{0xfe, 0x00, 0x42}, desc))
		var de2 *DescriptorError
		switch {
		case (err == nil) != (err2 == nil):
			t.Fatalf("with a long item in front: %v, without: %v", err2, err)
		case err == nil && info2 != info:
			t.Fatalf("with a long item in front: %+v, without: %+v", info2, info)
		case err != nil && (!errors.As(err2, &de2) || de2.Offset != de.Offset+3 || de2.Reason != de.Reason):
			t.Fatalf("with a long item in front: %v, without: %v", err2, err)
		}
		// A valid descriptor followed by half an item is truncated there.
		if err == nil {
			_, err3 := ParseReportDescriptor(cat(desc, []byte{0x06, 0xd0}))
			var de3 *DescriptorError
			if !errors.As(err3, &de3) || !de3.Truncated || de3.Offset != len(desc) {
				t.Fatalf("valid descriptor plus a truncated item: %v", err3)
			}
		}
	})
}
