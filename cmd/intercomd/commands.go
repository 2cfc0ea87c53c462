package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/hw/camera/m2m"
	"github.com/intercomd/intercomd/hw/gpio"
	"github.com/intercomd/intercomd/usersig"
	"github.com/intercomd/intercomd/web"
)

func runCheckConfig(_ context.Context, args []string, env *cmdEnv) error {
	fs := newFlags("check-config", "Validate a configuration file: exit 0 if it is valid, else print the error and exit 1.", env)
	path := fs.String("config", config.DefaultPath, "configuration file")
	resolve := fs.Bool("resolve-credentials", false, "read every systemd credential ($CREDENTIALS_DIRECTORY) and fail when one cannot be read; without it an unset $CREDENTIALS_DIRECTORY is only a warning")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 1 {
		*path = fs.Arg(0)
	}
	if _, err := os.Stat(*path); err != nil {
		return fmt.Errorf("check-config: %w", err)
	}
	cfg, err := config.LoadWith(*path, config.LoadOptions{DeferCredentials: !*resolve})
	if err != nil {
		return err
	}
	// Files the configuration names and the daemon reads at start-up.
	if _, err := voiceMessage(cfg); err != nil {
		return fmt.Errorf("%s: %w", cfg.File(), err)
	}
	for _, name := range cfg.UnresolvedCredentials() {
		fmt.Fprintf(env.stderr, "%s: warning: credential %q not read: $CREDENTIALS_DIRECTORY is not set (the service needs LoadCredential=%s:...; --resolve-credentials to require it)\n", cfg.File(), name, name)
	}
	fmt.Fprintf(env.stdout, "%s: valid (device %s, %s broker)\n", cfg.File(), cfg.Device.User, cfg.Signaling.Broker)
	return nil
}

func runUserSig(_ context.Context, args []string, env *cmdEnv) error {
	fs := newFlags("usersig", "Issue a signed user token (the password a phone or softphone signs in with to the embedded broker).", env)
	path := fs.String("config", "", "configuration file (for the state directory and token secret)")
	user := fs.String("user", "", "user ID to issue the token for (letters, digits, - and _)")
	ttl := fs.Duration("ttl", 30*24*time.Hour, "how long the token is valid")
	stateDir := fs.String("state-dir", "", "override device.state_dir")
	origin := fs.String("origin", "", "also print a sign-in link for the phone app at this address, e.g. https://door.local:8443, and its QR code")
	device := fs.String("device", "", "the device the token is for (shown by --list, revoked by --revoke --device), e.g. alice-phone")
	list := fs.Bool("list", false, "list the issued tokens (user, device, expiry, last seen) instead of issuing one")
	revoke := fs.Bool("revoke", false, "revoke the tokens of --user's --device, or with no --device every token of --user; the daemon closes their connections at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, *stateDir)
	if err != nil {
		return err
	}
	if *list {
		return listTokens(cfg, env)
	}
	if *user == "" {
		fs.Usage()
		return fmt.Errorf("usersig: --user is required")
	}
	if *revoke {
		return revokeTokens(cfg, env, *user, *device)
	}
	var secret []byte
	if s := cfg.Signaling.Embedded.TokenSecret; s.IsSet() {
		secret = []byte(s.Reveal())
	} else {
		dir, err := stateDirOf(cfg, env)
		if err != nil {
			return err
		}
		if secret, err = usersig.LoadOrCreateSecret(filepath.Join(dir, "token.key")); err != nil {
			return fmt.Errorf("usersig: %w", err)
		}
	}
	now := time.Now()
	tok, err := usersig.Sign(secret, *user, now.Add(*ttl))
	if err != nil {
		return fmt.Errorf("usersig: %w", err)
	}
	reg, err := openRegistry(cfg, env)
	if err != nil {
		return err
	}
	if err := reg.Add(tok, *user, *device, now, now.Add(*ttl)); err != nil {
		return fmt.Errorf("usersig: %w", err)
	}
	fmt.Fprintln(env.stdout, tok)
	if *origin != "" {
		link := web.SignInLink(*origin, tok)
		fmt.Fprintln(env.stdout, link)
		return printQR(env.stdout, link)
	}
	return nil
}

func runDevices(_ context.Context, args []string, env *cmdEnv) error {
	fs := newFlags("devices", "List cameras, sound devices and GPIO chips and lines.", env)
	if err := fs.Parse(args); err != nil {
		return err
	}
	w := env.stdout
	fmt.Fprintln(w, "GPIO chips:")
	chips, err := gpio.ListChips()
	if err != nil {
		fmt.Fprintf(w, "  error: %v\n", err)
	}
	if len(chips) == 0 {
		fmt.Fprintln(w, "  none (the simulated panel will be used)")
	}
	for _, c := range chips {
		fmt.Fprintf(w, "  %s [%s] %d lines\n", c.Name, c.Label, len(c.Lines))
		for _, l := range c.Lines {
			if l.Name == "" && !l.Used {
				continue
			}
			used := ""
			if l.Used {
				used = " (used by " + l.Consumer + ")"
			}
			fmt.Fprintf(w, "    %3d %s%s\n", l.Offset, l.Name, used)
		}
	}
	fmt.Fprintln(w, "Cameras:")
	cams := camera.Devices()
	if len(cams) == 0 {
		fmt.Fprintln(w, "  none (the test pattern will be used)")
	}
	for _, c := range cams {
		fmt.Fprintf(w, "  %s  %s  %s\n", c.Path, c.Name, c.Label)
		if c.Err != nil {
			fmt.Fprintf(w, "    %v\n", c.Err)
		}
		for _, f := range c.Formats {
			fmt.Fprintf(w, "    %s %dx%d %v fps\n", f.PixelFormat, f.Width, f.Height, f.FrameRates)
		}
		if fcc, err := m2m.CaptureFormats(c.Path); err == nil && len(fcc) > 0 {
			fmt.Fprintf(w, "    V4L2 formats: %s\n", strings.Join(fcc, " "))
			if slices.Contains(fcc, "H264") {
				fmt.Fprintln(w, "    sends H.264: format H264 passes it through, no encoder needed")
			}
			if slices.Contains(fcc, "MJPG") {
				if dec, why := camera.MJPEGDecoder(); why != nil {
					fmt.Fprintf(w, "    sends MJPEG: decoded by %s, several times slower than libjpeg-turbo (%v: install libturbojpeg0)\n", dec, why)
				} else {
					fmt.Fprintf(w, "    sends MJPEG: decoded by %s\n", dec)
				}
			}
		}
	}
	fmt.Fprintln(w, "H.264 encoders (camera.encoder: auto takes the first that opens):")
	for i, e := range camera.Encoders() {
		mark := " "
		if i == 0 {
			mark = "*"
		}
		if e.Kind == camera.EncoderHardware {
			fmt.Fprintf(w, "  %s hardware  %s  %s\n", mark, e.Device, e.Card)
		} else {
			fmt.Fprintf(w, "  %s openh264  (software)\n", mark)
		}
	}
	fmt.Fprintln(w, "Sound cards:")
	cards, err := os.ReadFile("/proc/asound/cards")
	if err != nil || len(cards) == 0 || string(cards) == "--- no soundcards ---\n" {
		fmt.Fprintln(w, "  none (null audio will be used)")
	} else {
		fmt.Fprint(w, string(cards))
	}
	return nil
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// openRegistry opens the registry of issued tokens in the state directory.
func openRegistry(cfg *config.Config, env *cmdEnv) (*usersig.Registry, error) {
	dir, err := stateDirOf(cfg, env)
	if err != nil {
		return nil, err
	}
	reg, err := usersig.OpenRegistry(filepath.Join(dir, "tokens.json"))
	if err != nil {
		return nil, fmt.Errorf("usersig: %w", err)
	}
	return reg, nil
}

func listTokens(cfg *config.Config, env *cmdEnv) error {
	reg, err := openRegistry(cfg, env)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(env.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tUSER\tDEVICE\tEXPIRES\tLAST SEEN\tSTATE")
	now := time.Now()
	for _, t := range reg.List() {
		state := "valid"
		switch {
		case t.Revoked:
			state = "revoked"
		case !t.Expires.After(now):
			state = "expired"
		}
		seen := "never"
		if !t.LastSeen.IsZero() {
			seen = t.LastSeen.Local().Format(time.DateTime)
		}
		dev := t.Device
		if dev == "" {
			dev = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID[:12], t.User, dev, t.Expires.Local().Format(time.DateTime), seen, state)
	}
	return w.Flush()
}

func revokeTokens(cfg *config.Config, env *cmdEnv, user, device string) error {
	reg, err := openRegistry(cfg, env)
	if err != nil {
		return err
	}
	n, err := reg.Revoke(user, device, time.Now())
	if err != nil {
		return fmt.Errorf("usersig: %w", err)
	}
	if device == "" {
		fmt.Fprintf(env.stdout, "revoked every token of %s (%d registered)\n", user, n)
	} else {
		fmt.Fprintf(env.stdout, "revoked %d token(s) of %s's device %s\n", n, user, device)
	}
	return nil
}
