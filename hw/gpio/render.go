package gpio

import (
	"io"
	"strings"
)

// String renders st on one line, outputs first, such as
//
//	[relay: off] [bell: off] [LED status: ●] [LED call: ○] [button call: up]
//
// An energised relay or bell shows "ON", a lit LED "●", a pressed button
// "DOWN"; a line that is no longer open is marked "(closed)".
func (st State) String() string {
	var b strings.Builder
	write := func(l LineState) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('[')
		switch {
		case !l.Output:
			b.WriteString("button " + l.Name + ": " + pick(l.Active, "DOWN", "up"))
		case l.Name == RelayName || l.Name == BellName:
			b.WriteString(l.Name + ": " + pick(l.Active, "ON", "off"))
		default:
			b.WriteString("LED " + l.Name + ": " + pick(l.Active, "●", "○"))
		}
		if !l.Open {
			b.WriteString(" (closed)")
		}
		b.WriteByte(']')
	}
	for _, l := range st.Lines {
		if l.Output && (l.Name == RelayName || l.Name == BellName) {
			write(l)
		}
	}
	for _, l := range st.Lines {
		if l.Output && l.Name != RelayName && l.Name != BellName {
			write(l)
		}
	}
	for _, l := range st.Lines {
		if !l.Output {
			write(l)
		}
	}
	return b.String()
}

func pick(c bool, yes, no string) string {
	if c {
		return yes
	}
	return no
}

// RenderTerminal writes st as one status line ending in a newline.
func RenderTerminal(w io.Writer, st State) error {
	_, err := io.WriteString(w, st.String()+"\n")
	return err
}
