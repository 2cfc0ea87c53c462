package gpio

// ChipInfo describes one GPIO chip for the `devices` listing.
type ChipInfo struct {
	Name, Label string
	Lines       []LineInfo
}

// LineInfo describes one line of a chip: its offset, its name (such as
// "GPIO17") and, when a process holds it, the consumer.
type LineInfo struct {
	Offset   int
	Name     string
	Consumer string
	Used     bool
}
