//go:build linux

package gpio

import (
	"fmt"

	"github.com/warthog618/go-gpiocdev"
)

// ListChips returns the machine's GPIO chips and their lines.
func ListChips() ([]ChipInfo, error) {
	var out []ChipInfo
	for _, name := range gpiocdev.Chips() {
		c, err := gpiocdev.NewChip(name)
		if err != nil {
			return out, fmt.Errorf("open %s: %w", name, err)
		}
		info := ChipInfo{Name: c.Name, Label: c.Label}
		for o := 0; o < c.Lines(); o++ {
			li, err := c.LineInfo(o)
			if err != nil {
				continue
			}
			info.Lines = append(info.Lines, LineInfo{Offset: o, Name: li.Name, Consumer: li.Consumer, Used: li.Used})
		}
		c.Close()
		out = append(out, info)
	}
	return out, nil
}
