package systemd

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/config"
)

// maxExposure is the highest acceptable overall exposure that
// systemd-analyze security reports for the unit.
const maxExposure = 2.5

// requireTool returns the path of a tool, skipping the test loudly when it is
// missing, or failing it under CI.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := name + " not found: install the Debian package " + pkg
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	return p
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// verifyRoot builds a scratch root holding the host's system units (for the
// unit's dependencies), an executable /usr/bin/intercomd and the given unit
// text, and returns it.
func verifyRoot(t *testing.T, unit []byte, withBinary bool) string {
	t.Helper()
	root := t.TempDir()
	units := filepath.Join(root, "usr/lib/systemd/system")
	if err := os.MkdirAll(units, 0o755); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, dir := range []string{"/lib/systemd/system", "/usr/lib/systemd/system"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".target") && !strings.HasSuffix(e.Name(), ".slice") && !strings.HasSuffix(e.Name(), ".socket") {
				continue
			}
			found = true
			src := filepath.Join(dir, e.Name())
			if fi, err := os.Stat(src); err != nil || fi.IsDir() {
				continue
			}
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(units, e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !found {
		t.Fatal("no systemd units on this host to verify against (/lib/systemd/system)")
	}
	if err := os.MkdirAll(filepath.Join(root, "etc/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/intercomd.service"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	// Stand-ins for the programs the unit runs: verify checks that each
	// exists and is executable.
	bins := []string{"bin/kill"}
	if withBinary {
		bins = append(bins, "usr/bin/intercomd")
	}
	for _, b := range bins {
		bin := filepath.Join(root, b)
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readUnit(t *testing.T) []byte {
	t.Helper()
	unit, err := os.ReadFile("intercomd.service")
	if err != nil {
		t.Fatal(err)
	}
	return unit
}

func analyzeVerify(ctx context.Context, tool, root string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, tool, "verify", "--man=no", "--root="+root, "intercomd.service")
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice")
	return cmd.CombinedOutput()
}

func TestUnitVerifies(t *testing.T) {
	tool := requireTool(t, "systemd-analyze", "systemd")
	ctx := testContext(t)
	out, err := analyzeVerify(ctx, tool, verifyRoot(t, readUnit(t), true))
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestVerifyCatchesMistakes proves the verify check can fail: a misspelt
// setting, a bad value and a missing binary are each reported.
func TestVerifyCatchesMistakes(t *testing.T) {
	tool := requireTool(t, "systemd-analyze", "systemd")
	ctx := testContext(t)
	unit := readUnit(t)
	cases := []struct {
		name       string
		unit       []byte
		withBinary bool
		want       string
	}{
		{"unknown setting", bytes.Replace(unit, []byte("WatchdogSec="), []byte("WatchdogSecs="), 1), true, "Unknown key"},
		{"bad type", bytes.Replace(unit, []byte("Type=notify"), []byte("Type=notifyy"), 1), true, "service type"},
		{"missing binary", unit, false, "/usr/bin/intercomd"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := analyzeVerify(ctx, tool, verifyRoot(t, c.unit, c.withBinary))
			if err == nil && len(bytes.TrimSpace(out)) == 0 {
				t.Fatalf("verify accepted a broken unit")
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("verify output does not mention %q:\n%s", c.want, out)
			}
		})
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for intercomd\.service: ([0-9.]+)`)

func exposure(ctx context.Context, t *testing.T, tool, path string) (float64, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, tool, "security", "--offline=yes", "--no-pager", path)
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	// security exits non-zero only when a --threshold is exceeded.
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure in:\n%s", out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v, string(out)
}

func TestUnitExposure(t *testing.T) {
	tool := requireTool(t, "systemd-analyze", "systemd")
	ctx := testContext(t)
	got, report := exposure(ctx, t, tool, "intercomd.service")
	t.Logf("overall exposure %.1f (limit %.1f)", got, maxExposure)
	if got > maxExposure {
		t.Fatalf("exposure %.1f > %.1f:\n%s", got, maxExposure, report)
	}

	// The rating sees the sandbox: without it the same service rates far
	// worse, so the check above measures something.
	var bare []string
	for _, line := range strings.Split(string(readUnit(t)), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && sandboxKey(k) {
			continue
		}
		bare = append(bare, line)
	}
	path := filepath.Join(t.TempDir(), "intercomd.service")
	if err := os.WriteFile(path, []byte(strings.Join(bare, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	worse, _ := exposure(ctx, t, tool, path)
	if worse <= maxExposure {
		t.Fatalf("the unit without its sandbox still rates %.1f: the rating does not see the settings", worse)
	}
}

func sandboxKey(k string) bool {
	return strings.HasPrefix(k, "Protect") || strings.HasPrefix(k, "Private") || strings.HasPrefix(k, "Restrict") ||
		strings.HasPrefix(k, "SystemCall") || strings.HasPrefix(k, "Device") || k == "CapabilityBoundingSet" ||
		k == "NoNewPrivileges" || k == "MemoryDenyWriteExecute" || k == "LockPersonality" || k == "UMask"
}

// unitSettings parses the unit into section.key -> values, in order.
func unitSettings(t *testing.T) map[string][]string {
	t.Helper()
	settings := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(readUnit(t)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("odd unit line %q", line)
			}
			settings[section+"."+k] = append(settings[section+"."+k], v)
		}
	}
	return settings
}

// TestUnitKeepsWhatTheDaemonNeeds pins the settings that the daemon's
// hardware and libraries depend on; each was once a cause of failure.
func TestUnitKeepsWhatTheDaemonNeeds(t *testing.T) {
	s := unitSettings(t)
	want := map[string]string{
		"Service.Type":            "notify",
		"Service.ExecStart":       "/usr/bin/intercomd run --config /etc/intercomd/intercomd.yaml",
		"Service.ExecStopPost":    "/usr/bin/intercomd relay-off --config /etc/intercomd/intercomd.yaml",
		"Service.Restart":         "on-failure",
		"Service.User":            "intercomd",
		"Service.StateDirectory":  "intercomd",
		"Service.DevicePolicy":    "closed",
		"Service.ProtectSystem":   "strict",
		"Service.NoNewPrivileges": "yes",
		// pion enumerates interfaces over netlink.
		"Service.RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"Install.WantedBy":                "multi-user.target",
	}
	for k, v := range want {
		if got := s[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, dev := range []string{"char-video4linux rw", "char-alsa rw", "char-gpiochip rw"} {
		if !slices.Contains(s["Service.DeviceAllow"], dev) {
			t.Errorf("DeviceAllow lacks %q", dev)
		}
	}
	groups := strings.Fields(strings.Join(s["Service.SupplementaryGroups"], " "))
	for _, g := range []string{"video", "audio", "gpio"} {
		if !slices.Contains(groups, g) {
			t.Errorf("SupplementaryGroups lacks %s", g)
		}
	}
	if got := s["Service.CapabilityBoundingSet"]; len(got) != 1 || got[0] != "" {
		t.Errorf("CapabilityBoundingSet = %q, want empty", got)
	}
	if len(s["Service.WatchdogSec"]) != 1 {
		t.Errorf("WatchdogSec missing")
	}
	// The armv7 openh264 reads /proc/cpuinfo; audio threads set their
	// scheduling policy (@resources); the camera and sound devices must stay
	// visible.
	if _, ok := s["Service.ProcSubset"]; ok {
		t.Errorf("ProcSubset set: the armv7 encoder reads /proc/cpuinfo")
	}
	if _, ok := s["Service.PrivateDevices"]; ok {
		t.Errorf("PrivateDevices set: it hides /dev/video*, /dev/snd and /dev/gpiochip*")
	}
	for _, f := range s["Service.SystemCallFilter"] {
		if strings.HasPrefix(f, "~") && strings.Contains(f, "@resources") {
			t.Errorf("SystemCallFilter denies @resources: %q", f)
		}
	}
	if !slices.Contains(s["Service.SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter lacks @system-service")
	}
}

// TestUnitBoundsResources: under the default limit of 1,024 descriptors,
// 1,011 idle HTTPS connections locked every phone out. The unit gives the
// daemon room beyond what the HTTP port may hold, and bounds its memory to
// what a Raspberry Pi can spare.
func TestUnitBoundsResources(t *testing.T) {
	s := unitSettings(t)
	one := func(k string) string {
		t.Helper()
		if len(s["Service."+k]) != 1 {
			t.Fatalf("%s set %d times, want once", k, len(s["Service."+k]))
		}
		return s["Service."+k][0]
	}
	nofile, err := strconv.Atoi(one("LimitNOFILE"))
	if err != nil {
		t.Fatalf("LimitNOFILE: %v", err)
	}
	// http.max_connections is at most 4096; the default is far below.
	if nofile < 4096+1024 || nofile < 4*config.DefaultMaxConnections {
		t.Errorf("LimitNOFILE=%d leaves no room beside http.max_connections (default %d, at most 4096)", nofile, config.DefaultMaxConnections)
	}
	high, hard := megabytes(t, one("MemoryHigh")), megabytes(t, one("MemoryMax"))
	if hard < 128 || hard > 384 {
		t.Errorf("MemoryMax=%dM: want room for a call with several viewers (128M) and for the rest of a 512 MB Pi (384M at most)", hard)
	}
	if high >= hard {
		t.Errorf("MemoryHigh=%dM is not below MemoryMax=%dM", high, hard)
	}
	var gomem string
	for _, e := range s["Service.Environment"] {
		if v, ok := strings.CutPrefix(e, "GOMEMLIMIT="); ok {
			gomem = v
		}
	}
	if m, ok := strings.CutSuffix(gomem, "MiB"); !ok {
		t.Errorf("GOMEMLIMIT=%q, want NMiB", gomem)
	} else if n, err := strconv.Atoi(m); err != nil || n >= high {
		t.Errorf("GOMEMLIMIT=%s: the collector must work harder before the kernel reclaims (MemoryHigh=%dM)", gomem, high)
	}
}

// megabytes reads a systemd size with an M or G suffix.
func megabytes(t *testing.T, v string) int {
	t.Helper()
	mul := 1
	switch {
	case strings.HasSuffix(v, "G"):
		mul = 1024
	case !strings.HasSuffix(v, "M"):
		t.Fatalf("size %q: want M or G", v)
	}
	n, err := strconv.Atoi(v[:len(v)-1])
	if err != nil {
		t.Fatalf("size %q: %v", v, err)
	}
	return n * mul
}

// TestSysusersCreatesUser applies intercomd.sysusers to a scratch root with
// the host's account databases and checks the user and its groups.
func TestSysusersCreatesUser(t *testing.T) {
	tool := requireTool(t, "systemd-sysusers", "systemd")
	ctx := testContext(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A minimal Debian account database: root, and the video and audio groups.
	files := map[string]string{
		"passwd":  "root:x:0:0:root:/root:/bin/bash\n",
		"group":   "root:x:0:\nvideo:x:44:\naudio:x:29:\n",
		"shadow":  "root:*:19000:0:99999:7:::\n",
		"gshadow": "root:*::\nvideo:*::\naudio:*::\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf, err := filepath.Abs("intercomd.sysusers")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, tool, "--root="+root, conf).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	group, err := os.ReadFile(filepath.Join(root, "etc/group"))
	if err != nil {
		t.Fatal(err)
	}
	var user []string
	for _, l := range strings.Split(string(passwd), "\n") {
		if f := strings.Split(l, ":"); f[0] == "intercomd" {
			user = f
		}
	}
	if user == nil {
		t.Fatalf("no intercomd user in passwd:\n%s", passwd)
	}
	if uid, _ := strconv.Atoi(user[2]); uid <= 0 || uid >= 1000 {
		t.Errorf("intercomd uid %s is not a system uid", user[2])
	}
	if user[5] != "/var/lib/intercomd" {
		t.Errorf("home %q, want /var/lib/intercomd", user[5])
	}
	members := map[string][]string{}
	for _, l := range strings.Split(string(group), "\n") {
		if f := strings.Split(l, ":"); len(f) == 4 {
			members[f[0]] = strings.Split(f[3], ",")
		}
	}
	for _, g := range []string{"video", "audio", "gpio"} {
		if !slices.Contains(members[g], "intercomd") {
			t.Errorf("intercomd is not in group %s: %q", g, members[g])
		}
	}
	if _, ok := members["intercomd"]; !ok {
		t.Errorf("no intercomd group")
	}
}

// TestUdevRuleParses checks the GPIO rule with udevadm's own parser when it
// has one (udevadm verify, systemd 254 and later), and its fields otherwise.
func TestUdevRuleParses(t *testing.T) {
	rule, err := os.ReadFile("60-intercomd-gpio.rules")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(rule), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("want one rule, got %q", lines)
	}
	for _, want := range []string{`SUBSYSTEM=="gpio"`, `GROUP="gpio"`, `MODE="0660"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("rule lacks %s: %s", want, lines[0])
		}
	}
	if udevadm, err := exec.LookPath("udevadm"); err == nil {
		ctx := testContext(t)
		if help, _ := exec.CommandContext(ctx, udevadm, "--help").CombinedOutput(); strings.Contains(string(help), "verify") {
			out, err := exec.CommandContext(ctx, udevadm, "verify", "60-intercomd-gpio.rules").CombinedOutput()
			if err != nil {
				t.Fatalf("udevadm verify: %v\n%s", err, out)
			}
		}
	}
}
