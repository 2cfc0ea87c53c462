// Package vmtest holds the tests of the real-kernel test tier itself.
//
// The tier boots Debian's kernel under QEMU and runs test binaries inside it
// with test/vm/exec, as `go test -exec`, so that code talking to V4L2, ALSA and
// the GPIO character device meets the kernel's own test drivers: vivid
// (/dev/video0), snd-aloop (the Loopback card) and gpio-sim (configfs). The
// tests here have two sides:
//
//   - files built with the kernel tag run inside the guest and assert that the
//     guest offers what kernel tests of the other packages rely on;
//   - files built with the vmexec tag run on the host and assert what
//     test/vm/exec promises: byte-exact output, exit status, working
//     directory, environment and timeout.
//
// test/vm/run runs both. The package has no non-test code; its tests start
// no goroutine that outlives them and hold at most one guest at a time.
package vmtest
