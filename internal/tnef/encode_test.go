package tnef

// A small TNEF writer for tests: attributes (MS-OXTNEF 2.1.3.1), MAPI
// property lists (MS-OXTNEF 2.1.3.4) and an LZFu compressor (MS-OXRTFCP).
// It writes streams shaped like Outlook's so that Decode can be tested
// without real winmail.dat files.

import (
	"bytes"
	"encoding/binary"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"
)

// Attribute levels (MS-OXTNEF 2.1.3.1).
const (
	lvlMessage    = 0x01
	lvlAttachment = 0x02
)

// Attributes Outlook writes that Decode ignores.
const (
	attTnefVersion  = 0x00089006
	attMessageClass = 0x00078008
	attMessageID    = 0x00018009
	attPriority     = 0x0004800D
	attDateSent     = 0x00038005
	attRecipTable   = 0x00069004
	attAttachModify = 0x00038013
)

// tnefWriter builds a TNEF stream. ends records the offset after each
// attribute so tests know where a truncated stream is still well-formed.
type tnefWriter struct {
	buf  bytes.Buffer
	ends []int
}

func newTNEF() *tnefWriter {
	w := &tnefWriter{}
	w.u32(signature)
	w.u16(0x1234) // legacy key
	w.ends = append(w.ends, w.buf.Len())
	return w
}

func (w *tnefWriter) u16(v uint16) { _ = binary.Write(&w.buf, binary.LittleEndian, v) }
func (w *tnefWriter) u32(v uint32) { _ = binary.Write(&w.buf, binary.LittleEndian, v) }

// attr writes one attribute with a correct checksum.
func (w *tnefWriter) attr(level byte, id uint32, data []byte) *tnefWriter {
	return w.attrSum(level, id, data, checksum(data))
}

// attrSum writes one attribute with the given checksum.
func (w *tnefWriter) attrSum(level byte, id uint32, data []byte, sum uint16) *tnefWriter {
	w.buf.WriteByte(level)
	w.u32(id)
	w.u32(uint32(len(data)))
	w.buf.Write(data)
	w.u16(sum)
	w.ends = append(w.ends, w.buf.Len())
	return w
}

func (w *tnefWriter) bytes() []byte { return bytes.Clone(w.buf.Bytes()) }

// rendData is an attAttachRendData value: a RENDDATA for a file attachment
// (type 1, position -1, no size, no flags).
func rendData() []byte {
	return []byte{0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0}
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// cp1252 encodes s in windows-1252 with a terminating NUL, as Outlook
// writes 8-bit attributes.
func cp1252(s string) []byte {
	b, err := charmap.Windows1252.NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return append(b, 0)
}

// utf16z encodes s as UTF-16LE with a terminating NUL (PT_UNICODE).
func utf16z(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return append(b, 0, 0)
}

// propWriter builds a MsgPropertyList.
type propWriter struct {
	buf   bytes.Buffer
	count uint32
}

func (p *propWriter) tag(typ, id uint16) {
	p.count++
	_ = binary.Write(&p.buf, binary.LittleEndian, uint32(id)<<16|uint32(typ))
}

// name writes a NamedPropSpec: kind 0 with a numeric id, or kind 1 with a
// UTF-16LE name padded to 4 bytes.
func (p *propWriter) name(guid [16]byte, kind uint32, id uint32, name string) {
	p.buf.Write(guid[:])
	p.buf.Write(le32(kind))
	if kind == nameKindID {
		p.buf.Write(le32(id))
		return
	}
	p.padded(utf16z(name))
}

// padded writes a length-prefixed value padded to a multiple of 4.
func (p *propWriter) padded(v []byte) {
	p.buf.Write(le32(uint32(len(v))))
	p.buf.Write(v)
	p.buf.Write(make([]byte, (4-len(v)%4)%4))
}

func (p *propWriter) long(id uint16, v int32) *propWriter {
	p.tag(ptLong, id)
	p.buf.Write(le32(uint32(v)))
	return p
}

// fixed writes a single fixed-size value as given.
func (p *propWriter) fixed(typ, id uint16, v []byte) *propWriter {
	p.tag(typ, id)
	p.buf.Write(v)
	return p
}

// variable writes a single variable-size value (count 1, length, data).
func (p *propWriter) variable(typ, id uint16, v []byte) *propWriter {
	p.tag(typ, id)
	p.buf.Write(le32(1))
	p.padded(v)
	return p
}

func (p *propWriter) unicode(id uint16, s string) *propWriter {
	return p.variable(ptUnicode, id, utf16z(s))
}

func (p *propWriter) string8(id uint16, s string) *propWriter {
	return p.variable(ptString8, id, cp1252(s))
}

func (p *propWriter) binary(id uint16, v []byte) *propWriter {
	return p.variable(ptBinary, id, v)
}

// object writes a PT_OBJECT value: the length covers the 16-byte IID and
// the data (MS-OXTNEF 2.1.3.4).
func (p *propWriter) object(id uint16, iid, data []byte) *propWriter {
	return p.variable(ptObject, id, append(bytes.Clone(iid), data...))
}

// multi writes a multi-valued variable-size property.
func (p *propWriter) multi(typ, id uint16, values ...[]byte) *propWriter {
	p.tag(typ|mvFlag, id)
	p.buf.Write(le32(uint32(len(values))))
	for _, v := range values {
		p.padded(v)
	}
	return p
}

// multiFixed writes a multi-valued fixed-size property.
func (p *propWriter) multiFixed(typ, id uint16, values ...[]byte) *propWriter {
	p.tag(typ|mvFlag, id)
	p.buf.Write(le32(uint32(len(values))))
	for _, v := range values {
		p.buf.Write(v)
	}
	return p
}

// named writes a named PT_LONG or PT_UNICODE property.
func (p *propWriter) namedLong(id uint16, guid [16]byte, kind, nameID uint32, name string, v int32) *propWriter {
	p.tag(ptLong, id)
	p.name(guid, kind, nameID, name)
	p.buf.Write(le32(uint32(v)))
	return p
}

func (p *propWriter) namedUnicode(id uint16, guid [16]byte, kind, nameID uint32, name string, values ...string) *propWriter {
	p.tag(ptUnicode|mvFlag, id)
	p.name(guid, kind, nameID, name)
	p.buf.Write(le32(uint32(len(values))))
	for _, v := range values {
		p.padded(utf16z(v))
	}
	return p
}

func (p *propWriter) bytes() []byte {
	return append(le32(p.count), p.buf.Bytes()...)
}

// lzfuStats counts the tokens the compressor emitted.
type lzfuStats struct{ literals, refs int }

// compressRTF compresses raw with LZFu (MS-OXRTFCP 2.1.3.1) using a greedy
// longest match over the dictionary, and writes the 16-byte header.
func compressRTF(raw []byte) ([]byte, lzfuStats) {
	body, stats := lzfuCompress(raw)
	var out []byte
	out = append(out, le32(uint32(len(body)+12))...)
	out = append(out, le32(uint32(len(raw)))...)
	out = append(out, le32(compLZFu)...)
	out = append(out, le32(rtfCRC(body))...)
	return append(out, body...), stats
}

// storeRTF writes raw as an uncompressed "MELA" stream (CRC 0).
func storeRTF(raw []byte) []byte {
	var out []byte
	out = append(out, le32(uint32(len(raw)+12))...)
	out = append(out, le32(uint32(len(raw)))...)
	out = append(out, le32(compMELA)...)
	out = append(out, le32(0)...)
	return append(out, raw...)
}

// lzfuEncoder mirrors the decoder's dictionary so that every reference it
// emits decodes to the same bytes.
type lzfuEncoder struct {
	dict  [dictSize]byte
	valid [dictSize]bool // position holds a byte the decoder also has
	write int

	out     []byte
	control int // index of the current control byte in out
	bit     int
	stats   lzfuStats
}

func lzfuCompress(raw []byte) ([]byte, lzfuStats) {
	e := &lzfuEncoder{write: len(rtfPrebuf), bit: 8}
	copy(e.dict[:], rtfPrebuf)
	for i := range len(rtfPrebuf) {
		e.valid[i] = true
	}
	for pos := 0; pos < len(raw); {
		off, n := e.longestMatch(raw, pos)
		if n >= 2 {
			e.reference(off, n)
			e.stats.refs++
		} else {
			e.literal(raw[pos])
			e.stats.literals++
			n = 1
		}
		for _, b := range raw[pos : pos+n] {
			e.put(b)
		}
		pos += n
	}
	e.reference(e.write, 2) // end marker: a reference to the write position
	return e.out, e.stats
}

func (e *lzfuEncoder) put(b byte) {
	e.dict[e.write] = b
	e.valid[e.write] = true
	e.write = (e.write + 1) & dictMask
}

// token starts a new control byte every 8 tokens and sets the flag bit.
func (e *lzfuEncoder) token(isRef bool) {
	if e.bit == 8 {
		e.control = len(e.out)
		e.out = append(e.out, 0)
		e.bit = 0
	}
	if isRef {
		e.out[e.control] |= 1 << e.bit
	}
	e.bit++
}

func (e *lzfuEncoder) literal(b byte) {
	e.token(false)
	e.out = append(e.out, b)
}

func (e *lzfuEncoder) reference(off, n int) {
	e.token(true)
	v := uint16(off)<<4 | uint16(n-2)
	e.out = append(e.out, byte(v>>8), byte(v))
}

// longestMatch finds the longest (2..17 byte) dictionary match for
// raw[pos:], simulating the decoder's byte-by-byte copy so that matches may
// overlap the bytes being written.
func (e *lzfuEncoder) longestMatch(raw []byte, pos int) (bestOff, bestLen int) {
	maxLen := min(17, len(raw)-pos)
	for off := 0; off < dictSize; off++ {
		if off == e.write || !e.valid[off] {
			continue // off == write is the end marker
		}
		n := 0
		for ; n < maxLen; n++ {
			j := (off + n) & dictMask
			var b byte
			if d := (j - e.write) & dictMask; d < n {
				b = raw[pos+d] // written earlier in this same copy
			} else if e.valid[j] {
				b = e.dict[j]
			} else {
				break
			}
			if b != raw[pos+n] {
				break
			}
		}
		if n > bestLen {
			bestOff, bestLen = off, n
		}
	}
	return bestOff, bestLen
}
