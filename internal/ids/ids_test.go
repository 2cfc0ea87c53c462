package ids_test

import (
	"testing"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/ids"
	"github.com/intercomd/intercomd/usersig"
)

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := ids.New()
		if len(id) != ids.Len || !calling.ValidID(id) || !usersig.ValidID(id) {
			t.Fatalf("New() = %q: not a valid %d-character ID", id, ids.Len)
		}
		if seen[id] {
			t.Fatalf("New() returned %q twice", id)
		}
		seen[id] = true
	}
}
