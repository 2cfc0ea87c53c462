// Command webgen builds the phone web app into a directory (web/dist by
// `go generate ./web`): the JavaScript bundle (esbuild over web/src/app.js
// and the npm packages of web/package-lock.json, installed in
// web/node_modules by `npm ci`), the calling core compiled to WebAssembly and
// gzipped, Go's wasm_exec.js, the static files of web/src, the icons (drawn
// here) and a service worker whose cache name is a hash of everything else,
// so a new build replaces the cached app.
//
// The output depends only on its inputs (the Go toolchain's version
// included): the test in package web rebuilds it and compares bytes with the
// embedded copy.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

func main() {
	web := flag.String("web", ".", "the web directory (package.json, src/, wasm/)")
	out := flag.String("out", "dist", "output directory, relative to -web unless absolute")
	flag.Parse()
	if err := build(*web, *out); err != nil {
		fmt.Fprintln(os.Stderr, "webgen:", err)
		os.Exit(1)
	}
}

// static files copied from src/ as they are.
var static = []string{"index.html", "install.html", "style.css", "manifest.webmanifest"}

func build(web, out string) error {
	web, err := filepath.Abs(web)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(web, out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{}

	// The bundle.
	esbuild := filepath.Join(web, "node_modules", ".bin", "esbuild")
	if _, err := os.Stat(esbuild); err != nil {
		return fmt.Errorf("esbuild not installed: run `npm ci` in %s: %w", web, err)
	}
	tmp, err := os.MkdirTemp("", "webgen")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(esbuild, "src/app.js", "--bundle", "--minify", "--format=iife",
		"--target=es2020", "--legal-comments=none", "--log-level=warning",
		"--outfile="+filepath.Join(tmp, "app.js"))
	cmd.Dir = web
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("esbuild: %w", err)
	}
	if files["app.js"], err = os.ReadFile(filepath.Join(tmp, "app.js")); err != nil {
		return err
	}

	// The calling core.
	wasm := filepath.Join(tmp, "calling.wasm")
	cmd = exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", wasm, "./wasm")
	cmd.Dir = web
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build calling.wasm: %w", err)
	}
	raw, err := os.ReadFile(wasm)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Name = "calling.wasm"
	if _, err := zw.Write(raw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	files["calling.wasm.gz"] = gz.Bytes()

	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	if files["wasm_exec.js"], err = os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js")); err != nil {
		return fmt.Errorf("wasm_exec.js: %w", err)
	}

	for _, name := range static {
		if files[name], err = os.ReadFile(filepath.Join(web, "src", name)); err != nil {
			return err
		}
	}
	for _, size := range []int{192, 512} {
		if files[fmt.Sprintf("icon-%d.png", size)], err = icon(size); err != nil {
			return err
		}
	}

	// The service worker, named after everything it caches.
	sw, err := os.ReadFile(filepath.Join(web, "src", "sw.js"))
	if err != nil {
		return err
	}
	h := sha256.New()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s %d\n", n, len(files[n]))
		h.Write(files[n])
	}
	files["sw.js"] = bytes.ReplaceAll(sw, []byte("@VERSION@"), []byte(hex.EncodeToString(h.Sum(nil))[:16]))
	files["VERSION"] = []byte(fmt.Sprintf("built with %s\n", runtime.Version()))

	// Replace the directory's contents.
	old, _ := filepath.Glob(filepath.Join(out, "*"))
	for _, f := range old {
		if _, keep := files[filepath.Base(f)]; !keep {
			if err := os.RemoveAll(f); err != nil {
				return err
			}
		}
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(out, n), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// icon draws the app icon: a door with its knob on a rounded blue square.
func icon(size int) ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	s := float64(size)
	bg := color.NRGBA{0x1d, 0x4e, 0x89, 0xff}
	door := color.NRGBA{0xf4, 0xf1, 0xea, 0xff}
	knob := color.NRGBA{0xe0, 0xa1, 0x2b, 0xff}
	r := s * 0.18
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			fx, fy := float64(x)+0.5, float64(y)+0.5
			// Rounded corners: distance to the inner rectangle.
			dx := math.Max(math.Max(r-fx, fx-(s-r)), 0)
			dy := math.Max(math.Max(r-fy, fy-(s-r)), 0)
			if dx*dx+dy*dy > r*r {
				continue
			}
			c := bg
			if fx > s*0.32 && fx < s*0.68 && fy > s*0.2 && fy < s*0.82 {
				c = door
				kx, ky := fx-s*0.61, fy-s*0.53
				if kx*kx+ky*ky < (s*0.035)*(s*0.035) {
					c = knob
				}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
