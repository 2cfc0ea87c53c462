package main

import (
	"fmt"
	"io"

	qrcode "github.com/skip2/go-qrcode"
)

// printQR prints text as a QR code for a terminal, with half blocks (two
// modules a character): dark modules are left as the background and light
// ones drawn in the text colour, which reads as dark on light on the usual
// terminal with light text on a dark background, quiet zone included.
func printQR(w io.Writer, text string) error {
	q, err := qrcode.New(text, qrcode.Low)
	if err != nil {
		return fmt.Errorf("qr code: %w", err)
	}
	_, err = io.WriteString(w, q.ToSmallString(false))
	return err
}
