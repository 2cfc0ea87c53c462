//go:build !linux

package gpio

// ListChips returns nothing: the GPIO character device is Linux only.
func ListChips() ([]ChipInfo, error) { return nil, nil }
