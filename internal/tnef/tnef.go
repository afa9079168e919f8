// Package tnef decodes Microsoft TNEF streams (winmail.dat,
// application/ms-tnef) as Outlook and Exchange send them.
//
// The stream format is specified in [MS-OXTNEF], compressed RTF bodies in
// [MS-OXRTFCP] and HTML encapsulated in RTF in [MS-OXRTFEX]. Only the parts
// needed to show a message are decoded: subject, bodies and attachments.
// Recipients, dates and other properties are skipped.
//
// Decode never panics and bounds every allocation by the size of its input,
// so it can be fed untrusted mail.
package tnef

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Errors that Decode's error wraps; test for them with errors.Is.
var (
	// ErrSignature means the data does not start with the TNEF signature.
	ErrSignature = errors.New("not a TNEF stream")
	// ErrTruncated means the data ends inside a structure.
	ErrTruncated = errors.New("truncated data")
	// ErrChecksum means an attribute's checksum does not match its data.
	ErrChecksum = errors.New("attribute checksum mismatch")
	// ErrCRC means the CRC of a compressed RTF body does not match.
	ErrCRC = errors.New("compressed RTF CRC mismatch")
	// ErrTooMany means a limit on attachments or errors was reached.
	ErrTooMany = errors.New("too many items")
	// ErrTooLarge means the decoded content reached Limits.DecodedBytes
	// (or the built-in cap of a decompressed RTF body); what lies beyond
	// was not decoded.
	ErrTooLarge = errors.New("decoded size limit reached")
)

// Limits bounds what DecodeWith makes of one stream, on top of the
// built-in bounds (every allocation within the input's size, RTF within
// 64 MiB, at most 1,000 attachments). A zero field adds no bound.
type Limits struct {
	// Attachments is the most attachments returned; past it the rest are
	// skipped and the error wraps ErrTooMany.
	Attachments int
	// DecodedBytes is the most bytes of content returned: bodies,
	// decompressed RTF and attachment data together. Compressed RTF
	// expands up to 9 times, so this is checked while it decompresses;
	// past it the rest is not decoded and the error wraps ErrTooLarge.
	DecodedBytes int64
}

// Message is the decoded content of a TNEF stream. All strings are UTF-8.
//
// When BodyText and BodyHTML are both empty but BodyRTF is not, the sender
// wrote an RTF-only message; RTFText(BodyRTF) gives readable text for it.
type Message struct {
	// Subject is PR_SUBJECT from attMsgProps, else attSubject.
	Subject string
	// BodyText is PR_BODY from attMsgProps, else attBody.
	BodyText string
	// BodyHTML is PR_BODY_HTML / PR_HTML, else the HTML de-encapsulated
	// from BodyRTF when that was written with \fromhtml1 (MS-OXRTFEX).
	BodyHTML string
	// BodyRTF is the decompressed PR_RTF_COMPRESSED, when present.
	BodyRTF []byte
	// Attachments are in stream order.
	Attachments []Attachment
}

// Attachment is one attachment of a Message.
//
// An attached Outlook item (PR_ATTACH_METHOD 5, PR_ATTACH_DATA_OBJ holding
// an IMessage) is stored as a nested TNEF stream: Data holds that stream
// (the bytes after the 16-byte interface id), ContentType is
// "application/ms-tnef" unless the sender set a MIME tag, and Filename gets
// a ".tnef" suffix. Pass Data to Decode to read the attached item. Other
// PR_ATTACH_DATA_OBJ values (OLE objects, method 6) keep their bytes after
// the interface id and their names unchanged.
type Attachment struct {
	// Filename is PR_ATTACH_LONG_FILENAME, else PR_DISPLAY_NAME, else
	// attAttachTitle, else PR_ATTACH_FILENAME. It is not sanitised: it
	// may contain path separators.
	Filename string
	// ContentType is PR_ATTACH_MIME_TAG in lower case, or "".
	ContentType string
	// ContentID is PR_ATTACH_CONTENT_ID without angle brackets, or "".
	ContentID string
	// Data is attAttachData, else PR_ATTACH_DATA_BIN / PR_ATTACH_DATA_OBJ.
	Data []byte
}

// signature starts every TNEF stream (MS-OXTNEF 2.1.3.1).
const signature = 0x223E9F78

// Attribute ids (MS-OXTNEF 2.1.3.3). The high word is the attribute type;
// attributes are matched on the whole value.
const (
	attSubject        = 0x00018004
	attBody           = 0x0002800C
	attAttachData     = 0x0006800F
	attAttachTitle    = 0x00018010
	attAttachRendData = 0x00069002
	attMsgProps       = 0x00069003
	attAttachment     = 0x00069005
	attOemCodepage    = 0x00069007
)

// Limits against hostile input.
const (
	maxAttachments = 1000
	maxErrors      = 20
)

// attachMethodEmbedded is ATTACH_EMBEDDED_MSG (MS-OXCMSG 2.2.2.9).
const attachMethodEmbedded = 5

// iidIMessage is {00020307-0000-0000-C000-000000000046} in its wire form;
// it prefixes PR_ATTACH_DATA_OBJ when the object is an attached message.
var iidIMessage = []byte{0x07, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46}

// Decode parses a TNEF stream. It never panics. When data does not start
// with the TNEF signature it returns (nil, err) with err wrapping
// ErrSignature. On malformed input it returns everything it could decode
// together with an error describing each problem (wrapping ErrTruncated,
// ErrChecksum, ErrCRC or ErrTooMany where they apply).
func Decode(data []byte) (*Message, error) {
	return DecodeWith(data, Limits{})
}

// DecodeWith is Decode within lim: content past a limit is left out and
// the error says which limit was reached.
func DecodeWith(data []byte, lim Limits) (*Message, error) {
	r := &reader{buf: data}
	sig, err := r.u32()
	if err != nil || sig != signature {
		return nil, fmt.Errorf("tnef: %w", ErrSignature)
	}
	d := &decoder{maxAttachments: maxAttachments, left: -1}
	if lim.Attachments > 0 {
		d.maxAttachments = min(lim.Attachments, maxAttachments)
	}
	if lim.DecodedBytes > 0 {
		d.limit, d.left = lim.DecodedBytes, lim.DecodedBytes
	}
	if _, err := r.u16(); err != nil { // legacy key, unused
		d.fail(fmt.Errorf("legacy key: %w", err))
	}
	for r.remaining() > 0 && d.readAttribute(r) {
	}
	return d.message(), d.err()
}

// decoder collects attributes while the stream is read. Strings are kept as
// raw bytes because the code page (attOemCodepage, PR_MESSAGE_CODEPAGE) may
// come after them.
type decoder struct {
	subject  []byte
	body     []byte
	oemCP    int
	props    propList
	atts     []*rawAttachment
	cur      *rawAttachment
	overflow bool // maxAttachments reached: ignore further attachments

	maxAttachments int
	limit          int64 // Limits.DecodedBytes, 0 for none
	left           int64 // decoded bytes still allowed; -1 for no limit
	full           bool  // the limit was reached: decode nothing more
	sizeErr        error // why, kept apart so maxErrors cannot drop it

	errs    []error
	dropped int
}

// rawAttachment holds one attachment's attributes, undecoded.
type rawAttachment struct {
	title   []byte
	data    []byte
	hasData bool
	props   propList
}

// fail records a problem; after maxErrors only a count is kept so hostile
// input cannot grow the error list without bound.
func (d *decoder) fail(err error) {
	if len(d.errs) >= maxErrors {
		d.dropped++
		return
	}
	d.errs = append(d.errs, err)
}

func (d *decoder) err() error {
	errs := d.errs
	if d.dropped > 0 {
		errs = append(errs, fmt.Errorf("%d more errors: %w", d.dropped, ErrTooMany))
	}
	if d.sizeErr != nil {
		errs = append(errs, d.sizeErr)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("tnef: %w", errors.Join(errs...))
}

// take reserves n bytes of decoded content. Once the limit is reached it
// reports false, for that content and everything after it, so the output
// is a prefix of the stream's content rather than a selection.
func (d *decoder) take(n int) bool {
	if d.left < 0 {
		return true
	}
	if !d.full && int64(n) <= d.left {
		d.left -= int64(n)
		return true
	}
	d.tooLarge(fmt.Errorf("content exceeds the limit of %d decoded bytes: %w", d.limit, ErrTooLarge))
	return false
}

// tooLarge records the first overrun of the decoded size limit and stops
// further decoding.
func (d *decoder) tooLarge(err error) {
	if d.sizeErr == nil {
		d.sizeErr = err
	}
	d.full = true
}

// keep returns s when it fits in the bytes left, else "".
func (d *decoder) keep(s string) string {
	if d.take(len(s)) {
		return s
	}
	return ""
}

// readAttribute reads one attribute (MS-OXTNEF 2.1.3.1): level byte, id,
// length, data, checksum. It returns false when the stream cannot be read
// any further. A bad checksum is reported but the data is still used, as
// the data is more often right than the checksum.
func (d *decoder) readAttribute(r *reader) bool {
	start := r.off
	_, err1 := r.u8() // level: the attribute id alone tells what it is
	id, err2 := r.u32()
	length, err3 := r.u32()
	if err := errors.Join(err1, err2, err3); err != nil {
		d.fail(fmt.Errorf("attribute header at offset %d: %w", start, ErrTruncated))
		return false
	}
	if int64(length) > int64(r.remaining()) {
		d.fail(fmt.Errorf("attribute 0x%08X at offset %d: length %d exceeds %d remaining bytes: %w",
			id, start, length, r.remaining(), ErrTruncated))
		data, _ := r.bytes(r.remaining())
		d.handle(id, data)
		return false
	}
	data, _ := r.bytes(int(length))
	sum, err := r.u16()
	switch {
	case err != nil:
		d.fail(fmt.Errorf("attribute 0x%08X at offset %d: missing checksum: %w", id, start, ErrTruncated))
	case sum != checksum(data):
		d.fail(fmt.Errorf("attribute 0x%08X at offset %d: checksum 0x%04X, computed 0x%04X: %w",
			id, start, sum, checksum(data), ErrChecksum))
	}
	d.handle(id, data)
	return err == nil
}

// checksum is the attribute checksum of MS-OXTNEF 2.1.3.1: the sum of the
// data bytes modulo 65536.
func checksum(data []byte) uint16 {
	var s uint16
	for _, b := range data {
		s += uint16(b)
	}
	return s
}

// handle interprets one attribute. Unknown attributes are ignored.
func (d *decoder) handle(id uint32, data []byte) {
	switch id {
	case attSubject:
		d.subject = data
	case attBody:
		d.body = data
	case attOemCodepage:
		// Two uint32 code pages, the first being the one the writer used
		// for 8-bit strings (MS-OXTNEF 2.1.3.3).
		if len(data) >= 4 {
			d.oemCP = int(binary.LittleEndian.Uint32(data))
		}
	case attMsgProps:
		props, err := parsePropList(data)
		d.props = append(d.props, props...)
		if err != nil {
			d.fail(fmt.Errorf("attMsgProps: %w", err))
		}
	case attAttachRendData:
		// attAttachRendData starts every attachment (MS-OXTNEF 2.1.3.1).
		d.newAttachment()
	case attAttachTitle, attAttachData, attAttachment:
		d.handleAttachment(id, data)
	}
}

// handleAttachment applies an attachment attribute to the current
// attachment, creating one if a writer forgot attAttachRendData.
func (d *decoder) handleAttachment(id uint32, data []byte) {
	if d.cur == nil {
		if d.overflow {
			return
		}
		d.newAttachment()
		if d.cur == nil {
			return
		}
	}
	a := d.cur
	switch id {
	case attAttachTitle:
		a.title = data
	case attAttachData:
		a.data, a.hasData = data, true
	case attAttachment:
		props, err := parsePropList(data)
		a.props = append(a.props, props...)
		if err != nil {
			d.fail(fmt.Errorf("attAttachment of attachment %d: %w", len(d.atts), err))
		}
	}
}

func (d *decoder) newAttachment() {
	if len(d.atts) >= d.maxAttachments {
		if !d.overflow {
			d.fail(fmt.Errorf("more than %d attachments: %w", d.maxAttachments, ErrTooMany))
		}
		d.overflow, d.cur = true, nil
		return
	}
	d.cur = &rawAttachment{}
	d.atts = append(d.atts, d.cur)
}

// stringCodePage picks the code page of 8-bit strings: PR_MESSAGE_CODEPAGE
// names it exactly; attOemCodepage is what Outlook writes for the legacy
// attributes; PR_INTERNET_CPID describes the MIME form and is only a last
// hint (it is often UTF-8 while the 8-bit strings are windows-1252).
func (d *decoder) stringCodePage() int {
	if cp, ok := d.props.long(propMessageCodepage); ok && knownCodePage(cp) {
		return cp
	}
	if knownCodePage(d.oemCP) {
		return d.oemCP
	}
	if cp, ok := d.props.long(propInternetCPID); ok && knownCodePage(cp) {
		return cp
	}
	return defaultCodePage
}

// htmlCodePage picks the code page of a PT_BINARY HTML body, which is
// stored in the message's internet code page (PidTagInternetCodepage).
func (d *decoder) htmlCodePage() int {
	if cp, ok := d.props.long(propInternetCPID); ok && knownCodePage(cp) {
		return cp
	}
	return d.stringCodePage()
}

// message builds the Message from the collected attributes, within the
// decoded size limit: text body, RTF, HTML body, then attachments in stream
// order, each kept only while it fits.
func (d *decoder) message() *Message {
	cp := d.stringCodePage()
	m := &Message{}
	if s, ok := d.props.text(propSubject, cp); ok {
		m.Subject = s
	} else {
		m.Subject = trimNUL(decode8(d.subject, cp))
	}
	if s, ok := d.props.text(propBody, cp); ok {
		m.BodyText = s
	} else {
		m.BodyText = trimNUL(decode8(d.body, cp))
	}
	m.BodyText = d.keep(m.BodyText)
	m.BodyRTF = d.rtf()
	if s, ok := d.props.text(propBodyHTML, d.htmlCodePage()); ok {
		m.BodyHTML = s
	} else if isEncapsulatedHTML(m.BodyRTF) {
		m.BodyHTML = rtfHTML(m.BodyRTF)
	}
	m.BodyHTML = d.keep(m.BodyHTML)
	for _, a := range d.atts {
		// Checked before attachment copies the data.
		if data, _ := a.payload(); !d.take(len(data)) {
			break
		}
		m.Attachments = append(m.Attachments, a.attachment(cp))
	}
	return m
}

// rtf decompresses PR_RTF_COMPRESSED, at most to the decoded bytes left:
// decompression stops there instead of expanding a hostile body first.
// What decoded before a problem is returned; nil when nothing did.
func (d *decoder) rtf() []byte {
	rtf, ok := d.props.binary(propRTFCompressed)
	if !ok || d.full {
		return nil
	}
	limit := maxRTFSize
	if d.left >= 0 && d.left < maxRTFSize {
		limit = int(d.left)
	}
	out, err := decompressRTF(rtf, limit)
	switch {
	case errors.Is(err, ErrTooLarge) && limit < maxRTFSize:
		d.tooLarge(fmt.Errorf("PR_RTF_COMPRESSED: %w", err))
	case err != nil:
		d.fail(fmt.Errorf("PR_RTF_COMPRESSED: %w", err))
	}
	d.take(len(out)) // fits: limit was at most what was left
	if len(out) == 0 {
		return nil
	}
	return out
}

// attachment converts the collected attributes of one attachment.
func (a *rawAttachment) attachment(cp int) Attachment {
	var out Attachment
	out.Filename = a.filename(cp)
	if s, ok := a.props.text(propAttachMIMETag, cp); ok {
		out.ContentType = strings.ToLower(strings.TrimSpace(s))
	}
	if s, ok := a.props.text(propAttachContentID, cp); ok {
		out.ContentID = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
	}
	data, embedded := a.payload()
	out.Data = bytes.Clone(data)
	if embedded {
		if out.ContentType == "" {
			out.ContentType = "application/ms-tnef"
		}
		if out.Filename == "" {
			out.Filename = "message"
		}
		if !strings.HasSuffix(strings.ToLower(out.Filename), ".tnef") {
			out.Filename += ".tnef"
		}
	}
	return out
}

// filename picks the best of the names an attachment may carry.
func (a *rawAttachment) filename(cp int) string {
	for _, id := range []uint16{propAttachLongName, propDisplayName} {
		if s, ok := a.props.text(id, cp); ok && s != "" {
			return s
		}
	}
	if s := trimNUL(decode8(a.title, cp)); s != "" {
		return s
	}
	s, _ := a.props.text(propAttachFilename, cp)
	return s
}

// payload returns the attachment bytes and whether they are an attached
// message. attAttachData wins; otherwise PR_ATTACH_DATA_BIN, or
// PR_ATTACH_DATA_OBJ whose value starts with a 16-byte interface id
// (MS-OXTNEF 2.1.3.4).
func (a *rawAttachment) payload() ([]byte, bool) {
	if a.hasData {
		return a.data, false
	}
	p := a.props.get(propAttachDataBin)
	if p == nil {
		return nil, false
	}
	v := p.values[0]
	if p.typ != ptObject {
		return v, false
	}
	if len(v) < len(iidIMessage) {
		return nil, false
	}
	iid, data := v[:len(iidIMessage)], v[len(iidIMessage):]
	method, _ := a.props.long(propAttachMethod)
	return data, method == attachMethodEmbedded || bytes.Equal(iid, iidIMessage)
}
