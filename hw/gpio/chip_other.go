//go:build !linux

package gpio

import (
	"errors"
	"log/slog"
)

// DefaultConsumer is the consumer label [Chip] gives its line requests.
const DefaultConsumer = "intercomd"

// errNoChip is returned by [Chip] where there is no GPIO character device.
var errNoChip = errors.New("gpio character device needs Linux; use the simulator")

// Chip is the [Backend] for the Linux GPIO character device. On other systems
// every open fails; use [Sim].
type Chip struct {
	Consumer string
	Log      *slog.Logger
}

// OpenInput implements [Backend]; it always fails off Linux.
func (Chip) OpenInput(InputConfig, EdgeHandler) (InputLine, error) { return nil, errNoChip }

// OpenOutput implements [Backend]; it always fails off Linux.
func (Chip) OpenOutput(OutputConfig, bool) (OutputLine, error) { return nil, errNoChip }
