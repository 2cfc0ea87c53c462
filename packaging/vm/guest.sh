#!/bin/bash
# packaging/vm/guest.sh: runs inside the packaged-service guest, as root under
# systemd (PID 1), from intercomd-vmtest.service. It installs the .deb from
# the control share and checks the real service: GPIO permissions from the
# udev rule, start to READY=1 under the sandbox, a call from the softphone,
# reload, a clean stop with the relay released, a watchdog restart of a
# wedged event loop, and a purge. Prints "ok"/"FAIL" lines and figures;
# writes its exit status to /mnt/ctl/rc and powers the guest off.
set -uo pipefail

ctl=/mnt/ctl
failed=0
trap 'echo $failed >$ctl/rc; sync; systemctl poweroff --no-block 2>/dev/null' EXIT
ok() { echo "ok   $*"; }
bad() {
	echo "FAIL $*"
	failed=1
}
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else
		bad "$what"
		# What the service said: the reason is in its journal.
		journalctl -q -u intercomd.service --since "@$since" -o cat 2>/dev/null | tail -n 15 | sed 's/^/  journal: /'
	fi
}
prop() { systemctl show -p "$1" --value intercomd.service; }
# wait_for SECONDS COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.2
	done
}
active() { [ "$(systemctl is-active intercomd.service)" = active ]; }
journal_has() { journalctl -q -u intercomd.service --since "@$since" -o cat | grep -qF -- "$1"; }
mono_ms() { echo $(($(prop "$1") / 1000)); }

echo "guest: $(uname -r), systemd $(systemctl --version | head -n1 | cut -d' ' -f2), up $(cut -d' ' -f1 /proc/uptime) s"

# The LAN: a dummy interface with a private address.
ip link add lan0 type dummy && ip addr add 192.168.77.2/24 dev lan0 && ip link set lan0 up ||
	bad "cannot set up the dummy LAN interface"

# A gpio-sim chip shaped like the Pi header's lines the default
# configuration uses: button GPIO17, LED GPIO27, relay GPIO22.
cfs=/sys/kernel/config/gpio-sim
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
mkdir -p $cfs/pi/bank0
echo 32 >$cfs/pi/bank0/num_lines
echo pinctrl-bcm2711 >$cfs/pi/bank0/label
for n in 17 22 27; do
	mkdir -p $cfs/pi/bank0/line$n
	echo GPIO$n >$cfs/pi/bank0/line$n/name
done
echo 1 >$cfs/pi/live
chip=$(cat $cfs/pi/bank0/chip_name)
dev=$(cat $cfs/pi/dev_name)
udevadm settle
relay=/sys/devices/platform/$dev/$chip/sim_gpio22/value
echo "gpio-sim: /dev/$chip $(stat -c '%U:%G %a' /dev/$chip) before the package"

# Install: postinst creates the user, applies the udev rule, enables and
# starts the service.
since=$(date +%s)
if ! dpkg -i $ctl/intercomd.deb; then
	bad "dpkg -i"
	exit 1
fi
ok "dpkg -i $(dpkg-query -W -f '${Package} ${Version} ${Architecture}' intercomd)"
udevadm settle
check "udev rule: /dev/$chip is $(stat -c '%G %a' /dev/$chip)" test "$(stat -c '%G %a' /dev/$chip)" = "gpio 660"
check "enabled" systemctl -q is-enabled intercomd.service
check "started by postinst" wait_for 90 active

# The test configuration: auto-answer, and alice a resident (who may call).
sed -i 's/auto_answer: false/auto_answer: true/; s/residents: \[\]/residents: [alice]/' /etc/intercomd/intercomd.yaml
since=$(date +%s)
systemctl restart intercomd.service
check "restart reaches active (READY=1)" active
pid=$(prop MainPID)
echo "start: ExecStartPre+exec to READY=1 $(($(mono_ms ActiveEnterTimestampMonotonic) - $(mono_ms InactiveExitTimestampMonotonic))) ms, main exec to READY=1 $(($(mono_ms ActiveEnterTimestampMonotonic) - $(mono_ms ExecMainStartTimestampMonotonic))) ms (TCG guest, 4-9x slower than a real core)"
check "runs as intercomd" test "$(ps -o user= -p "$pid")" = intercomd
status=/proc/$pid/status
check "no capabilities ($(grep CapEff $status | tr -s '\t' ' '))" grep -q 'CapEff:.*0000000000000000' $status
check "no new privileges" grep -q 'NoNewPrivs:.*1' $status
check "seccomp filter" grep -q 'Seccomp:.*2' $status
check "status text idle ($(prop StatusText))" test "$(prop StatusText)" = idle
check "relay line held low" test "$(cat $relay)" = 0
check "signaling link up" wait_for 60 journal_has 'msg="signaling link" up=true'
# A press of the call button on the chip reaches the sandboxed daemon.
button=/sys/devices/platform/$dev/$chip/sim_gpio17/pull
press() { echo pull-down >$button && sleep 0.3 && echo pull-up >$button; }
press
check "button press on /dev/$chip seen by the daemon" wait_for 30 journal_has "msg=button name=call gesture=press state=idle"
# The doorbell rings alice (pushes would reach her phone); a second press
# while it rings hangs up, before the softphone calls.
check "the doorbell rings" wait_for 30 journal_has "from=idle to=dialing"
[ "$(prop StatusText)" = dialing ] && press
check "a second press ends the ring" wait_for 30 test "$(prop StatusText)" = idle

# A call from the softphone.
tok=$(intercomd usersig --config /etc/intercomd/intercomd.yaml --user alice --ttl 1h)
timeout 120 intercomd phone --broker tcp://127.0.0.1:1883 --user alice --token "$tok" \
	--call door --audio --once --hangup-after 2s >/tmp/phone.out 2>&1
grep -v 'event VoiceVolume' /tmp/phone.out | sed 's/^/  phone: /'
check "call connects" grep -q 'event State dialing -> in_call' /tmp/phone.out
check "call ends" grep -q 'event CallEnd' /tmp/phone.out
check "daemon auto-answered" journal_has "auto-answering"

# Reload keeps the same process.
systemctl reload intercomd.service
check "reload keeps the process" test "$(prop MainPID)" = "$pid"
sleep 5
echo "idle: VmRSS $(grep VmRSS $status | tr -s '\t ' ' ' | cut -d' ' -f2-) after $((SECONDS)) s of guest test"
echo "exposure: $(systemd-analyze security intercomd.service 2>/dev/null | tail -n1 | sed 's/.*: //')"

# A clean stop.
since=$(date +%s)
systemctl stop intercomd.service
check "stop: result $(prop Result), status $(prop ExecMainStatus)" test "$(prop Result)" = success
check "stopped cleanly" journal_has "intercomd stopped"
check "relay released after stop" test "$(cat $relay)" = 0

# The watchdog restarts a wedged event loop.
mkdir -p /run/systemd/system/intercomd.service.d
printf '[Service]\nEnvironment=INTERCOMD_FAULT=wedge-loop\n' >/run/systemd/system/intercomd.service.d/fault.conf
systemctl daemon-reload
since=$(date +%s)
systemctl start intercomd.service
pid=$(prop MainPID)
restarted() { [ "$(prop NRestarts)" -ge 1 ] && active && [ "$(prop MainPID)" != "$pid" ]; }
check "wedged loop restarted by the watchdog" wait_for 90 restarted
check "watchdog timeout logged" bash -c "journalctl -q -u intercomd.service --since @$since | grep -q 'Watchdog timeout'"
check "relay released after the watchdog kill" test "$(cat $relay)" = 0
rm /run/systemd/system/intercomd.service.d/fault.conf
systemctl daemon-reload
systemctl stop intercomd.service

# Purge: prerm stops the service, postrm removes the state and the user.
systemctl start intercomd.service
dpkg --purge intercomd >/dev/null
check "purge stops the service" test "$(systemctl is-active intercomd.service)" != active
check "purge removes the user" bash -c '! getent passwd intercomd >/dev/null'
check "purge removes the state" test ! -e /var/lib/intercomd
[ $failed -eq 0 ] && echo "guest: PASS" || echo "guest: FAIL"
