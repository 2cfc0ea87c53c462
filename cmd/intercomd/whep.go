package main

import (
	"net/http"

	"github.com/intercomd/intercomd/media/whep"
)

// mountWHEP serves /whep (whep.enabled) on mux; it answers 503 until
// startWHEP has built the endpoint on the media.
func (d *daemon) mountWHEP(mux *http.ServeMux) {
	if !d.cfg.WHEP.Enabled {
		return
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := d.whep.Load(); s != nil {
			s.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Retry-After", "5")
		http.Error(w, "starting", http.StatusServiceUnavailable)
	})
	mux.Handle("/whep", h)
	mux.Handle("/whep/", h)
}

// startWHEP builds the WHEP endpoint on the media; dv.close closes it
// before the media.
func (d *daemon) startWHEP(dv *devices) error {
	if !d.cfg.WHEP.Enabled {
		return nil
	}
	secret, err := d.userTokenSecret()
	if err != nil {
		return err
	}
	srv, err := whep.New(whep.Options{
		Media: dv.media, Secret: secret, Accept: d.acceptToken,
		Users: d.cfg.WHEP.Users, MaxViewers: d.cfg.WHEP.MaxViewers,
		Logger: d.log.With("component", "whep"),
	})
	if err != nil {
		return err
	}
	dv.whep = srv
	d.whep.Store(srv)
	d.log.Info("whep", "path", "/whep", "users", d.cfg.WHEP.Users, "max_viewers", d.cfg.WHEP.MaxViewers)
	return nil
}
