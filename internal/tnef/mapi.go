package tnef

import (
	"encoding/binary"
	"fmt"
)

// MAPI property types (MS-OXCDATA 2.11.1).
const (
	ptShort    = 0x0002
	ptLong     = 0x0003
	ptFloat    = 0x0004
	ptDouble   = 0x0005
	ptCurrency = 0x0006
	ptAppTime  = 0x0007
	ptError    = 0x000A
	ptBoolean  = 0x000B
	ptObject   = 0x000D
	ptI8       = 0x0014
	ptString8  = 0x001E
	ptUnicode  = 0x001F
	ptSysTime  = 0x0040
	ptCLSID    = 0x0048
	ptBinary   = 0x0102

	// mvFlag marks a multi-valued type (MS-OXCDATA 2.11.1.2).
	mvFlag = 0x1000
)

// MAPI property ids used by Decode (MS-OXPROPS).
const (
	propSubject         = 0x0037 // PidTagSubject
	propBody            = 0x1000 // PidTagBody
	propRTFCompressed   = 0x1009 // PidTagRtfCompressed
	propBodyHTML        = 0x1013 // PidTagBodyHtml / PidTagHtml
	propDisplayName     = 0x3001 // PidTagDisplayName
	propAttachDataBin   = 0x3701 // PidTagAttachDataBinary / PidTagAttachDataObject
	propAttachFilename  = 0x3704 // PidTagAttachFilename (8.3)
	propAttachMethod    = 0x3705 // PidTagAttachMethod
	propAttachLongName  = 0x3707 // PidTagAttachLongFilename
	propAttachMIMETag   = 0x370E // PidTagAttachMimeTag
	propAttachContentID = 0x3712 // PidTagAttachContentId
	propInternetCPID    = 0x3FDE // PidTagInternetCodepage
	propMessageCodepage = 0x3FFD // PidTagMessageCodepage

	// firstNamedID is the lowest id of a named property (MS-OXPROPS 1.3.3);
	// such tags carry a property name in TNEF (MS-OXTNEF 2.1.3.4).
	firstNamedID = 0x8000
)

// Property name kinds (MS-OXTNEF 2.1.3.4, PropIDType).
const (
	nameKindID     = 0
	nameKindString = 1
)

// maxValueCount bounds the number of values of one property; the real bound
// is the remaining input, this only keeps a single allocation sane.
const maxValueCount = 1 << 20

// property is one decoded MAPI property. Values hold the raw bytes of each
// value: fixed-size values without padding, variable-size values without the
// length prefix and padding. Strings stay undecoded because the code page is
// only known once the whole stream has been read.
type property struct {
	typ    uint16
	id     uint16
	name   *propName // non-nil for named properties (id >= 0x8000)
	values [][]byte
}

// propName identifies a named property (MS-OXTNEF 2.1.3.4, NamedPropSpec).
type propName struct {
	guid [16]byte
	kind uint32
	id   uint32 // kind 0
	name string // kind 1, UTF-8
}

// propList is the decoded content of an attMsgProps or attAttachment
// attribute.
type propList []property

// get returns the first unnamed property with the given id, or nil. Named
// properties are skipped because their ids are only meaningful per message.
func (l propList) get(id uint16) *property {
	for i := range l {
		if l[i].name == nil && l[i].id == id && len(l[i].values) > 0 {
			return &l[i]
		}
	}
	return nil
}

// long returns the value of a PT_LONG property.
func (l propList) long(id uint16) (int, bool) {
	p := l.get(id)
	if p == nil || p.typ != ptLong || len(p.values[0]) < 4 {
		return 0, false
	}
	return int(int32(binary.LittleEndian.Uint32(p.values[0]))), true
}

// text returns a string property as UTF-8, converting PT_STRING8 (and
// PT_BINARY, used for PidTagHtml) from code page cp and PT_UNICODE from
// UTF-16LE. Trailing NULs are removed.
func (l propList) text(id uint16, cp int) (string, bool) {
	p := l.get(id)
	if p == nil {
		return "", false
	}
	switch p.typ {
	case ptUnicode:
		return trimNUL(decodeUTF16LE(p.values[0])), true
	case ptString8, ptBinary:
		return trimNUL(decode8(p.values[0], cp)), true
	}
	return "", false
}

// binary returns the first value of a PT_BINARY property.
func (l propList) binary(id uint16) ([]byte, bool) {
	p := l.get(id)
	if p == nil || p.typ != ptBinary {
		return nil, false
	}
	return p.values[0], true
}

// parsePropList decodes a MsgPropertyList (MS-OXTNEF 2.1.3.4). On malformed
// input it returns the properties decoded so far and an error.
func parsePropList(data []byte) (propList, error) {
	r := &reader{buf: data}
	count, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("property count: %w", err)
	}
	// Every property takes at least its 4-byte tag, so a larger count can
	// only be a lie; don't let it size an allocation.
	if int64(count) > int64(r.remaining()/4) {
		return nil, fmt.Errorf("property count %d exceeds data: %w", count, ErrTruncated)
	}
	props := make(propList, 0, count)
	for i := uint32(0); i < count; i++ {
		p, err := parseProperty(r)
		if err != nil {
			return props, fmt.Errorf("property %d of %d: %w", i+1, count, err)
		}
		props = append(props, p)
	}
	return props, nil
}

// parseProperty decodes one MsgPropertyValue: tag, optional name, value(s).
func parseProperty(r *reader) (property, error) {
	var p property
	tag, err := r.u32()
	if err != nil {
		return p, err
	}
	p.typ, p.id = uint16(tag), uint16(tag>>16)
	if p.id >= firstNamedID {
		if p.name, err = parsePropName(r); err != nil {
			return p, fmt.Errorf("name of property 0x%08X: %w", tag, err)
		}
	}
	if p.values, err = parseValues(r, p.typ); err != nil {
		return p, fmt.Errorf("value of property 0x%08X: %w", tag, err)
	}
	return p, nil
}

// parsePropName decodes a NamedPropSpec: GUID, kind, then a numeric id or a
// length-prefixed UTF-16LE name padded to 4 bytes.
func parsePropName(r *reader) (*propName, error) {
	var n propName
	guid, err := r.bytes(16)
	if err != nil {
		return nil, err
	}
	copy(n.guid[:], guid)
	if n.kind, err = r.u32(); err != nil {
		return nil, err
	}
	switch n.kind {
	case nameKindID:
		n.id, err = r.u32()
		return &n, err
	case nameKindString:
		b, err := r.padded()
		if err != nil {
			return nil, err
		}
		n.name = trimNUL(decodeUTF16LE(b))
		return &n, nil
	}
	return nil, fmt.Errorf("unknown name kind %d", n.kind)
}

// parseValues decodes the value part of a property. Multi-valued and
// variable-size types carry a value count first (MS-OXTNEF 2.1.3.4); single
// fixed-size values do not.
func parseValues(r *reader, typ uint16) ([][]byte, error) {
	base := typ &^ mvFlag
	size, variable := valueSize(base)
	if size == 0 && !variable {
		return nil, fmt.Errorf("unsupported property type 0x%04X", typ)
	}
	if typ&mvFlag == 0 && !variable {
		v, err := r.bytes(size)
		return [][]byte{v}, err
	}
	count, err := r.u32()
	if err != nil {
		return nil, err
	}
	minSize := size
	if variable {
		minSize = 4 // the length prefix
	}
	if int64(count) > int64(r.remaining()/minSize) || count > maxValueCount {
		return nil, fmt.Errorf("value count %d exceeds data: %w", count, ErrTruncated)
	}
	values := make([][]byte, 0, count)
	for i := uint32(0); i < count; i++ {
		var v []byte
		if variable {
			v, err = r.padded()
		} else {
			v, err = r.bytes(size)
		}
		if err != nil {
			return values, err
		}
		values = append(values, v)
	}
	return values, nil
}

// valueSize returns the encoded size of a fixed-size type, or variable=true
// for types stored as length + bytes + padding. 16-bit types are padded to
// 4 bytes in TNEF (MS-OXTNEF 2.1.3.4).
func valueSize(base uint16) (size int, variable bool) {
	switch base {
	case ptShort, ptLong, ptFloat, ptError, ptBoolean:
		return 4, false
	case ptDouble, ptCurrency, ptAppTime, ptI8, ptSysTime:
		return 8, false
	case ptCLSID:
		return 16, false
	case ptString8, ptUnicode, ptBinary, ptObject:
		return 0, true
	}
	return 0, false
}
