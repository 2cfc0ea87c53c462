package audio_test

import (
	"os/exec"
	"strings"
	"testing"
)

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Fields(string(out))
}

func hasPrefix(pkg, banned string) bool {
	return pkg == banned || strings.HasPrefix(pkg, banned+"/")
}

// TestDependencies keeps the engine free of calling logic and signaling,
// and its code free of peer connections: the media layer adapts between
// them. (pion/webrtc is still linked, indirectly, through the mediadevices
// codec package whose static libopus the opus binding uses.)
func TestDependencies(t *testing.T) {
	const all = "github.com/intercomd/intercomd/hw/audio/..."
	for _, dep := range goList(t, "-deps", all) {
		for _, banned := range []string{
			"github.com/intercomd/intercomd/calling",
			"github.com/eclipse/paho.mqtt.golang",
			"testing",
		} {
			if hasPrefix(dep, banned) {
				t.Errorf("hw/audio depends on %s", dep)
			}
		}
	}
	for _, imp := range goList(t, "-f", `{{join .Imports "\n"}}`, all) {
		for _, banned := range []string{"github.com/pion/webrtc", "github.com/pion/interceptor"} {
			if hasPrefix(imp, banned) {
				t.Errorf("hw/audio imports %s", imp)
			}
		}
	}
}
