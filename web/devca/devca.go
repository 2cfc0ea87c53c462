// Package devca is the device's own certificate authority: a long-lived
// root kept in the state directory, whose private key never leaves the
// device, and the HTTPS certificate it issues for the device's names and
// addresses. A phone trusts the root once (the install page serves it as a
// .crt for Android and a .mobileconfig for iOS); the server certificate is
// then renewed by the device, before it expires and whenever the device gets
// an address the certificate does not name, without a restart and without
// the phone noticing.
//
// The root is name-constrained to the names a LAN device can have (.local,
// localhost, home.arpa, .internal, .lan and the host name it was made with),
// so a root taken from a stolen device cannot impersonate anybody's bank to
// the phones that trust it. IP addresses are not constrained: a device may
// have any address, public IPv6 ones included.
//
// Files in the state directory: ca.crt (0644) and ca.key (0600) for the root,
// https.crt (0644) and https.key (0600) for the server. A https.crt that the
// root did not issue (the self-signed certificate of earlier versions) is
// replaced on first start.
package devca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/intercomd/intercomd/internal/statefile"
)

// Files in the state directory.
const (
	RootCert   = "ca.crt"
	RootKey    = "ca.key"
	ServerCert = "https.crt"
	ServerKey  = "https.key"
)

const (
	// RootValidity is the root's lifetime: a phone trusts it once.
	RootValidity = 20 * 365 * 24 * time.Hour
	// LeafValidity is the server certificate's lifetime, within the 398
	// days browsers accept (Apple requires at most 825 days of every TLS
	// server certificate, also under a root the user trusts).
	LeafValidity = 397 * 24 * time.Hour
	// RenewBefore is how long before its expiry the server certificate is
	// replaced.
	RenewBefore = 30 * 24 * time.Hour
	// backdate allows for phones whose clocks are a little behind.
	backdate = time.Hour
)

// lanDomains are the DNS names the root may issue for, besides the host
// name it was made with: each permits the name and its subdomains.
var lanDomains = []string{"local", "localhost", "home.arpa", "internal", "lan"}

// CA is the device's root: its certificate and private key.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// DER returns the root certificate's DER encoding, what /ca.crt serves.
func (ca *CA) DER() []byte { return ca.Cert.Raw }

// LoadOrCreate returns the root kept in dir, making it (for host, the
// machine's host name) when it does not exist yet. created reports that a
// new root was made: phones must trust it anew.
func LoadOrCreate(dir, host string, now time.Time) (ca *CA, created bool, err error) {
	certFile, keyFile := filepath.Join(dir, RootCert), filepath.Join(dir, RootKey)
	ca, err = load(certFile, keyFile)
	if err == nil {
		return ca, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if _, kerr := os.Stat(keyFile); kerr == nil {
		// A key without its certificate (or the reverse) is damage, not a
		// first start: making a new root would silently untrust every phone.
		return nil, false, fmt.Errorf("device CA: %w (remove %s and %s to make a new root; phones must then trust it again)", err, certFile, keyFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("device CA: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, false, err
	}
	name := "intercomd"
	if host != "" {
		name += " " + host
	}
	tmpl := &x509.Certificate{
		SerialNumber:                serial,
		Subject:                     pkix.Name{CommonName: name + " root", Organization: []string{"intercomd"}},
		NotBefore:                   now.Add(-backdate),
		NotAfter:                    now.Add(RootValidity),
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid:       true,
		IsCA:                        true,
		MaxPathLenZero:              true,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         permittedDomains(host),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, false, fmt.Errorf("device CA: create root: %w", err)
	}
	if err := writeKeyPair(certFile, keyFile, der, key); err != nil {
		return nil, false, fmt.Errorf("device CA: %w", err)
	}
	ca, err = load(certFile, keyFile)
	return ca, err == nil, err
}

func permittedDomains(host string) []string {
	ds := slices.Clone(lanDomains)
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host != "" && !permitted(ds, host) {
		ds = append(ds, host)
	}
	return ds
}

// permitted reports whether name is within one of the domains.
func permitted(domains []string, name string) bool {
	for _, d := range domains {
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	return false
}

func load(certFile, keyFile string) (*CA, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("device CA %s: %w", certFile, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !pair.Leaf.IsCA {
		return nil, fmt.Errorf("device CA %s: not an ECDSA certificate authority", certFile)
	}
	return &CA{Cert: pair.Leaf, key: key}, nil
}

// Names are what a server certificate is valid for.
type Names struct {
	DNS []string
	IPs []net.IP
}

// CurrentNames returns the machine's names now: localhost, the host name
// and <host>.local, the loopback addresses and every address of its
// interfaces except link-local ones (which need a zone a URL cannot carry
// to a phone).
func CurrentNames() Names {
	host, _ := os.Hostname()
	var addrs []net.IP
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				addrs = append(addrs, n.IP)
			}
		}
	}
	return NamesFor(host, addrs)
}

// NamesFor lists the names of a machine called host with the addresses
// addrs.
func NamesFor(host string, addrs []net.IP) Names {
	n := Names{DNS: []string{"localhost"}}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host != "" && host != "localhost" {
		n.DNS = append(n.DNS, host)
		if !strings.Contains(host, ".") {
			n.DNS = append(n.DNS, host+".local")
		}
	}
	n.IPs = []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	for _, a := range addrs {
		if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
			continue
		}
		if v4 := a.To4(); v4 != nil {
			a = v4
		}
		if !slices.ContainsFunc(n.IPs, a.Equal) {
			n.IPs = append(n.IPs, a)
		}
	}
	return n
}

// Issue makes a server certificate for names with a new key, valid from
// now for LeafValidity. Names outside the root's constraints (a host
// renamed since the root was made) are left out: a certificate naming them
// would be refused whole.
func (ca *CA) Issue(names Names, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("device CA: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	var dns []string
	for _, d := range names.DNS {
		if permitted(ca.Cert.PermittedDNSDomains, d) {
			dns = append(dns, d)
		}
	}
	cn := "intercomd"
	if len(dns) > 1 {
		cn = dns[1]
	}
	notAfter := now.Add(LeafValidity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"intercomd"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           names.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("device CA: issue: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("device CA: issue: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// Current reports whether the server certificate leaf may still be served
// at now for names: issued by this root, at least RenewBefore from expiry,
// valid for every name and address in names that the root permits.
// Otherwise it returns why not.
func (ca *CA) Current(leaf *x509.Certificate, names Names, now time.Time) (ok bool, why string) {
	if leaf.CheckSignatureFrom(ca.Cert) != nil {
		return false, "not issued by the device CA"
	}
	if now.Add(RenewBefore).After(leaf.NotAfter) {
		return false, "expires " + leaf.NotAfter.UTC().Format(time.DateOnly)
	}
	if now.Before(leaf.NotBefore) {
		return false, "not valid yet"
	}
	for _, d := range names.DNS {
		if permitted(ca.Cert.PermittedDNSDomains, d) && !slices.Contains(leaf.DNSNames, d) {
			return false, "new name " + d
		}
	}
	for _, ip := range names.IPs {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false, "new address " + ip.String()
		}
	}
	return true, ""
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return serial, nil
}

// writeKeyPair writes a certificate (0644) and its key (0600), the key
// first, each atomically.
func writeKeyPair(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return fmt.Errorf("certificate directory: %w", err)
	}
	if err := statefile.Write(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return statefile.Write(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
