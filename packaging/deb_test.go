package packaging

import (
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chroot is a throwaway copy-on-write view of the cached Debian root.
type chroot struct {
	dir string
}

// newChroot mounts an overlay of the packaging/vmroot tree, with /proc and
// /dev, undone when the test ends.
func newChroot(ctx context.Context, t *testing.T) *chroot {
	t.Helper()
	requireRoot(t)
	requireTool(t, "debootstrap", "debootstrap")
	lower := script(ctx, t, "vmroot")
	tmp := t.TempDir()
	rw := filepath.Join(tmp, "rw")
	merged := filepath.Join(tmp, "root")
	for _, d := range []string{rw, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount := func(src, dst, fstype string, flags uintptr, data string) {
		t.Helper()
		if err := syscall.Mount(src, dst, fstype, flags, data); err != nil {
			t.Fatalf("mount %s on %s: %v", fstype, dst, err)
		}
		t.Cleanup(func() {
			if err := syscall.Unmount(dst, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", dst, err)
			}
		})
	}
	// The upper layer lives on its own tmpfs: overlayfs refuses some
	// file systems as upper.
	mount("tmpfs", rw, "tmpfs", 0, "mode=0755")
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(rw, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+rw+"/upper,workdir="+rw+"/work")
	mount("proc", filepath.Join(merged, "proc"), "proc", 0, "")
	mount("/dev", filepath.Join(merged, "dev"), "", syscall.MS_BIND|syscall.MS_REC, "")
	// Nothing starts services in a chroot.
	c := &chroot{dir: merged}
	c.write(t, "usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755)
	return c
}

func (c *chroot) path(p string) string { return filepath.Join(c.dir, p) }

func (c *chroot) write(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(c.path(p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.path(p), []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// run runs a command in the chroot and returns its combined output.
func (c *chroot) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "chroot", append([]string{c.dir}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *chroot) must(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(ctx, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *chroot) exists(p string) bool {
	_, err := os.Lstat(c.path(p))
	return err == nil
}

// TestDebInstallUpgradePurge installs the amd64 package in a Debian chroot,
// reinstalls it over an edited conffile and purges it, checking the user,
// groups, files, enablement and cleanup at each step.
func TestDebInstallUpgradePurge(t *testing.T) {
	requireTool(t, "dpkg-deb", "dpkg")
	ctx := testContext(t, 15*time.Minute)
	c := newChroot(ctx, t)
	dir := t.TempDir()
	bin := binary(t, "amd64", dir)
	deb := script(ctx, t, "deb", "ARCH=amd64", "BIN="+bin, "VERSION="+testVersion, "DIST="+dir)
	if want := "intercomd_" + testVersion + "_amd64.deb"; filepath.Base(deb) != want {
		t.Fatalf("package %s, want %s", filepath.Base(deb), want)
	}
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	c.write(t, "tmp/intercomd.deb", string(data), 0o644)

	c.must(ctx, t, "dpkg", "-i", "/tmp/intercomd.deb")
	if out := c.must(ctx, t, "intercomd", "version"); strings.TrimSpace(out) != "intercomd "+testVersion {
		t.Errorf("intercomd version: %q", out)
	}
	if out := c.must(ctx, t, "intercomd", "check-config"); !strings.Contains(out, "/etc/intercomd/intercomd.yaml: valid") {
		t.Errorf("check-config of the packaged configuration: %q", out)
	}
	groups := strings.Fields(c.must(ctx, t, "id", "-nG", "intercomd"))
	for _, g := range []string{"intercomd", "video", "audio", "gpio"} {
		if !slices.Contains(groups, g) {
			t.Errorf("intercomd is not in group %s: %v", g, groups)
		}
	}
	passwd := strings.Split(strings.TrimSpace(c.must(ctx, t, "getent", "passwd", "intercomd")), ":")
	if len(passwd) != 7 || passwd[5] != "/var/lib/intercomd" {
		t.Errorf("passwd entry %q", passwd)
	}
	for _, f := range []string{
		"usr/bin/intercomd", "lib/systemd/system/intercomd.service", "usr/lib/sysusers.d/intercomd.conf",
		"lib/udev/rules.d/60-intercomd-gpio.rules", "usr/share/doc/intercomd/intercomd.example.yaml",
	} {
		if !c.exists(f) {
			t.Errorf("%s not installed", f)
		}
	}
	checkCopyright(t, c.path("usr/share/doc/intercomd/copyright"), c.path("usr/bin/intercomd"))
	wants := "etc/systemd/system/multi-user.target.wants/intercomd.service"
	if target, err := os.Readlink(c.path(wants)); err != nil || !strings.HasSuffix(target, "/intercomd.service") {
		t.Errorf("the service is not enabled: %s -> %q, %v", wants, target, err)
	}
	if out := c.must(ctx, t, "dpkg-query", "-W", "-f", "${Conffiles}", "intercomd"); !strings.Contains(out, "/etc/intercomd/intercomd.yaml") {
		t.Errorf("conffiles: %q", out)
	}

	// An edited conffile survives a reinstall, and a disabled service stays
	// disabled.
	conf, err := os.ReadFile(c.path("etc/intercomd/intercomd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(conf), "name: Front door", "name: Back door", 1)
	if edited == string(conf) {
		t.Fatal("the packaged configuration has no 'name: Front door' to edit")
	}
	c.write(t, "etc/intercomd/intercomd.yaml", edited, 0o644)
	c.must(ctx, t, "systemctl", "disable", "intercomd.service")
	c.must(ctx, t, "dpkg", "-i", "/tmp/intercomd.deb")
	if got, _ := os.ReadFile(c.path("etc/intercomd/intercomd.yaml")); string(got) != edited {
		t.Errorf("the edited conffile was replaced:\n%s", got)
	}
	if c.exists(wants) {
		t.Errorf("reinstalling enabled a service the administrator disabled")
	}

	// State the daemon would have made, then purge.
	c.write(t, "var/lib/intercomd/token.key", "secret", 0o600)
	c.must(ctx, t, "dpkg", "--purge", "intercomd")
	for _, f := range []string{
		"usr/bin/intercomd", "lib/systemd/system/intercomd.service", "etc/intercomd", "var/lib/intercomd",
		wants, "usr/lib/sysusers.d/intercomd.conf", "lib/udev/rules.d/60-intercomd-gpio.rules",
	} {
		if c.exists(f) {
			t.Errorf("%s left after purge", f)
		}
	}
	if out, err := c.run(ctx, "getent", "passwd", "intercomd"); err == nil {
		t.Errorf("user intercomd left after purge: %s", out)
	}
	if out, err := c.run(ctx, "getent", "group", "intercomd"); err == nil {
		t.Errorf("group intercomd left after purge: %s", out)
	}
	if _, err := c.run(ctx, "getent", "group", "gpio"); err != nil {
		t.Errorf("group gpio removed by purge: other programs may use it")
	}
}

// checkCopyright checks the installed copyright file: Debian's
// machine-readable format, a notice for each C library built into the binary,
// and a Files paragraph with a license for every Go module bin was built from.
func checkCopyright(t *testing.T, path, bin string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("copyright file: %v", err)
		return
	}
	text := string(b)
	if !strings.HasPrefix(text, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
		t.Errorf("copyright file is not in the machine-readable format: %.100q", text)
	}
	paragraphs := strings.Split(text, "\n\n")
	find := func(files string) string {
		for _, p := range paragraphs {
			if strings.HasPrefix(p, "Files: "+files+"\n") {
				return p
			}
		}
		return ""
	}
	for _, want := range []struct{ files, license, mention string }{
		{"*", "Expat", "intercomd"},
		{"hw/audio/aec/*", "BSD-3-clause", "Jean-Marc Valin"},
		{"hw/audio/aec/kiss_fft*", "BSD-3-clause", "Mark Borgerding"},
		{"vendor/github.com/pion/mediadevices/pkg/codec/opus/lib/*", "BSD-3-clause", "Xiph.Org"},
		{"vendor/github.com/pion/mediadevices/pkg/codec/openh264/lib/*", "BSD-2-clause", "Cisco Systems"},
		{"vendor/github.com/gen2brain/malgo/miniaudio.*", "Unlicense or MIT-0", "David Reid"},
		{"vendor/go/*", "BSD-3-clause", "The Go Authors"},
	} {
		p := find(want.files)
		if p == "" || !strings.Contains(p, "\nLicense: "+want.license+"\n") || !strings.Contains(p, want.mention) {
			t.Errorf("copyright: no paragraph for %s with license %s naming %s:\n%.300s", want.files, want.license, want.mention, p)
		}
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range info.Deps {
		p := find("vendor/" + m.Path + "/*")
		if p == "" || !strings.Contains(p, "\nLicense: ") || !strings.Contains(p, m.Version) {
			t.Errorf("copyright: no paragraph with a license for module %s %s", m.Path, m.Version)
		}
	}
}
