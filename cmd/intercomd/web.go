package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/intercomd/intercomd/web"
)

// mountWeb serves the phone web app (and its /config.json) at "/" on mux,
// beside /mqtt and /healthz. After a reload, call SetConfig(d.cfg) on the
// returned app from the goroutine that changed d.cfg.
func (d *daemon) mountWeb(mux *http.ServeMux) *web.App {
	app := web.New(d.cfg, d.log.With("component", "web"))
	mux.Handle("/", app)
	return app
}

// webTLS wraps the HTTP listener in TLS with the configured certificate or
// the self-signed one of the state directory (made on first start, its
// fingerprint logged so a person can check it on their phone).
func (d *daemon) webTLS(ln net.Listener) (net.Listener, error) {
	stateDir, err := d.stateDir()
	if err != nil {
		return nil, err
	}
	cert, created, err := web.LoadCertificate(d.cfg.HTTP, stateDir)
	if err != nil {
		return nil, err
	}
	certFile, _ := web.CertFiles(d.cfg.HTTP, stateDir)
	if fp, err := web.Fingerprint(certFile); err == nil {
		if created {
			d.log.Info("made a self-signed HTTPS certificate", "file", certFile, "sha256", fp)
		} else {
			d.log.Debug("https certificate", "file", certFile, "sha256", fp)
		}
	}
	return tls.NewListener(ln, web.TLSConfig(cert)), nil
}

// runCert prints the SHA-256 fingerprint of the HTTPS certificate, making
// the self-signed one if it does not exist yet, so it can be compared with
// what a phone's browser shows on its first visit.
func runCert(_ context.Context, args []string, env *cmdEnv) error {
	fs := newFlags("cert", "Print the SHA-256 fingerprint of the HTTPS certificate (made on first use when none is configured).", env)
	path := fs.String("config", "", "configuration file")
	stateDir := fs.String("state-dir", "", "override device.state_dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, *stateDir)
	if err != nil {
		return err
	}
	dir, err := stateDirOf(cfg, env)
	if err != nil {
		return err
	}
	if _, _, err := web.LoadCertificate(cfg.HTTP, dir); err != nil {
		return fmt.Errorf("cert: %w", err)
	}
	certFile, _ := web.CertFiles(cfg.HTTP, dir)
	fp, err := web.Fingerprint(certFile)
	if err != nil {
		return fmt.Errorf("cert: %w", err)
	}
	fmt.Fprintf(env.stdout, "%s\nSHA-256 %s\n", certFile, fp)
	return nil
}
