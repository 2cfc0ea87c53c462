package camera

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"io"
	"sync"
	"time"
)

// The test pattern
//
// A moving picture for boards without a camera and for tests: colour bars that scroll
// four pixels to the left per frame and a white square that bounces around, under a
// bar code that stamps every frame. Source.PatternNoise adds sensor-like noise below
// the code.
//
// The bar code fills the top rows of the picture with square cells, CellSize(width)
// pixels on a side (16 for pictures at least 320 pixels wide, 8 below), laid out left to
// right and top to bottom from the top-left corner, width/cell cells per row. A cell
// with luma 235 is a 1 bit, luma 16 a 0 bit; the chroma of the code rows is neutral.
// The cells are aligned to H.264 macroblocks so the code survives compression at any
// sensible bit rate; a reader samples the middle of each cell and compares it with 128.
//
// The code carries 128 bits, most significant bit of the first byte first:
//
//	bytes 0-7    capture time, Unix nanoseconds (int64, big endian), taken from the
//	             wall clock when the frame was generated
//	bytes 8-11   frame counter (uint32, big endian), 0 for the first frame of a source
//	bytes 12-13  Source.PatternSeed (uint16, big endian)
//	bytes 14-15  the low 16 bits of the IEEE CRC-32 of bytes 0-13
//
// DecodePattern and PatternTimestamp read it back from a decoded picture.

const patternBits = 128

// CellSize is the side in pixels of one bar code cell in a test pattern of the given
// width.
func CellSize(width int) int {
	if width >= 320 {
		return 16
	}
	return 8
}

// patternCodeRows is the number of cell rows the bar code occupies.
func patternCodeRows(width int) int {
	perRow := width / CellSize(width)
	if perRow == 0 {
		return 0
	}
	return (patternBits + perRow - 1) / perRow
}

// errPatternSize reports a picture too small to hold the bar code.
var errPatternSize = errors.New("picture too small for the test pattern bar code")

func checkPatternSize(width, height int) error {
	cell := CellSize(width)
	if width/cell < 8 || patternCodeRows(width)*cell > height/2 {
		return fmt.Errorf("%dx%d: %w", width, height, errPatternSize)
	}
	return nil
}

// PatternStamp is what the bar code of one test pattern frame says.
type PatternStamp struct {
	// Time is the wall-clock time the frame was generated.
	Time time.Time
	// Frame counts the frames of one source from 0.
	Frame uint32
	// Seed is the source's PatternSeed.
	Seed uint16
}

// DecodePattern reads the bar code of a test pattern frame (see the package's test
// pattern description). It reports false when img carries no valid code: another
// picture, or one damaged beyond reading. img may be any image whose bounds have the
// pattern's size; *image.YCbCr and *image.Gray are read fastest.
func DecodePattern(img image.Image) (PatternStamp, bool) {
	b := img.Bounds()
	width, height := b.Dx(), b.Dy()
	if checkPatternSize(width, height) != nil {
		return PatternStamp{}, false
	}
	cell := CellSize(width)
	perRow := width / cell
	var code [patternBits / 8]byte
	for i := range patternBits {
		x0 := b.Min.X + (i%perRow)*cell + cell/4
		y0 := b.Min.Y + (i/perRow)*cell + cell/4
		if meanLuma(img, x0, y0, cell/2) >= 128 {
			code[i/8] |= 0x80 >> (i % 8)
		}
	}
	if uint16(crc32.ChecksumIEEE(code[:14])) != binary.BigEndian.Uint16(code[14:]) {
		return PatternStamp{}, false
	}
	return PatternStamp{
		Time:  time.Unix(0, int64(binary.BigEndian.Uint64(code[0:8]))),
		Frame: binary.BigEndian.Uint32(code[8:12]),
		Seed:  binary.BigEndian.Uint16(code[12:14]),
	}, true
}

// PatternTimestamp returns the capture time stamped in a test pattern frame, and false
// when img carries no valid bar code. Comparing it with the time a receiver decoded the
// frame measures the glass-to-glass latency on one machine.
func PatternTimestamp(img image.Image) (time.Time, bool) {
	s, ok := DecodePattern(img)
	return s.Time, ok
}

// meanLuma averages the luma of the n×n square at (x0, y0).
func meanLuma(img image.Image, x0, y0, n int) int {
	sum := 0
	switch m := img.(type) {
	case *image.YCbCr:
		for y := y0; y < y0+n; y++ {
			off := m.YOffset(x0, y)
			for _, v := range m.Y[off : off+n] {
				sum += int(v)
			}
		}
	case *image.Gray:
		for y := y0; y < y0+n; y++ {
			off := m.PixOffset(x0, y)
			for _, v := range m.Pix[off : off+n] {
				sum += int(v)
			}
		}
	default:
		for y := y0; y < y0+n; y++ {
			for x := x0; x < x0+n; x++ {
				sum += int(color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y)
			}
		}
	}
	return sum / (n * n)
}

// patternSource generates the test pattern at a steady frame rate. It implements
// mediadevices' video.Reader; Read is called from one goroutine, close from any.
type patternSource struct {
	width, height int
	seed          uint16
	img           *image.YCbCr
	barY          []byte // the bars' luma row, two periods long
	barCb, barCr  []byte // the bars' chroma rows, two periods long
	noise         []byte // PatternNoise: a random field (two's complement), read from a new offset each frame
	rng           uint64
	frame         uint32
	ticker        *time.Ticker
	started       bool

	done      chan struct{}
	closeOnce sync.Once
}

// newPatternSource returns a pattern source producing frames of src's size at its frame
// rate.
func newPatternSource(src Source) (*patternSource, error) {
	if err := checkPatternSize(src.Width, src.Height); err != nil {
		return nil, err
	}
	p := &patternSource{
		width:  src.Width,
		height: src.Height,
		seed:   src.PatternSeed,
		img:    image.NewYCbCr(image.Rect(0, 0, src.Width, src.Height), image.YCbCrSubsampleRatio420),
		ticker: time.NewTicker(time.Duration(float64(time.Second) / src.FrameRate)),
		done:   make(chan struct{}),
	}
	p.buildBars()
	p.drawCodeBackground()
	if n := src.PatternNoise; n > 0 {
		// Twice the picture, so that any offset into the first half reads a whole
		// picture's worth: drawing costs one add per pixel, no random numbers.
		p.rng = uint64(src.PatternSeed)<<32 | 0x9e3779b9
		p.noise = make([]byte, 2*src.Width*src.Height)
		for i := range p.noise {
			p.noise[i] = byte(int(p.next()%uint64(2*n+1)) - n)
		}
	}
	return p, nil
}

// buildBars precomputes one row of seven colour bars spanning the width, repeated twice
// so that a scrolled row is a single slice.
func (p *patternSource) buildBars() {
	// Y, Cb, Cr of the classic bars, rotated by the seed so two seeds differ visibly.
	palette := [][3]byte{
		{180, 128, 128}, {168, 44, 136}, {145, 147, 44}, {133, 63, 52},
		{63, 193, 204}, {51, 109, 212}, {28, 212, 120},
	}
	w := p.width
	p.barY = make([]byte, 2*w)
	p.barCb = make([]byte, w)
	p.barCr = make([]byte, w)
	for x := range 2 * w {
		c := palette[(x%w*len(palette)/w+int(p.seed))%len(palette)]
		// A gentle ramp gives the encoder texture to track.
		p.barY[x] = c[0] + byte(x%32)/2
		if x%2 == 0 {
			p.barCb[x/2] = c[1]
			p.barCr[x/2] = c[2]
		}
	}
}

// drawCodeBackground sets the chroma of the code rows to neutral once.
func (p *patternSource) drawCodeBackground() {
	codeH := patternCodeRows(p.width) * CellSize(p.width)
	for y := 0; y < codeH/2; y++ {
		off := p.img.COffset(0, 2*y)
		for x := range p.width / 2 {
			p.img.Cb[off+x] = 128
			p.img.Cr[off+x] = 128
		}
	}
}

// Read waits for the next frame time and returns the frame. The image is reused: it is
// valid until the next Read. After close, Read returns io.EOF.
func (p *patternSource) Read() (image.Image, func(), error) {
	if p.started {
		select {
		case <-p.done:
			return nil, func() {}, io.EOF
		case <-p.ticker.C:
		}
	} else {
		p.started = true
		select {
		case <-p.done:
			return nil, func() {}, io.EOF
		default:
		}
	}
	p.draw(time.Now())
	p.frame++
	return p.img, func() {}, nil
}

// draw paints frame p.frame stamped with t.
func (p *patternSource) draw(t time.Time) {
	w, h := p.width, p.height
	cell := CellSize(w)
	codeH := patternCodeRows(w) * cell
	img := p.img

	// Scrolling bars below the code.
	shift := int(p.frame*4) % w
	for y := codeH; y < h; y++ {
		copy(img.Y[y*img.YStride:y*img.YStride+w], p.barY[shift:shift+w])
	}
	cw := w / 2
	cshift := shift / 2
	for y := codeH / 2; y < h/2; y++ {
		off := y * img.CStride
		copy(img.Cb[off:off+cw], p.barCb[cshift:cshift+cw])
		copy(img.Cr[off:off+cw], p.barCr[cshift:cshift+cw])
	}

	if p.noise != nil {
		p.addNoise(codeH)
	}

	// A bouncing white square.
	side := min(w, h-codeH) / 6
	x0 := bounce(int(p.frame)*5, w-side)
	y0 := codeH + bounce(int(p.frame)*3, h-codeH-side)
	for y := y0; y < y0+side; y++ {
		row := img.Y[y*img.YStride+x0 : y*img.YStride+x0+side]
		for i := range row {
			row[i] = 235
		}
	}

	// The bar code.
	var code [patternBits / 8]byte
	binary.BigEndian.PutUint64(code[0:8], uint64(t.UnixNano()))
	binary.BigEndian.PutUint32(code[8:12], p.frame)
	binary.BigEndian.PutUint16(code[12:14], p.seed)
	binary.BigEndian.PutUint16(code[14:16], uint16(crc32.ChecksumIEEE(code[:14])))
	perRow := w / cell
	for y := range codeH {
		row := img.Y[y*img.YStride : y*img.YStride+w]
		for x := range row {
			row[x] = 16
		}
		r := y / cell
		for c := range perRow {
			i := r*perRow + c
			if i >= patternBits || code[i/8]&(0x80>>(i%8)) == 0 {
				continue
			}
			cellRow := row[c*cell : (c+1)*cell]
			for x := range cellRow {
				cellRow[x] = 235
			}
		}
	}
}

// addNoise adds the noise field, from a random offset, to the bars below the code.
// The bars' luma lies in 28..195, so with at most MaxPatternNoise steps each sum
// stays within video range and the addition needs no clamping: it adds eight pixels
// at a time, each in its own byte lane (the top bit of each lane is added without
// carry by xor), which keeps the noise cheap next to the encoder.
func (p *patternSource) addNoise(codeH int) {
	const low7, high = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	w, img := p.width, p.img
	field := p.noise[p.next()%uint64(len(p.noise)/2):]
	for y := codeH; y < p.height; y++ {
		row := img.Y[y*img.YStride : y*img.YStride+w]
		n := field[(y-codeH)*w : (y-codeH+1)*w]
		x := 0
		for ; x+8 <= w; x += 8 {
			a, b := binary.LittleEndian.Uint64(row[x:]), binary.LittleEndian.Uint64(n[x:])
			binary.LittleEndian.PutUint64(row[x:], (a&low7+b&low7)^((a^b)&high))
		}
		for ; x < w; x++ {
			row[x] += n[x]
		}
	}
}

// next is a xorshift64* random number: a noise field needs no better.
func (p *patternSource) next() uint64 {
	p.rng ^= p.rng >> 12
	p.rng ^= p.rng << 25
	p.rng ^= p.rng >> 27
	return p.rng * 2685821657736338717
}

// bounce maps a growing position onto 0..span and back.
func bounce(pos, span int) int {
	if span <= 0 {
		return 0
	}
	pos %= 2 * span
	if pos > span {
		return 2*span - pos
	}
	return pos
}

// close makes a pending and every later Read return io.EOF.
func (p *patternSource) close() error {
	p.closeOnce.Do(func() {
		close(p.done)
		p.ticker.Stop()
	})
	return nil
}
