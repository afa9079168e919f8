package tnef

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rtfBomb is a PR_RTF_COMPRESSED value of n groups, each a control byte
// and eight references of 17 bytes: 17 input bytes that expand to 136.
// Each reference points just past the write position, since a reference
// to the write position itself would end the stream.
func rtfBomb(n int) []byte {
	var body []byte
	write := len(rtfPrebuf)
	for range n {
		body = append(body, 0xFF)
		for range 8 {
			ref := ((write+1)&dictMask)<<4 | 0xF
			body = append(body, byte(ref>>8), byte(ref))
			write = (write + 17) & dictMask
		}
	}
	data := append(le32(uint32(len(body)+12)), le32(uint32(len(body)*8))...)
	data = append(append(data, le32(compLZFu)...), le32(rtfCRC(body))...)
	return append(data, body...)
}

// withAttachments is a stream with the given attachment data, in order.
func withAttachments(datas ...[]byte) []byte {
	w := newTNEF()
	for _, d := range datas {
		w.attr(lvlAttachment, attAttachRendData, rendData()).attr(lvlAttachment, attAttachData, d)
	}
	return w.bytes()
}

func TestDecodeWithLimits(t *testing.T) {
	kb := bytes.Repeat([]byte("x"), 1000)
	tests := []struct {
		name            string
		data            []byte
		lim             Limits
		wantErr         error // nil for none
		wantAttachments int
	}{
		{"attachments at the limit", withAttachments(kb, kb, kb), Limits{Attachments: 3}, nil, 3},
		{"attachments past the limit", withAttachments(kb, kb, kb, kb), Limits{Attachments: 3}, ErrTooMany, 3},
		{"data exactly at the limit", withAttachments(kb, kb, kb), Limits{DecodedBytes: 3000}, nil, 3},
		{"data one byte past the limit", withAttachments(kb, kb, kb), Limits{DecodedBytes: 2999}, ErrTooLarge, 2},
		{"later small attachments are not kept either", withAttachments(kb, kb, kb, []byte("y")), Limits{DecodedBytes: 2500}, ErrTooLarge, 2},
		{"attachment limit above the built-in one", withAttachments(kb), Limits{Attachments: 5000}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := DecodeWith(tt.data, tt.lim)
			if tt.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.wantErr)
			}
			assert.Len(t, msg.Attachments, tt.wantAttachments)
		})
	}
}

// TestRTFBombStopsAtTheLimit: a compressed RTF body that would expand to
// 13 MB stops at the decoded size limit, without allocating past it.
func TestRTFBombStopsAtTheLimit(t *testing.T) {
	stream := newTNEF().attr(lvlMessage, attMsgProps, (&propWriter{}).binary(propRTFCompressed, rtfBomb(100_000)).bytes()).bytes()
	const limit = 256 << 10
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	msg, err := DecodeWith(stream, Limits{DecodedBytes: limit})
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "PR_RTF_COMPRESSED")
	assert.LessOrEqual(t, len(msg.BodyRTF), limit)
	assert.Greater(t, len(msg.BodyRTF), limit-17, "decoded up to the limit")
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4*limit), "allocated past the limit")

	full, err := Decode(stream)
	require.NoError(t, err)
	assert.Len(t, full.BodyRTF, 100_000*136, "without a limit the same body decodes whole")
}

// TestDecodedLimitAfterRTF: what the RTF body used is not available to the
// attachments after it.
func TestDecodedLimitAfterRTF(t *testing.T) {
	rtf, _ := compressRTF([]byte(`{\rtf1 hello}`))
	stream := newTNEF().attr(lvlMessage, attMsgProps, (&propWriter{}).binary(propRTFCompressed, rtf).bytes()).
		attr(lvlAttachment, attAttachRendData, rendData()).attr(lvlAttachment, attAttachData, []byte("0123456789")).bytes()
	msg, err := DecodeWith(stream, Limits{DecodedBytes: int64(len(`{\rtf1 hello}`)) + 9})
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Equal(t, `{\rtf1 hello}`, string(msg.BodyRTF))
	assert.Empty(t, msg.Attachments)
}

func TestStoredRTFLimit(t *testing.T) {
	out, err := decompressRTF(storeRTF([]byte(`{\rtf1 0123456789}`)), 8)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Equal(t, `{\rtf1 0`, string(out))
}

// TestTooLargeSurvivesManyErrors: the size error is reported even after
// the error list is full.
func TestTooLargeSurvivesManyErrors(t *testing.T) {
	w := newTNEF()
	for range 2 * maxErrors {
		w.attrSum(lvlMessage, attSubject, []byte("x"), 0)
	}
	w.attr(lvlAttachment, attAttachRendData, rendData()).attr(lvlAttachment, attAttachData, []byte("too big"))
	_, err := DecodeWith(w.bytes(), Limits{DecodedBytes: 3})
	require.ErrorIs(t, err, ErrTooLarge)
	assert.ErrorIs(t, err, ErrChecksum)
}
