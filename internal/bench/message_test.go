package bench

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/ticket"
)

func TestRealisticSizes(t *testing.T) {
	t.Parallel()
	g := Generator{Seed: 7}
	const n = 400
	sizes := make([]int, n)
	inRange, attachments, replies := 0, 0, 0
	for i := range n {
		m := g.Message(0, i)
		sizes[i] = len(m.Raw)
		if sizes[i] >= 5*KB && sizes[i] <= 50*KB {
			inRange++
		}
		if bytes.Contains(m.Raw, []byte("Content-Transfer-Encoding: base64")) {
			attachments++
		}
		if bytes.Contains(m.Raw, []byte("\r\nIn-Reply-To: ")) {
			replies++
		}
	}
	slices.Sort(sizes)
	median := sizes[n/2]
	require.InDelta(t, 20*KB, median, 3*KB, "median size")
	require.GreaterOrEqual(t, inRange, n*85/100, "messages between 5 and 50 KB")
	require.GreaterOrEqual(t, sizes[0], 2*KB, "smallest")
	require.LessOrEqual(t, sizes[n-1], 320*KB, "largest")
	require.InDelta(t, n*attachmentShare, attachments, n*0.07, "messages with an attachment")
	require.InDelta(t, n*replyShare, replies, n*0.07, "replies")

	// The distribution itself, over more draws.
	const draws = 20000
	drawn := make([]int64, draws)
	for i := range drawn {
		drawn[i] = g.Size(1, i)
	}
	slices.Sort(drawn)
	require.InDelta(t, 20*KB, drawn[draws/2], 1*KB, "median of the drawn sizes")
	require.InDelta(t, 8*KB, drawn[draws/20], 1.5*KB, "5th percentile")
	require.InDelta(t, 49*KB, drawn[draws*19/20], 4*KB, "95th percentile")
}

func TestFixedAndLargeSizes(t *testing.T) {
	t.Parallel()
	for _, size := range []int64{5 * KB, 20 * KB, 100 * KB} {
		g := Generator{Seed: 1, Fixed: size}
		for i := range 20 {
			got := int64(len(g.Message(3, i).Raw))
			require.InDelta(t, size, got, float64(size)*0.05, "fixed size %s, message %d", FormatSize(size), i)
		}
	}
	for _, size := range []int64{2 * MB, 25 * MB} {
		m := Generator{Seed: 1}.Large(0, 5, size)
		require.InDelta(t, size, len(m.Raw), float64(size)*0.02, "large message of %s", FormatSize(size))
		parsed := ticket.Parse(m.Raw)
		require.Empty(t, parsed.ParseError)
		require.Len(t, parsed.Attachments, 1)
		require.Greater(t, len(parsed.Attachments[0].Data), int(size*7/10))
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	t.Parallel()
	a, b, other := Generator{Seed: 42}, Generator{Seed: 42}, Generator{Seed: 43}
	ids := map[string]bool{}
	for mb := range 3 {
		for i := range 25 {
			ma, mb2 := a.Message(mb, i), b.Message(mb, i)
			require.Equal(t, ma.Raw, mb2.Raw, "mailbox %d message %d differs between two generators of one seed", mb, i)
			require.NotEqual(t, ma.Raw, other.Message(mb, i).Raw, "another seed must make other messages")
			require.False(t, ids[ma.ID], "Message-ID %s repeated", ma.ID)
			ids[ma.ID] = true
		}
	}
}

func TestMessagesParse(t *testing.T) {
	t.Parallel()
	g := Generator{Seed: 3}
	for i := range 150 {
		m := g.Message(1, i)
		require.NotContains(t, strings.ReplaceAll(string(m.Raw), "\r\n", ""), "\n", "message %d has a bare LF", i)
		for l := range strings.SplitSeq(string(m.Raw), "\r\n") {
			require.LessOrEqual(t, len(l), 998, "message %d has an overlong line", i)
		}
		p := ticket.Parse(m.Raw)
		require.Empty(t, p.ParseError, "message %d", i)
		require.Equal(t, m.ID, p.MessageID)
		require.Equal(t, g.Subject(1, i), p.Subject)
		require.NotEmpty(t, p.BodyText, "message %d", i)
		require.NotEmpty(t, p.BodyHTML, "message %d", i)
		require.Contains(t, p.BodyText, "Customer service desk")
		if s := g.shape(1, i); s.parent >= 0 {
			require.Equal(t, g.MessageID(1, s.parent), p.InReplyTo)
		}
		if bytes.Contains(m.Raw, []byte("Content-Disposition: attachment")) {
			require.Len(t, p.Attachments, 1, "message %d", i)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"20KB": 20 * KB, "8MB": 8 * MB, "25mb": 25 * MB, "1.5MB": 3 * MB / 2, "1500": 1500, "64KiB": 64 * KB, "2 MB": 2 * MB} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "big", "-1KB", "0", "KB"} {
		_, err := ParseSize(bad)
		require.Error(t, err, bad)
	}
	require.Equal(t, "20KB", FormatSize(20*KB))
	require.Equal(t, "8MB", FormatSize(8*MB))
	require.Equal(t, "1.5MB", FormatSize(3*MB/2))
}
