package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/intercomd/intercomd/config"
)

// Names of the self-signed certificate and its key in the state directory.
const (
	SelfSignedCert = "https.crt"
	SelfSignedKey  = "https.key"
)

// selfSignedValidity is long: nobody renews a door station's certificate,
// and phones pin it by fingerprint.
const selfSignedValidity = 10 * 365 * 24 * time.Hour

// CertFiles returns the certificate and key the HTTPS server uses: the
// configured pair, or the self-signed pair in stateDir.
func CertFiles(h config.HTTP, stateDir string) (certFile, keyFile string) {
	if h.CertFile != "" {
		return h.CertFile, h.KeyFile
	}
	return filepath.Join(stateDir, SelfSignedCert), filepath.Join(stateDir, SelfSignedKey)
}

// LoadCertificate returns the HTTPS server's certificate: the configured
// pair (which must load), or the self-signed pair in stateDir, made on first
// use (ECDSA P-256, valid for the host name, localhost, 127.0.0.1, ::1 and
// the machine's addresses at the time). created reports that a new one was
// made; the caller logs its fingerprint.
func LoadCertificate(h config.HTTP, stateDir string) (cert tls.Certificate, created bool, err error) {
	certFile, keyFile := CertFiles(h, stateDir)
	if h.CertFile != "" {
		cert, err = tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return cert, false, fmt.Errorf("https certificate %s: %w", certFile, err)
		}
		return cert, false, nil
	}
	cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil {
		return cert, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return cert, false, fmt.Errorf("self-signed certificate %s: %w", certFile, err)
	}
	if err := WriteSelfSigned(certFile, keyFile, time.Now()); err != nil {
		return cert, false, err
	}
	cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return cert, false, fmt.Errorf("self-signed certificate %s: %w", certFile, err)
	}
	return cert, true, nil
}

// TLSConfig is the server's TLS configuration around cert: TLS 1.2 and up,
// HTTP/1.1 only (the broker's WebSocket upgrade needs it).
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
}

// WriteSelfSigned makes a self-signed ECDSA P-256 certificate valid from
// now (less a day, for clocks a little behind) and writes it and its key,
// the key readable by the owner only. Existing files are replaced.
func WriteSelfSigned(certFile, keyFile string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("certificate serial: %w", err)
	}
	host, _ := os.Hostname()
	dns, ips := certNames(host, localAddrs())
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "intercomd " + host, Organization: []string{"intercomd"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return fmt.Errorf("certificate directory: %w", err)
	}
	if err := writeAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// certNames lists the names a self-signed certificate is valid for.
func certNames(host string, addrs []net.IP) (dns []string, ips []net.IP) {
	dns = []string{"localhost"}
	if host != "" && host != "localhost" {
		dns = append(dns, host)
		if !strings.Contains(host, ".") {
			dns = append(dns, host+".local")
		}
	}
	ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, a := range addrs {
		if !a.IsLoopback() && !a.IsLinkLocalUnicast() {
			ips = append(ips, a)
		}
	}
	return dns, ips
}

func localAddrs() []net.IP {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips
}

func writeAtomic(name string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name))
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// Fingerprint returns the SHA-256 fingerprint of the first certificate in
// the PEM file certFile, as colon-separated upper-case hex bytes (the form
// browsers show), for checking a self-signed certificate on first visit.
func Fingerprint(certFile string) (string, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return "", fmt.Errorf("fingerprint: no certificate in %s", certFile)
		}
		if blk.Type == "CERTIFICATE" {
			return FingerprintDER(blk.Bytes), nil
		}
	}
}

// FingerprintDER returns the SHA-256 fingerprint of a DER certificate.
func FingerprintDER(der []byte) string {
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

// SignInLink is the address that signs a phone in with token: the app's
// origin (https://door.local:8443) with the token in the fragment, which
// browsers never send to a server. Put it in a message or a QR code.
func SignInLink(origin, token string) string {
	return strings.TrimRight(origin, "/") + "/#token=" + url.QueryEscape(token)
}
