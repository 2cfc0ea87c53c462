package audiotest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Decoded is a compressed recording as ffmpeg reads it.
type Decoded struct {
	// PCM is the decoded sound, 48 kHz mono.
	PCM []int16
	// Complaints is what ffmpeg warned of while decoding (a bad CRC, a
	// page out of place); "" for a clean stream.
	Complaints string
}

// FFmpegDecode decodes data (any container and codec ffmpeg knows, such
// as Ogg Opus) with the ffmpeg at path into 48 kHz mono, through a file in
// dir.
func FFmpegDecode(ctx context.Context, ffmpeg, dir string, data []byte) (Decoded, error) {
	f, err := os.CreateTemp(dir, "decode-*")
	if err != nil {
		return Decoded{}, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Decoded{}, err
	}
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "warning", "-i", filepath.Clean(f.Name()), "-f", "s16le", "-ac", "1", "-ar", "48000", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		return Decoded{}, fmt.Errorf("ffmpeg: %w: %s", err, stderr.Bytes())
	}
	d := Decoded{PCM: make([]int16, len(raw)/2), Complaints: stderr.String()}
	for i := range d.PCM {
		d.PCM[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return d, nil
}
