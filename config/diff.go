package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

var indexPattern = regexp.MustCompile(`\[\d+\]`)

// Reloadable reports whether a change to the key at path (as Diff returns
// it) can be applied without a restart.
// These are the only such keys; a list index is matched by [*].
func Reloadable(path string) bool {
	switch indexPattern.ReplaceAllString(path, "[*]") {
	case "log.level",
		"calling.invite_timeout",
		"calling.doorbell.group",
		"calling.doorbell.users",
		"calling.auto_answer",
		"calling.door_users",
		"calling.callers":
		return true
	}
	return false
}

// Diff compares two configurations and returns the key paths whose values
// differ, split into those a running daemon applies live on SIGHUP (log
// level, invite timeout, ring targets, door users, auto-answer) and those
// that need a restart (broker, listen addresses, devices, GPIO lines and
// timings, which are read when the panel opens, everything else). Both
// lists are sorted.
//
// Paths are leaves such as "calling.invite_timeout" or
// "gpio.buttons[0].long_press"; a list of scalars, a map, or a list whose
// length changed is reported as one path ("calling.door_users",
// "signaling.groups", "gpio.buttons"). A nil config compares as Default().
func Diff(old, new *Config) (reload []string, restart []string) {
	if old == nil {
		old = Default()
	}
	if new == nil {
		new = Default()
	}
	var changed []string
	diffValue(reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem(), "", &changed)
	for _, p := range changed {
		if Reloadable(p) {
			reload = append(reload, p)
		} else {
			restart = append(restart, p)
		}
	}
	slices.Sort(reload)
	slices.Sort(restart)
	return reload, restart
}

func diffValue(a, b reflect.Value, path string, out *[]string) {
	t := a.Type()
	switch {
	case t == durationType, t == secretType:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, path)
		}
	case t.Kind() == reflect.Struct:
		for _, f := range reflect.VisibleFields(t) {
			if !f.IsExported() || f.Anonymous {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			diffValue(a.FieldByIndex(f.Index), b.FieldByIndex(f.Index), joinKey(path, name), out)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && t.Elem() != secretType:
		if a.Len() != b.Len() {
			*out = append(*out, path)
			return
		}
		for i := range a.Len() {
			diffValue(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		// Scalars, lists of scalars and maps compare whole; an empty list
		// equals an absent one.
		if (t.Kind() == reflect.Slice || t.Kind() == reflect.Map) && a.Len() == 0 && b.Len() == 0 {
			return
		}
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, path)
		}
	}
}
