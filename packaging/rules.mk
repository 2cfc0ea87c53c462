# Make targets of packaging/ and systemd/; the top-level Makefile includes
# this file. ARCH is amd64, arm64 or armhf.

.PHONY: cross deb debs test-packaging test-service

# dist/intercomd_<arch>, stripped, for one ARCH (default: the host's).
cross:
	ARCH=$(ARCH) packaging/build

# dist/intercomd_<version>_<arch>.deb for one ARCH, or all three.
deb:
	ARCH=$(ARCH) packaging/deb
debs:
	for a in amd64 arm64 armhf; do ARCH=$$a packaging/deb || exit 1; done

# The unit checks, the qemu-user runs of the cross binaries and the chroot
# install and purge of the .deb.
test-packaging:
	$(GO) test -count=1 -timeout 30m ./systemd/ ./packaging/

# The packaged service under systemd in a QEMU guest.
test-service:
	packaging/vmtest
