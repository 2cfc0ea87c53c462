// Package gpio drives the intercom's panel: push buttons, indicator LEDs, the
// door relay and an optional bell.
//
// # Architecture
//
// Hardware sits behind two tiny line interfaces, [InputLine] and [OutputLine],
// opened through a [Backend]. Two backends exist: [Chip], the Linux GPIO
// character device through go-gpiocdev, and [Sim], an in-memory panel for
// machines without GPIO whose virtual buttons can be pressed and whose output
// levels can be watched. A [Panel] opens every line named in a [Config] and
// adds the behaviour: button gestures, LED patterns, bounded relay pulses.
//
// This package knows nothing of calls. The daemon maps [ButtonEvent]s to
// calling actions and calling state to LED [Pattern]s.
//
// # Buttons
//
// Lines are read in logical terms: "active" means pressed, whatever the wiring
// (set ActiveLow for a button that pulls the line to ground). Contact bounce
// is removed by the kernel's debounce when the kernel accepts it (uAPI v2,
// Linux 5.10 and later) and otherwise by the software [Debouncer]; both report
// a level only after it has been stable for the debounce period.
//
// Gestures: a button held for less than its long-press threshold (default
// 1.5 s) reports [GesturePress] when it is released. A button held for the
// threshold reports [GestureLongPress] as soon as the threshold is reached,
// while it is still held, so the user gets feedback without letting go; its
// release then reports nothing. A hold of exactly the threshold is a long
// press. Events carry the button name, the gesture and the timestamp of the
// edge that decided it (the release edge for a press, the press edge for a
// long press).
//
// Events are delivered on one buffered channel per panel ([Panel.Events]).
// Line event handlers never block: when the consumer falls behind and the
// buffer is full, the event is dropped and counted ([Panel.Dropped]).
//
// # LEDs
//
// Patterns are off, on, slow blink (1 Hz), fast blink (4 Hz) and heartbeat
// (two short pulses then a pause, once a second). One goroutine per panel
// animates every LED from a 125 ms ticker, and only while some LED blinks.
// Setting a pattern restarts every blinking LED in phase, so LEDs blink
// together.
//
// # Relay and bell
//
// [Relay.Pulse] energises the line for a bounded time. A pulse while already
// energised may extend it, but never past Max measured from the moment the
// relay was first energised in this opening. Opening a panel drives the relay
// line to its inactive level before anything else, so a relay left energised
// by a crashed process is released at once; [RelayOff] does only that and
// suits a systemd ExecStopPost. Whether a line keeps its level after the
// process releases it depends on the GPIO driver: the Raspberry Pi keeps it,
// gpio-sim returns to the pull.
//
// # Concurrency
//
// Every exported method of [Panel], [Relay] and [Sim] is safe for concurrent
// use. [Panel.Halt] (relay, bell and LEDs off) is idempotent and
// [Panel.Close] halts before it releases the lines; no goroutine outlives
// Close. Library callbacks only copy an edge into the gesture machine, which
// never blocks, and a line is never closed from its own handler.
//
// All logging goes through the *slog.Logger given to [Open].
package gpio
