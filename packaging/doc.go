// Package packaging builds intercomd for the boards it runs on and packages
// it for Debian. It has no Go API: its scripts are the interface.
//
//   - build: a stripped binary for amd64, arm64 or armhf (ARMv7), cgo through
//     Debian's cross compilers, into dist/intercomd_<arch>.
//   - deb: dist/intercomd_<version>_<arch>.deb with dpkg-deb, holding the
//     binary, the systemd unit, sysusers and udev files of ../systemd, a
//     minimal /etc/intercomd/intercomd.yaml conffile, the full example
//     configuration as documentation and the maintainer scripts of debian/.
//   - vmroot: a cached debootstrap root with systemd, for chroot installs and
//     for booting under QEMU.
//   - vmtest: boots that root with systemd as PID 1 under QEMU, installs the
//     .deb and exercises the real service: start to READY=1, a call, a clean
//     stop, a watchdog restart.
//   - rules.mk: make targets calling the scripts.
//
// The tests run the scripts: the cross-built binaries under qemu-user
// (version, check-config and a real call from the host's softphone to the
// emulated arm64 daemon), and an install, upgrade and purge of the .deb in
// a chroot. They need root for the chroot and Debian's cross compilers and
// qemu-user-static; missing tools skip loudly, and fail under CI=true.
package packaging
