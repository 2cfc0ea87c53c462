package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/intercomd/intercomd/usersig"
	"github.com/intercomd/intercomd/visitorlog"
	"github.com/intercomd/intercomd/web"
)

func TestAPIVisitorLogOnlyForSignedInUsers(t *testing.T) {
	secret := []byte("api-test-secret-0123456789abcdef")
	l, err := visitorlog.Open(visitorlog.Options{MaxEntries: 10, MaxBytes: 1 << 20, Disk: visitorlog.Dir(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seen, _ := l.Ring(at)
	if err := l.Snapshot(seen, []byte("\xff\xd8jpeg\xff\xd9")); err != nil {
		t.Fatal(err)
	}
	_ = l.Answered(seen, "alice")
	_ = l.End(seen, visitorlog.Answered, 3*time.Second)
	unseen, _ := l.Ring(at.Add(time.Minute))
	_ = l.End(unseen, visitorlog.Missed, 0)
	const ogg = "OggS\x00\x02 a message"
	if err := l.Message(unseen, []byte(ogg), 4*time.Second); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(web.NewAPI(web.APIOptions{Secret: secret, Visitors: l,
		Accept: func(_ string, c usersig.Claims) string {
			if c.User == "revoked" {
				return "revoked"
			}
			return ""
		}}))
	defer srv.Close()
	good, _ := usersig.Sign(secret, "bob", time.Now().Add(time.Hour))
	expired, _ := usersig.Sign(secret, "bob", time.Now().Add(-time.Hour))
	other, _ := usersig.Sign([]byte("another-secret-0123456789abcdef!"), "bob", time.Now().Add(time.Hour))
	revoked, _ := usersig.Sign(secret, "revoked", time.Now().Add(time.Hour))
	get := func(path, tok string) (int, string, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), b
	}

	for _, path := range []string{"/api/visitors", "/api/visitors/" + seen + "/snapshot", "/api/visitors/" + unseen + "/message"} {
		for name, tok := range map[string]string{"no token": "", "a forged token": good[:len(good)-3] + "AAA",
			"an expired token": expired, "another device's token": other, "a revoked token": revoked} {
			if code, _, body := get(path, tok); code != http.StatusUnauthorized {
				t.Errorf("GET %s with %s: %d %s, want 401", path, name, code, body)
			}
		}
	}

	code, ct, body := get("/api/visitors", good)
	var list struct{ Visitors []visitorlog.Entry }
	if code != http.StatusOK || ct != "application/json" || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET /api/visitors: %d %s %s", code, ct, body)
	}
	if len(list.Visitors) != 2 || list.Visitors[0].ID != unseen || list.Visitors[0].Outcome != visitorlog.Missed ||
		!list.Visitors[0].Message || list.Visitors[0].MessageMS != 4000 || list.Visitors[1].Message ||
		list.Visitors[1].AnsweredBy != "alice" || !list.Visitors[1].Snapshot || list.Visitors[1].DurationMS != 3000 {
		t.Errorf("visitors: %s", body)
	}
	if code, _, body := get("/api/visitors?limit=1", good); code != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Visitors) != 1 {
		t.Errorf("limit=1: %d %s", code, body)
	}
	if code, _, _ := get("/api/visitors?limit=-1", good); code != http.StatusBadRequest {
		t.Errorf("limit=-1: %d, want 400", code)
	}
	if code, ct, body := get("/api/visitors/"+seen+"/snapshot", good); code != http.StatusOK || ct != "image/jpeg" || string(body) != "\xff\xd8jpeg\xff\xd9" {
		t.Errorf("snapshot: %d %s %q", code, ct, body)
	}
	for _, id := range []string{unseen, "20260102030405-aaaaaaaaaaaaaaaa", "..%2f..%2ftoken.key", "x"} {
		if code, _, body := get("/api/visitors/"+id+"/snapshot", good); code != http.StatusNotFound {
			t.Errorf("snapshot of %s: %d %s, want 404", id, code, body)
		}
	}
	if code, ct, body := get("/api/visitors/"+unseen+"/message", good); code != http.StatusOK || ct != "audio/ogg" || string(body) != ogg {
		t.Errorf("message: %d %s %q", code, ct, body)
	}
	for _, id := range []string{seen, "20260102030405-aaaaaaaaaaaaaaaa", "..%2f..%2f" + unseen, "x"} {
		if code, _, body := get("/api/visitors/"+id+"/message", good); code != http.StatusNotFound {
			t.Errorf("message of %s: %d %s, want 404", id, code, body)
		}
	}

	off := httptest.NewServer(web.NewAPI(web.APIOptions{Secret: secret}))
	defer off.Close()
	req, _ := http.NewRequest("GET", off.URL+"/api/visitors", nil)
	req.Header.Set("Authorization", "Bearer "+good)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("visitor log off: %d, want 404", resp.StatusCode)
	}
}
