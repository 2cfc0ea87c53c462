package web

import (
	"crypto/x509"
	"html"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/intercomd/intercomd/web/devca"
)

// The install page (web/src/install.html) tells a resident how to make
// their phone trust the device's certificate authority and install the app;
// /ca.crt (for Android) and /ca.mobileconfig (for iOS) serve the root. They
// are served over HTTPS like the rest of the app, and over plain HTTP on the
// same port (see Listener), because a phone that does not trust the root
// yet can be told nothing over HTTPS without a warning first. Nothing there
// is secret: the root's private key never leaves the device.

// SetRoot sets the root certificate the install page serves (nil when the
// HTTPS server has a configured certificate, which phones trust already).
func (a *App) SetRoot(root *x509.Certificate) { a.root509.Store(root) }

func (a *App) serveInstall(w http.ResponseWriter, r *http.Request, name string) {
	root := a.root509.Load()
	w.Header().Set("Cache-Control", "no-cache")
	switch name {
	case "ca.crt":
		if root == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-x509-ca-cert")
		w.Header().Set("Content-Disposition", `attachment; filename="intercomd-ca.crt"`)
		writeBody(w, r, root.Raw)
		return
	case "ca.mobileconfig":
		if root == nil {
			http.NotFound(w, r)
			return
		}
		b, err := devca.MobileConfig(root, a.client.Load().Device.Name)
		if err != nil {
			a.log.Error("configuration profile", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-apple-aspen-config")
		w.Header().Set("Content-Disposition", `attachment; filename="intercomd.mobileconfig"`)
		writeBody(w, r, b)
		return
	}
	src, err := fs.ReadFile(a.root, "install.html")
	if err != nil {
		a.log.Error("install page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// The page has a part for the device CA and one for a configured
	// certificate; placeholders for the rest. (Not html/template: its
	// reflection keeps every method of every type in the binary, 3 MB.)
	drop, fp := "own-cert", ""
	if root != nil {
		fp = devca.Fingerprint(root.Raw)
	} else {
		drop = "device-ca"
	}
	page := string(src)
	if i, j := strings.Index(page, "<!--"+drop+"-->"), strings.Index(page, "<!--/"+drop+"-->"); i >= 0 && j > i {
		page = page[:i] + page[j+len("<!--/"+drop+"-->"):]
	}
	page = strings.NewReplacer(
		"@DEVICE@", html.EscapeString(a.client.Load().Device.Name),
		"@FINGERPRINT@", fp,
		"@APP_URL@", html.EscapeString("https://"+r.Host+"/"),
	).Replace(page)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	writeBody(w, r, []byte(page))
}

func writeBody(w http.ResponseWriter, r *http.Request, b []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// PlainHTTP is the handler for plain HTTP on the HTTPS port: the install
// page with its stylesheet and icon, the root certificate, and a redirect
// to the same address over HTTPS for everything else.
func (a *App) PlainHTTP() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimPrefix(r.URL.Path, "/") {
		case "install", "ca.crt", "ca.mobileconfig", "style.css", "icon-192.png":
			a.ServeHTTP(w, r)
			return
		}
		if r.Host == "" {
			http.Error(w, "this port speaks HTTPS", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "https://"+r.Host+r.URL.RequestURI(), http.StatusFound)
	})
}
