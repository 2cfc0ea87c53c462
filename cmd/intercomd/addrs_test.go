package main

import (
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestPhoneURLs(t *testing.T) {
	ifaces := []net.Addr{
		&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)},
		&net.IPNet{IP: net.ParseIP("192.168.1.20"), Mask: net.CIDRMask(24, 32)},
		&net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)},
	}
	for _, tc := range []struct {
		addr, host string
		want       []string
	}{
		{"[::]:8443", "door", []string{"https://192.168.1.20:8443/", "https://door.local:8443/"}},
		{":8443", "door.example.org", []string{"https://192.168.1.20:8443/", "https://door.local:8443/"}},
		{"0.0.0.0:8443", "localhost", []string{"https://192.168.1.20:8443/"}},
		{"127.0.0.1:41234", "door", []string{"https://127.0.0.1:41234/"}},
	} {
		if got := phoneURLs(tc.addr, ifaces, tc.host); !slices.Equal(got, tc.want) {
			t.Errorf("phoneURLs(%q, host %q) = %q, want %q", tc.addr, tc.host, got, tc.want)
		}
	}
}

func TestStdinButton(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, tc := range []struct {
		name  string
		stdin io.Reader
		ok    bool
		say   string
	}{
		{"nil", nil, false, "cannot be pressed"},
		{"/dev/null", null, false, "/dev/null"},
		{"pipe", r, true, "write a line to stdin"},
		{"reader", strings.NewReader("\n"), true, "write a line to stdin"},
	} {
		ok, say := stdinButton(tc.stdin)
		if ok != tc.ok || !strings.Contains(say, tc.say) {
			t.Errorf("%s: %v %q, want %v and %q", tc.name, ok, say, tc.ok, tc.say)
		}
		if !ok && strings.Contains(say, "Enter") {
			t.Errorf("%s: says to press Enter where Enter does nothing: %q", tc.name, say)
		}
	}
}
