package devca_test

import (
	"bytes"
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
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/intercomd/intercomd/web/devca"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func ips(s ...string) []net.IP {
	var out []net.IP
	for _, a := range s {
		out = append(out, net.ParseIP(a))
	}
	return out
}

func pool(ca *devca.CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func mode(t *testing.T, name string) os.FileMode {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestRootAndServerCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, created, err := devca.LoadOrCreate(dir, "door", t0)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate: created=%v err=%v", created, err)
	}
	root := ca.Cert
	if k, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("root key is %T, want ECDSA P-256", root.PublicKey)
	}
	if !root.IsCA || !root.MaxPathLenZero || root.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("root: IsCA=%v MaxPathLenZero=%v usage=%v", root.IsCA, root.MaxPathLenZero, root.KeyUsage)
	}
	if root.NotAfter.Before(t0.Add(10 * 365 * 24 * time.Hour)) {
		t.Errorf("root expires %v: a phone should trust it once", root.NotAfter)
	}
	if !root.PermittedDNSDomainsCritical || !slices.Contains(root.PermittedDNSDomains, "local") || !slices.Contains(root.PermittedDNSDomains, "door") {
		t.Errorf("root name constraints %v (critical %v)", root.PermittedDNSDomains, root.PermittedDNSDomainsCritical)
	}
	if m := mode(t, filepath.Join(dir, devca.RootKey)); m != 0o600 {
		t.Errorf("%s mode %v, want 0600", devca.RootKey, m)
	}
	if m := mode(t, filepath.Join(dir, devca.RootCert)); m != 0o644 {
		t.Errorf("%s mode %v, want 0644", devca.RootCert, m)
	}
	again, created, err := devca.LoadOrCreate(dir, "door", t0.Add(time.Hour))
	if err != nil || created || !bytes.Equal(again.DER(), ca.DER()) {
		t.Fatalf("second load: created=%v err=%v same=%v", created, err, err == nil && bytes.Equal(again.DER(), ca.DER()))
	}

	names := devca.NamesFor("Door", ips("192.168.1.20", "2001:db8::5", "fe80::1", "127.0.0.1", "fd00::7"))
	c, err := ca.Issue(names, t0)
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Leaf
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 398*24*time.Hour {
		t.Errorf("server certificate valid for %v: phones refuse more than 398 days", d)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("extended key usage %v", leaf.ExtKeyUsage)
	}
	if len(c.Certificate) != 2 || !bytes.Equal(c.Certificate[1], root.Raw) {
		t.Errorf("the chain served is not leaf + root")
	}
	for _, host := range []string{"door", "door.local", "localhost", "192.168.1.20", "2001:db8::5", "fd00::7", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool(ca), CurrentTime: t0}); err != nil {
			t.Errorf("not valid for %s under the root alone: %v", host, err)
		}
	}
	if slices.ContainsFunc(leaf.IPAddresses, net.ParseIP("fe80::1").Equal) {
		t.Errorf("link-local address in the certificate: %v", leaf.IPAddresses)
	}
}

func TestNameConstraints(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := devca.LoadOrCreate(dir, "door", t0)
	if err != nil {
		t.Fatal(err)
	}
	// A name outside the constraints (a host renamed since) is left out.
	c, err := ca.Issue(devca.Names{DNS: []string{"localhost", "bank.example.com", "door.local"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(c.Leaf.DNSNames, "bank.example.com") {
		t.Errorf("names %v: issued for a name outside the root's constraints", c.Leaf.DNSNames)
	}
	// And the constraints hold against the root's own key: a certificate
	// for another name, made with the key (as a thief of the device would),
	// is refused by a verifier trusting the root.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootKey := readKey(t, dir)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "bank.example.com"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour), DNSNames: []string{"bank.example.com"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca.Cert, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := x509.ParseCertificate(der)
	if _, err := forged.Verify(x509.VerifyOptions{DNSName: "bank.example.com", Roots: pool(ca), CurrentTime: t0}); err == nil {
		t.Errorf("a certificate for bank.example.com verifies under the device's root")
	}
}

// readKey reads the root's key back from its file (what a thief would do).
func readKey(t *testing.T, dir string) any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, devca.RootKey))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestServerRenews(t *testing.T) {
	dir := t.TempDir()
	names := devca.NamesFor("door", ips("192.168.1.20"))
	o := devca.Options{Names: func() devca.Names { return names }, Now: t0}
	s, err := devca.NewServer(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	first := s.Certificate()
	if m := mode(t, filepath.Join(dir, devca.ServerKey)); m != 0o600 {
		t.Errorf("%s mode %v, want 0600", devca.ServerKey, m)
	}
	if got, _ := s.GetCertificate(nil); got != first {
		t.Errorf("GetCertificate does not serve the current certificate")
	}
	// Nothing changed: nothing renewed.
	if renewed, err := s.Refresh(t0.Add(24 * time.Hour)); err != nil || renewed {
		t.Errorf("refresh a day later: renewed=%v err=%v", renewed, err)
	}
	// A restart serves the same certificate from the state directory.
	s2, err := devca.NewServer(dir, devca.Options{Names: o.Names, Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s2.Certificate().Leaf.Raw, first.Leaf.Raw) {
		t.Errorf("a restart issued a new certificate")
	}

	// A new address: a new certificate naming it, served and written.
	names = devca.NamesFor("door", ips("192.168.1.20", "10.0.0.9"))
	if renewed, err := s.Refresh(t0.Add(48 * time.Hour)); err != nil || !renewed {
		t.Fatalf("refresh after an address change: renewed=%v err=%v", renewed, err)
	}
	second, _ := s.GetCertificate(nil)
	if err := second.Leaf.VerifyHostname("10.0.0.9"); err != nil {
		t.Errorf("after the address change: %v", err)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, devca.ServerCert))
	if err != nil {
		t.Fatal(err)
	}
	if blk, _ := pem.Decode(onDisk); blk == nil || !bytes.Equal(blk.Bytes, second.Leaf.Raw) {
		t.Errorf("the renewed certificate is not the one in %s", devca.ServerCert)
	}
	// An address gone is no reason to renew.
	names = devca.NamesFor("door", ips("10.0.0.9"))
	if renewed, _ := s.Refresh(t0.Add(49 * time.Hour)); renewed {
		t.Errorf("renewed when an address went away")
	}

	// Near expiry: renewed RenewBefore ahead.
	due := second.Leaf.NotAfter.Add(-devca.RenewBefore)
	if renewed, _ := s.Refresh(due.Add(-time.Hour)); renewed {
		t.Errorf("renewed %v before expiry", devca.RenewBefore+time.Hour)
	}
	if renewed, err := s.Refresh(due.Add(time.Hour)); err != nil || !renewed {
		t.Errorf("not renewed %v before expiry: renewed=%v err=%v", devca.RenewBefore-time.Hour, renewed, err)
	}
	if third := s.Certificate(); !third.Leaf.NotAfter.After(second.Leaf.NotAfter) {
		t.Errorf("renewed certificate expires %v, the old one %v", third.Leaf.NotAfter, second.Leaf.NotAfter)
	}
}

func TestServerReplacesSelfSigned(t *testing.T) {
	dir := t.TempDir()
	// The self-signed pair earlier versions kept under the same names.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "intercomd door"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(3650 * 24 * time.Hour), DNSNames: []string{"localhost", "door", "door.local"},
		IPAddresses: ips("127.0.0.1", "::1"), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, devca.ServerCert), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, devca.ServerKey), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := devca.NewServer(dir, devca.Options{Names: func() devca.Names { return devca.NamesFor("door", nil) }, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(s.Certificate().Leaf.Raw, der) {
		t.Fatalf("the self-signed certificate is still served")
	}
	if err := s.Certificate().Leaf.CheckSignatureFrom(s.CA.Cert); err != nil {
		t.Errorf("served certificate not issued by the root: %v", err)
	}
}

func TestDamagedRootIsNotReplaced(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := devca.LoadOrCreate(dir, "door", t0); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, devca.RootCert)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := devca.LoadOrCreate(dir, "door", t0); err == nil {
		t.Fatalf("a root key without its certificate: a new root was made, untrusting every phone")
	}
	if err := os.WriteFile(filepath.Join(dir, devca.RootCert), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := devca.LoadOrCreate(dir, "door", t0); err == nil {
		t.Fatalf("a damaged root certificate loads")
	}
}

func TestMobileConfig(t *testing.T) {
	ca, _, err := devca.LoadOrCreate(t.TempDir(), "door", t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := devca.MobileConfig(ca.Cert, "Front door")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("<?xml")) || !bytes.Contains(b, []byte("<!DOCTYPE plist")) {
		t.Errorf("not an XML property list:\n%.200s", b)
	}
	var p devca.Profile
	format, err := plist.Unmarshal(b, &p)
	if err != nil || format != plist.XMLFormat {
		t.Fatalf("parse back: format %d, %v", format, err)
	}
	if p.PayloadType != "Configuration" || p.PayloadVersion != 1 || p.PayloadIdentifier == "" || p.PayloadDisplayName != "Front door (intercomd)" {
		t.Errorf("profile %+v", p)
	}
	uuid := regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-8[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
	if len(p.PayloadContent) != 1 {
		t.Fatalf("%d payloads, want 1", len(p.PayloadContent))
	}
	r := p.PayloadContent[0]
	if r.PayloadType != "com.apple.security.root" || r.PayloadVersion != 1 || !bytes.Equal(r.PayloadContent, ca.DER()) {
		t.Errorf("payload type %q version %d, certificate equal %v", r.PayloadType, r.PayloadVersion, bytes.Equal(r.PayloadContent, ca.DER()))
	}
	if !uuid.MatchString(p.PayloadUUID) || !uuid.MatchString(r.PayloadUUID) || p.PayloadUUID == r.PayloadUUID {
		t.Errorf("UUIDs %q, %q", p.PayloadUUID, r.PayloadUUID)
	}
	if c, err := x509.ParseCertificate(r.PayloadContent); err != nil || !c.IsCA {
		t.Errorf("payload certificate: %v", err)
	}
	// The same root gives the same profile: iOS replaces it, not adds one.
	if b2, _ := devca.MobileConfig(ca.Cert, "Front door"); !bytes.Equal(b, b2) {
		t.Errorf("profile differs between downloads")
	}
}

// Root writing into the service user's state directory (`sudo intercomd
// cert` before the first start) leaves files that user owns.
func TestFilesOwnedLikeTheStateDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := devca.NewServer(dir, devca.Options{Names: func() devca.Names { return devca.NamesFor("door", nil) }, Now: t0}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{devca.RootCert, devca.RootKey, devca.ServerCert, devca.ServerKey} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 65534 || sys.Gid != 65534 {
			t.Errorf("%s owned by %d:%d, want the directory's 65534:65534", f, sys.Uid, sys.Gid)
		}
	}
}
