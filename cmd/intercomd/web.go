package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/intercomd/intercomd/web"
	"github.com/intercomd/intercomd/web/devca"
)

// mountWeb serves the phone web app (and its /config.json) at "/" on mux,
// beside /mqtt and /healthz. After a reload, call SetConfig(d.cfg) on the
// returned app from the goroutine that changed d.cfg.
func (d *daemon) mountWeb(mux *http.ServeMux) *web.App {
	app := web.New(d.cfg, d.log.With("component", "web"))
	mux.Handle("/", app)
	return app
}

// webTLS serves HTTPS on ln with the configured certificate or the one the
// device's own certificate authority issues (made on first start, renewed
// in the background), and plain HTTP on the same port for the install page
// of the root and redirects to HTTPS.
func (d *daemon) webTLS(ln net.Listener) (net.Listener, error) {
	stateDir, err := d.stateDir()
	if err != nil {
		return nil, err
	}
	h, err := web.NewHTTPS(d.cfg.HTTP, stateDir, d.log.With("component", "https"))
	if err != nil {
		return nil, err
	}
	plain := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+r.Host+r.URL.RequestURI(), http.StatusFound)
	}))
	if d.web != nil {
		d.web.SetRoot(h.Root())
		plain = d.web.PlainHTTP()
	}
	l := web.Listen(ln, h.TLSConfig(), plain, d.serverOptions())
	go h.Run(l.Done())
	if root := h.Root(); root != nil {
		d.log.Info("phones trust the device's certificate authority from its install page",
			"install", installURL(ln.Addr()), "sha256", web.Fingerprint(root.Raw))
	} else {
		d.log.Debug("https certificate", "file", d.cfg.HTTP.CertFile, "sha256", web.Fingerprint(h.Certificate().Leaf.Raw))
	}
	return l, nil
}

// serverOptions bound the HTTP port's connections (web.ServerOptions).
func (d *daemon) serverOptions() web.ServerOptions {
	return web.ServerOptions{MaxConns: d.cfg.HTTP.MaxConnections, Log: d.log.With("component", "http")}
}

// installURL is the plain-HTTP address of the install page on the HTTP
// port addr: at the machine's first LAN IPv4 address (which every phone
// resolves, unlike a .local name on some Android phones), else its
// <host>.local name.
func installURL(addr net.Addr) string {
	_, port, _ := net.SplitHostPort(addr.String())
	host := ""
	if a, ok := addr.(*net.TCPAddr); ok && len(a.IP) > 0 && !a.IP.IsUnspecified() && !a.IP.IsLoopback() {
		host = a.IP.String()
	}
	if host == "" {
		for _, ip := range devca.CurrentNames().IPs {
			if ip.To4() != nil && !ip.IsLoopback() {
				host = ip.String()
				break
			}
		}
	}
	if host == "" {
		if n := devca.CurrentNames().DNS; len(n) > 2 {
			host = n[2]
		} else {
			host = "localhost"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/install"
}

// runCert prints the SHA-256 fingerprint of the device's certificate
// authority (making it on first use) and a QR code of the install page a
// phone trusts it from; with a configured certificate, that certificate's
// fingerprint.
func runCert(_ context.Context, args []string, env *cmdEnv) error {
	fs := newFlags("cert", "Print the SHA-256 fingerprint of the device's certificate authority (made on first use) and a QR code of the page phones install it from.", env)
	path := fs.String("config", "", "configuration file")
	stateDir := fs.String("state-dir", "", "override device.state_dir")
	url := fs.String("url", "", "the install page's address in the QR code (default: http://<first LAN address>:<http port>/install)")
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
	if cfg.HTTP.CertFile != "" {
		h, err := web.NewHTTPS(cfg.HTTP, dir, nil)
		if err != nil {
			return fmt.Errorf("cert: %w", err)
		}
		fmt.Fprintf(env.stdout, "%s (configured; phones need install nothing)\nSHA-256 %s\n", cfg.HTTP.CertFile, web.Fingerprint(h.Certificate().Leaf.Raw))
		return nil
	}
	host, _ := os.Hostname()
	ca, _, err := devca.LoadOrCreate(dir, host, time.Now())
	if err != nil {
		return fmt.Errorf("cert: %w", err)
	}
	if *url == "" {
		addr, err := net.ResolveTCPAddr("tcp", cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("cert: http.listen %q: %w", cfg.HTTP.Listen, err)
		}
		*url = installURL(addr)
	}
	fmt.Fprintf(env.stdout, "%s\nSHA-256 %s\n\nOn the phone, open %s\n", filepath.Join(dir, devca.RootCert), web.Fingerprint(ca.Cert.Raw), *url)
	return printQR(env.stdout, *url)
}
