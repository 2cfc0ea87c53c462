package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/intercomd/intercomd/broker"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/endpoint"
	"github.com/intercomd/intercomd/homeassistant"
	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/hw/gpio"
	"github.com/intercomd/intercomd/media/whep"
	"github.com/intercomd/intercomd/mqttsig"
	"github.com/intercomd/intercomd/station"
	"github.com/intercomd/intercomd/usersig"
	"github.com/intercomd/intercomd/web"
)

// shutdownGrace bounds the whole shutdown: systemd's default stop timeout is
// far longer, the promise to users is 5 s.
const shutdownGrace = 4 * time.Second

func runDaemon(ctx context.Context, args []string, env *cmdEnv) error {
	fs := newFlags("run", "Run the intercom daemon.", env)
	path := fs.String("config", "", "configuration file (default "+config.DefaultPath+"; built-in defaults when that is absent)")
	stateDir := fs.String("state-dir", "", "override device.state_dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, *stateDir)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.Level.Slog())
	log := newLoggerLevel(env.stderr, cfg.Log, env.getenv, level)
	d := &daemon{cfg: cfg, log: log, level: level, env: env, path: *path}
	if env.ownProcess {
		limitProcs(env.getenv)
	}
	if p := env.getenv("INTERCOMD_CPUPROFILE"); p != "" {
		// For finding where the CPU goes on a device: a pprof profile of
		// the whole run.
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("INTERCOMD_CPUPROFILE: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("INTERCOMD_CPUPROFILE: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	return d.run(ctx)
}

// limitProcs runs the daemon's Go code on one processor (GOMAXPROCS=1)
// unless the GOMAXPROCS environment variable says otherwise. Its heavy work
// is C (openh264 and its worker threads, libopus), which runs beside that
// one processor, not on it; the Go code (signaling, RTP, SRTP) needs a
// fraction of one core even with several viewers. With more processors, a
// processor sitting in a long C call is never handed back while the others
// idle, and the runtime's monitor thread polls every 20 µs for as long as
// the call lasts: in a 1-to-1 call that polling cost about a fifth of the
// daemon's CPU (BenchmarkDaemonMedia, 8.5% of a core against 6.6%).
func limitProcs(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// loadConfig loads the configuration (built-in defaults when path is empty
// and the default file is absent) and applies a --state-dir override.
func loadConfig(path, stateDir string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if stateDir != "" {
		cfg.Device.StateDir = stateDir
	}
	return cfg, nil
}

// stateDirOf resolves the state directory of cfg for a subcommand.
func stateDirOf(cfg *config.Config, env *cmdEnv) (string, error) {
	d := &daemon{cfg: cfg, env: env, log: newLogger(env.stderr, cfg.Log, env.getenv)}
	return d.stateDir()
}

// daemon is the composition root: it opens the hardware, the broker, the
// signaling endpoint and media, and maps buttons and LEDs to calls.
type daemon struct {
	cfg   *config.Config
	path  string
	log   *slog.Logger
	level *slog.LevelVar
	env   *cmdEnv

	panel  *gpio.Panel
	sim    *gpio.Sim
	broker *broker.Broker
	http   *http.Server
	web    *web.App
	heard  map[string]bool // simulated panel: parties heard in this call
	st     *station.Station
	ep     *endpoint.Endpoint
	live   atomic.Pointer[endpoint.Endpoint] // ep, for the HTTP handlers' goroutines
	hup    chan os.Signal
	// onEffect traces the calling effects (benchmarks).
	onEffect func(calling.Effect)
	metrics  *metrics              // nil unless http.metrics
	ha       *homeassistant.Bridge // nil unless homeassistant.broker
	cam      *camera.Pipeline      // the camera, for the ring's snapshot
	visitors *visitors             // nil unless visitor_log.enabled (visitors.go)
	push     *pusher               // rings to closed apps (push.go)
	pushKey  string                // the VAPID public key, "" with Web Push off
	tokens   *usersig.Registry     // issued tokens (tokens.go)
	whep     atomic.Pointer[whep.Server]
	// visitorReaders may read the visitor log: the users the doorbell
	// rings and the door users (set from the configuration, on reload too).
	visitorReaders atomic.Pointer[[]string]
}

func (d *daemon) run(ctx context.Context) (err error) {
	log := d.log
	// Hardware first, and the relay before anything else: a relay left
	// energised by a crash is released now.
	if err := d.openPanel(); err != nil {
		return err
	}
	defer func() {
		if herr := d.panel.Close(); herr != nil {
			log.Error("halt panel", "err", herr)
		}
	}()

	stateDir, err := d.stateDir()
	if err != nil {
		return err
	}
	d.heard = map[string]bool{}
	if err := d.startPush(stateDir); err != nil {
		return err
	}
	defer d.push.close()
	d.setVisitorReaders(d.stationSettings())
	if err := d.openVisitors(stateDir); err != nil {
		return err
	}
	mopts, err := d.signaling(stateDir)
	if err != nil {
		return err
	}
	if d.broker != nil {
		defer d.broker.Close()
	}
	if err := d.serveHTTP(); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = d.http.Shutdown(sctx)
	}()

	dv, err := d.openDevices(ctx)
	if err != nil {
		return err
	}
	d.push.setCamera(dv.cam)
	d.cam = dv.cam
	d.visitors.useAudio(dv.audio)
	defer d.startHomeAssistant(ctx)()
	defer func() {
		if cerr := dv.close(); cerr != nil {
			log.Warn("close media", "err", cerr)
		}
	}()
	if err := d.openMedia(dv); err != nil {
		return err
	}
	if err := d.startWHEP(dv); err != nil {
		return err
	}

	d.st = d.newStation()
	d.st.Show()
	defer d.st.Stop()
	ep, err := endpoint.Start(ctx, endpoint.Options{
		Media: dv.mediaFactory,
		MQTT:  mopts,
		Calling: calling.Config{
			User:          d.cfg.Device.User,
			InviteTimeout: d.cfg.Calling.InviteTimeout,
			// The door station is one device: a second sign-in of its
			// user replaces it (calling.multi_device is for the phones).
			MultiDevice: false,
			DoorUsers:   d.cfg.Calling.DoorUsers,
			Callers:     d.cfg.Callers(),
			Pushable:    d.pushable,
			// A phone whose media dropped (its app reloaded) may take
			// the call back for as long as a connection may take to
			// come back by itself.
			RejoinGrace: d.cfg.Media.ICERestartTimeout,
		},
		Logger: log,
		OnDoor: func(by string) {
			d.openDoor(by)
		},
		OnEvent:  d.st.Event,
		OnEffect: d.onEffect,
		OnLink: func(up bool) {
			if d.metrics != nil {
				d.metrics.link.Store(up)
			}
			d.st.Link(up)
			d.ha.Link(up)
		},
	})
	if err != nil {
		return err
	}
	d.ep = ep
	d.live.Store(ep)
	if d.metrics != nil {
		d.metrics.ep.Store(ep)
		d.metrics.dv.Store(dv)
		d.metrics.door.Store(d.panel.Relay())
	}
	events, unsubscribe := ep.Subscribe(256)
	defer unsubscribe()
	d.watchRings(ctx, ep)

	if d.sim != nil {
		go d.simTerminal(ctx)
	}
	d.hup = make(chan os.Signal, 1)
	signal.Notify(d.hup, syscall.SIGHUP)
	defer signal.Stop(d.hup)
	// Ready once signed in to signaling, or retrying: a broker that is
	// down must not keep the service from starting (the LED says so).
	status := "idle"
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	if err := ep.WaitReady(wctx); err != nil {
		status = "idle, signaling not connected yet (retrying)"
	}
	wcancel()
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyReady+"\nSTATUS="+status)
	log.Info("intercomd ready", "user", d.cfg.Device.User, "version", version, "config", d.cfg.File())

	err = d.loop(ctx, events)

	// Shutdown, in reverse order, under one deadline; the door first:
	// whatever else hangs on the way out, the relay is off (and off again
	// when the panel closes).
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
	if herr := d.panel.Halt(); herr != nil {
		log.Error("halt panel", "err", herr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if cerr := ep.Close(sctx); cerr != nil {
		log.Warn("leave signaling", "err", cerr)
	}
	d.visitors.wait(sctx)
	log.Info("intercomd stopped")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// loop hands the buttons to the station on the calling loop, reports the
// state to systemd, and proves the calling loop's liveness to the systemd
// watchdog.
func (d *daemon) loop(ctx context.Context, events <-chan calling.Event) error {
	var watchdog <-chan time.Time
	if iv, err := sddaemon.SdWatchdogEnabled(false); err == nil && iv > 0 {
		t := time.NewTicker(iv / 2)
		defer t.Stop()
		watchdog = t.C
	}
	// A fault that only tests inject: the loop wedges a while after
	// READY, so the watchdog must restart the service.
	var wedge <-chan time.Time
	if d.env.faults.wedgeLoop {
		wedge = time.After(3 * time.Second)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-d.panel.Events():
			// Read against the state of the call when the agent steps it.
			d.ep.ApplyView(d.st.Button(ev))
		case ev := <-events:
			d.showHeard(ev)
			if d.metrics != nil {
				d.metrics.event(ev)
			}
			if sc, ok := ev.(calling.StateChanged); ok {
				_, _ = sddaemon.SdNotify(false, "STATUS="+sc.To.String())
			}
		case <-d.hup:
			d.reload(ctx)
		case <-wedge:
			d.log.Error("INTERCOMD_FAULT=wedge-loop: the event loop stops serving")
			<-ctx.Done()
			return ctx.Err()
		case <-watchdog:
			// Only a live calling loop earns a ping.
			tctx, cancel := context.WithTimeout(ctx, time.Second)
			if d.ep.Tick(tctx, func() {}) == nil {
				_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog)
			}
			cancel()
		}
	}
}

// reload applies what can change while running from the configuration
// file, and says what needs a restart.
func (d *daemon) reload(ctx context.Context) {
	path := d.path
	if path == "" {
		path = config.DefaultPath
	}
	next, err := config.Load(d.path)
	if err != nil {
		d.log.Error("reload: configuration not applied", "file", path, "err", err)
		return
	}
	live, restart := config.Diff(d.cfg, next)
	// The daemon applies logging and calling settings live; GPIO timings
	// are read when the panel opens.
	live = slices.DeleteFunc(live, func(k string) bool {
		if strings.HasPrefix(k, "log.") || strings.HasPrefix(k, "calling.") {
			return false
		}
		restart = append(restart, k)
		return true
	})
	if len(restart) > 0 {
		d.log.Warn("reload: these changes need a restart", "keys", restart)
	}
	d.level.Set(next.Log.Level.Slog())
	d.cfg.Log.Level = next.Log.Level
	d.cfg.Calling.InviteTimeout = next.Calling.InviteTimeout
	d.cfg.Calling.Doorbell = next.Calling.Doorbell
	d.cfg.Calling.AutoAnswer = next.Calling.AutoAnswer
	d.cfg.Calling.DoorUsers = next.Calling.DoorUsers
	d.cfg.Calling.Callers = next.Calling.Callers
	d.web.SetConfig(d.cfg)
	settings := d.stationSettings()
	d.setVisitorReaders(settings)
	d.ep.Apply(func(calling.State) []calling.Input {
		d.st.Configure(settings)
		return nil
	})
	doors := next.Calling.DoorUsers
	if doors == nil {
		doors = []string{}
	}
	if err := d.ep.Do(ctx, calling.Configure{InviteTimeout: next.Calling.InviteTimeout, DoorUsers: doors, Callers: d.cfg.Callers()}); err != nil {
		d.log.Warn("reload: calling settings", "err", err)
	}
	_, _ = sddaemon.SdNotify(false, "STATUS=configuration reloaded")
	d.log.Info("reload: applied", "keys", live)
}

// newStation builds the door station's behaviour on the panel (station).
func (d *daemon) newStation() *station.Station {
	typ := calling.Audio
	if d.cfg.Media.Video {
		typ = calling.Video
	}
	var leds []string
	for _, l := range d.cfg.GPIO.LEDs {
		leds = append(leds, l.Name)
	}
	opts := station.Options{
		Panel: station.GPIO{Panel: d.panel}, LEDs: leds, User: d.cfg.Device.User, CallType: typ,
		DoorPulse: d.cfg.GPIO.Relay.Pulse,
		Online: func() []string {
			var users []string
			if ep := d.live.Load(); ep != nil {
				users = ep.Online()
			}
			return append(users, d.pushUsers()...)
		},
		Apply: func(fn func(calling.State) []calling.Input) {
			if ep := d.live.Load(); ep != nil {
				ep.Apply(fn)
			}
		},
		OnDoorbell: func([]string) { d.pressedDoorbell() },
		Logger:     d.log,
		Settings:   d.stationSettings(),
	}
	if d.sim != nil {
		opts.OnShow = func(s calling.State, p gpio.Pattern) { fmt.Fprintf(d.env.stdout, "[%s] [LED: %s]\n", s, p) }
	}
	return station.New(opts)
}

// setVisitorReaders lets the users the doorbell rings and the door users
// read the visitor log.
func (d *daemon) setVisitorReaders(s station.Settings) {
	readers := append(slices.Clone(s.Doorbell), d.cfg.Calling.DoorUsers...)
	d.visitorReaders.Store(&readers)
}

// stationSettings are the station's settings from the configuration in use.
func (d *daemon) stationSettings() station.Settings {
	db := d.cfg.Calling.Doorbell
	users := slices.Clone(db.Users)
	if db.Group != "" {
		users = append(users, d.cfg.Signaling.Groups[db.Group]...)
	}
	return station.Settings{Doorbell: users, Callers: d.cfg.Callers(), AutoAnswer: d.cfg.Calling.AutoAnswer}
}

// showHeard tells the person at a simulated panel whom the device hears:
// once per party and call, when its voice first rises above silence.
func (d *daemon) showHeard(ev calling.Event) {
	if d.sim == nil {
		return
	}
	switch ev := ev.(type) {
	case calling.UserVoiceVolume:
		if ev.User != d.cfg.Device.User && ev.Volume >= 5 && !d.heard[ev.User] {
			d.heard[ev.User] = true
			fmt.Fprintf(d.env.stdout, "[heard: %s level=%d]\n", ev.User, ev.Volume)
		}
	case calling.CallEnd:
		clear(d.heard)
	}
}

func (d *daemon) stateDir() (string, error) {
	dir, why, err := d.cfg.StateDir(os.Getuid(), d.env.getenv)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("state directory %s (%s): %w", dir, why, err)
	}
	d.log.Info("state directory", "dir", dir, "from", why)
	return dir, nil
}

// signaling starts the embedded broker (unless an external one is
// configured) and returns how the device itself connects.
func (d *daemon) signaling(stateDir string) (mqttsig.Options, error) {
	s := d.cfg.Signaling
	var groups []string
	for g, members := range s.Groups {
		if slices.Contains(members, d.cfg.Device.User) {
			groups = append(groups, g)
		}
	}
	opts := mqttsig.Options{Prefix: s.TopicPrefix, Groups: groups, Logger: d.log.With("component", "mqtt")}
	if s.Broker == config.BrokerExternal {
		e := s.External
		opts.Brokers = []string{e.URL}
		opts.Username, opts.Password = e.Username, e.Password.Reveal()
		opts.CAFile, opts.CertFile, opts.KeyFile = e.CAFile, e.CertFile, e.KeyFile
		return opts, nil
	}
	secret, err := d.tokenSecret(stateDir)
	if err != nil {
		return opts, err
	}
	// The device admits itself with a password that lives only in this
	// process, so no long-lived device token exists anywhere.
	var pw [16]byte
	_, _ = rand.Read(pw[:])
	internal := hex.EncodeToString(pw[:])
	addr := s.Embedded.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	b, err := broker.New(broker.Options{
		Addr: addr, Secret: secret, Prefix: s.TopicPrefix, Groups: s.Groups,
		MaxConnsPerUser: s.Embedded.MaxConnectionsPerUser,
		Logger:          d.log.With("component", "broker"),
		OnMessage:       d.onBrokerMessage,
		Accept:          d.acceptToken,
		CheckCredentials: func(user string, password []byte) bool {
			return user == d.cfg.Device.User && string(password) == internal
		},
	})
	if err != nil {
		return opts, fmt.Errorf("embedded broker on %s: %w", addr, err)
	}
	if err := b.Start(); err != nil {
		return opts, fmt.Errorf("embedded broker: %w", err)
	}
	d.broker = b
	_, port, _ := net.SplitHostPort(b.Addr())
	opts.Brokers = []string{"tcp://" + net.JoinHostPort("127.0.0.1", port)}
	opts.Password = internal
	d.log.Info("embedded broker", "mqtt", b.Addr(), "websocket", "/mqtt on "+d.cfg.HTTP.Listen)
	return opts, nil
}

func (d *daemon) tokenSecret(stateDir string) ([]byte, error) {
	if s := d.cfg.Signaling.Embedded.TokenSecret; s.IsSet() {
		return []byte(s.Reveal()), nil
	}
	path := filepath.Join(stateDir, "token.key")
	secret, err := usersig.LoadOrCreateSecret(path)
	if err != nil {
		return nil, fmt.Errorf("token secret: %w", err)
	}
	return secret, nil
}

// serveHTTP serves MQTT over WebSocket (and the phone app) on the HTTP port.
func (d *daemon) serveHTTP() error {
	mux := http.NewServeMux()
	if d.broker != nil {
		mux.Handle("/mqtt", d.broker.WebSocketHandler())
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		st := calling.Idle
		if ep := d.live.Load(); ep != nil {
			st = ep.State()
		}
		fmt.Fprintln(w, st)
	})
	if d.cfg.HTTP.Metrics {
		if d.metrics == nil {
			d.metrics = newMetrics()
		}
		mux.Handle("/metrics", d.metrics.handler())
	}
	d.web = d.mountWeb(mux)
	d.mountWHEP(mux)
	if err := d.mountAPI(mux); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", d.cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", d.cfg.HTTP.Listen, err)
	}
	if ln, err = d.webTLS(ln); err != nil {
		return err
	}
	d.http = web.NewServer(web.Secure(mux), d.serverOptions())
	go func() {
		if err := d.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server", "err", err)
		}
	}()
	urls := localPhoneURLs(ln.Addr().String())
	d.log.Info("https", "listen", ln.Addr().String(), "app", strings.Join(urls, " "))
	if d.broker != nil && len(urls) > 0 {
		d.log.Info("to sign in a phone, make it a link", "command", "intercomd usersig --user NAME --origin "+strings.TrimSuffix(urls[0], "/"))
	}
	return nil
}
