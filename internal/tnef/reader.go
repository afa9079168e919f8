package tnef

import (
	"encoding/binary"
	"fmt"
)

// reader reads little-endian values from a byte slice. Every read is bounds
// checked against the slice, so declared lengths from the input can never
// make it allocate or read past the data.
type reader struct {
	buf []byte
	off int
}

func (r *reader) remaining() int { return len(r.buf) - r.off }

// bytes returns the next n bytes without copying.
func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, fmt.Errorf("need %d bytes at offset %d, have %d: %w", n, r.off, r.remaining(), ErrTruncated)
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return b, nil
}

func (r *reader) u8() (byte, error) {
	b, err := r.bytes(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (r *reader) u16() (uint16, error) {
	b, err := r.bytes(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (r *reader) u32() (uint32, error) {
	b, err := r.bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// padded reads a uint32 length, that many bytes, and the padding to the
// next multiple of 4 that MS-OXTNEF 2.1.3.4 puts after variable-size values.
// Missing padding at the very end of the data is tolerated.
func (r *reader) padded() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if int64(n) > int64(r.remaining()) {
		return nil, fmt.Errorf("value length %d exceeds %d remaining bytes: %w", n, r.remaining(), ErrTruncated)
	}
	b, err := r.bytes(int(n))
	if err != nil {
		return nil, err
	}
	pad := (4 - int(n)%4) % 4
	r.off += min(pad, r.remaining())
	return b, nil
}
