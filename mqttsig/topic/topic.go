// Package topic defines intercomd's MQTT topic layout and the access rule that
// every broker must enforce for it. It is the single definition shared by the
// client transport (mqttsig), the embedded broker (broker) and the Mosquitto
// test configuration, so the three cannot drift apart.
//
// With prefix P (default "intercomd"):
//
//	P/v1/inbox/{to}/{from}     direct message from user "from" to user "to"
//	P/v1/group/{group}/{from}  broadcast by "from" to the members of "group"
//	P/v1/presence/{user}       retained presence of "user"
//
// The last level of every topic is the sender, and the broker only lets an
// authenticated user publish where that level is their own ID, so a receiver
// can trust the sender it reads from the topic. User and group IDs match
// ^[A-Za-z0-9_-]{1,64}$ (usersig.ValidID).
//
// CanSubscribe and CanPublish are the access rule the embedded broker
// enforces; MosquittoACL renders the same rule for a Mosquitto broker.
//
// The package is pure and its values are immutable: safe for concurrent use.
package topic

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/intercomd/intercomd/usersig"
)

// DefaultPrefix is the topic prefix used when none is configured.
const DefaultPrefix = "intercomd"

// Version is the layout version, the level after the prefix.
const Version = "v1"

// ErrNotOurs reports a topic outside this layout (wrong prefix, version,
// kind, number of levels or an invalid ID).
var ErrNotOurs = errors.New("topic: not an intercomd topic")

// Kind is the kind of a signaling topic.
type Kind int

// Kinds of topic. The zero value is Unknown.
const (
	Unknown Kind = iota
	Direct
	Group
	Presence
)

func (k Kind) String() string {
	switch k {
	case Direct:
		return "direct"
	case Group:
		return "group"
	case Presence:
		return "presence"
	default:
		return "unknown"
	}
}

// Layout builds and parses topics under one prefix. The zero Layout is not
// usable; make one with New.
type Layout struct {
	prefix string
	levels int // number of levels in prefix
}

// New returns the layout for prefix ("" means DefaultPrefix). A prefix is one
// or more non-empty levels separated by '/', without wildcards, not starting
// with '$' (reserved by brokers).
func New(prefix string) (Layout, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.HasPrefix(prefix, "$") || strings.ContainsAny(prefix, "+#\x00") {
		return Layout{}, fmt.Errorf("topic prefix %q: no wildcards and no leading '$'", prefix)
	}
	levels := strings.Split(prefix, "/")
	for _, l := range levels {
		if l == "" {
			return Layout{}, fmt.Errorf("topic prefix %q: empty level", prefix)
		}
	}
	return Layout{prefix: prefix, levels: len(levels)}, nil
}

// Prefix returns the layout's prefix.
func (l Layout) Prefix() string { return l.prefix }

// Inbox is the topic of a direct message from "from" to "to".
func (l Layout) Inbox(to, from string) string { return l.prefix + "/v1/inbox/" + to + "/" + from }

// Group is the topic of a broadcast by "from" to "group".
func (l Layout) Group(group, from string) string {
	return l.prefix + "/v1/group/" + group + "/" + from
}

// Presence is the retained presence topic of user.
func (l Layout) Presence(user string) string { return l.prefix + "/v1/presence/" + user }

// InboxFilter is the subscription that receives user's direct messages.
func (l Layout) InboxFilter(user string) string { return l.Inbox(user, "+") }

// GroupFilter is the subscription that receives group broadcasts.
func (l Layout) GroupFilter(group string) string { return l.Group(group, "+") }

// PresenceFilter is the subscription that receives every user's presence.
func (l Layout) PresenceFilter() string { return l.Presence("+") }

// Name is a parsed topic name.
type Name struct {
	Kind Kind
	// To is the addressee of a Direct message.
	To string
	// Group is the group of a Group broadcast.
	Group string
	// From is the sender (Direct, Group) or the subject (Presence).
	From string
}

// Parse splits a concrete topic name (no wildcards) of this layout. It returns
// an error wrapping ErrNotOurs for anything else.
func (l Layout) Parse(name string) (Name, error) {
	rest, ok := l.strip(name)
	if !ok {
		return Name{}, fmt.Errorf("%q: %w", name, ErrNotOurs)
	}
	f := strings.Split(rest, "/")
	switch {
	case len(f) == 3 && f[0] == "inbox" && usersig.ValidID(f[1]) && usersig.ValidID(f[2]):
		return Name{Kind: Direct, To: f[1], From: f[2]}, nil
	case len(f) == 3 && f[0] == "group" && usersig.ValidID(f[1]) && usersig.ValidID(f[2]):
		return Name{Kind: Group, Group: f[1], From: f[2]}, nil
	case len(f) == 2 && f[0] == "presence" && usersig.ValidID(f[1]):
		return Name{Kind: Presence, From: f[1]}, nil
	}
	return Name{}, fmt.Errorf("%q: %w", name, ErrNotOurs)
}

// strip removes "prefix/v1/" from name.
func (l Layout) strip(name string) (string, bool) {
	if l.prefix == "" {
		return "", false
	}
	rest, ok := strings.CutPrefix(name, l.prefix+"/"+Version+"/")
	return rest, ok
}

// Membership tells whether a user belongs to a group.
type Membership interface {
	IsMember(group, user string) bool
}

// Groups is a Membership from a group -> members table.
type Groups map[string][]string

// IsMember reports whether user is listed in group.
func (g Groups) IsMember(group, user string) bool {
	for _, m := range g[group] {
		if m == user {
			return true
		}
	}
	return false
}

// CanSubscribe reports whether user may subscribe to filter. Allowed: their
// inbox (P/v1/inbox/U/+, P/v1/inbox/U/# or one sender P/v1/inbox/U/X), the
// groups they belong to (P/v1/group/G/+ or P/v1/group/G/X) and presence
// (P/v1/presence/+ or P/v1/presence/X). Everything else is denied.
func (l Layout) CanSubscribe(user, filter string, groups Membership) bool {
	if !usersig.ValidID(user) {
		return false
	}
	rest, ok := l.strip(filter)
	if !ok {
		return false
	}
	f := strings.Split(rest, "/")
	idOrPlus := func(s string) bool { return s == "+" || usersig.ValidID(s) }
	switch {
	case len(f) == 3 && f[0] == "inbox":
		return f[1] == user && (idOrPlus(f[2]) || f[2] == "#")
	case len(f) == 3 && f[0] == "group":
		return usersig.ValidID(f[1]) && idOrPlus(f[2]) && groups != nil && groups.IsMember(f[1], user)
	case len(f) == 2 && f[0] == "presence":
		return idOrPlus(f[1])
	}
	return false
}

// CanPublish reports whether user may publish to the concrete topic name:
// P/v1/inbox/X/U for any valid X, P/v1/group/G/U for a group G they belong
// to, and P/v1/presence/U. Everything else is denied.
func (l Layout) CanPublish(user, name string, groups Membership) bool {
	if !usersig.ValidID(user) {
		return false
	}
	n, err := l.Parse(name)
	if err != nil || n.From != user {
		return false
	}
	switch n.Kind {
	case Direct, Presence:
		return true
	case Group:
		return groups != nil && groups.IsMember(n.Group, user)
	}
	return false
}

// MosquittoACL renders the access rule as a Mosquitto acl_file for the given
// group table: pattern lines (%u is the authenticated username) for inboxes
// and presence, and one user block per group member. Mosquitto authenticates
// with its own password file; usernames must be the user IDs.
func (l Layout) MosquittoACL(groups map[string][]string) string {
	p := l.prefix + "/" + Version
	var b strings.Builder
	fmt.Fprintf(&b, "# intercomd signaling access rule, layout %s\n", p)
	fmt.Fprintf(&b, "pattern read %s/inbox/%%u/+\n", p)
	fmt.Fprintf(&b, "pattern read %s/inbox/%%u/#\n", p)
	fmt.Fprintf(&b, "pattern write %s/inbox/+/%%u\n", p)
	fmt.Fprintf(&b, "pattern read %s/presence/+\n", p)
	fmt.Fprintf(&b, "pattern readwrite %s/presence/%%u\n", p)
	byUser := map[string][]string{}
	for g, members := range groups {
		for _, m := range members {
			byUser[m] = append(byUser[m], g)
		}
	}
	users := make([]string, 0, len(byUser))
	for u := range byUser {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, u := range users {
		gs := byUser[u]
		slices.Sort(gs)
		fmt.Fprintf(&b, "\nuser %s\n", u)
		for _, g := range gs {
			fmt.Fprintf(&b, "topic read %s/group/%s/+\n", p, g)
			fmt.Fprintf(&b, "topic write %s/group/%s/%s\n", p, g, u)
		}
	}
	return b.String()
}
