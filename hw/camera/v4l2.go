package camera

import (
	"cmp"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/pion/mediadevices/pkg/driver"
	mdcamera "github.com/pion/mediadevices/pkg/driver/camera"
	mdframe "github.com/pion/mediadevices/pkg/frame"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"
)

// Errors reported when a camera cannot be used. They are wrapped with the device's name;
// test with errors.Is.
var (
	// ErrNoDevice: the configured device does not exist.
	ErrNoDevice = errors.New("no such camera")
	// ErrBusy: the device exists but another process (or another source of this
	// process) holds it.
	ErrBusy = errors.New("camera busy")
	// ErrFormat: the camera does not offer the configured size and pixel format.
	ErrFormat = errors.New("camera does not offer the configured format")
)

// DeviceInfo describes one V4L2 video device.
type DeviceInfo struct {
	// Path is the device node, such as /dev/video0.
	Path string
	// Label is the stable name mediadevices gives the device: the /dev/v4l/by-id or
	// by-path link name when one exists, then ";" and the node name.
	Label string
	// Name is the card name the driver reports (VIDIOC_QUERYCAP), BusInfo its bus.
	Name, BusInfo string
	// Formats lists what the device can capture that this package can encode; empty
	// for nodes that capture no video (such as a UVC camera's metadata node).
	Formats []Format
	// Err says why the formats could not be read (for example ErrBusy), nil otherwise.
	Err error
}

// Format is one capture format of a device.
type Format struct {
	PixelFormat   PixelFormat
	Width, Height int
	// FrameRates lists the frame rates the device announces for this size; empty when
	// it announces none.
	FrameRates []float64
}

// Devices lists the V4L2 cameras of the machine with their formats, for the `devices`
// subcommand. It opens each device briefly, so a device in use is listed with ErrBusy.
// Devices present when the process started are listed (mediadevices scans at start-up);
// opening a source by path rescans.
func Devices() []DeviceInfo {
	var out []DeviceInfo
	for _, d := range cameraDrivers() {
		info := describe(d)
		if err := d.Open(); err != nil {
			info.Err = openError(info.Path, err)
			out = append(out, info)
			continue
		}
		info.Formats = formatsOf(d.Properties())
		if err := d.Close(); err != nil {
			info.Err = fmt.Errorf("close camera %s: %w", info.Path, err)
		}
		out = append(out, info)
	}
	return out
}

// cameraDrivers returns the V4L2 drivers registered in mediadevices' process-wide
// manager, sorted by node name. The manager is touched only here.
func cameraDrivers() []driver.Driver {
	ds := driver.GetManager().Query(driver.FilterAnd(
		driver.FilterVideoRecorder(),
		driver.FilterDeviceType(driver.Camera),
	))
	slices.SortFunc(ds, func(a, b driver.Driver) int {
		return cmp.Or(
			cmp.Compare(describe(a).Path, describe(b).Path),
			cmp.Compare(a.Info().Label, b.Info().Label),
		)
	})
	return ds
}

// describe fills a DeviceInfo from a driver's registration, without opening it.
func describe(d driver.Driver) DeviceInfo {
	info := d.Info()
	_, node, ok := strings.Cut(info.Label, mdcamera.LabelSeparator)
	if !ok {
		node = info.Label
	}
	name, bus, _ := strings.Cut(info.Name, mdcamera.LabelSeparator)
	return DeviceInfo{Path: "/dev/" + node, Label: info.Label, Name: name, BusInfo: bus}
}

// formatsOf groups mediadevices' property list into one Format per pixel format and
// size.
func formatsOf(props []prop.Media) []Format {
	type key struct {
		pf   PixelFormat
		w, h int
	}
	rates := map[key][]float64{}
	var keys []key
	for _, p := range props {
		pf := PixelFormat(p.FrameFormat)
		if !pf.valid() || pf == PixelFormatAuto {
			continue
		}
		k := key{pf, p.Width, p.Height}
		if _, seen := rates[k]; !seen {
			keys = append(keys, k)
			rates[k] = nil
		}
		if p.FrameRate > 0 && !slices.Contains(rates[k], float64(p.FrameRate)) {
			rates[k] = append(rates[k], float64(p.FrameRate))
		}
	}
	out := make([]Format, 0, len(keys))
	for _, k := range keys {
		fr := rates[k]
		slices.Sort(fr)
		out = append(out, Format{PixelFormat: k.pf, Width: k.w, Height: k.h, FrameRates: fr})
	}
	slices.SortFunc(out, func(a, b Format) int {
		return cmp.Or(cmp.Compare(a.PixelFormat, b.PixelFormat), cmp.Compare(a.Width, b.Width), cmp.Compare(a.Height, b.Height))
	})
	return out
}

// findDriver resolves Source.Device to a registered driver: a path (resolved through
// symlinks to its node) or a card name or label, compared without case.
func findDriver(device string) (driver.Driver, error) {
	if strings.HasPrefix(device, "/") {
		real, err := filepath.EvalSymlinks(device)
		if err != nil {
			return nil, fmt.Errorf("camera %s: %w", device, ErrNoDevice)
		}
		node := "/dev/" + filepath.Base(real)
		match := func() driver.Driver {
			for _, d := range cameraDrivers() {
				if describe(d).Path == node {
					return d
				}
			}
			return nil
		}
		if d := match(); d != nil {
			return d, nil
		}
		// The device appeared after start-up: rescan.
		mdcamera.Initialize()
		if d := match(); d != nil {
			return d, nil
		}
		return nil, fmt.Errorf("camera %s (%s): not a V4L2 capture device: %w", device, node, ErrNoDevice)
	}
	for _, d := range cameraDrivers() {
		info := describe(d)
		label, node, _ := strings.Cut(info.Label, mdcamera.LabelSeparator)
		for _, candidate := range []string{info.Name, d.Info().Name, info.Label, label, node} {
			if candidate != "" && strings.EqualFold(candidate, device) {
				return d, nil
			}
		}
	}
	return nil, fmt.Errorf("camera %q: no device with this name: %w", device, ErrNoDevice)
}

// openError classifies the error of opening a device.
func openError(device string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENODEV), errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("open camera %s: %w: %w", device, ErrNoDevice, err)
	case errors.Is(err, syscall.EBUSY), strings.Contains(err.Error(), "already opened"):
		return fmt.Errorf("open camera %s: %w: %w", device, ErrBusy, err)
	default:
		return fmt.Errorf("open camera %s: %w", device, err)
	}
}

// v4l2Capture is an open V4L2 camera streaming frames.
type v4l2Capture struct {
	drv    driver.Driver
	reader video.Reader
	format PixelFormat // the one picked
}

// openV4L2 opens the camera of src and starts streaming at src's size, frame rate and
// pixel format. MJPEG is decoded by libjpeg-turbo where it is installed (see
// mjpegSource), by mediadevices with the standard library otherwise.
func openV4L2(src Source) (capture, error) {
	_, turboErr := MJPEGDecoder()
	if src.PixelFormat == PixelFormatMJPEG && turboErr == nil && strings.HasPrefix(src.Device, "/dev/") {
		return openMJPEG(src.Device, src)
	}
	d, err := findDriver(src.Device)
	if err != nil {
		return nil, err
	}
	if err := d.Open(); err != nil {
		return nil, openError(src.Device, err)
	}
	p, err := pickProperty(src, d.Properties())
	if err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("camera %s: %w", src.Device, err)
	}
	if PixelFormat(p.FrameFormat) == PixelFormatMJPEG && turboErr == nil {
		if err := d.Close(); err != nil {
			return nil, fmt.Errorf("close camera %s: %w", src.Device, err)
		}
		return openMJPEG(describe(d).Path, src)
	}
	rec, ok := d.(driver.VideoRecorder)
	if !ok {
		_ = d.Close()
		return nil, fmt.Errorf("camera %s: not a video recorder: %w", src.Device, ErrNoDevice)
	}
	// VideoRecord sets the format and, with a frame rate, VIDIOC_S_PARM; on error the
	// driver closes itself.
	r, err := rec.VideoRecord(p)
	if err != nil {
		return nil, fmt.Errorf("start camera %s at %dx%d %s %g fps: %w",
			src.Device, p.Width, p.Height, p.FrameFormat, p.FrameRate, err)
	}
	return &v4l2Capture{drv: d, reader: r, format: PixelFormat(p.FrameFormat)}, nil
}

// pickProperty chooses the capture format for src among what the device offers.
func pickProperty(src Source, props []prop.Media) (prop.Media, error) {
	want := []PixelFormat{src.PixelFormat}
	if src.PixelFormat == PixelFormatAuto {
		want = formatPreference()
	}
	for _, pf := range want {
		for _, p := range props {
			if PixelFormat(p.FrameFormat) == pf && p.Width == src.Width && p.Height == src.Height {
				return prop.Media{Video: prop.Video{
					Width:       src.Width,
					Height:      src.Height,
					FrameRate:   float32(src.FrameRate),
					FrameFormat: mdframe.Format(pf),
				}}, nil
			}
		}
	}
	var offered []string
	for _, f := range formatsOf(props) {
		offered = append(offered, fmt.Sprintf("%s %dx%d", f.PixelFormat, f.Width, f.Height))
	}
	format := string(src.PixelFormat)
	if format == "" {
		format = "any format"
	}
	return prop.Media{}, fmt.Errorf("%dx%d in %s (offers %s): %w",
		src.Width, src.Height, format, strings.Join(offered, ", "), ErrFormat)
}

// Read returns the next frame; it blocks until the camera delivers one (up to
// mediadevices' 5 s read timeout) and returns io.EOF once the capture is closed.
func (c *v4l2Capture) Read() (img image.Image, release func(), err error) {
	return c.reader.Read()
}

// close stops streaming and closes the device. It waits for a Read in progress to
// return.
func (c *v4l2Capture) close() error {
	return c.drv.Close()
}
