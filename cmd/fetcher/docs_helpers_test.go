package main

// The reading half of docs_test.go: finds the commands in the repository's
// Markdown (fenced shell blocks, inline code spans and flag tables) and in
// .ci/run and the Makefile, without judging them.

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// docSource is where a command is written: a Markdown file (relative to
// the repository's root, with slashes) and the line it starts on.
type docSource struct {
	File string
	Line int
	Text string // the command as written, continuation lines joined
}

func (s docSource) String() string { return s.File + ":" + strconv.Itoa(s.Line) }

// fetcherCommand is one invocation of the fetcher in the docs.
type fetcherCommand struct {
	docSource
	Inline bool              // from a code span in the prose, not a fenced block
	Env    map[string]string // NAME=value before it, and export NAME=value earlier in its file
	Args   []string          // its arguments, placeholders filled in, optional parts ([…]) left out
	Check  []string          // Args plus the optional flags a synopsis shows: what the parser must accept
	Bare   bool              // an inline mention of a command, nothing but its name (`fetcher mailbox show`)
}

// makeCommand is `make TARGET…`; goCommand is `go build|run|test|… ARGS`.
type makeCommand struct {
	docSource
	Targets []string
}

type goCommand struct {
	docSource
	Args []string // after "go"
}

// shellCommand is any simple command of a fenced shell block, with the
// heading it is under: README's test command is the one under "Run the tests".
type shellCommand struct {
	docSource
	Heading string
	Words   []string // NAME=value assignments included, quotes removed
}

// flagRow is a flag in the first column of a `| flag | …` table.
type flagRow struct {
	docSource
	Flag string
}

// docFile is everything extracted from one Markdown file.
type docFile struct {
	Fetcher []fetcherCommand
	Make    []makeCommand
	Go      []goCommand
	Shell   []shellCommand
	Flags   []flagRow
}

// docMailbox stands for the placeholders NAME, ID, MAILBOX, NAME|ID,
// <name>…: the name the docs use for their example mailbox, which the end
// to end test creates.
const docMailbox = "Support inbox"

// placeholders maps the placeholders the docs write (upper case, or
// lower case in <…>) to a value the command accepts.
var placeholders = map[string]string{
	"NAME": docMailbox, "ID": docMailbox, "MAILBOX": docMailbox, "NAME|ID": docMailbox,
	"MAILBOX_NAME": docMailbox, "FILE": "docs-example.sql", "PATH": "docs-example.sql",
	"DURATION": "10m",
}

func fillPlaceholder(s string) string {
	if v, ok := placeholders[s]; ok {
		return v
	}
	if len(s) > 2 && s[0] == '<' && s[len(s)-1] == '>' {
		if v, ok := placeholders[strings.ToUpper(strings.ReplaceAll(s[1:len(s)-1], "-", "_"))]; ok {
			return v
		}
	}
	return s
}

// shellLangs are the info strings of fenced blocks holding shell commands.
var shellLangs = map[string]bool{"": true, "sh": true, "bash": true, "shell": true, "zsh": true, "console": true, "shell-session": true}

var (
	fenceRe   = regexp.MustCompile("^(\\s*)(```+|~~~+)\\s*([^\\s`]*)")
	headingRe = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	heredocRe = regexp.MustCompile(`(?:^|[^<])<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)
	envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	pathWord  = regexp.MustCompile(`^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*$`)
	flagWord  = regexp.MustCompile(`^--?[A-Za-z0-9][A-Za-z0-9_-]*(=.*)?$`)
	altOrRe   = regexp.MustCompile(`^#+\s*or:?\s+(.+)$`)
	flagCell  = regexp.MustCompile("`(--?[A-Za-z0-9][A-Za-z0-9-]*)`")
	angleWord = regexp.MustCompile(`^<[A-Za-z][A-Za-z0-9_|-]*>`)
	targetRe  = regexp.MustCompile(`^([A-Za-z0-9_./%-][A-Za-z0-9_./% -]*?)\s*::?($|[^=])`)
)

// extractDoc reads one Markdown file.
func extractDoc(file string, src []byte) docFile {
	var d docFile
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	heading := ""
	fileEnv := map[string]string{} // export NAME=value holds for the rest of the file: one shell session
	var prose []string             // the lines outside fenced blocks ("" for those inside), for the code spans
	for i := 0; i < len(lines); i++ {
		m := fenceRe.FindStringSubmatch(lines[i])
		if m == nil {
			if h := headingRe.FindStringSubmatch(lines[i]); h != nil {
				heading = h[1]
			}
			prose = append(prose, lines[i])
			continue
		}
		indent, fence, lang := m[1], m[2], strings.ToLower(m[3])
		start := i + 1
		var body []string
		for i++; i < len(lines); i++ {
			t := strings.TrimSpace(lines[i])
			if strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == "" {
				break
			}
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		for range len(body) + 2 {
			prose = append(prose, "")
		}
		if shellLangs[lang] {
			d.shellBlock(file, start+1, heading, lang, body, fileEnv)
		}
	}
	d.codeSpans(file, prose[:min(len(prose), len(lines))])
	d.flagTables(file, lines)
	return d
}

// logicalLine is a command line with its continuations joined.
type logicalLine struct {
	line int
	text string
}

// logicalLines joins continuation lines (a trailing backslash), skips
// here-documents, and with prompts keeps only the lines after "$ ": the
// others are the commands' output.
func logicalLines(first int, body []string, prompts bool) []logicalLine {
	var out []logicalLine
	for i := 0; i < len(body); i++ {
		num, text := first+i, body[i]
		if prompts {
			t := strings.TrimLeft(text, " \t")
			if !strings.HasPrefix(t, "$ ") && t != "$" {
				continue
			}
			text = strings.TrimPrefix(strings.TrimPrefix(t, "$"), " ")
		}
		for strings.HasSuffix(text, `\`) && !strings.HasSuffix(text, `\\`) && i+1 < len(body) {
			i++
			text = text[:len(text)-1] + " " + strings.TrimPrefix(strings.TrimLeft(body[i], " \t"), "> ")
		}
		if m := heredocRe.FindStringSubmatch(text); m != nil {
			for i+1 < len(body) && strings.TrimSpace(body[i+1]) != m[1] {
				i++
			}
			i++ // the delimiter
		}
		out = append(out, logicalLine{num, text})
	}
	return out
}

func (d *docFile) shellBlock(file string, first int, heading, lang string, body []string, fileEnv map[string]string) {
	prompts := lang == "console" || lang == "shell-session"
	for _, l := range body {
		if strings.HasPrefix(strings.TrimLeft(l, " \t"), "$ ") {
			prompts = true
		}
	}
	for _, l := range logicalLines(first, body, prompts) {
		texts := []string{l.text}
		// "cmd   # or: other cmd" shows a second way: check it too.
		if c := commentOf(l.text); c != "" {
			if m := altOrRe.FindStringSubmatch(c); m != nil {
				texts = append(texts, m[1])
			}
		}
		for _, text := range texts {
			for _, words := range simpleCommands(tokenize(text, false)) {
				src := docSource{file, l.line, strings.TrimSpace(stripComment(text))}
				d.Shell = append(d.Shell, shellCommand{src, heading, wordTexts(words)})
				d.classify(src, words, fileEnv, false)
			}
		}
	}
}

// classify records a simple command that runs the fetcher, make or go.
func (d *docFile) classify(src docSource, words []shTok, sessionEnv map[string]string, inline bool) {
	env := map[string]string{}
	for k, v := range sessionEnv {
		env[k] = v
	}
	if len(words) > 0 && words[0].text == "export" && !inline {
		for _, w := range words[1:] {
			if k, v, ok := assignment(w); ok {
				sessionEnv[k] = v
			}
		}
		return
	}
	for len(words) > 0 {
		if words[0].text == "env" || words[0].text == "sudo" {
			words = words[1:]
			continue
		}
		k, v, ok := assignment(words[0])
		if !ok {
			break
		}
		env[k] = v
		words = words[1:]
	}
	if len(words) == 0 {
		return
	}
	prog := words[0].text
	rest := words[1:]
	switch {
	case path.Base(prog) == "fetcher":
	case prog == "go" && len(rest) > 0:
		d.Go = append(d.Go, goCommand{src, wordTexts(rest)})
		if rest[0].text != "run" {
			return
		}
		// go run [build flags] ./cmd/fetcher ARGS
		i := 1
		for i < len(rest) && strings.HasPrefix(rest[i].text, "-") {
			i++
		}
		if i >= len(rest) || path.Base(rest[i].text) != "fetcher" {
			return
		}
		rest = rest[i+1:]
	case prog == "make":
		var targets []string
		for _, w := range rest {
			if !strings.HasPrefix(w.text, "-") && !strings.Contains(w.text, "=") {
				targets = append(targets, w.text)
			}
		}
		d.Make = append(d.Make, makeCommand{src, targets})
		return
	case prog == "docker" || prog == "docker-compose":
		var ok bool
		if rest, ok = composeFetcherArgs(prog, rest); !ok {
			return
		}
	default:
		return
	}
	if len(rest) == 0 {
		return // the program's name, as in `fetcher`
	}
	for k, v := range env {
		if strings.Contains(v, "$") { // "$(cat key)", "$VAR": nothing to check
			delete(env, k)
		}
	}
	if !inline {
		args := make([]string, len(rest))
		for i, w := range rest {
			args[i] = fillPlaceholder(w.text)
		}
		d.Fetcher = append(d.Fetcher, fetcherCommand{docSource: src, Env: env, Args: args, Check: args})
		return
	}
	for _, c := range synopsis(rest) {
		c.docSource, c.Inline, c.Env = src, true, env
		d.Fetcher = append(d.Fetcher, c)
	}
}

// composeFetcherArgs finds the fetcher's arguments in `docker compose run
// [options] SERVICE [ARGS]` (the image's entrypoint is the fetcher) and in
// `docker compose exec [options] SERVICE fetcher ARGS`.
func composeFetcherArgs(prog string, rest []shTok) ([]shTok, bool) {
	if prog == "docker" {
		if len(rest) == 0 || rest[0].text != "compose" {
			return nil, false
		}
		rest = rest[1:]
	}
	if len(rest) == 0 || (rest[0].text != "run" && rest[0].text != "exec") {
		return nil, false
	}
	sub, rest := rest[0].text, rest[1:]
	withValue := map[string]bool{"-e": true, "--env": true, "-u": true, "--user": true, "-w": true, "--workdir": true,
		"--entrypoint": true, "-v": true, "--volume": true, "-p": true, "--publish": true, "--name": true, "-l": true, "--label": true, "--index": true}
	for len(rest) > 0 && strings.HasPrefix(rest[0].text, "-") {
		if withValue[rest[0].text] && len(rest) > 1 {
			rest = rest[1:]
		}
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return nil, false
	}
	service := rest[0].text
	rest = rest[1:]
	if len(rest) > 0 && path.Base(rest[0].text) == "fetcher" {
		return rest[1:], true
	}
	// run's arguments go to the image's entrypoint, the fetcher, in the
	// services built from this repository (docker-compose.yml).
	return rest, sub == "run" && len(rest) > 0 && strings.Contains(service, "fetcher")
}

// synopsis reads an inline command, which may be a synopsis: `fetcher
// secrets genkey | status | rotate`, `fetcher mailbox enable|disable
// NAME|ID`, `fetcher status [--format table|json] [--wide]`. Alternative
// subcommands make one command each; Args leave out the optional […] parts,
// which Check includes (their flags with the first value shown).
func synopsis(words []shTok) []fetcherCommand {
	var levels [][]string
	i := 0
	for i < len(words) {
		w := words[i]
		switch {
		case w.quoted < 0 && w.text == "|" && len(levels) > 0 && i+1 < len(words) && words[i+1].quoted < 0 && pathWord.MatchString(words[i+1].text):
			levels[len(levels)-1] = append(levels[len(levels)-1], strings.Split(words[i+1].text, "|")...)
			i += 2
			continue
		case w.quoted < 0 && pathWord.MatchString(w.text):
			levels = append(levels, strings.Split(w.text, "|"))
			i++
			continue
		}
		break
	}
	var args, check []string
	depth, afterFlag := 0, false
	for _, w := range words[i:] {
		t := w.text
		open, closing := 0, 0
		if w.quoted != 0 {
			for strings.HasPrefix(t, "[") {
				t, open = t[1:], open+1
			}
		}
		for strings.HasSuffix(t, "]") && w.quoted < 0 {
			t, closing = t[:len(t)-1], closing+1
		}
		optional := depth > 0 || open > 0
		depth += open - closing
		switch {
		case t == "" || (t == "|" && w.quoted < 0):
			afterFlag = false
		case !optional:
			v := fillPlaceholder(t)
			args, check = append(args, v), append(check, v)
			afterFlag = false
		case flagWord.MatchString(t):
			check = append(check, t)
			afterFlag = !strings.Contains(t, "=")
		case afterFlag: // a value: "10m", "table|json", "5m," (then prose)
			check = append(check, fillPlaceholder(strings.Split(strings.TrimRight(t, ",;"), "|")[0]))
			afterFlag = false
		default: // prose inside the brackets
			afterFlag = false
		}
	}
	paths := [][]string{nil}
	for _, alts := range levels {
		var next [][]string
		for _, p := range paths {
			for _, a := range alts {
				next = append(next, append(append([]string(nil), p...), a))
			}
		}
		paths = next
	}
	bare := len(words) == i
	out := make([]fetcherCommand, 0, len(paths))
	for _, p := range paths {
		out = append(out, fetcherCommand{
			Args:  append(append([]string(nil), p...), args...),
			Check: append(append([]string(nil), p...), check...),
			Bare:  bare,
		})
	}
	return out
}

// codeSpans finds the inline code spans of the prose (between runs of one
// or more backticks), which may cross lines, and reads those that are
// commands.
func (d *docFile) codeSpans(file string, lines []string) {
	text := strings.Join(lines, "\n")
	lineAt := func(off int) int { return strings.Count(text[:off], "\n") + 1 }
	for i := 0; i < len(text); {
		if text[i] != '`' {
			i++
			continue
		}
		n := 0
		for i+n < len(text) && text[i+n] == '`' {
			n++
		}
		start := i + n
		end := -1
		for j := start; j < len(text); {
			if text[j] != '`' {
				if text[j] == '\n' && j+1 < len(text) && text[j+1] == '\n' {
					break // a paragraph ends: no closing run
				}
				j++
				continue
			}
			m := 0
			for j+m < len(text) && text[j+m] == '`' {
				m++
			}
			if m == n {
				end = j
				break
			}
			j += m
		}
		if end < 0 {
			i = start
			continue
		}
		span := strings.TrimSpace(strings.ReplaceAll(text[start:end], "\n", " "))
		span = strings.ReplaceAll(span, `\|`, "|") // escaped in tables
		d.inlineCommand(docSource{file, lineAt(i), span})
		i = end + n
	}
}

func (d *docFile) inlineCommand(src docSource) {
	s := strings.TrimPrefix(src.Text, "$ ")
	cmds := simpleCommands(tokenize(s, true))
	if len(cmds) == 0 {
		return
	}
	before := len(d.Fetcher)
	d.classify(src, cmds[0], map[string]string{}, true)
	if toks := tokenize(s, true); len(toks) > len(cmds[0]) {
		for i := before; i < len(d.Fetcher); i++ {
			d.Fetcher[i].Bare = false // `fetcher status >/dev/null || alert`
		}
	}
}

// flagTables reads the first column of the tables whose header starts
// with "| flag |".
func (d *docFile) flagTables(file string, lines []string) {
	in := false
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, "|") {
			in = false
			continue
		}
		cells := strings.Split(strings.Trim(t, "|"), "|")
		first := strings.TrimSpace(cells[0])
		switch {
		case strings.EqualFold(first, "flag"):
			in = true
			continue
		case !in || strings.Trim(first, "-: ") == "":
			continue
		}
		for _, f := range flagCell.FindAllStringSubmatch(first, -1) {
			d.Flags = append(d.Flags, flagRow{docSource{file, i + 1, first}, f[1]})
		}
	}
}

// shTok is a shell word (quotes removed) or an operator.
type shTok struct {
	text   string
	op     bool // | || && ; & |&, or a redirection
	redir  bool // a redirection: >, 2>&1, <<…
	target bool // a redirection whose file is the next word
	quoted int  // where in text the first quoted part starts; -1 when none
}

// tokenize splits a line of shell into words and operators, POSIX-like:
// quotes, backslashes, comments, redirections. In a synopsis a lone "|"
// separates alternatives and stays a word, and "||" is still an operator.
func tokenize(s string, synopsis bool) []shTok {
	var out []shTok
	var cur strings.Builder
	inTok, quoted := false, -1
	flush := func() {
		if inTok {
			out = append(out, shTok{text: cur.String(), quoted: quoted})
		}
		cur.Reset()
		inTok, quoted = false, -1
	}
	markQuote := func() {
		if quoted < 0 {
			quoted = cur.Len()
		}
		inTok = true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c == '\'':
			markQuote()
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				j = len(s) - i - 1
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			markQuote()
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
		case c == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
				inTok = true
			}
		case c == '#' && !inTok:
			flush()
			return out
		case c == '<' && angleWord.MatchString(s[i:]):
			w := angleWord.FindString(s[i:]) // <name>: a placeholder, not a redirection
			cur.WriteString(w)
			inTok = true
			i += len(w) - 1
		case c == '>' || c == '<':
			prefix := ""
			if inTok && quoted < 0 && strings.Trim(cur.String(), "0123456789") == "" {
				prefix = cur.String()
				cur.Reset()
				inTok = false
			}
			flush()
			j := i + 1
			for j < len(s) && strings.IndexByte("<>&|-", s[j]) >= 0 {
				j++
			}
			opText := prefix + s[i:j]
			target := true
			if strings.HasSuffix(opText, "&") || strings.HasSuffix(opText, "&-") {
				k := j
				for k < len(s) && (s[k] >= '0' && s[k] <= '9' || s[k] == '-') {
					k++
				}
				if k > j {
					opText += s[j:k]
					j = k
					target = false
				}
			}
			out = append(out, shTok{text: opText, op: true, redir: true, target: target, quoted: -1})
			i = j - 1
		case c == '|' || c == '&' || c == ';':
			j := i + 1
			if j < len(s) && (s[j] == c || (c == '|' && s[j] == '&')) {
				j++
			}
			if synopsis && c == '|' && j == i+1 {
				cur.WriteByte(c) // table|json, or a lone | between alternatives
				inTok = true
				continue
			}
			flush()
			out = append(out, shTok{text: s[i:j], op: true, quoted: -1})
			i = j - 1
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	flush()
	return out
}

// simpleCommands splits tokens at the operators and drops redirections.
func simpleCommands(toks []shTok) [][]shTok {
	var out [][]shTok
	var cur []shTok
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.redir:
			if t.target {
				i++
			}
		case t.op:
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
		default:
			cur = append(cur, t)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func assignment(w shTok) (name, value string, ok bool) {
	eq := strings.IndexByte(w.text, '=')
	if eq <= 0 || (w.quoted >= 0 && w.quoted < eq) || !envNameRe.MatchString(w.text[:eq]) {
		return "", "", false
	}
	return w.text[:eq], w.text[eq+1:], true
}

func wordTexts(ws []shTok) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.text
	}
	return out
}

// commentOf is the comment of a shell line ("# …"), stripComment the line
// without it.
func commentOf(line string) string {
	if i := commentStart(line); i >= 0 {
		return line[i:]
	}
	return ""
}

func stripComment(line string) string {
	if i := commentStart(line); i >= 0 {
		return line[:i]
	}
	return line
}

func commentStart(line string) int {
	var q byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else if c == '\\' && q == '"' {
				i++
			}
		case c == '\'' || c == '"':
			q = c
		case c == '\\':
			i++
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return i
		}
	}
	return -1
}

// scriptCommands are the simple commands of a shell script, such as
// .ci/run, each as its words.
func scriptCommands(src []byte) [][]string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	var out [][]string
	for _, l := range logicalLines(1, lines, false) {
		for _, c := range simpleCommands(tokenize(l.text, false)) {
			out = append(out, wordTexts(c))
		}
	}
	return out
}

// makeTargets are the targets the Makefile defines.
func makeTargets(src []byte) map[string]bool {
	targets := map[string]bool{}
	for _, l := range strings.Split(string(src), "\n") {
		m := targetRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		for _, t := range strings.Fields(m[1]) {
			if !strings.HasPrefix(t, ".") {
				targets[t] = true
			}
		}
	}
	return targets
}

// markdownFiles lists the repository's Markdown files, relative to root,
// leaving out hidden folders and testdata.
func markdownFiles(root string) ([]string, error) {
	var out []string
	var walk func(dir string) error
	walk = func(dir string) error {
		entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Name()
			rel := path.Join(dir, name)
			switch {
			case e.IsDir() && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "node_modules"):
			case e.IsDir():
				if err := walk(rel); err != nil {
					return err
				}
			case strings.HasSuffix(name, ".md"):
				out = append(out, rel)
			}
		}
		return nil
	}
	return out, walk(".")
}
