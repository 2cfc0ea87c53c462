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
