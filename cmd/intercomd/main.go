// Command intercomd is a video door intercom daemon: camera and microphone
// out, the remote party on the speaker, buttons, LEDs and a door relay on
// GPIO, and the TRTCCalling state machine over MQTT with WebRTC media.
//
// main only parses the subcommand and calls run; everything else is
// testable through run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "intercomd:", err)
		os.Exit(1)
	}
}

type command struct {
	summary string
	run     func(ctx context.Context, args []string, env *cmdEnv) error
}

// cmdEnv is what a subcommand may touch of the process.
type cmdEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// ownProcess: the command has the process to itself (not a test running
	// it in-process), so it may tune the Go runtime.
	ownProcess bool
	// faults are hooks for tests only: set by tests that run the daemon
	// in-process, or from the environment in a build with the faults tag.
	faults faults
}

// faults are the daemon's test fault hooks; all off in production.
type faults struct {
	wedgeLoop     bool // the event loop stops serving 3 s after READY (the watchdog test)
	loopbackMedia bool // media offers loopback candidates only: nothing leaves the machine
}

func commands() map[string]command {
	return map[string]command{
		"run":          {"run the intercom daemon (the default)", runDaemon},
		"check-config": {"validate a configuration file and exit", runCheckConfig},
		"usersig":      {"issue a signed, expiring user token for signing in", runUserSig},
		"devices":      {"list cameras, sound devices and GPIO chips and lines", runDevices},
		"phone":        {"a command-line softphone: call, answer, reject, hang up", runPhone},
		"relay-off":    {"de-energise the door relay and exit (for ExecStopPost)", runRelayOff},
		"version":      {"print the version", runVersion},
		"cert":         {"print the device CA's fingerprint and a QR code of the page phones trust it from", runCert},
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return dispatch(ctx, args, &cmdEnv{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, ownProcess: true, faults: envFaults(os.Getenv)})
}

// dispatch runs the subcommand named by args[0] ("run" when absent).
func dispatch(ctx context.Context, args []string, env *cmdEnv) error {
	name := "run"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			usage(env.stdout)
			return nil
		case "-version", "--version", "-V":
			return runVersion(ctx, nil, env)
		}
		if !strings.HasPrefix(args[0], "-") {
			name, args = args[0], args[1:]
		}
	}
	cmd, ok := commands()[name]
	if !ok {
		usage(env.stderr)
		return fmt.Errorf("unknown command %q", name)
	}
	return cmd.run(ctx, args, env)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: intercomd [command] [flags]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nglobal flags:")
	fmt.Fprintln(w, "  -h, --help    print this help and exit")
	fmt.Fprintln(w, "  --version     print the version and exit")
	fmt.Fprintln(w, "\nWith no command, or flags first, intercomd runs the daemon (intercomd run --help).")
	fmt.Fprintln(w, "Run 'intercomd <command> --help' for a command's flags.")
}

// newFlags returns a flag set that prints its usage to env.stderr.
func newFlags(name, summary string, env *cmdEnv) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: intercomd %s [flags]\n\n%s\n\nflags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

func runVersion(_ context.Context, args []string, env *cmdEnv) error {
	fs := newFlags("version", "Print the version.", env)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "intercomd %s\n", version)
	return nil
}
