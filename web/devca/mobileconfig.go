package devca

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"

	"howett.net/plist"
)

// Profile is an iOS configuration profile (a property list) whose one
// payload is a root certificate: what /ca.mobileconfig serves. iOS installs
// it from Settings → General → VPN & Device Management; full trust for TLS
// is then a separate switch in Settings → General → About → Certificate
// Trust Settings.
type Profile struct {
	PayloadContent           []RootPayload
	PayloadDescription       string
	PayloadDisplayName       string
	PayloadIdentifier        string
	PayloadOrganization      string
	PayloadRemovalDisallowed bool
	PayloadType              string
	PayloadUUID              string
	PayloadVersion           int
}

// RootPayload is a com.apple.security.root payload.
type RootPayload struct {
	PayloadCertificateFileName string
	PayloadContent             []byte
	PayloadDescription         string
	PayloadDisplayName         string
	PayloadIdentifier          string
	PayloadType                string
	PayloadUUID                string
	PayloadVersion             int
}

// RootPayloadType is the payload type of a trusted root certificate.
const RootPayloadType = "com.apple.security.root"

// MobileConfig returns the configuration profile installing root on iOS,
// named after device (the intercom's display name). The profile's UUIDs
// derive from the certificate, so downloading it again gives the same
// profile and iOS replaces rather than duplicates it.
func MobileConfig(root *x509.Certificate, device string) ([]byte, error) {
	sum := sha256.Sum256(root.Raw)
	id := fmt.Sprintf("org.intercomd.ca.%x", sum[:8])
	name := "intercomd"
	if device != "" {
		name = device + " (intercomd)"
	}
	p := Profile{
		PayloadContent: []RootPayload{{
			PayloadCertificateFileName: "intercomd-ca.crt",
			PayloadContent:             root.Raw,
			PayloadDescription:         "Lets this phone open the intercom's app over HTTPS.",
			PayloadDisplayName:         root.Subject.CommonName,
			PayloadIdentifier:          id + ".root",
			PayloadType:                RootPayloadType,
			PayloadUUID:                uuidFrom(sum[:], 1),
			PayloadVersion:             1,
		}},
		PayloadDescription:  "Trusts the certificate authority of the door intercom " + name + ", which it uses for nothing but its own web app.",
		PayloadDisplayName:  name,
		PayloadIdentifier:   id,
		PayloadOrganization: "intercomd",
		PayloadType:         "Configuration",
		PayloadUUID:         uuidFrom(sum[:], 0),
		PayloadVersion:      1,
	}
	return plist.MarshalIndent(p, plist.XMLFormat, "\t")
}

// uuidFrom makes a version-8 (custom) UUID from a hash and a number.
func uuidFrom(sum []byte, n byte) string {
	h := sha256.Sum256(append([]byte{n}, sum...))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]))
}

// Fingerprint returns the SHA-256 fingerprint of a DER certificate, as
// colon-separated upper-case hex bytes (the form phones and browsers show).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var sb strings.Builder
	for i, c := range sum {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02X", c)
	}
	return sb.String()
}
