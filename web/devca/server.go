package devca

import (
	"crypto/ecdsa"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// CheckEvery is how often the HTTPS server looks at the machine's
// addresses and the certificate's expiry (Server.Refresh).
const CheckEvery = time.Minute

// Server keeps the HTTPS server certificate issued by the device's root,
// reissuing it when it nears expiry or the machine's names change. Its
// GetCertificate goes into tls.Config, so a new certificate is served
// without a restart. It is safe for concurrent use.
type Server struct {
	CA    *CA
	dir   string
	log   *slog.Logger
	names func() Names

	mu   sync.Mutex // serialises Refresh
	cert atomic.Pointer[tls.Certificate]
}

// Options configure NewServer; the zero value is the real machine.
type Options struct {
	// Names returns the machine's names; nil means CurrentNames.
	Names func() Names
	// Log receives renewals; nil discards.
	Log *slog.Logger
	// Now is the time of the first check; zero means time.Now().
	Now time.Time
}

// NewServer loads (or makes) the root in dir and the server certificate,
// issuing a new one when the one in dir is missing, was not issued by the
// root, expires soon or does not name the machine's current names.
func NewServer(dir string, o Options) (*Server, error) {
	if o.Names == nil {
		o.Names = CurrentNames
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	names := o.Names()
	host := ""
	if len(names.DNS) > 1 {
		host = names.DNS[1]
	}
	ca, created, err := LoadOrCreate(dir, host, o.Now)
	if err != nil {
		return nil, err
	}
	if created {
		o.Log.Info("made the device's certificate authority: phones trust it from the install page",
			"file", filepath.Join(dir, RootCert), "sha256", Fingerprint(ca.Cert.Raw))
	}
	s := &Server{CA: ca, dir: dir, log: o.Log, names: o.Names}
	if pair, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerCert), filepath.Join(dir, ServerKey)); err == nil {
		pair.Certificate = append(pair.Certificate[:1:1], ca.Cert.Raw)
		s.cert.Store(&pair)
	} else if !errors.Is(err, fs.ErrNotExist) {
		o.Log.Warn("https certificate unreadable; issuing a new one", "err", err)
	}
	if _, err := s.Refresh(o.Now); err != nil {
		return nil, err
	}
	return s, nil
}

// Certificate returns the certificate served now.
func (s *Server) Certificate() *tls.Certificate { return s.cert.Load() }

// GetCertificate implements tls.Config.GetCertificate.
func (s *Server) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// Refresh reissues the server certificate when it is missing or no longer
// current at now (see CA.Current), writes it to the state directory and
// serves it from then on. renewed reports a new certificate.
func (s *Server) Refresh(now time.Time) (renewed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := s.names()
	why := "none yet"
	if c := s.cert.Load(); c != nil {
		var ok bool
		if ok, why = s.CA.Current(c.Leaf, names, now); ok {
			return false, nil
		}
	}
	c, err := s.CA.Issue(names, now)
	if err != nil {
		return false, err
	}
	if err := writeKeyPair(filepath.Join(s.dir, ServerCert), filepath.Join(s.dir, ServerKey), c.Certificate[0], c.PrivateKey.(*ecdsa.PrivateKey)); err != nil {
		return false, fmt.Errorf("https certificate: %w", err)
	}
	s.cert.Store(&c)
	s.log.Info("issued the https certificate", "why", why, "names", c.Leaf.DNSNames, "addresses", fmt.Sprint(c.Leaf.IPAddresses),
		"expires", c.Leaf.NotAfter.UTC().Format(time.DateOnly))
	return true, nil
}
