// Command copyright writes the Debian copyright file
// (/usr/share/doc/intercomd/copyright, in the machine-readable format of
// https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/) for an
// intercomd binary: intercomd itself, the C libraries compiled or linked into
// it (SpeexDSP and kiss_fft in hw/audio/aec, libopus and openh264 from the
// static libraries pion/mediadevices ships, libvpx from Debian's libvpx-dev,
// miniaudio through malgo), the Go
// standard library, and every Go module the binary's build information lists,
// each with its copyright lines and its license text read from the module
// cache. A license it cannot name stops it, so a new dependency cannot slip
// into a package without its notice.
//
//	go run ./packaging/copyright BINARY >copyright
package main

import (
	"bufio"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: copyright BINARY")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "copyright:", err)
		os.Exit(1)
	}
}

// stanza is one Files paragraph.
type stanza struct {
	files, copyright, license, comment, text string
}

// cPart is C code in the binary that no Go module's license covers alone.
type cPart struct {
	name, files, comment string
	module               string // the module holding licenseFile; "" for this repository
	licenseFile          string
	license              string // short name; "" to detect it from the text
	section              string // a marker: the license text starts at this line
}

var cParts = []cPart{
	{name: "SpeexDSP", files: "hw/audio/aec/*", comment: "SpeexDSP's echo canceller and preprocessor (mdf.c, preprocess.c, filterbank.c, fftwrap.c)",
		licenseFile: "hw/audio/aec/COPYING"},
	{name: "kiss_fft", files: "hw/audio/aec/kiss_fft*", comment: "kiss_fft, the FFT SpeexDSP uses",
		licenseFile: "hw/audio/aec/kiss_fft.c", section: "Copyright (c) 2003-2004, Mark Borgerding"},
	{name: "libopus", files: "vendor/github.com/pion/mediadevices/pkg/codec/opus/lib/*", comment: "libopus 1.3, linked statically from the libraries pion/mediadevices ships",
		module: "github.com/pion/mediadevices", licenseFile: "pkg/codec/opus/LICENSE"},
	{name: "openh264", files: "vendor/github.com/pion/mediadevices/pkg/codec/openh264/lib/*", comment: "Cisco's openh264, linked statically from the libraries pion/mediadevices ships",
		module: "github.com/pion/mediadevices", licenseFile: "pkg/codec/openh264/LICENSE"},
	{name: "libvpx", files: "hw/camera/vp8enc/*", comment: "libvpx (the VP8 encoder), linked statically from Debian's libvpx-dev; its Debian copyright file",
		licenseFile: "hw/camera/vp8enc/COPYING.libvpx", license: "BSD-3-Clause and ISC and public-domain"},
	{name: "miniaudio", files: "vendor/github.com/gen2brain/malgo/miniaudio.*", comment: "miniaudio, through malgo; its author offers it as public domain (Unlicense) or MIT-0",
		module: "github.com/gen2brain/malgo", licenseFile: "miniaudio.h", license: "Unlicense or MIT-0", section: "This software is available as a choice of the following licenses."},
}

func run(bin string, w io.Writer) error {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cache, err := goEnv("GOMODCACHE")
	if err != nil {
		return err
	}
	goroot, err := goEnv("GOROOT")
	if err != nil {
		return err
	}
	dirs := map[string]string{}
	for _, m := range info.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		dirs[m.Path] = filepath.Join(cache, escape(m.Path)+"@"+m.Version)
	}

	own, err := fromFile(filepath.Join(root, "LICENSE"), "")
	if err != nil {
		return err
	}
	own.files, own.comment = "*", "intercomd"
	stanzas := []stanza{own}
	for _, c := range cParts {
		dir := root
		if c.module != "" {
			if dir = dirs[c.module]; dir == "" {
				return fmt.Errorf("%s: module %s is not in %s", c.name, c.module, bin)
			}
		}
		s, err := fromFile(filepath.Join(dir, c.licenseFile), c.section)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		s.files, s.comment = c.files, c.comment
		if c.license != "" {
			s.license = c.license
		}
		stanzas = append(stanzas, s)
	}
	golang, err := fromFile(filepath.Join(goroot, "LICENSE"), "")
	if err != nil {
		return fmt.Errorf("the Go standard library: %w", err)
	}
	golang.files, golang.comment = "vendor/go/*", "the Go standard library and runtime, "+info.GoVersion
	stanzas = append(stanzas, golang)
	for _, m := range info.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		lf, err := licenseFile(dirs[m.Path])
		if err != nil {
			return fmt.Errorf("module %s %s: %w", m.Path, m.Version, err)
		}
		s, err := fromFile(lf, "")
		if err != nil {
			return fmt.Errorf("module %s %s: %w", m.Path, m.Version, err)
		}
		s.files, s.comment = "vendor/"+m.Path+"/*", "Go module "+m.Path+" "+m.Version
		stanzas = append(stanzas, s)
	}

	bw := bufio.NewWriter(w)
	fmt.Fprint(bw, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"+
		"Upstream-Name: intercomd\nSource: https://github.com/intercomd/intercomd\n"+
		"Comment: The vendor/ paths name the Go modules and C libraries built into /usr/bin/intercomd.\n")
	for _, s := range stanzas {
		fmt.Fprintf(bw, "\nFiles: %s\nCopyright: %s\nLicense: %s\n%s\nComment: %s\n",
			s.files, field(s.copyright), s.license, field(s.text), s.comment)
	}
	return bw.Flush()
}

// fromFile reads a license text (from the line starting with section on,
// when set) and names its license and copyright holders.
func fromFile(path, section string) (stanza, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return stanza{}, err
	}
	text := string(b)
	if section != "" {
		i := strings.Index(text, section)
		if i < 0 {
			return stanza{}, fmt.Errorf("%s: no %q", path, section)
		}
		text = text[i:]
		if j := strings.Index(text, "*/"); j >= 0 {
			text = text[:j]
		}
	}
	text = strings.TrimSpace(text)
	lic := name(text)
	if lic == "" {
		return stanza{}, fmt.Errorf("%s: a license this program cannot name", path)
	}
	return stanza{license: lic, copyright: holders(text), text: text}, nil
}

// name returns the Debian short name of a license text, or "".
func name(text string) string {
	flat := strings.Join(strings.Fields(text), " ")
	has := func(s string) bool { return strings.Contains(flat, s) }
	switch {
	case has("Apache License") && has("Permission is hereby granted"):
		return "Expat and Apache-2.0"
	case has("Apache License") && has("Version 2.0"):
		return "Apache-2.0"
	case has("Eclipse Public License - v 2.0"):
		return "EPL-2.0 or BSD-3-clause"
	case has("unencumbered software released into the public domain"):
		return "Unlicense"
	case has("Permission is hereby granted, free of charge"):
		return "Expat"
	case has("Redistribution and use in source and binary forms"):
		if has("Neither the name") || has("The name of the author may not") || has("Neither the author") || regexp.MustCompile(`\b3\.`).MatchString(flat) {
			return "BSD-3-clause"
		}
		return "BSD-2-clause"
	}
	return ""
}

// holders returns the copyright lines of a license text.
func holders(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(strings.ToLower(l), "copyright") && !strings.Contains(strings.ToLower(l), "copyright notice") &&
			!strings.Contains(strings.ToLower(l), "copyright holders") && !strings.Contains(strings.ToLower(l), "copyright law") &&
			!strings.Contains(strings.ToLower(l), "copyright owner") && len(l) > len("copyright ") {
			out = append(out, strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(l, "Copyright"), " (c)")))
		}
	}
	if len(out) == 0 {
		return "its authors, as named in the license"
	}
	return strings.Join(out, "\n")
}

// field formats a multi-line value as continuation lines.
func field(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		l = strings.TrimRightFunc(l, unicode.IsSpace)
		switch {
		case i == 0:
		case l == "":
			l = " ."
		default:
			l = " " + l
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

// licenseFile finds the license of the module in dir.
func licenseFile(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		n := strings.ToLower(e.Name())
		if !e.IsDir() && (strings.HasPrefix(n, "license") || strings.HasPrefix(n, "licence") || strings.HasPrefix(n, "copying")) {
			return filepath.Join(dir, e.Name()), nil
		}
	}
	return "", errors.New("no LICENSE or COPYING file")
}

// escape is the module cache's case encoding: an upper-case letter becomes
// '!' and its lower case.
func escape(path string) string {
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func goEnv(key string) (string, error) {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", key, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
