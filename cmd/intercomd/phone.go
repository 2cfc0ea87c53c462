package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/intercomd/intercomd/agent"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/endpoint"
	"github.com/intercomd/intercomd/mqttsig"
	"github.com/intercomd/intercomd/usersig"
)

const phoneHelp = `A command-line softphone on the same calling core as the daemon.

It prints every calling event on stdout, one per line ("event ..."), and
reads commands from stdin, one per line:

  call USER[,USER...] [audio|video]   invite one or more users
  group GROUP USER[,USER...]          invite users through a group topic
  preview                             see and hear the caller before answering
  accept | reject | busy | hangup     answer, decline, decline as busy, end
  switch                              switch a 1-to-1 video call to audio
  door                                ask the door station to open the door
  state                               print the state
  quit                                hang up and leave

Example: intercomd phone --broker tcp://door.local:1883 --user alice --token "$(cat alice.token)" --auto-answer`

func runPhone(ctx context.Context, args []string, env *cmdEnv) error {
	fs := newFlags("phone", phoneHelp, env)
	brokerURL := fs.String("broker", "tcp://127.0.0.1:1883", "broker URL (tcp://, ssl://, ws://, wss://)")
	user := fs.String("user", "", "user ID to sign in as")
	token := fs.String("token", "", "token from 'intercomd usersig' (or the broker password)")
	username := fs.String("username", "", "broker username when it differs from the user ID")
	prefix := fs.String("prefix", "intercomd", "topic prefix")
	groups := fs.String("groups", "", "comma-separated groups this user belongs to")
	caFile := fs.String("ca", "", "CA bundle for ssl:// and wss:// brokers")
	callTo := fs.String("call", "", "call these users (comma-separated) as soon as signed in")
	audioOnly := fs.Bool("audio", false, "audio-only calls")
	autoAnswer := fs.Bool("auto-answer", false, "accept every invitation")
	hangupAfter := fs.Duration("hangup-after", 0, "hang up this long after a call connects (0: never)")
	once := fs.Bool("once", false, "exit when the first call ends")
	timeout := fs.Duration("invite-timeout", 30*time.Second, "how long to wait for an answer")
	multi := fs.Bool("multi-device", true, "stay signed in when the same user signs in elsewhere (false: a sign-in elsewhere signs this one out)")
	sound := fs.String("sound", "soft", "audio: soft (a tone or silence as the microphone), alsa (the sound card) or null")
	tone := fs.Float64("mic-tone", 0, "with --sound soft: send a sine of this frequency in Hz instead of silence")
	noMedia := fs.Bool("no-media", false, "signaling only, no WebRTC (placeholder SDP; for peers that do the same)")
	loopback := fs.Bool("loopback-media", false, "gather 127.0.0.1 ICE candidates only")
	levels := fs.Bool("levels", false, "print voice levels (VoiceVolume events, several a second)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		fs.Usage()
		return errors.New("phone: --user is required")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var gs []string
	if *groups != "" {
		gs = strings.Split(*groups, ",")
	}
	linkUp := make(chan bool, 4)
	refused := make(chan error, 1)
	log := newLogger(env.stderr, phoneLogConfig(), env.getenv)
	var mediaFactory func(post func(calling.Input)) agent.Media
	if !*noMedia {
		pm, err := newPhoneMedia(ctx, *sound, *tone, log)
		if err != nil {
			return fmt.Errorf("phone: %w", err)
		}
		defer pm.close()
		mediaFactory = pm.factory(*user, *loopback, log)
	}
	ep, err := endpoint.Start(ctx, endpoint.Options{
		Media: mediaFactory,
		MQTT: mqttsig.Options{
			Brokers: []string{*brokerURL}, Username: *username, Password: *token,
			Prefix: *prefix, Groups: gs, CAFile: *caFile,
			OnRefused: func(err error) {
				select {
				case refused <- err:
				default:
				}
			},
		},
		Calling: calling.Config{User: *user, InviteTimeout: *timeout, MultiDevice: *multi},
		Logger:  log,
		OnLink: func(up bool) {
			select {
			case linkUp <- up:
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer ccancel()
		_ = ep.Close(cctx)
	}()
	events, unsubscribe := ep.Subscribe(256)
	defer unsubscribe()

	var mu sync.Mutex
	out := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(env.stdout, format+"\n", a...)
	}
	typ := calling.Video
	if *audioOnly {
		typ = calling.Audio
	}
	// Commands wait until signed in: a script may type before the link is up.
	stdinLines := make(chan string)
	if env.stdin != nil {
		go readLines(ctx, env.stdin, stdinLines)
	}
	var lines chan string
	signedIn := make(chan struct{})
	go func() {
		if ep.WaitReady(ctx) == nil {
			close(signedIn)
		}
	}()
	var ready <-chan struct{} = signedIn
	placed := *callTo == ""
	var hangupTimer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ep.Kicked():
			out("kicked: signed in elsewhere")
			return errors.New("phone: signed in elsewhere")
		case err := <-refused:
			// The same token would be refused again: stop rather than retry.
			return fmt.Errorf("phone: %s", explainRefusal(err, *token, *user, *username, time.Now()))
		case up := <-linkUp:
			out("link %s", map[bool]string{true: "up", false: "down"}[up])
		case <-ready:
			ready = nil
			out("signed in as %s", *user)
			if env.stdin != nil {
				lines = stdinLines
			}
			if !placed {
				placed = true
				go func() {
					if err := ep.Do(ctx, calling.Call{Users: strings.Split(*callTo, ","), Type: typ}); err != nil {
						out("error %v", err)
					}
				}()
			}
		case ev := <-events:
			if _, level := ev.(calling.UserVoiceVolume); !level || *levels {
				out("event %s", calling.DescribeEvent(ev))
			}
			switch ev := ev.(type) {
			case calling.Invited:
				if *autoAnswer {
					go func() {
						if err := ep.Do(ctx, calling.Accept{}); err != nil {
							out("error %v", err)
						}
					}()
				}
			case calling.StateChanged:
				if ev.To == calling.InCall && *hangupAfter > 0 {
					hangupTimer = time.After(*hangupAfter)
				}
			case calling.CallEnd:
				hangupTimer = nil
				if *once {
					return nil
				}
			}
		case <-hangupTimer:
			hangupTimer = nil
			if err := ep.Do(ctx, calling.Hangup{}); err != nil {
				out("error %v", err)
			}
		case line, ok := <-lines:
			if !ok {
				lines = nil
				if *callTo == "" && !*autoAnswer && !*once {
					return nil // stdin closed and nothing left to do
				}
				continue
			}
			quit, err := phoneCommand(ctx, ep, line, out)
			if err != nil {
				out("error %v", err)
			}
			if quit {
				return nil
			}
		}
	}
}

// explainRefusal says why the broker refused token, as far as the token
// itself tells: the phone has no secret to verify it with.
func explainRefusal(err error, token, user, username string, now time.Time) string {
	c, ierr := usersig.Inspect(token)
	switch {
	case ierr != nil:
		return fmt.Sprintf("%v (the password is not a token of intercomd's)", err)
	case username == "" && c.User != user:
		return fmt.Sprintf("token refused: it is for user %s, not %s", c.User, user)
	case !now.Before(c.Expires):
		return fmt.Sprintf("token refused: expired at %s; make a new one with 'intercomd usersig --user %s'", c.Expires.UTC().Format(time.RFC3339), c.User)
	default:
		return "token refused: not signed by this device, or revoked"
	}
}

func phoneLogConfig() config.Log {
	return config.Log{Level: config.LogWarn, Format: config.LogFormatText}
}

func readLines(ctx context.Context, r io.Reader, lines chan<- string) {
	defer close(lines)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		select {
		case lines <- sc.Text():
		case <-ctx.Done():
			return
		}
	}
}

// phoneCommand runs one stdin command.
func phoneCommand(ctx context.Context, ep *endpoint.Endpoint, line string, out func(string, ...any)) (quit bool, err error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return false, nil
	}
	typ := calling.Video
	var in calling.Input
	switch f[0] {
	case "call":
		if len(f) < 2 {
			return false, errors.New("usage: call USER[,USER...] [audio|video]")
		}
		if len(f) > 2 && f[2] == "audio" {
			typ = calling.Audio
		}
		in = calling.Call{Users: strings.Split(f[1], ","), Type: typ}
	case "group":
		if len(f) < 3 {
			return false, errors.New("usage: group GROUP USER[,USER...] [audio|video]")
		}
		if len(f) > 3 && f[3] == "audio" {
			typ = calling.Audio
		}
		in = calling.Call{Users: strings.Split(f[2], ","), Group: f[1], Type: typ}
	case "accept":
		in = calling.Accept{}
	case "preview":
		in = calling.Preview{}
	case "reject":
		in = calling.Reject{}
	case "busy":
		in = calling.LineBusy{}
	case "hangup":
		in = calling.Hangup{}
	case "switch":
		in = calling.SwitchToAudio{}
	case "door":
		in = calling.OpenDoor{}
	case "state":
		out("state %s", ep.State())
		return false, nil
	case "quit", "exit":
		return true, nil
	default:
		return false, fmt.Errorf("unknown command %q (call, group, preview, accept, reject, busy, hangup, switch, door, state, quit)", f[0])
	}
	return false, ep.Do(ctx, in)
}
