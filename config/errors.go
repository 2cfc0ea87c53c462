package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a configuration. Load, Parse and Validate return
// one *Error or several joined with errors.Join; use errors.As (which finds
// the first) or Errors (which lists them all) to inspect them.
type Error struct {
	// File is the configuration file name; "" for a Config built in code.
	File string
	// Line is the 1-based line of the offending key, or of its nearest
	// enclosing key when the key itself is absent; 0 when unknown.
	Line int
	// Path is the key path, e.g. gpio.buttons[0].long_press; "" for the
	// whole file.
	Path string
	// Msg states the rule broken.
	Msg string
}

// Error formats e as file:line: path: msg, omitting empty parts.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors returns every *Error in err's tree, in order.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// joinSorted returns the errors ordered by line then path, joined; nil when
// there are none.
func joinSorted(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Path, b.Path))
	})
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// source records where a Config was decoded from.
type source struct {
	file string
	// lines maps a key path present in the file to the line of its key
	// (for list elements, the line of the element). "" is the document.
	lines map[string]int
	// unresolved lists the systemd credentials left unread (LoadOptions.DeferCredentials).
	unresolved []string
}

// has reports whether the file set the key at path.
func (s *source) has(path string) bool {
	if s == nil {
		return false
	}
	_, ok := s.lines[path]
	return ok
}

// line returns the line of path or, if the file does not set it, of its
// nearest enclosing key; 0 when nothing is known.
func (s *source) line(path string) int {
	if s == nil {
		return 0
	}
	for {
		if l, ok := s.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// parentPath strips the last component of a key path:
// "a.b[2].c" -> "a.b[2]" -> "a.b" -> "a" -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}
