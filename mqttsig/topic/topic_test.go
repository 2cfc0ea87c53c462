package topic

import (
	"errors"
	"strings"
	"testing"
)

func mustLayout(t testing.TB, prefix string) Layout {
	t.Helper()
	l, err := New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewPrefix(t *testing.T) {
	if got := mustLayout(t, "").Prefix(); got != DefaultPrefix {
		t.Fatalf("default prefix = %q", got)
	}
	if got := mustLayout(t, "home/door").Inbox("a", "b"); got != "home/door/v1/inbox/a/b" {
		t.Fatalf("multi-level prefix inbox = %q", got)
	}
	for _, bad := range []string{"$SYS", "a/+", "#", "a//b", "/a", "a/", "a\x00"} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

func TestBuildAndParse(t *testing.T) {
	l := mustLayout(t, "")
	tests := []struct {
		topic string
		want  Name
	}{
		{l.Inbox("bob", "alice"), Name{Kind: Direct, To: "bob", From: "alice"}},
		{l.Group("family", "alice"), Name{Kind: Group, Group: "family", From: "alice"}},
		{l.Presence("door-1"), Name{Kind: Presence, From: "door-1"}},
	}
	for _, tt := range tests {
		got, err := l.Parse(tt.topic)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.topic, got, err, tt.want)
		}
	}
	if l.InboxFilter("bob") != "intercomd/v1/inbox/bob/+" ||
		l.GroupFilter("g") != "intercomd/v1/group/g/+" ||
		l.PresenceFilter() != "intercomd/v1/presence/+" {
		t.Fatal("filters do not follow the layout")
	}
	for _, bad := range []string{
		"", "intercomd", "intercomd/v1", "intercomd/v2/inbox/bob/alice", "other/v1/inbox/bob/alice",
		"intercomd/v1/inbox/bob", "intercomd/v1/inbox/bob/alice/x", "intercomd/v1/inbox/bob/+",
		"intercomd/v1/inbox/b.b/alice", "intercomd/v1/group/g", "intercomd/v1/presence/a/b",
		"intercomd/v1/presence/", "intercomd/v1/other/a/b", "intercomdx/v1/presence/a",
		"intercomd/v1/inbox/bob/" + strings.Repeat("a", 65),
	} {
		if n, err := l.Parse(bad); !errors.Is(err, ErrNotOurs) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrNotOurs", bad, n, err)
		}
	}
}

func TestACL(t *testing.T) {
	l := mustLayout(t, "p")
	groups := Groups{"family": {"alice", "bob"}, "staff": {"carol"}}
	subs := []struct {
		user, filter string
		want         bool
	}{
		{"alice", "p/v1/inbox/alice/+", true},
		{"alice", "p/v1/inbox/alice/#", true},
		{"alice", "p/v1/inbox/alice/bob", true},
		{"alice", "p/v1/inbox/bob/+", false},
		{"alice", "p/v1/inbox/+/+", false},
		{"alice", "p/v1/inbox/#", false},
		{"alice", "p/v1/inbox/+/alice", false},
		{"alice", "p/v1/group/family/+", true},
		{"alice", "p/v1/group/family/bob", true},
		{"alice", "p/v1/group/family/#", false},
		{"alice", "p/v1/group/staff/+", false},
		{"alice", "p/v1/group/+/+", false},
		{"alice", "p/v1/presence/+", true},
		{"alice", "p/v1/presence/bob", true},
		{"alice", "p/v1/presence/#", false},
		{"alice", "p/v1/#", false},
		{"alice", "#", false},
		{"alice", "$SYS/#", false},
		{"alice", "$share/x/p/v1/inbox/alice/+", false},
		{"alice", "q/v1/inbox/alice/+", false},
		{"", "p/v1/presence/+", false},
		{"a+", "p/v1/inbox/a+/+", false},
	}
	for _, tt := range subs {
		if got := l.CanSubscribe(tt.user, tt.filter, groups); got != tt.want {
			t.Errorf("CanSubscribe(%q, %q) = %v, want %v", tt.user, tt.filter, got, tt.want)
		}
	}
	pubs := []struct {
		user, topic string
		want        bool
	}{
		{"alice", "p/v1/inbox/bob/alice", true},
		{"alice", "p/v1/inbox/nobody-known/alice", true},
		{"alice", "p/v1/inbox/bob/mallory", false},
		{"alice", "p/v1/inbox/bob/+", false},
		{"alice", "p/v1/group/family/alice", true},
		{"alice", "p/v1/group/family/bob", false},
		{"alice", "p/v1/group/staff/alice", false},
		{"alice", "p/v1/presence/alice", true},
		{"alice", "p/v1/presence/bob", false},
		{"alice", "p/v1/other/alice", false},
		{"alice", "q/v1/inbox/bob/alice", false},
	}
	for _, tt := range pubs {
		if got := l.CanPublish(tt.user, tt.topic, groups); got != tt.want {
			t.Errorf("CanPublish(%q, %q) = %v, want %v", tt.user, tt.topic, got, tt.want)
		}
	}
	if l.CanSubscribe("alice", "p/v1/group/family/+", nil) || l.CanPublish("alice", "p/v1/group/family/alice", nil) {
		t.Error("nil membership granted group access")
	}
}

func FuzzParse(f *testing.F) {
	l := mustLayout(f, "")
	f.Add(l.Inbox("bob", "alice"))
	f.Add(l.Group("g", "alice"))
	f.Add(l.Presence("alice"))
	f.Add("intercomd/v1/inbox/+/#")
	f.Fuzz(func(t *testing.T, name string) {
		n, err := l.Parse(name)
		if err != nil {
			return
		}
		var back string
		switch n.Kind {
		case Direct:
			back = l.Inbox(n.To, n.From)
		case Group:
			back = l.Group(n.Group, n.From)
		case Presence:
			back = l.Presence(n.From)
		default:
			t.Fatalf("Parse(%q) returned kind %v without error", name, n.Kind)
		}
		if back != name {
			t.Fatalf("Parse(%q) = %+v rebuilds as %q", name, n, back)
		}
		if !l.CanPublish(n.From, name, Groups{n.Group: {n.From}}) {
			t.Fatalf("sender %q may not publish its own topic %q", n.From, name)
		}
	})
}

func TestMosquittoACL(t *testing.T) {
	got := mustLayout(t, "home/door").MosquittoACL(Groups{"family": {"bob", "alice"}, "all": {"alice"}})
	want := `# intercomd signaling access rule, layout home/door/v1
pattern read home/door/v1/inbox/%u/+
pattern read home/door/v1/inbox/%u/#
pattern write home/door/v1/inbox/+/%u
pattern read home/door/v1/presence/+
pattern readwrite home/door/v1/presence/%u

user alice
topic read home/door/v1/group/all/+
topic write home/door/v1/group/all/alice
topic read home/door/v1/group/family/+
topic write home/door/v1/group/family/alice

user bob
topic read home/door/v1/group/family/+
topic write home/door/v1/group/family/bob
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}
