package web_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/usersig"
	"github.com/intercomd/intercomd/web"
)

// fuzzSecret signs the fuzz targets' tokens: fixed, so the corpus holds
// valid ones.
var fuzzSecret = []byte("fuzz-secret-0123456789abcdef0123456789")

// fuzzNow is the fuzz targets' clock: the corpus's tokens never expire.
func fuzzNow() time.Time { return time.Unix(1_800_000_000, 0) }

func fuzzToken(tb testing.TB, user string) string {
	tb.Helper()
	tok, err := usersig.Sign(fuzzSecret, user, fuzzNow().Add(time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut, http.MethodHead, http.MethodOptions}

// FuzzAPI sends any request to the /api/ handlers: method, path and query,
// Authorization header, body. They never panic, answer a JSON error for
// every refusal, and do nothing for a request whose token does not verify.
func FuzzAPI(f *testing.F) {
	tok := fuzzToken(f, "alice")
	for _, s := range []struct {
		m          byte
		path, auth string
		body       []byte
	}{
		{0, "/api/push", "", nil},
		{1, "/api/token", "Bearer " + tok, nil},
		{0, "/api/calls/c1/snapshot?k=abc", "Bearer " + tok, nil},
		{1, "/api/push/subscriptions", "Bearer " + tok, []byte(`{"device":"p1","subscription":{"endpoint":"https://push.example.org/x","keys":{"p256dh":"BA","auth":"AA"}}}`)},
		{2, "/api/push/subscriptions/p1", "Bearer " + tok, nil},
		{1, "/api/calls/c1/decline", "Bearer " + tok, nil},
		{1, "/api/calls/c1/invite", "Bearer  " + tok + " ", nil},
		{1, "/api/calls/c1/ringing", "Bearer v1.alice.1.AAAA", nil},
		{1, "/api/calls/%2e%2e/decline", "bearer " + tok, []byte("{")},
		{1, "/api/push/subscriptions", "Bearer " + tok, bytes.Repeat([]byte("["), 10000)},
	} {
		f.Add(s.m, s.path, s.auth, s.body)
	}
	var actions int
	act := func(call, user string) error {
		actions++
		if call == "ok" {
			return nil
		}
		if call == "fail" {
			return errors.New("broker gone")
		}
		return web.ErrNotRinging
	}
	api := web.NewAPI(web.APIOptions{
		Secret: fuzzSecret, Now: fuzzNow,
		Accept: func(_ string, c usersig.Claims) string {
			if c.User == "mallory" {
				return "revoked"
			}
			return ""
		},
		Decline: act, Reinvite: act, Ringing: act,
		Snapshot: func(call, user, key string) ([]byte, error) {
			actions++
			if key == "k" {
				return []byte("\xff\xd8jpeg"), nil
			}
			return nil, web.ErrNotRinging
		},
		Renew: func(tok string, c usersig.Claims) (string, time.Time, error) {
			actions++
			return tok, c.Expires, nil
		},
	})
	tokens := web.Tokens{Secret: fuzzSecret, Now: fuzzNow}
	f.Fuzz(func(t *testing.T, m byte, target, auth string, body []byte) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(u.Path, "/api/") {
			return
		}
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		req := &http.Request{Method: method, URL: u, RequestURI: target, Header: http.Header{}, Host: "door",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody}
		if body != nil {
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		_, _, verr := tokens.Verify(req)
		before := actions
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		code := rec.Code
		if code < 200 || code > 599 {
			t.Fatalf("status %d", code)
		}
		if verr != nil && actions != before {
			t.Fatalf("%s %s acted with a refused token (%v)", method, target, verr)
		}
		if verr != nil && code < 300 && !((method == http.MethodGet || method == http.MethodHead) && u.Path == "/api/push") {
			t.Fatalf("%s %s answered %d with a refused token (%v)", method, target, code, verr)
		}
		if code == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("401 without WWW-Authenticate")
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && rec.Body.Len() > 0 {
			var v any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s %s: a JSON answer that is not JSON: %q", method, target, rec.Body.String())
			}
		}
	})
}

// FuzzBearerToken reads any Authorization header, as /api/ and
// /config.json do: a header is accepted only for a token of the secret,
// unexpired, not revoked; the app's configuration goes to those alone.
func FuzzBearerToken(f *testing.F) {
	tok := fuzzToken(f, "alice")
	for _, h := range []string{"", "Bearer " + tok, "Bearer " + tok + "x", "Bearer\t" + tok, "bearer " + tok,
		"Bearer " + fuzzToken(f, "mallory"), "Bearer v1.alice.99999999999999999999.AAAA", "Bearer " + strings.Repeat("v1.", 1000),
		"Basic YWxpY2U6cHc=", "Bearer  " + tok + "\r\n"} {
		f.Add(h)
	}
	tokens := web.Tokens{Secret: fuzzSecret, Now: fuzzNow, Accept: func(_ string, c usersig.Claims) string {
		if c.User == "mallory" {
			return "revoked"
		}
		return ""
	}}
	app := web.New(testConfig(f), nil)
	app.SetTokens(tokens)
	f.Fuzz(func(t *testing.T, auth string) {
		req := httptest.NewRequest(http.MethodGet, "/config.json", nil)
		req.Header["Authorization"] = []string{auth}
		got, c, err := tokens.Verify(req)
		if err == nil {
			rest, ok := strings.CutPrefix(auth, "Bearer ")
			if !ok || strings.TrimSpace(rest) != got {
				t.Fatalf("accepted %q: not the bearer token of the header", auth)
			}
			vc, verr := usersig.Verify(fuzzSecret, got, fuzzNow())
			if verr != nil || vc != c || c.User == "mallory" {
				t.Fatalf("accepted %q (%+v): %v", auth, c, verr)
			}
		}
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		if (rec.Code == http.StatusOK) != (err == nil) {
			t.Fatalf("config.json answered %d for %q (verify: %v)", rec.Code, auth, err)
		}
		if err != nil && strings.Contains(rec.Body.String(), "door_users") {
			t.Fatalf("configuration told to a refused token")
		}
	})
}
