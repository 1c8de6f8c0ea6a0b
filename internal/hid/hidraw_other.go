//go:build !linux

package hid

// DeviceInfo describes a FIDO HID device that Enumerate found.
type DeviceInfo struct {
	// Path is the device node to pass to OpenHidraw, such as /dev/hidraw3.
	Path string
	// VendorID and ProductID are the USB (or Bluetooth) IDs; zero when
	// the kernel does not say.
	VendorID, ProductID uint16
	// Manufacturer, Product and Serial are the device's own USB strings
	// when it is on USB; otherwise Product is the kernel's HID name and
	// Serial its unique ID (HID_UNIQ). Any may be empty.
	Manufacturer, Product, Serial string
}

// Enumerate lists FIDO hidraw devices. hidraw is Linux only, so elsewhere
// it returns ErrUnsupported.
func Enumerate() ([]DeviceInfo, error) { return nil, ErrUnsupported }

// OpenHidraw opens a hidraw device node. hidraw is Linux only, so
// elsewhere it returns ErrUnsupported.
func OpenHidraw(path string) (Conn, error) { return nil, ErrUnsupported }
