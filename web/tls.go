package web

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/web/devca"
)

// HTTPS is where the HTTPS server's certificate comes from: the pair
// configured in http.cert_file and http.key_file (read again when the files
// change, as `tailscale cert` or certbot renew them), or the device's own
// certificate authority in the state directory (package devca), which
// issues and renews the server certificate itself.
type HTTPS struct {
	ca   *devca.Server // nil with a configured pair
	user *fileCert     // nil without
	log  *slog.Logger
}

// NewHTTPS loads the certificate the HTTPS server serves for h: the
// configured pair, which must load, or the device CA's in stateDir, made on
// first use (replacing the self-signed certificate of earlier versions).
// log (nil discards) receives renewals.
func NewHTTPS(h config.HTTP, stateDir string, log *slog.Logger) (*HTTPS, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &HTTPS{log: log}
	if h.CertFile != "" {
		s.user = &fileCert{certFile: h.CertFile, keyFile: h.KeyFile}
		s.user.stamp, _ = s.user.stat()
		if err := s.user.reload(); err != nil {
			return nil, err
		}
		return s, nil
	}
	ca, err := devca.NewServer(stateDir, devca.Options{Log: log})
	if err != nil {
		return nil, err
	}
	s.ca = ca
	return s, nil
}

// Root returns the device CA's root certificate, nil when the HTTPS server
// serves a configured certificate.
func (s *HTTPS) Root() *x509.Certificate {
	if s.ca == nil {
		return nil
	}
	return s.ca.CA.Cert
}

// Certificate returns the certificate served now.
func (s *HTTPS) Certificate() *tls.Certificate {
	if s.ca != nil {
		return s.ca.Certificate()
	}
	return s.user.cert.Load()
}

// TLSConfig is the server's TLS configuration, serving the current
// certificate.
func (s *HTTPS) TLSConfig() *tls.Config {
	c := TLSConfig(tls.Certificate{})
	c.Certificates = nil
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.Certificate(), nil }
	return c
}

// Run calls Check every devca.CheckEvery until stop is closed.
func (s *HTTPS) Run(stop <-chan struct{}) {
	t := time.NewTicker(devca.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s.Check(now)
		}
	}
}

// Check renews the device CA's certificate when it is due (see
// devca.Server.Refresh), or reads the configured pair again when its files
// have changed. Errors are logged; the current certificate stays served.
func (s *HTTPS) Check(now time.Time) {
	if s.ca != nil {
		if _, err := s.ca.Refresh(now); err != nil {
			s.log.Error("https certificate renewal failed; serving the current one", "err", err)
		}
		return
	}
	changed, err := s.user.changed()
	if !changed {
		return
	}
	if err == nil {
		err = s.user.reload()
	}
	if err != nil {
		// Logged once for each change of the files.
		s.log.Error("https certificate changed but does not load; serving the previous one", "file", s.user.certFile, "err", err)
		return
	}
	s.log.Info("https certificate reloaded", "file", s.user.certFile, "expires", s.user.cert.Load().Leaf.NotAfter.UTC().Format(time.DateOnly))
}

// fileCert is a configured certificate and key.
type fileCert struct {
	certFile, keyFile string
	stamp             string // the files' sizes and modification times when loaded
	cert              atomic.Pointer[tls.Certificate]
}

func (f *fileCert) stat() (string, error) {
	var stamp string
	for _, name := range []string{f.certFile, f.keyFile} {
		st, err := os.Stat(name)
		if err != nil {
			return "error " + err.Error(), err
		}
		stamp += fmt.Sprintf("%d/%d ", st.Size(), st.ModTime().UnixNano())
	}
	return stamp, nil
}

// changed reports whether the files changed since the last call (or load),
// and an error when they cannot be read now.
func (f *fileCert) changed() (bool, error) {
	stamp, err := f.stat()
	if stamp == f.stamp {
		return false, nil
	}
	f.stamp = stamp
	return true, err
}

func (f *fileCert) reload() error {
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return fmt.Errorf("https certificate %s: %w", f.certFile, err)
	}
	f.cert.Store(&cert)
	return nil
}

// TLSConfig is the server's TLS configuration around cert: TLS 1.2 and up,
// HTTP/1.1 only (the broker's WebSocket upgrade needs it). TLS 1.2 offers
// forward-secret AEAD suites only: not the CBC ones with SHA-1 MACs that
// Go still enables by default (every browser of the last decade has GCM).
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// Fingerprint returns the SHA-256 fingerprint of a DER certificate, as
// colon-separated upper-case hex bytes (the form browsers show).
func Fingerprint(der []byte) string { return devca.Fingerprint(der) }

// SignInLink is the address that signs a phone in with token: the app's
// origin (https://door.local:8443) with the token in the fragment, which
// browsers never send to a server. Put it in a message or a QR code.
func SignInLink(origin, token string) string {
	return strings.TrimRight(origin, "/") + "/#token=" + url.QueryEscape(token)
}
