package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	durationType = reflect.TypeFor[time.Duration]()
	secretType   = reflect.TypeFor[Secret]()
)

// maxAliasHops bounds alias chains; the YAML parser rejects cycles of
// anchors but an alias may point at another alias.
const maxAliasHops = 16

// decode turns a YAML document into a Config without defaults, recording the
// line of every key. It checks the version first, then decodes strictly
// through yaml.Node so that every error carries a line and a key path.
func decode(name string, data []byte, getenv func(string) string, o LoadOptions) (*Config, error) {
	src := &source{file: name, lines: map[string]int{}}
	fail := func(line int, path, msg string) error {
		return &Error{File: name, Line: line, Path: path, Msg: msg}
	}

	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fail(yamlErrorLine(err), "", yamlErrorMsg(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line = yamlErrorLine(err)
		}
		return nil, fail(line, "", "more than one YAML document; a configuration is one document")
	}

	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == 0 || isNull(root) {
		return nil, fail(1, "version", fmt.Sprintf("required; the supported version is %d", Version))
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "", "must be a mapping of keys to values")
	}
	src.lines[""] = root.Line

	// The version decides how to read the rest; check it alone first.
	var versionKey, versionVal *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "version" {
			versionKey, versionVal = k, root.Content[i+1]
			break
		}
	}
	if versionKey == nil {
		return nil, fail(root.Line, "version", fmt.Sprintf("required; the supported version is %d", Version))
	}
	if v, err := strconv.Atoi(versionVal.Value); versionVal.Kind != yaml.ScalarNode || versionVal.ShortTag() != "!!int" || err != nil || v != Version {
		got := describe(versionVal)
		if versionVal.Kind == yaml.ScalarNode && versionVal.ShortTag() == "!!int" {
			got = versionVal.Value
		}
		return nil, fail(versionKey.Line, "version", fmt.Sprintf("unsupported version %s; the supported version is %d", got, Version))
	}

	d := &decoder{
		src:     src,
		secrets: secretReader{dir: filepath.Dir(name), getenv: getenv, src: src, deferCreds: o.DeferCredentials},
	}
	c := &Config{src: src}
	d.value(root, reflect.ValueOf(c).Elem(), "")
	if len(d.errs) > 0 {
		return nil, joinSorted(d.errs)
	}
	return c, nil
}

// decoder walks a yaml.Node tree into a reflect.Value.
type decoder struct {
	src     *source
	secrets secretReader
	errs    []*Error
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.src.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// value decodes n into v. The types it knows are those Config uses: structs
// (with inline embedded structs), slices, maps with string keys, strings,
// ints, bools, time.Duration and Secret.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	n, ok := d.deref(n, path)
	if !ok {
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		d.duration(n, v, path)
		return
	case t == secretType:
		d.secret(n, v, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.Map:
		d.dict(n, v, path)
	case reflect.String:
		if isNull(n) {
			// An enum's value written as the word null (audio.backend:
			// null) is that word, not YAML's null; elsewhere null is "".
			if t.PkgPath() != "" && n.Style == 0 && n.Value != "" && n.Value != "~" {
				v.SetString(n.Value)
				return
			}
			v.SetString("")
			return
		}
		if n.Kind != yaml.ScalarNode {
			d.errorf(n.Line, path, "must be a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.errorf(n.Line, path, "must be an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n.Line, path, "must be true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	default:
		// Unreachable for Config; guards against a field of a new type.
		d.errorf(n.Line, path, "cannot decode into %s", t)
	}
}

// deref follows aliases.
func (d *decoder) deref(n *yaml.Node, path string) (*yaml.Node, bool) {
	for hops := 0; n.Kind == yaml.AliasNode; hops++ {
		if hops == maxAliasHops || n.Alias == nil {
			d.errorf(n.Line, path, "alias chain too long")
			return nil, false
		}
		n = n.Alias
	}
	return n, true
}

// mapping decodes a YAML mapping into a struct, rejecting unknown and
// duplicate keys. A null value leaves the struct as it is.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "must be a mapping, got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, ok := d.deref(n.Content[i], path)
		if !ok {
			continue
		}
		val := n.Content[i+1]
		p, ok := d.key(k, path, seen)
		if !ok {
			continue
		}
		f, ok := fields[k.Value]
		if !ok {
			d.errorf(k.Line, p, "unknown key%s", suggest(k.Value, fields))
			continue
		}
		d.src.lines[p] = k.Line
		d.value(val, v.FieldByIndex(f), p)
	}
}

// sequence decodes a YAML sequence into a slice; an empty list or null
// gives a nil slice.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	v.SetZero()
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "must be a list, got %s", describe(n))
		return
	}
	if len(n.Content) == 0 {
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.src.lines[p] = e.Line
		d.value(e, s.Index(i), p)
	}
	v.Set(s)
}

// key checks key k of the mapping at path: a plain string, not seen before
// (seen maps keys to their lines). It returns the key's path.
func (d *decoder) key(k *yaml.Node, path string, seen map[string]int) (string, bool) {
	if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" || isNull(k) {
		d.errorf(k.Line, path, "keys must be plain strings, got %s", describe(k))
		return "", false
	}
	p := joinKey(path, k.Value)
	if prev, dup := seen[k.Value]; dup {
		d.errorf(k.Line, p, "duplicate key (first set at line %d)", prev)
		return "", false
	}
	seen[k.Value] = k.Line
	return p, true
}

// dict decodes a YAML mapping into a map with string keys.
func (d *decoder) dict(n *yaml.Node, v reflect.Value, path string) {
	m := reflect.MakeMap(v.Type())
	v.Set(m)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "must be a mapping, got %s", describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, ok := d.deref(n.Content[i], path)
		if !ok {
			continue
		}
		p, ok := d.key(k, path, seen)
		if !ok {
			continue
		}
		d.src.lines[p] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(n.Content[i+1], e, p)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if dur, err := time.ParseDuration(n.Value); err == nil {
			v.SetInt(int64(dur))
			return
		}
	}
	d.errorf(n.Line, path, `must be a duration such as "1.5s" or "200ms", got %s`, describe(n))
}

func (d *decoder) secret(n *yaml.Node, v reflect.Value, path string) {
	var (
		s   Secret
		err error
	)
	switch {
	case isNull(n):
		return
	case n.Kind == yaml.ScalarNode:
		s, err = d.secrets.inline(n.Value)
	case n.Kind == yaml.MappingNode:
		var ref struct {
			File       string `yaml:"file"`
			Credential string `yaml:"credential"`
		}
		before := len(d.errs)
		d.mapping(n, reflect.ValueOf(&ref).Elem(), path)
		if len(d.errs) > before {
			return
		}
		switch {
		case (ref.File == "") == (ref.Credential == ""):
			err = errors.New("give exactly one of file or credential")
		case ref.File != "":
			s, err = d.secrets.file(ref.File)
		default:
			s, err = d.secrets.credential(ref.Credential)
		}
	default:
		err = fmt.Errorf("must be a string or a mapping with file or credential, got %s", describe(n))
	}
	if err != nil {
		d.errorf(n.Line, path, "%s", err)
		return
	}
	v.Set(reflect.ValueOf(s))
}

// structFields maps the YAML keys of struct type t to field index paths,
// flattening anonymous fields tagged ",inline".
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.Anonymous && opts == "inline" {
			continue // its fields are visible in their own right
		}
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Index
	}
	return out
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's kind and value for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	default:
		return "nothing"
	}
}

// suggest proposes the closest known key for a misspelt one.
func suggest(key string, fields map[string][]int) string {
	best, bestDist := "", len(key)/2+1
	for name := range fields {
		if dist := editDistance(key, name); dist < bestDist || dist == bestDist && name < best {
			best, bestDist = name, dist
		}
	}
	if best == "" || bestDist > len(key)/2 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// yamlErrorLine extracts the line from a yaml syntax error ("yaml: line 3: ...").
func yamlErrorLine(err error) int {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "line "); ok {
		end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if end > 0 {
			if l, err := strconv.Atoi(rest[:end]); err == nil {
				return l
			}
		}
	}
	return 0
}

// yamlErrorMsg strips the "yaml: line N: " prefix the line already gives.
func yamlErrorMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			msg = rest[i+2:]
		}
	}
	return "invalid YAML: " + msg
}
