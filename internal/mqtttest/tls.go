package mqtttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TLS describes the TLS side of a broker started by StartMosquittoTLS: the
// files a client needs and the broker's TLS listeners.
type TLS struct {
	// CAFile is the PEM certificate of the CA that signed the broker's and
	// the client's certificates.
	CAFile string
	// OtherCAFile is a CA that signed nothing here: trusting it alone must
	// fail.
	OtherCAFile string
	// CertFile and KeyFile are a client certificate and its key, for the
	// listener that requires one.
	CertFile, KeyFile string

	serverCert, serverKey string
	port, mutualPort      int
	wssPort               int
}

// URL is the ssl:// listener (server certificate only).
func (t *TLS) URL() string { return "ssl://127.0.0.1:" + strconv.Itoa(t.port) }

// MutualURL is the ssl:// listener that requires a client certificate
// signed by CAFile.
func (t *TLS) MutualURL() string { return "ssl://127.0.0.1:" + strconv.Itoa(t.mutualPort) }

// WSSURL is the wss:// listener (MQTT over WebSocket over TLS).
func (t *TLS) WSSURL() string { return "wss://127.0.0.1:" + strconv.Itoa(t.wssPort) + "/mqtt" }

// StartMosquittoTLS is StartMosquitto with three TLS listeners besides the
// plain ones: ssl://, ssl:// requiring a client certificate, and wss://.
// The certificates are made for the test: a CA, a server certificate for
// 127.0.0.1 and localhost, and a client certificate.
func StartMosquittoTLS(t testing.TB, users map[string]string, groups map[string][]string) (*Env, *TLS) {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCA(t, "intercomd test CA")
	other, _ := newCA(t, "intercomd unrelated CA")
	tl := &TLS{
		CAFile:      writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw),
		OtherCAFile: writePEM(t, dir, "other-ca.pem", "CERTIFICATE", other.Raw),
	}
	srv, srvKey := newLeaf(t, ca, caKey, "127.0.0.1", true)
	tl.serverCert = writePEM(t, dir, "server.pem", "CERTIFICATE", srv)
	tl.serverKey = writePEM(t, dir, "server-key.pem", "EC PRIVATE KEY", srvKey)
	cli, cliKey := newLeaf(t, ca, caKey, "intercomd test client", false)
	tl.CertFile = writePEM(t, dir, "client.pem", "CERTIFICATE", cli)
	tl.KeyFile = writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", cliKey)
	return startMosquitto(t, users, groups, tl), tl
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// newLeaf returns a certificate signed by ca, and its key, both DER: for a
// server at 127.0.0.1 and localhost, or for a client named cn.
func newLeaf(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, server bool) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	cert, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err = x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func writePEM(t testing.TB, dir, name, kind string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
