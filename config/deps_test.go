package config

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package standard-library-plus-YAML, buildable
// without cgo: it must not pull in hardware, media or MQTT code.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go command not found; needed to list dependencies")
		}
		t.Skip("SKIPPING dependency check: go command not found in PATH")
	}
	cmd := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list with CGO_ENABLED=0: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "github.com/intercomd/intercomd/config", "go.yaml.in/yaml/v3":
		default:
			t.Errorf("config depends on %s; only the standard library and go.yaml.in/yaml/v3 are allowed", dep)
		}
	}
}
