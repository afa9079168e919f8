package tnef

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Compressed RTF header fields (MS-OXRTFCP 2.1.3.1, header).
const (
	rtfHeaderSize = 16
	compLZFu      = 0x75465A4C // "LZFu": compressed
	compMELA      = 0x414C454D // "MELA": stored uncompressed
)

// Dictionary parameters (MS-OXRTFCP 2.1.3.1, dictionary).
const (
	dictSize = 4096
	dictMask = dictSize - 1
)

// maxRTFSize caps a decompressed body. A reference token of 2 bytes expands
// to at most 17 bytes, so the output is naturally bounded by about 9x the
// input; this cap keeps even that sane for large hostile input. The caller
// may set a lower one (Limits.DecodedBytes).
const maxRTFSize = 64 << 20

// rtfPrebuf is the initial dictionary content of MS-OXRTFCP 2.1.3.1
// (207 bytes; \r\n are the CR LF bytes).
const rtfPrebuf = "{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}" +
	"{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier" +
	"{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"

// crcTable is the CRC table of MS-OXRTFCP, which is the standard
// reflected CRC-32 table; only the use of it differs (see rtfCRC).
var crcTable = crc32.MakeTable(crc32.IEEE)

// rtfCRC computes the CRC of MS-OXRTFCP (CRC section): the CRC-32 table update
// with an initial value of 0 and no final inversion. crc32.Update inverts
// on entry and exit, so inverting around it cancels both.
func rtfCRC(data []byte) uint32 {
	return ^crc32.Update(^uint32(0), crcTable, data)
}

// decompressRTF decodes a PR_RTF_COMPRESSED value (MS-OXRTFCP 2.1.3.1) to
// at most limit bytes. It returns as much RTF as it could decode and an
// error for a bad header, truncated data, a CRC mismatch, or output past
// limit (wrapping ErrTooLarge).
func decompressRTF(data []byte, limit int) ([]byte, error) {
	if len(data) < rtfHeaderSize {
		return nil, fmt.Errorf("compressed RTF header: %d bytes: %w", len(data), ErrTruncated)
	}
	compSize := binary.LittleEndian.Uint32(data[0:])
	rawSize := binary.LittleEndian.Uint32(data[4:])
	compType := binary.LittleEndian.Uint32(data[8:])
	crc := binary.LittleEndian.Uint32(data[12:])

	// compSize counts everything after itself, so the body is compSize-12.
	body := data[rtfHeaderSize:]
	var sizeErr error
	if compSize < rtfHeaderSize-4 {
		sizeErr = fmt.Errorf("compressed RTF size %d is smaller than its header", compSize)
	} else if want := int64(compSize) - (rtfHeaderSize - 4); want > int64(len(body)) {
		sizeErr = fmt.Errorf("compressed RTF: %d bytes declared, %d present: %w", want, len(body), ErrTruncated)
	} else {
		body = body[:want]
	}

	switch compType {
	case compMELA:
		return storedRTF(body, rawSize, limit, sizeErr)
	case compLZFu:
		out, err := lzfuDecompress(body, rawSize, limit)
		if err != nil {
			return out, err
		}
		if sizeErr != nil {
			return out, sizeErr
		}
		if got := rtfCRC(body); got != crc {
			return out, fmt.Errorf("CRC 0x%08X, computed 0x%08X: %w", crc, got, ErrCRC)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown compressed RTF type 0x%08X", compType)
}

// storedRTF returns the body of an uncompressed ("MELA") stream, whose
// length is rawSize (MS-OXRTFCP 2.1.3.1; its CRC is always 0), cut to
// limit.
func storedRTF(body []byte, rawSize uint32, limit int, sizeErr error) ([]byte, error) {
	if min(int64(rawSize), int64(len(body))) > int64(limit) {
		return append([]byte(nil), body[:limit]...), tooLargeRTF(limit)
	}
	if int64(rawSize) > int64(len(body)) {
		out := append([]byte(nil), body...)
		return out, fmt.Errorf("uncompressed RTF: %d bytes declared, %d present: %w", rawSize, len(body), ErrTruncated)
	}
	return append([]byte(nil), body[:rawSize]...), sizeErr
}

// lzfuDecompress runs the LZ77 variant of MS-OXRTFCP 2.1.3.1: a control
// byte whose bits, least significant first, mark the next eight tokens as a
// literal byte (0) or a 2-byte big-endian dictionary reference (1) holding a
// 12-bit offset and a 4-bit length-2. A reference to the current write
// position ends the stream. Running out of input also ends it: some writers
// omit the end marker, and the caller's CRC check catches real damage.
// Output beyond limit is cut off and reported: the check comes before each
// token is written, so a hostile body never allocates past it.
func lzfuDecompress(body []byte, rawSize uint32, limit int) ([]byte, error) {
	var dict [dictSize]byte
	copy(dict[:], rtfPrebuf)
	write := len(rtfPrebuf)

	limit = min(limit, 9*len(body)+dictSize)
	out := make([]byte, 0, min(int(min(rawSize, maxRTFSize)), limit))
	emit := func(b byte) {
		out = append(out, b)
		dict[write] = b
		write = (write + 1) & dictMask
	}
	for in := 0; in < len(body); {
		control := body[in]
		in++
		for bit := 0; bit < 8 && in < len(body); bit++ {
			if control&(1<<bit) == 0 {
				if len(out) >= limit {
					return out, tooLargeRTF(limit)
				}
				emit(body[in])
				in++
				continue
			}
			if in+1 >= len(body) {
				return out, nil
			}
			ref := int(body[in])<<8 | int(body[in+1])
			in += 2
			offset, length := ref>>4, ref&0xF+2
			if offset == write {
				return out, nil
			}
			if len(out)+length > limit {
				return out, tooLargeRTF(limit)
			}
			// Copy byte by byte: the source may overlap the bytes being
			// written, which is how runs are encoded.
			for i := 0; i < length; i++ {
				emit(dict[(offset+i)&dictMask])
			}
		}
	}
	return out, nil
}

func tooLargeRTF(limit int) error {
	return fmt.Errorf("decompressed RTF exceeds %d bytes: %w", limit, ErrTooLarge)
}
