package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/usersig"
)

// The softphone from flags and stdin, as a script uses it: it signs in,
// auto-answers the doorbell, hangs up after a while, and calls the door
// from a typed command, which the door answers with its button.
func TestPhoneCommand(t *testing.T) {
	d := startDaemon(t, "")
	secret, err := usersig.LoadOrCreateSecret(filepath.Join(d.dir, "state", "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := usersig.Sign(secret, "alice", time.Now().Add(time.Hour))
	stdinR, stdinW := io.Pipe()
	out := &syncBuffer{}
	env := &cmdEnv{stdin: stdinR, stdout: out, stderr: &syncBuffer{}, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- dispatch(ctx, []string{"phone", "--broker", d.mqttURL, "--user", "alice", "--token", tok,
			"--auto-answer", "--hangup-after", "1s", "--loopback-media", "--mic-tone", "880"}, env)
	}()
	defer func() {
		cancel()
		stdinW.Close()
		<-done
	}()
	out.waitFor(t, "signed in as alice", 20*time.Second)
	d.ringDoorbell(t, func() bool { return strings.Contains(out.String(), "event Invited sponsor=door") })
	out.waitFor(t, "event State ringing -> in_call", 10*time.Second)
	out.waitFor(t, "event CallEnd reason=hangup", 10*time.Second)
	if strings.Contains(out.String(), "VoiceVolume") {
		t.Error("voice levels printed without --levels")
	}
	io.WriteString(stdinW, "call door audio\n")
	d.stdout.waitFor(t, "[ringing]", 10*time.Second)
	io.WriteString(d.stdin, "\n") // the door answers with its button
	out.waitFor(t, "event State dialing -> in_call", 10*time.Second)
	d.stdout.waitFor(t, "[heard: alice", 10*time.Second)
	io.WriteString(stdinW, "hangup\nquit\n")
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("phone: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("phone did not quit")
	}
}

// A refused token stops the softphone at once with the reason the token
// itself tells, instead of retrying forever.
func TestPhoneTokenRefused(t *testing.T) {
	d := startDaemon(t, "")
	secret, err := usersig.LoadOrCreateSecret(filepath.Join(d.dir, "state", "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := usersig.Sign(secret, "alice", time.Now().Add(-time.Minute))
	bobs, _ := usersig.Sign(secret, "bob", time.Now().Add(time.Hour))
	foreign, _ := usersig.Sign([]byte("another device's secret, 32 byte"), "alice", time.Now().Add(time.Hour))
	for _, tc := range []struct{ name, token, want string }{
		{"expired", expired, "token refused: expired at "},
		{"another user's", bobs, "token refused: it is for user bob, not alice"},
		{"another device's", foreign, "token refused: not signed by this device, or revoked"},
		{"not a token", "hunter2", "not a token of intercomd's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &cmdEnv{stdout: &syncBuffer{}, stderr: &syncBuffer{}, getenv: func(string) string { return "" }}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := dispatch(ctx, []string{"phone", "--broker", d.mqttURL, "--user", "alice", "--token", tc.token, "--no-media"}, env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("phone ended with %v, want an error with %q", err, tc.want)
			}
			if ctx.Err() != nil {
				t.Fatal("phone kept retrying until the test's deadline")
			}
		})
	}
}
