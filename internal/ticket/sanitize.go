package ticket

import (
	"bytes"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"github.com/microcosm-cc/bluemonday/css"
	xhtml "golang.org/x/net/html"
)

// SanitizeHTML returns html made safe to show to staff in a browser: no
// script in any form, nothing that loads remote content when the mail is
// opened (tracking pixels, remote CSS, web fonts), nothing that navigates
// or frames, while the ordinary formatting of email (tables, fonts, colours,
// inline styles) survives. The result is valid UTF-8 without NUL bytes and
// takes time linear in len(html).
//
// Inline images survive only as src="cid:..." (to be resolved by the ticket
// system through ticket_attachments.content_id) or as data: URLs of raster
// images; every other img src is removed but the img keeps its alt text and
// size. Links keep only http(s) URLs with a host, mailto: and tel:, and get
// rel="nofollow noreferrer"; http(s) links also get target="_blank" and
// rel "noopener".
//
// The output is a sanitized token stream, not a balanced tree: a stray
// </div> in the mail stays a stray </div>. Show it where that cannot break
// the page around it, best in an iframe with srcdoc and sandbox.
func SanitizeHTML(html string) string {
	if !utf8.ValidString(html) {
		html = strings.ToValidUTF8(html, "\uFFFD")
	}
	// Postgres rejects NUL in text; browsers read it as U+FFFD as well.
	if strings.IndexByte(html, 0) >= 0 {
		html = strings.ReplaceAll(html, "\x00", "\uFFFD")
	}
	return htmlPolicy.Sanitize(tidyStyles(html))
}

// Bounds on inline CSS. bluemonday's style handling is not linear: its CSS
// parser (douceur) builds each declaration by string concatenation and its
// escape decoder rescans the value after each escape, both quadratic, and
// its shorthand handlers (border, margin, padding, ...) try every way to
// split a value into parts, exponential in the number of parts:
// "border:1px 1px ... 1px x" with 20 parts takes seconds. Real mail stays
// far below these bounds.
const (
	// maxStyleLen bounds the non-space bytes of a style attribute handed to
	// bluemonday; longer ones are dropped whole beforehand (tidyStyles).
	// That bounds the quadratic work per input byte. White space does not
	// count because bluemonday adds some ("a:b;c:d" comes out as
	// "a: b; c: d"): a limit on the plain length would drop the attribute
	// when the output is sanitized again.
	maxStyleLen = 1024
	// maxCSSValueLen and maxCSSValueParts bound one declaration's value
	// (parts are separated by spaces or "/"); "1px solid #ccc" has 3 parts,
	// margin at most 4.
	maxCSSValueLen   = 128
	maxCSSValueParts = 4
	// maxFontFamilyLen bounds a font list; long ones name a dozen fonts in
	// about 150 bytes.
	maxFontFamilyLen = 256
)

// tidyStyles prepares the style attributes of s for bluemonday and leaves
// everything else byte for byte as it was:
//   - Style attributes of more than maxStyleLen non-space bytes go whole.
//   - Empty declarations go: "color:red;;", a leading ";", or a trailing ";"
//     followed by a newline (bluemonday appends ";" unless the value ends in
//     ";" or a space). bluemonday drops the whole attribute when its CSS
//     parser fails, and it fails on those.
//   - url(...) goes, up to its ")" or the end of the value. No allowed
//     property takes a URL, but the CSS scanner matches "url(" by a regular
//     expression that runs on to the end of the value when there is no ")":
//     quadratic, about 0.2 MB/s on a mail of style="color:url(url(url(...".
//     Cutting at the first ";" instead would split data: URLs.
//
// It uses the tokenizer bluemonday uses, so both agree on what is an
// attribute.
func tidyStyles(s string) string {
	if len(s) < shortestLongStyle && !mayNeedTidy(s) || stylesLookTidy(s) {
		return s
	}
	return tidyTags(s)
}

// tidyTags is tidyStyles without its shortcuts: it tokenizes s and rebuilds
// the tags whose style attributes need it.
func tidyTags(s string) string {
	var (
		b      strings.Builder
		off    int // where the current token starts in s
		copied int // s[:copied] is in b
		attrs  [][2][]byte
	)
	z := xhtml.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		if tt == xhtml.ErrorToken {
			break
		}
		raw := z.Raw()
		n := len(raw) // tokens are contiguous: the next starts at off+n
		if (tt == xhtml.StartTagToken || tt == xhtml.SelfClosingTagToken) &&
			(n >= shortestLongStyle || tagMayNeedTidy(raw)) {
			if tag, ok := tidyTag(z, tt, &attrs); ok {
				if copied == 0 {
					b.Grow(len(s))
				}
				b.WriteString(s[copied:off])
				b.WriteString(tag)
				copied = off + n
			}
		}
		off += n
	}
	if copied == 0 {
		return s
	}
	b.WriteString(s[copied:])
	return b.String()
}

// stylesLookTidy reports whether no style attribute in s needs tidying, by
// a scan that is much cheaper than tokenizing s (mail from Outlook has a
// style attribute, and a ";", in almost every tag). It looks at every
// "style" (in any case) that could end an attribute name and reads the
// value after it as the tokenizer would (golang.org/x/net/html
// readTagAttrVal). Text, comments and script that merely look like an
// attribute are looked at too, which can only send s the slow way. A
// value with a CR or an entity other than &quot;, which the tokenizer
// would decode into something else, does as well.
func stylesLookTidy(s string) bool {
	// Found by its "y", a rarer letter than its "s".
	ys := newYFinder(s)
	for i := 0; ; {
		j := ys.next(i)
		if j < 0 {
			return true
		}
		i = j + 1
		if i < 3 || !hasStyleKey(s, i-3) {
			continue
		}
		i += 2
		// Outlook quotes font names as &quot;, which decodes the same
		// wherever it stands; any other entity takes the slow way.
		val := strings.ReplaceAll(attrValue(s[i:]), "&quot;", `"`)
		if strings.ContainsAny(val, "&\r") || styleNeedsTidy([]byte(val)) {
			return false
		}
	}
}

// yFinder finds the "y" and "Y" of s from left to right. It remembers the
// next of each it found, so that each byte is searched at most once per
// letter: searching the rest of s again for every "Y" would take time
// quadratic in a mail of capitals. (Two IndexByte are several times
// faster than IndexAny, which builds a set.)
type yFinder struct {
	s string
	// lower and upper are the next "y" and "Y" at or after the last
	// search, len(s) for none, -1 before the first search.
	lower, upper int
}

func newYFinder(s string) *yFinder { return &yFinder{s: s, lower: -1, upper: -1} }

// next returns the index of the first "y" or "Y" at or after i, or -1.
func (f *yFinder) next(i int) int {
	if f.lower < i {
		f.lower = indexFrom(f.s, i, 'y')
	}
	if f.upper < i {
		f.upper = indexFrom(f.s, i, 'Y')
	}
	if j := min(f.lower, f.upper); j < len(f.s) {
		return j
	}
	return -1
}

// indexFrom is the index of the first c at or after i in s, or len(s).
func indexFrom(s string, i int, c byte) int {
	if k := strings.IndexByte(s[i:], c); k >= 0 {
		return i + k
	}
	return len(s)
}

// hasStyleKey reports whether s[i:] starts with "style" in any case, ended
// as an attribute name ends.
func hasStyleKey(s string, i int) bool {
	if len(s)-i < len("style") || !strings.EqualFold(s[i:i+5], "style") {
		return false
	}
	return i+5 == len(s) || strings.IndexByte(" \n\r\t\f/=>", s[i+5]) >= 0
}

// attrValue returns the value of the attribute whose name ends where rest
// begins, as html.Tokenizer reads it: after white space, "=" and white
// space again, a quoted string up to its quote (or the end) or else up to
// white space or ">". No "=" means no value.
func attrValue(rest string) string {
	rest = strings.TrimLeft(rest, htmlSpace)
	if !strings.HasPrefix(rest, "=") {
		return ""
	}
	rest = strings.TrimLeft(rest[1:], htmlSpace)
	if rest == "" {
		return ""
	}
	if q := rest[0]; q == '"' || q == '\'' {
		if end := strings.IndexByte(rest[1:], q); end >= 0 {
			return rest[1 : 1+end]
		}
		return rest[1:]
	}
	if end := strings.IndexAny(rest, htmlSpace+">"); end >= 0 {
		return rest[:end]
	}
	return rest
}

// htmlSpace is white space to the HTML tokenizer.
const htmlSpace = " \n\r\t\f"

// mayNeedTidy reports whether source text may hold a style attribute that
// tidyTag would change, long ones aside: one with ";" or "url(" (in any
// case), or an entity that could stand for either.
func mayNeedTidy(source string) bool {
	return strings.ContainsAny(source, ";&(")
}

// tagMayNeedTidy is mayNeedTidy for the source of a tag.
func tagMayNeedTidy(raw []byte) bool {
	return bytes.ContainsAny(raw, ";&(")
}

var cssURL = regexp.MustCompile(`(?i)url\([^)]*\)?`)

// shortestLongStyle is the shortest source of a style attribute value that
// is too long: a decoded value is at most 6/5 of its source ("&nGt;" is 6
// bytes of UTF-8).
const shortestLongStyle = maxStyleLen * 4 / 5

// tidyTag returns the current tag of z rebuilt with its style attributes
// tidied, or false when they need nothing. Most tags need nothing, so they
// are looked at in place; attrs is scratch space for that, reused from tag
// to tag.
func tidyTag(z *xhtml.Tokenizer, tt xhtml.TokenType, attrs *[][2][]byte) (string, bool) {
	name, more := z.TagName()
	*attrs = (*attrs)[:0]
	need := false
	for more {
		var key, val []byte
		// Slices of z's buffer, valid until z.Next.
		key, val, more = z.TagAttr()
		*attrs = append(*attrs, [2][]byte{key, val})
		need = need || string(key) == "style" && styleNeedsTidy(val)
	}
	if !need {
		return "", false
	}
	tok := xhtml.Token{Type: tt, Data: string(name)}
	for _, kv := range *attrs {
		attr := xhtml.Attribute{Key: string(kv[0]), Val: string(kv[1])}
		if attr.Key == "style" {
			if nonSpace(kv[1]) > maxStyleLen {
				continue
			}
			attr.Val = tidyStyle(attr.Val)
		}
		tok.Attr = append(tok.Attr, attr)
	}
	return tok.String(), true
}

// styleNeedsTidy reports whether tidyStyle would change style, or style is
// too long.
func styleNeedsTidy(style []byte) bool {
	if nonSpace(style) > maxStyleLen {
		return true
	}
	if bytes.IndexByte(style, '(') >= 0 && cssURL.Match(style) {
		return true
	}
	// Is there an empty declaration (see withoutEmptyDeclarations)?
	blank, spaces := true, true // the declaration so far is white space, spaces only
	for _, c := range style {
		switch c {
		case ';':
			if blank {
				return true
			}
			blank, spaces = true, true
		case ' ':
		case '\t', '\n', '\r', '\f':
			spaces = false
		default:
			blank, spaces = false, false
		}
	}
	return blank && !spaces
}

// tidyStyle returns style without url(...) and empty declarations.
func tidyStyle(style string) string {
	// A space, so that what stood left and right of it stays apart. First,
	// as a data: URL holds a ";".
	style = cssURL.ReplaceAllString(style, " ")
	return withoutEmptyDeclarations(style)
}

// withoutEmptyDeclarations returns style without its empty declarations:
// white space between two ";" or before the first, or other white space
// than spaces after the last. A ";" inside a quoted string counts too,
// which can only spoil a string no allowed property takes.
func withoutEmptyDeclarations(style string) string {
	decls := strings.Split(style, ";")
	kept := decls[:0]
	for i, d := range decls {
		blank := strings.Trim(d, " \t\n\r\f") == ""
		// bluemonday trims trailing spaces, so "a:b;" and "a:b; " are fine.
		last := i == len(decls)-1 && strings.Trim(d, " ") == ""
		if blank && !last {
			continue
		}
		kept = append(kept, d)
	}
	if len(kept) == len(decls) {
		return style
	}
	return strings.Join(kept, ";")
}

var (
	// imgSrc admits only what the ticket system can show without fetching
	// anything: a Content-ID of an inline part, or a raster image inlined as
	// base64. SVG is refused even as data: because it is a document format,
	// not a picture, and other media types are no images at all. A cid
	// has no fragment: "cid:#" would come out as "cid:", which is none.
	imgSrc = regexp.MustCompile(`(?i)^\s*(?:cid:[^\s#]+|data:image/(?:png|gif|jpe?g|webp);base64,[a-z0-9+/=\s]*)\s*$`)
	// href names the link schemes per attribute, because bluemonday's
	// scheme allowlist is global: "cid" and "data" must be allowed for img
	// src, and without this a href="data:..." or href="cid:..." would pass
	// too. Relative links are not allowed either: they would resolve
	// against the ticket system itself (href="/admin/..." from a stranger).
	href = regexp.MustCompile(`(?i)^\s*(?:https?|mailto|tel):`)

	// Presentational attribute values. None of these can carry a URL or
	// script after bluemonday has escaped them; the patterns only keep
	// values sane.
	dimension = regexp.MustCompile(`^\s*[0-9]+(?:\.[0-9]+)?\s*(?:%|px)?\s*$`)
	integer   = regexp.MustCompile(`^\s*[+-]?[0-9]+\s*$`)
	colour    = regexp.MustCompile(`^\s*#?[0-9a-zA-Z]+\s*$`)
	word      = regexp.MustCompile(`^\s*[a-zA-Z]+\s*$`)
	fontFace  = regexp.MustCompile(`^[\p{L}\p{N}\s,'"_-]+$`)
	direction = regexp.MustCompile(`(?i)^\s*(?:ltr|rtl|auto)\s*$`)
	language  = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)
	vAlign    = regexp.MustCompile(`(?i)^\s*(?:top|middle|bottom|baseline)\s*$`)
	listType  = regexp.MustCompile(`^\s*(?:[1aAiI]|disc|circle|square)\s*$`)

	// fontFamilies is a comma-separated list of font names, bare or quoted
	// either way: letters of any script, digits, spaces, "_" and "-". No
	// parentheses, colons, semicolons or backslashes, so no CSS function or
	// escape can hide in it.
	fontFamilies = regexp.MustCompile(`^\s*` + fontName + `(?:\s*,\s*` + fontName + `)*\s*$`)
)

const fontName = `(?:"[\p{L}\p{N} _-]*"|'[\p{L}\p{N} _-]*'|[\p{L}\p{N} _-]+)`

// htmlPolicy is built once: a bluemonday Policy is safe for concurrent use
// once built, and building it costs far more than most sanitizations.
var htmlPolicy = newHTMLPolicy()

func newHTMLPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()

	// Elements of email formatting. Everything else is dropped with its tag
	// while its text stays (bluemonday's rule for unknown elements), except
	// the elements below whose content is not text for a reader.
	p.AllowElements(
		"p", "br", "div", "span", "b", "i", "u", "s", "strong", "em",
		"blockquote", "pre", "code", "h1", "h2", "h3", "h4", "h5", "h6",
		"ul", "ol", "li", "dl", "dt", "dd",
		"table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "col", "colgroup",
		"hr", "center", "sub", "sup", "small", "abbr", "address", "del", "ins", "q", "mark",
	)
	// bluemonday drops elements left without attributes unless they are
	// known to mean something bare; big does, font and a and img do not.
	p.AllowNoAttrs().OnElements("big")

	// bluemonday already skips the content of script, style, title,
	// iframe, object, frame(set), noframes, noembed and noscript. These are
	// not text for a reader either: form controls (option lists, prefilled
	// text), inline SVG and MathML (their text is markup residue), template
	// (inert in a browser, would become live here) and Outlook's <xml> data
	// islands. The whole <head> is deliberately not skipped: its end tag is
	// optional, and a mail without </head> would then lose its whole body;
	// what browsers hide from the head is covered element by element.
	p.SkipElementsContent("applet", "select", "textarea", "button",
		"svg", "math", "template", "xml")
	// bluemonday's list has frame, but frame is a void element: its start
	// tag has no end tag to end the skipping, so one <frame> would swallow
	// all that follows it. It has no content to skip anyway.
	p.AllowElementsContent("frame")

	// Global attributes. No class and no id: the mail is shown inside the
	// ticket system's page, so class="fixed-top modal" would reach the
	// page's own CSS (an overlay that fakes the UI) and id or name could
	// clobber the page's DOM globals. The mail's own stylesheet is dropped
	// anyway, so its classes would style nothing.
	p.AllowAttrs("dir").Matching(direction).Globally()
	p.AllowAttrs("lang").Matching(language).Globally()
	p.AllowAttrs("align").Matching(word).Globally()
	p.AllowAttrs("title").Globally()

	// Tables as email builds its layout with them.
	p.AllowAttrs("colspan", "rowspan").Matching(integer).OnElements("td", "th")
	p.AllowAttrs("valign").Matching(vAlign).OnElements("td", "th", "tr", "thead", "tbody", "tfoot", "col", "colgroup")
	p.AllowAttrs("width", "height").Matching(dimension).OnElements("table", "td", "th", "tr", "col", "colgroup", "img", "hr")
	p.AllowAttrs("bgcolor").Matching(colour).OnElements("table", "td", "th", "tr", "thead", "tbody", "tfoot")
	p.AllowAttrs("border", "cellpadding", "cellspacing").Matching(dimension).OnElements("table")
	p.AllowAttrs("span").Matching(integer).OnElements("col", "colgroup")
	p.AllowAttrs("nowrap").Matching(regexp.MustCompile(`^(?i:nowrap)?$`)).OnElements("td", "th")
	p.AllowAttrs("start").Matching(integer).OnElements("ol")
	p.AllowAttrs("type").Matching(listType).OnElements("ol", "ul", "li")
	p.AllowAttrs("value").Matching(integer).OnElements("li")
	p.AllowAttrs("color").Matching(colour).OnElements("font", "hr")
	p.AllowAttrs("size").Matching(integer).OnElements("font", "hr")
	p.AllowAttrs("face").Matching(fontFace).OnElements("font")

	// Links. The target and rel of the mail are dropped and set anew.
	p.AllowAttrs("href").Matching(href).OnElements("a")
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	// bluemonday adds target="_blank" (and then rel="noopener") only to
	// links with a host; requiring a host of every http(s) link makes that
	// every http(s) link. "https:evil.example" has none in Go but is
	// https://evil.example/ to a browser; it would open in the ticket
	// system's own tab.
	p.AddTargetBlankToFullyQualifiedLinks(true)
	withHost := func(u *url.URL) bool { return u.Host != "" }
	p.AllowURLSchemeWithCustomPolicy("http", withHost)
	p.AllowURLSchemeWithCustomPolicy("https", withHost)
	p.AllowURLSchemes("mailto", "tel")

	// Images: no remote src, ever (tracking pixels, read receipts by the
	// back door, IP leaks). A removed src leaves a harmless img with its alt
	// text and size. srcset, lowsrc and the background attribute are never
	// allowed at all.
	p.AllowAttrs("src").Matching(imgSrc).OnElements("img")
	p.AllowAttrs("alt").OnElements("img")
	p.AllowAttrs("border", "hspace", "vspace").Matching(dimension).OnElements("img")
	// Global like the other schemes, see href above.
	p.AllowURLSchemes("cid", "data")

	// Inline styles, validated per property by bluemonday's default value
	// handlers, none of which accepts url(), expression() or any function
	// besides colours. Not allowed: background and background-image,
	// list-style and list-style-image, border-image (all take url()),
	// position, top/left/…, z-index, float, transform, opacity, overflow
	// (overlays that fake the ticket UI), behavior and -moz-binding (script),
	// content and cursor (url()).
	for _, prop := range []string{
		"color", "background-color",
		"font-size", "font-weight", "font-style",
		"text-align", "text-decoration", "line-height",
		"padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
		"border-color", "border-style", "border-width",
		"border-top-color", "border-right-color", "border-bottom-color", "border-left-color",
		"border-top-style", "border-right-style", "border-bottom-style", "border-left-style",
		"border-top-width", "border-right-width", "border-bottom-width", "border-left-width",
		"border-collapse", "border-spacing", "border-radius",
		"width", "height", "max-width", "min-width",
		"vertical-align", "white-space", "list-style-type",
	} {
		p.AllowStyles(prop).MatchingHandler(guardCSS(css.GetDefaultHandler(prop))).Globally()
	}
	// bluemonday's border handlers try every grouping of the parts into
	// width, style and colour, each of which may itself take several parts:
	// exponential even within maxCSSValueParts. A border shorthand is at
	// most one of each, so part by part is the same check in linear time.
	p.AllowStyles("border", "border-top", "border-right", "border-bottom", "border-left").
		MatchingHandler(guardCSS(borderShorthand)).Globally()
	// bluemonday's font-family handler refuses double quotes, which is how
	// Outlook writes every font (font-family:"Calibri",sans-serif), and
	// names with digits or outside ASCII ("ＭＳ 明朝").
	p.AllowStyles("font-family").MatchingHandler(func(value string) bool {
		return len(value) <= maxFontFamilyLen && fontFamilies.MatchString(value)
	}).Globally()
	// Negative margins are the one in-flow way to pull the mail over what
	// the page shows above or beside it; email layout has no need of them.
	p.AllowStyles("margin", "margin-top", "margin-right", "margin-bottom", "margin-left").
		MatchingHandler(guardCSS(nonNegativeMargin)).Globally()
	// display, but only values of ordinary block, inline and table layout.
	// none stays: newsletters hide their preview text with it.
	p.AllowStyles("display").MatchingEnum(
		"none", "block", "inline", "inline-block", "list-item",
		"table", "inline-table", "table-caption", "table-row", "table-cell",
		"table-row-group", "table-header-group", "table-footer-group",
		"table-column", "table-column-group",
	).Globally()

	return p
}

// nonSpace counts the bytes of b that are not CSS white space.
func nonSpace(b []byte) int {
	n := 0
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r', '\f':
		default:
			n++
		}
	}
	return n
}

// guardCSS wraps a bluemonday value handler: it refuses values beyond
// maxCSSValueLen and maxCSSValueParts before handler can spend exponential
// time on them, and makes it accept the system colour windowtext, which
// bluemonday does not know and Outlook writes in every table border
// ("border:solid windowtext 1.0pt") and often as a text colour. The value
// is only checked, never changed: browsers know windowtext and "rgb(0, 0, 0)".
func guardCSS(handler func(string) bool) func(string) bool {
	return func(value string) bool {
		if len(value) > maxCSSValueLen {
			return false
		}
		// "rgb(0, 0, 0)" is one part, not three.
		value = commaSpace.ReplaceAllString(value, ",")
		if strings.Count(value, " ")+strings.Count(value, "/") >= maxCSSValueParts {
			return false
		}
		return handler(strings.ReplaceAll(value, "windowtext", "black"))
	}
}

var commaSpace = regexp.MustCompile(`\s*,\s*`)

// borderShorthand accepts a border or border-side shorthand: at most
// three parts, each a width, a style or a colour.
func borderShorthand(value string) bool {
	parts := strings.Fields(value)
	if len(parts) == 0 || len(parts) > 3 {
		return false
	}
	for _, part := range parts {
		if !css.BorderSideWidthHandler(part) && !css.BorderSideStyleHandler(part) && !css.ColorHandler(part) {
			return false
		}
	}
	return true
}

// nonNegativeMargin is bluemonday's margin handler without negative
// lengths. The value it gets is lower case with CSS escapes resolved.
func nonNegativeMargin(value string) bool {
	return !strings.Contains(value, "-") && css.MarginHandler(value)
}
