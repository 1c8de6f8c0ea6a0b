//go:build !linux

package hid

// DeviceInfo describes a FIDO HID device found by Enumerate.
type DeviceInfo struct {
	Path                          string
	VendorID, ProductID           uint16
	Manufacturer, Product, Serial string
}

// Enumerate is Linux only; elsewhere it returns ErrUnsupported.
func Enumerate() ([]DeviceInfo, error) { return nil, ErrUnsupported }

// OpenHidraw is Linux only; elsewhere it returns ErrUnsupported.
func OpenHidraw(path string) (Conn, error) { return nil, ErrUnsupported }
