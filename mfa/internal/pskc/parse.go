package pskc

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Namespace and algorithm profile URIs (RFC 6030 §1.3, §10).
const (
	nsPSKC       = "urn:ietf:params:xml:ns:keyprov:pskc"
	algorithmPIN = "urn:ietf:params:xml:ns:keyprov:pskc:pin"
)

// The XML shapes read. Child elements are matched by local name in any
// namespace (vendors' files are loose about prefixes; only the root's
// namespace is checked), and each is a slice so that a repeated element
// is an error rather than silently merged or overwritten.
type (
	xmlKeyPackage struct {
		DeviceInfo []xmlDeviceInfo `xml:"DeviceInfo"`
		Key        []xmlKey        `xml:"Key"`
	}
	xmlDeviceInfo struct {
		Manufacturer []string `xml:"Manufacturer"`
		SerialNo     []string `xml:"SerialNo"`
	}
	xmlKey struct {
		ID         string            `xml:"Id,attr"`
		Algorithm  *string           `xml:"Algorithm,attr"`
		Parameters []xmlAlgorithmPar `xml:"AlgorithmParameters"`
		Data       []xmlData         `xml:"Data"`
	}
	xmlAlgorithmPar struct {
		Suite          []string            `xml:"Suite"`
		ResponseFormat []xmlResponseFormat `xml:"ResponseFormat"`
	}
	xmlResponseFormat struct {
		Length   *string `xml:"Length,attr"`
		Encoding string  `xml:"Encoding,attr"`
	}
	xmlData struct {
		Secret       []xmlValue `xml:"Secret"`
		Counter      []xmlValue `xml:"Counter"`
		TimeInterval []xmlValue `xml:"TimeInterval"`
	}
	// xmlValue is a PSKC data element: a PlainValue or an
	// EncryptedValue with its ValueMAC (RFC 6030 §4.1).
	xmlValue struct {
		Plain     []string       `xml:"PlainValue"`
		Encrypted []xmlEncrypted `xml:"EncryptedValue"`
		MAC       []string       `xml:"ValueMAC"`
	}
	// xmlEncrypted is an xenc:EncryptedDataType: an EncryptedValue or
	// a MACKey.
	xmlEncrypted struct {
		Method     []xmlAlgorithm  `xml:"EncryptionMethod"`
		CipherData []xmlCipherData `xml:"CipherData"`
	}
	xmlCipherData struct {
		Value     []string `xml:"CipherValue"`
		Reference []xmlAny `xml:"CipherReference"`
	}
	xmlAlgorithm struct {
		Algorithm string `xml:"Algorithm,attr"`
	}
	xmlAny struct {
		XMLName xml.Name
	}

	xmlEncryptionKey struct {
		KeyName    []string        `xml:"KeyName"`
		DerivedKey []xmlDerivedKey `xml:"DerivedKey"`
		Other      []xmlAny        `xml:",any"` // X509Data, EncryptedKey, ...
	}
	xmlDerivedKey struct {
		Method []xmlDerivationMethod `xml:"KeyDerivationMethod"`
	}
	xmlDerivationMethod struct {
		Algorithm string            `xml:"Algorithm,attr"`
		Params    []xmlPBKDF2Params `xml:"PBKDF2-params"`
	}
	xmlPBKDF2Params struct {
		Salt           []xmlSalt      `xml:"Salt"`
		IterationCount []string       `xml:"IterationCount"`
		KeyLength      []string       `xml:"KeyLength"`
		PRF            []xmlAlgorithm `xml:"PRF"`
	}
	xmlSalt struct {
		Specified   []string `xml:"Specified"`
		OtherSource []xmlAny `xml:"OtherSource"`
	}

	xmlMACMethod struct {
		Algorithm       string         `xml:"Algorithm,attr"`
		MACKey          []xmlEncrypted `xml:"MACKey"`
		MACKeyReference []string       `xml:"MACKeyReference"`
	}
)

// container is a KeyContainer read but not yet decrypted.
type container struct {
	encryptionKey *xmlEncryptionKey
	macMethod     *xmlMACMethod
	packages      []xmlKeyPackage
}

func parse(doc []byte, d Decryption, lim limits) ([]Key, error) {
	if len(doc) > MaxSize {
		return nil, fail(ErrMalformed, "document is over %d bytes", MaxSize)
	}
	c, err := readContainer(doc)
	if err != nil {
		return nil, err
	}
	if len(c.packages) == 0 {
		return nil, ErrNoKeys
	}
	s := &state{d: d, lim: lim, encryptionKey: c.encryptionKey, macMethod: c.macMethod}
	defer s.wipe()
	keys := make([]Key, 0, len(c.packages))
	for i := range c.packages {
		k, err := s.keyPackage(&c.packages[i])
		if err != nil {
			for j := range keys {
				clear(keys[j].Secret)
			}
			return nil, inPackage(err, i+1)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// readContainer reads the document's structure: the KeyContainer, its
// EncryptionKey, MACMethod and KeyPackages, decoding KeyPackages one by
// one so that a document of ten thousand and one is refused without
// holding them all.
func readContainer(doc []byte) (*container, error) {
	doc = bytes.TrimPrefix(doc, []byte("\ufeff")) // a UTF-8 byte order mark
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = true

	root, err := prolog(dec)
	if err != nil {
		return nil, err
	}
	if root.Name.Space != nsPSKC || root.Name.Local != "KeyContainer" {
		return nil, fail(ErrMalformed, "root element is not a KeyContainer in namespace %s", nsPSKC)
	}
	version, ok := "", false
	for _, a := range root.Attr {
		if a.Name.Space == "" && a.Name.Local == "Version" {
			version, ok = a.Value, true
		}
	}
	if !ok {
		return nil, fail(ErrMalformed, "KeyContainer has no Version")
	}
	if version != "1.0" {
		return nil, fail(ErrMalformed, "KeyContainer Version is not 1.0")
	}

	c := &container{}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, xmlError(err)
		}
		if _, ok := tok.(xml.EndElement); ok {
			break // the decoder checks it closes the KeyContainer
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if start.Name.Space != nsPSKC {
			if err := dec.Skip(); err != nil {
				return nil, xmlError(err)
			}
			continue
		}
		switch start.Name.Local {
		case "EncryptionKey":
			if c.encryptionKey != nil {
				return nil, fail(ErrMalformed, "more than one EncryptionKey")
			}
			c.encryptionKey = new(xmlEncryptionKey)
			if err := dec.DecodeElement(c.encryptionKey, &start); err != nil {
				return nil, xmlError(err)
			}
		case "MACMethod":
			if c.macMethod != nil {
				return nil, fail(ErrMalformed, "more than one MACMethod")
			}
			c.macMethod = new(xmlMACMethod)
			if err := dec.DecodeElement(c.macMethod, &start); err != nil {
				return nil, xmlError(err)
			}
		case "KeyPackage":
			if len(c.packages) == maxKeyPackages {
				return nil, fail(ErrMalformed, "more than %d key packages", maxKeyPackages)
			}
			var kp xmlKeyPackage
			if err := dec.DecodeElement(&kp, &start); err != nil {
				return nil, xmlError(err)
			}
			c.packages = append(c.packages, kp)
		default: // Signature (not verified), Extensions, ...
			if err := dec.Skip(); err != nil {
				return nil, xmlError(err)
			}
		}
	}
	if err := epilog(dec); err != nil {
		return nil, err
	}
	return c, nil
}

// prolog reads up to the root element: an XML declaration, comments and
// white space may come first, a DOCTYPE may not.
func prolog(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return xml.StartElement{}, fail(ErrMalformed, "no root element")
		}
		if err != nil {
			return xml.StartElement{}, xmlError(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.Directive:
			return xml.StartElement{}, fail(ErrMalformed, "DOCTYPE and other directives are not allowed")
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return xml.StartElement{}, fail(ErrMalformed, "text before the root element")
			}
		}
	}
}

// epilog checks that only comments and white space follow the root.
func epilog(dec *xml.Decoder) error {
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return xmlError(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return fail(ErrMalformed, "text after the root element")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return fail(ErrMalformed, "content after the root element")
		}
	}
}

// xmlError maps a decoder error to ErrMalformed, keeping only the line
// number: the decoder's messages quote the document.
func xmlError(err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fail(ErrMalformed, "XML syntax error on line %d", se.Line)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fail(ErrMalformed, "document ends early")
	}
	return fail(ErrMalformed, "not a well-formed PSKC document")
}

// keyPackage converts and decrypts one key package.
func (s *state) keyPackage(kp *xmlKeyPackage) (Key, error) {
	var k Key
	di, err := atMostOne(kp.DeviceInfo, "DeviceInfo")
	if err != nil {
		return k, err
	}
	if di != nil {
		if k.Manufacturer, err = text(di.Manufacturer, "Manufacturer"); err != nil {
			return k, err
		}
		if k.Serial, err = text(di.SerialNo, "SerialNo"); err != nil {
			return k, err
		}
	}
	xk, err := atMostOne(kp.Key, "Key")
	if err != nil {
		return k, err
	}
	if xk == nil {
		return k, fail(ErrMalformed, "no Key")
	}
	if k.ID, err = text([]string{xk.ID}, "Key Id"); err != nil {
		return k, err
	}
	if xk.Algorithm == nil || strings.TrimSpace(*xk.Algorithm) == "" {
		return k, fail(ErrMalformed, "Key has no Algorithm")
	}
	if k.Algorithm, err = text([]string{*xk.Algorithm}, "Key Algorithm"); err != nil {
		return k, err
	}

	suite := ""
	params, err := atMostOne(xk.Parameters, "AlgorithmParameters")
	if err != nil {
		return k, err
	}
	if params != nil {
		if suite, err = text(params.Suite, "Suite"); err != nil {
			return k, err
		}
		rf, err := atMostOne(params.ResponseFormat, "ResponseFormat")
		if err != nil {
			return k, err
		}
		if rf != nil {
			if k.Encoding, err = text([]string{rf.Encoding}, "ResponseFormat Encoding"); err != nil {
				return k, err
			}
			if rf.Length != nil {
				n, err := parseUint(*rf.Length, 10, "ResponseFormat Length")
				if err != nil {
					return k, err
				}
				k.Digits = int(n)
			}
		}
	}
	if k.Algorithm == algorithmPIN {
		// A PIN's length (RFC 6030 §10.2), e.g. 4 in Figure 5.
		if k.Digits > 10 {
			return k, fail(ErrMalformed, "ResponseFormat Length is over 10")
		}
	} else if k.Digits != 0 && (k.Digits < 6 || k.Digits > 10) {
		return k, fail(ErrMalformed, "ResponseFormat Length is not 6 to 10")
	}
	if k.Hash, err = hashName(suite, k.Algorithm); err != nil {
		return k, err
	}

	data, err := atMostOne(xk.Data, "Data")
	if err != nil {
		return k, err
	}
	if data == nil {
		return k, fail(ErrMalformed, "Key has no Data/Secret")
	}
	if v, err := atMostOne(data.Counter, "Counter"); err != nil {
		return k, err
	} else if v != nil {
		if k.Counter, err = s.uintValue(v, ^uint64(0), "Counter"); err != nil {
			return k, err
		}
	}
	if v, err := atMostOne(data.TimeInterval, "TimeInterval"); err != nil {
		return k, err
	} else if v != nil {
		n, err := s.uintValue(v, maxTimeStep, "TimeInterval")
		if err != nil {
			return k, err
		}
		k.TimeStep = int(n)
	}
	// The secret last, so that no error above leaves one to wipe.
	v, err := atMostOne(data.Secret, "Secret")
	if err != nil {
		return k, err
	}
	if v == nil {
		return k, fail(ErrMalformed, "Key has no Data/Secret")
	}
	if k.Secret, err = s.bytesValue(v, "Secret"); err != nil {
		return k, err
	}
	if len(k.Secret) < 1 || len(k.Secret) > maxSecret {
		clear(k.Secret)
		return Key{}, fail(ErrMalformed, "Secret is not 1 to %d bytes", maxSecret)
	}
	return k, nil
}

// bytesValue returns a binary data element's value (base64 if plain).
func (s *state) bytesValue(v *xmlValue, what string) ([]byte, error) {
	plain, isPlain, err := s.open(v, what)
	if err != nil || !isPlain {
		return plain, err
	}
	b, err := decodeBase64(string(plain))
	if err != nil {
		return nil, fail(ErrMalformed, "%s PlainValue is not base64", what)
	}
	return b, nil
}

// uintValue returns an integer data element's value, at most max: a
// decimal PlainValue or, encrypted, big-endian bytes (at most eight).
func (s *state) uintValue(v *xmlValue, max uint64, what string) (uint64, error) {
	b, isPlain, err := s.open(v, what)
	if err != nil {
		return 0, err
	}
	if isPlain {
		return parseUint(string(b), max, what)
	}
	defer clear(b)
	if len(b) == 0 || len(b) > 8 {
		return 0, fail(ErrMalformed, "encrypted %s is not 1 to 8 bytes", what)
	}
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	if n > max {
		return 0, fail(ErrMalformed, "%s is over %d", what, max)
	}
	return n, nil
}

// open returns a data element's PlainValue text (isPlain) or its
// EncryptedValue decrypted, the MAC checked first.
func (s *state) open(v *xmlValue, what string) (b []byte, isPlain bool, err error) {
	switch {
	case len(v.Plain)+len(v.Encrypted) == 0:
		return nil, false, fail(ErrMalformed, "%s has neither PlainValue nor EncryptedValue", what)
	case len(v.Plain)+len(v.Encrypted) > 1:
		return nil, false, fail(ErrMalformed, "%s has more than one value", what)
	case len(v.MAC) > 1:
		return nil, false, fail(ErrMalformed, "%s has more than one ValueMAC", what)
	case len(v.Plain) == 1:
		if len(v.MAC) > 0 {
			return nil, false, fail(ErrMalformed, "%s has a ValueMAC on a PlainValue", what)
		}
		return []byte(v.Plain[0]), true, nil
	}
	var mac *string
	if len(v.MAC) == 1 {
		mac = &v.MAC[0]
	}
	b, err = s.decrypt(&v.Encrypted[0], mac, what)
	return b, false, err
}

// atMostOne returns the one element of s, nil if there is none, or an
// error if the element is repeated.
func atMostOne[T any](s []T, what string) (*T, error) {
	switch len(s) {
	case 0:
		return nil, nil
	case 1:
		return &s[0], nil
	}
	return nil, fail(ErrMalformed, "more than one %s", what)
}

// text returns an element's or attribute's trimmed text, "" if absent.
func text(s []string, what string) (string, error) {
	v, err := atMostOne(s, what)
	if err != nil || v == nil {
		return "", err
	}
	t := strings.TrimSpace(*v)
	if len(t) > maxText {
		return "", fail(ErrMalformed, "%s is over %d bytes", what, maxText)
	}
	return t, nil
}

// parseUint parses a decimal xs:unsignedLong (white space around it
// allowed) of at most max.
func parseUint(s string, max uint64, what string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fail(ErrMalformed, "%s is not a decimal number", what)
	}
	if n > max {
		return 0, fail(ErrMalformed, "%s is over %d", what, max)
	}
	return n, nil
}

// decodeBase64 decodes xs:base64Binary, which may be broken across lines
// and indented, as in RFC 6030's figures.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}

// hashName returns the hash of a key: the first named in its Suite (as
// in "HMAC-SHA256" or the OCRA suite "OCRA-1:HOTP-SHA1-6:QN08"), else in
// its algorithm URI, else SHA1. A name is "SHA" followed by digits,
// perhaps after a hyphen or underscore, in any case.
func hashName(suite, algorithm string) (string, error) {
	for _, s := range []string{suite, algorithm} {
		u := strings.ToUpper(s)
		for {
			i := strings.Index(u, "SHA")
			if i < 0 {
				break
			}
			u = u[i+3:]
			digits := strings.TrimLeft(u, "-_")
			n := 0
			for n < len(digits) && digits[n] >= '0' && digits[n] <= '9' {
				n++
			}
			switch digits[:n] {
			case "":
				continue // "SHARED", say: not a hash
			case "1":
				return "SHA1", nil
			case "256":
				return "SHA256", nil
			case "512":
				return "SHA512", nil
			}
			return "", fail(ErrUnsupported, "hash is not SHA1, SHA256 or SHA512")
		}
	}
	return "SHA1", nil
}
