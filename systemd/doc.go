// Package systemd holds intercomd's systemd integration files, which the
// Debian package installs:
//
//   - intercomd.service: the hardened Type=notify unit. The daemon sends
//     READY=1 once its hardware is open and signaling is up, STATUS= on
//     calling state changes, WATCHDOG=1 from its event loop and STOPPING=1
//     on shutdown; ExecStopPost releases the door relay after every stop,
//     crashes included.
//   - intercomd.sysusers: the intercomd system user, in the groups that own
//     the camera (video), the sound cards (audio) and the GPIO chips (gpio).
//   - 60-intercomd-gpio.rules: a udev rule giving the GPIO chips to group gpio.
//
// The package has no Go API. Its tests check the files with systemd's own
// tools: systemd-analyze verify, the offline exposure rating of
// systemd-analyze security (at most 2.5 on its 0-10 scale) and
// systemd-sysusers against a scratch root. They run on any Linux host with
// systemd's tools installed; PID 1 need not be systemd.
package systemd
