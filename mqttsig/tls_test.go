package mqttsig_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/internal/leaktest"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/mqttsig"
)

// TestTLS runs signaling through Mosquitto's TLS listeners: ssl:// and
// wss:// verified against a CA file, and a listener that requires a client
// certificate.
func TestTLS(t *testing.T) {
	leaktest.Check(t)
	env, tl := mqtttest.StartMosquittoTLS(t, testUsers, testGroups)
	for _, c := range []struct {
		name, url  string
		clientCert bool
	}{
		{"ssl", tl.URL(), false},
		{"wss", tl.WSSURL(), false},
		{"ssl with client certificate", tl.MutualURL(), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			over := func(o *mqttsig.Options) {
				o.Brokers = []string{c.url}
				o.CAFile = tl.CAFile
				if c.clientCert {
					o.CertFile, o.KeyFile = tl.CertFile, tl.KeyFile
				}
			}
			alice, bob := env.Client("alice", over), env.Client("bob", over)
			if err := alice.Send("bob", []byte("over "+c.name)); err != nil {
				t.Fatal(err)
			}
			if in := next(ctx, t, bob); in.From != "alice" || string(in.Payload) != "over "+c.name {
				t.Fatalf("bob got %+v", in)
			}
			if err := bob.SendGroup("family", []byte("group over "+c.name)); err != nil {
				t.Fatal(err)
			}
			if in := next(ctx, t, alice); in.Kind != mqttsig.Group || in.From != "bob" || string(in.Payload) != "group over "+c.name {
				t.Fatalf("alice got %+v", in)
			}
		})
	}

	// What must not connect, and what the log says about it.
	for _, c := range []struct {
		name, url string
		edit      func(*mqttsig.Options)
		logged    string // by the client
		broker    string // by the broker, if anything
	}{
		{"broker certificate from an untrusted CA", tl.URL(),
			func(o *mqttsig.Options) { o.CAFile = tl.OtherCAFile }, "certificate signed by unknown authority", ""},
		{"system CA pool only", tl.WSSURL(),
			func(o *mqttsig.Options) {}, "certificate signed by unknown authority", ""},
		// The client sees the broker's alert or, when the broker closes
		// first, a reset; the broker always says why.
		{"no client certificate where one is required", tl.MutualURL(),
			func(o *mqttsig.Options) { o.CAFile = tl.CAFile }, "mqtt connect attempt failed", "peer did not return a certificate"},
	} {
		t.Run("refused: "+c.name, func(t *testing.T) {
			ctx := testCtx(t)
			logs := &mqtttest.LogBuffer{}
			o := env.ClientOptions("carol")
			o.Brokers = []string{c.url}
			o.Logger = slog.New(slog.NewTextHandler(logs, nil))
			c.edit(&o)
			cl, err := mqttsig.Dial(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close(ctx)
			short, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := cl.WaitConnected(short); err == nil {
				t.Fatal("connected")
			}
			if !strings.Contains(logs.String(), c.logged) {
				t.Fatalf("log does not say %q:\n%s", c.logged, logs)
			}
			if c.broker != "" && !strings.Contains(env.Logs.String(), c.broker) {
				t.Fatalf("the broker's log does not say %q", c.broker)
			}
		})
	}
}

// TestTLSFilesChecked: bad TLS files are refused by Dial, naming the file.
func TestTLSFilesChecked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyOnly := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyOnly, []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		edit func(*mqttsig.Options)
		want string
	}{
		"missing CA file":   {func(o *mqttsig.Options) { o.CAFile = filepath.Join(dir, "nope.pem") }, "nope.pem"},
		"CA file not PEM":   {func(o *mqttsig.Options) { o.CAFile = notPEM }, "ca.txt"},
		"unusable key pair": {func(o *mqttsig.Options) { o.CertFile, o.KeyFile = keyOnly, keyOnly }, "key.pem"},
	} {
		o := mqttsig.Options{Brokers: []string{"ssl://127.0.0.1:1"}, User: "alice"}
		c.edit(&o)
		cl, err := mqttsig.Dial(ctx, o)
		if err == nil {
			_ = cl.Close(ctx)
			t.Errorf("%s: Dial accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not name %s", name, err, c.want)
		}
	}
}
