package provision

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is a parsed seed file: the mailboxes and ticket types it declares,
// each with the settings it names. Settings it does not name are left as
// they are in the database (or at their defaults for a new row).
type File struct {
	Path        string
	Mailboxes   []Entry
	TicketTypes []Entry
}

// Entry is one mailbox or ticket type of a seed file.
type Entry struct {
	Name     string
	Line     int
	Settings []Setting
}

// Setting is one key and its text, as the file gave it (after ${VAR}
// expansion and reading KEY_file).
type Setting struct {
	Key  string
	Text string
	Line int
}

// Value returns the text of key and whether the entry sets it.
func (e Entry) Value(key string) (string, bool) {
	for _, s := range e.Settings {
		if s.Key == key {
			return s.Text, true
		}
	}
	return "", false
}

// TicketTypeKeys are the settings of a ticket type in a seed file; mailbox
// is the name of the mailbox that feeds it.
var TicketTypeKeys = []string{"name", "task", "mailbox", "admin_email",
	"notify_new", "notify_replies", "acknowledge", "ack_text"}

// ParseFile reads a seed file. ${NAME} in a value is replaced by the
// environment variable NAME (an unset one is an error; $${ is a literal
// ${); KEY_file: PATH reads a secret or certificate from PATH, relative to
// the seed file. getenv is os.Getenv in the program.
func ParseFile(path string, getenv func(string) string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seed file: %w", err)
	}
	return Parse(data, path, getenv)
}

// Parse reads a seed file's bytes; path names it in errors and anchors
// relative KEY_file paths.
func Parse(data []byte, path string, getenv func(string) string) (*File, error) {
	p := parser{path: path, getenv: getenv}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the file is empty: it needs a mailboxes or a ticket_types section", path)
		}
		return nil, fmt.Errorf("%s: not valid YAML: %w", path, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s:%d: a second YAML document (---): put everything in one", path, more.Line)
	}
	f := &File{Path: path}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.errAt(root, "the file must be a mapping with mailboxes: and ticket_types:")
	}
	seen := map[string]bool{}
	for i := 0; i < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return nil, p.errAt(k, fmt.Sprintf("a second %s: section: merge it into the first", k.Value))
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case "mailboxes":
			f.Mailboxes, err = p.entries(v, "mailbox", mailboxKey)
		case "ticket_types":
			f.TicketTypes, err = p.entries(v, "ticket type", ticketTypeKey)
		default:
			err = p.errAt(k, fmt.Sprintf("unknown section %q: a seed file has mailboxes: and ticket_types:", k.Value))
		}
		if err != nil {
			return nil, err
		}
	}
	return f, p.checkUnique(f)
}

type parser struct {
	path   string
	getenv func(string) string
}

func (p parser) errAt(n *yaml.Node, msg string) error {
	return fmt.Errorf("%s:%d: %s", p.path, n.Line, msg)
}

// keyKind says whether key is a setting of the section, and how it reads.
type keyKind func(key string) (Kind, bool)

func mailboxKey(key string) (Kind, bool) {
	f, ok := FieldByKey(key)
	return f.Kind, ok
}

func ticketTypeKey(key string) (Kind, bool) {
	switch {
	case !slices.Contains(TicketTypeKeys, key):
		return Text, false
	case strings.HasPrefix(key, "notify_") || key == "acknowledge":
		return Bool, true
	}
	return Text, true
}

func (p parser) entries(list *yaml.Node, what string, kindOf keyKind) ([]Entry, error) {
	if list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, p.errAt(list, fmt.Sprintf("expected a list, each %s starting with - name:", what))
	}
	var out []Entry
	for _, item := range list.Content {
		e, err := p.entry(item, what, kindOf)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (p parser) entry(item *yaml.Node, what string, kindOf keyKind) (Entry, error) {
	if item.Kind != yaml.MappingNode {
		return Entry{}, p.errAt(item, fmt.Sprintf("each %s is a mapping of settings, starting with - name:", what))
	}
	e := Entry{Line: item.Line}
	for i := 0; i < len(item.Content); i += 2 {
		s, err := p.setting(item.Content[i], item.Content[i+1], what, kindOf)
		if err != nil {
			return e, err
		}
		if _, dup := e.Value(s.Key); dup {
			return e, p.errAt(item.Content[i], fmt.Sprintf("%s is set twice", s.Key))
		}
		e.Settings = append(e.Settings, s)
	}
	name, _ := e.Value("name")
	if strings.TrimSpace(name) == "" {
		return e, p.errAt(item, fmt.Sprintf("a %s without a name: every entry needs name:", what))
	}
	e.Name = name
	return e, nil
}

// setting reads one key: value, or KEY_file: PATH for secrets and
// certificates.
func (p parser) setting(k, v *yaml.Node, what string, kindOf keyKind) (Setting, error) {
	key, fromFile := k.Value, false
	_, ok := kindOf(key)
	if base, found := strings.CutSuffix(key, "_file"); !ok && found {
		if kind, known := kindOf(base); known && (kind == Secret || kind == PEM) {
			key, fromFile, ok = base, true, true
		}
	}
	if !ok {
		return Setting{}, p.errAt(k, fmt.Sprintf("unknown %s setting %q%s", what, k.Value, suggest(k.Value, kindOf)))
	}
	if v.Kind != yaml.ScalarNode {
		return Setting{}, p.errAt(v, fmt.Sprintf("%s must be a single value", key))
	}
	text, err := p.expand(v.Value)
	if err != nil {
		return Setting{}, p.errAt(v, fmt.Sprintf("%s: %v", key, err))
	}
	if v.Tag == "!!null" {
		text = ""
	}
	if fromFile {
		if text, err = p.readFile(text); err != nil {
			return Setting{}, p.errAt(v, fmt.Sprintf("%s_file: %v", key, err))
		}
	}
	return Setting{Key: key, Text: text, Line: k.Line}, nil
}

func (p parser) readFile(name string) (string, error) {
	if name != "" && !filepath.IsAbs(name) {
		name = filepath.Join(filepath.Dir(p.path), name)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	// A file written by echo or an editor ends in a newline that is not
	// part of the secret.
	return strings.TrimRight(string(data), "\r\n"), nil
}

// expand replaces ${NAME} with the environment variable; $${ stays a
// literal ${. A bare $ is literal, so passwords need no escaping unless
// they contain ${.
func (p parser) expand(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			// The value may be a secret: never quote it.
			return "", errors.New("${ without a closing }: write $${ for a literal ${")
		}
		name := s[i+2 : i+end]
		val := p.getenv(name)
		if val == "" {
			return "", fmt.Errorf("environment variable %s is not set, or empty (write $${ for a literal ${)", name)
		}
		b.WriteString(s[:i] + val)
		s = s[i+end+1:]
	}
}

func (p parser) checkUnique(f *File) error {
	for _, list := range [][]Entry{f.Mailboxes, f.TicketTypes} {
		seen := map[string]int{}
		for _, e := range list {
			if line, dup := seen[e.Name]; dup {
				return fmt.Errorf("%s:%d: %q is declared twice (first at line %d): names are unique", p.path, e.Line, e.Name, line)
			}
			seen[e.Name] = e.Line
		}
	}
	return nil
}

// suggest names the setting a misspelt key most likely meant.
func suggest(key string, kindOf keyKind) string {
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	var keys []string
	for _, f := range Fields {
		keys = append(keys, f.Key)
	}
	keys = append(keys, TicketTypeKeys...)
	for _, k := range keys {
		if _, ok := kindOf(k); ok && norm(k) == norm(key) {
			return fmt.Sprintf(" (did you mean %s?)", k)
		}
	}
	return ""
}
