package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/fidokit/fidokit/fido"
)

var cmdList = &command{
	name:    "list",
	summary: "list the attached keys and the virtual keys in $FIDOKIT_VIRTUAL_KEYS",
	run: func(a *app, args []string) error {
		if err := noArgs("list", args); err != nil {
			return err
		}
		var list []fido.DeviceInfo
		if a.device != "" {
			// Just the one named, if it can be a key.
			d, err := a.chooseDevice()
			if err != nil {
				return err
			}
			list = append(list, d)
		} else {
			var err error
			if list, err = a.devices(); err != nil {
				return err
			}
		}
		doc := struct {
			Keys []deviceJSON `json:"keys"`
		}{Keys: []deviceJSON{}}
		for _, d := range list {
			doc.Keys = append(doc.Keys, deviceDoc(d))
		}
		return a.result(doc, func() {
			if len(list) == 0 {
				a.note("No security keys found: plug one in, or name a virtual key's socket in %s.", fido.VirtualKeysEnv)
			}
			for _, d := range list {
				a.say("%s", describe(d))
			}
		})
	},
}

// noArgs refuses arguments for commands that take none.
func noArgs(name string, args []string) error {
	if len(args) > 0 {
		return usagef(name, "%s takes no arguments, got %q", name, strings.Join(args, " "))
	}
	return nil
}

// withKey opens the chosen key, runs f and closes the key.
func (a *app) withKey(f func(k key, d fido.DeviceInfo) error) error {
	k, d, err := a.open()
	if err != nil {
		return err
	}
	defer k.Close()
	return f(k, d)
}

type pinStateJSON struct {
	Supported          bool `json:"supported"`
	Set                bool `json:"set"`
	Retries            int  `json:"retries"`
	PowerCycleRequired bool `json:"powerCycleRequired"`
}

type infoJSON struct {
	Device                           deviceJSON      `json:"device"`
	Versions                         []string        `json:"versions"`
	Extensions                       []string        `json:"extensions"`
	AAGUID                           string          `json:"aaguid"`
	Options                          map[string]bool `json:"options"`
	MaxMsgSize                       int             `json:"maxMsgSize"`
	PINUVAuthProtocols               []int           `json:"pinUvAuthProtocols"`
	MaxCredentialCountInList         int             `json:"maxCredentialCountInList"`
	MaxCredentialIDLength            int             `json:"maxCredentialIdLength"`
	Transports                       []string        `json:"transports"`
	Algorithms                       []string        `json:"algorithms"`
	FirmwareVersion                  uint64          `json:"firmwareVersion"`
	MinPINLength                     int             `json:"minPinLength"`
	RemainingDiscoverableCredentials int             `json:"remainingDiscoverableCredentials"`
	MaxSerializedLargeBlobArray      int             `json:"maxSerializedLargeBlobArray"`
	ForcePINChange                   bool            `json:"forcePinChange"`
	MaxCredBlobLength                int             `json:"maxCredBlobLength"`
	MaxRPIDsForSetMinPINLength       int             `json:"maxRpIdsForSetMinPinLength"`
	PreferredPlatformUVAttempts      int             `json:"preferredPlatformUvAttempts"`
	UVModality                       uint64          `json:"uvModality"`
	PIN                              pinStateJSON    `json:"pin"`
}

var cmdInfo = &command{
	name:    "info",
	summary: "show a key's versions, options, limits and PIN state",
	run: func(a *app, args []string) error {
		if err := noArgs("info", args); err != nil {
			return err
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			info, err := k.Info(a.ctx)
			if err != nil {
				return err
			}
			doc := infoDoc(d, info)
			if pm, ok := k.(fido.PINManager); ok && doc.PIN.Supported {
				if n, pc, err := pm.PINRetries(a.ctx); err == nil {
					doc.PIN.Retries, doc.PIN.PowerCycleRequired = n, pc
				}
			}
			return a.result(doc, func() { a.printInfo(doc) })
		})
	},
}

func infoDoc(d fido.DeviceInfo, info *fido.Info) infoJSON {
	doc := infoJSON{
		Device:                           deviceDoc(d),
		Versions:                         nonNil(info.Versions),
		Extensions:                       nonNil(info.Extensions),
		AAGUID:                           formatAAGUID(info.AAGUID),
		Options:                          info.Options,
		MaxMsgSize:                       info.MaxMsgSize,
		PINUVAuthProtocols:               nonNil(info.PINUVAuthProtocols),
		MaxCredentialCountInList:         info.MaxCredentialCountInList,
		MaxCredentialIDLength:            info.MaxCredentialIDLength,
		Transports:                       nonNil(info.Transports),
		Algorithms:                       []string{},
		FirmwareVersion:                  info.FirmwareVersion,
		MinPINLength:                     info.MinPINLength,
		RemainingDiscoverableCredentials: info.RemainingDiscoverableCredentials,
		MaxSerializedLargeBlobArray:      info.MaxSerializedLargeBlobArray,
		ForcePINChange:                   info.ForcePINChange,
		MaxCredBlobLength:                info.MaxCredBlobLength,
		MaxRPIDsForSetMinPINLength:       info.MaxRPIDsForSetMinPINLength,
		PreferredPlatformUVAttempts:      info.PreferredPlatformUVAttempts,
		UVModality:                       info.UVModality,
		PIN:                              pinStateJSON{Retries: -1},
	}
	if doc.Options == nil {
		doc.Options = map[string]bool{}
	}
	for _, alg := range info.Algorithms {
		doc.Algorithms = append(doc.Algorithms, alg.String())
	}
	doc.PIN.Set, doc.PIN.Supported = info.Option("clientPin")
	return doc
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// formatAAGUID writes an AAGUID as a UUID.
func formatAAGUID(b [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (a *app) printInfo(doc infoJSON) {
	w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%s:\t%s\n", label, fmt.Sprintf(format, args...))
	}
	dev := doc.Device.Path
	if doc.Device.Virtual {
		dev += " (virtual key)"
	}
	line("Device", "%s", dev)
	if p := strings.TrimSpace(doc.Device.Manufacturer + " " + doc.Device.Product); p != "" {
		line("Product", "%s", p)
	}
	line("AAGUID", "%s", doc.AAGUID)
	line("Versions", "%s", strings.Join(doc.Versions, ", "))
	line("Extensions", "%s", orNone(strings.Join(doc.Extensions, ", ")))
	var opts []string
	for name, v := range doc.Options {
		opts = append(opts, name+"="+strconv.FormatBool(v))
	}
	sort.Strings(opts)
	line("Options", "%s", orNone(strings.Join(opts, ", ")))
	switch pin := doc.PIN; {
	case !pin.Supported:
		line("PIN", "not supported")
	case !pin.Set:
		line("PIN", "not set")
	case pin.Retries == 0:
		line("PIN", "set, blocked (no retries left; only a reset helps)")
	case pin.Retries > 0:
		s := "set, " + retriesLeft(pin.Retries)
		if pin.PowerCycleRequired {
			s += "; unplug and plug in the key before the next try"
		}
		line("PIN", "%s", s)
	default:
		line("PIN", "set")
	}
	if doc.ForcePINChange {
		line("PIN change", "required before the PIN can be used")
	}
	if doc.MinPINLength > 0 {
		line("Minimum PIN length", "%d", doc.MinPINLength)
	}
	if len(doc.PINUVAuthProtocols) > 0 {
		line("PIN/UV auth protocols", "%s", joinInts(doc.PINUVAuthProtocols))
	}
	if len(doc.Algorithms) > 0 {
		line("Algorithms", "%s", strings.Join(doc.Algorithms, ", "))
	}
	if len(doc.Transports) > 0 {
		line("Transports", "%s", strings.Join(doc.Transports, ", "))
	}
	if doc.MaxMsgSize > 0 {
		line("Max message size", "%d bytes", doc.MaxMsgSize)
	}
	if doc.MaxCredentialCountInList > 0 {
		line("Max credentials in a list", "%d", doc.MaxCredentialCountInList)
	}
	if doc.MaxCredentialIDLength > 0 {
		line("Max credential ID length", "%d bytes", doc.MaxCredentialIDLength)
	}
	if doc.RemainingDiscoverableCredentials >= 0 {
		line("Discoverable credentials", "room for %d more", doc.RemainingDiscoverableCredentials)
	}
	if doc.MaxSerializedLargeBlobArray > 0 {
		line("Large-blob storage", "%d bytes", doc.MaxSerializedLargeBlobArray)
	}
	if doc.MaxCredBlobLength > 0 {
		line("Max credBlob length", "%d bytes", doc.MaxCredBlobLength)
	}
	if doc.FirmwareVersion > 0 {
		line("Firmware version", "%d", doc.FirmwareVersion)
	}
	w.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

var cmdWink = &command{
	name:    "wink",
	summary: "make the key blink, to tell it apart from others",
	run: func(a *app, args []string) error {
		if err := noArgs("wink", args); err != nil {
			return err
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			w, ok := k.(winker)
			if !ok {
				return fmt.Errorf("wink: not supported by %s", a.backendName())
			}
			if err := w.Wink(a.ctx); err != nil {
				return a.unsupported("wink", err)
			}
			doc := struct {
				Device deviceJSON `json:"device"`
				Winked bool       `json:"winked"`
			}{deviceDoc(d), true}
			return a.result(doc, func() { a.say("Winked %s.", d.Path) })
		})
	},
}
