package secret_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/secret"
)

func material(b byte) []byte { return bytes.Repeat([]byte{b}, secret.KeySize) }

func keyring(t *testing.T, primary byte, old ...byte) *secret.Keyring {
	t.Helper()
	var olds [][]byte
	for _, o := range old {
		olds = append(olds, material(o))
	}
	r, err := secret.NewKeyring(material(primary), olds...)
	require.NoError(t, err)
	return r
}

const token = "0.AXEAkg-refresh-token-value_with.dots-and~tildes"

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	r := keyring(t, 1)
	place := secret.Place("mailboxes", "refresh_token", 7)
	for _, plain := range []string{token, "x", "päss wörd €", strings.Repeat("k", 10000)} {
		sealed, err := r.Seal(plain, place)
		require.NoError(t, err)
		require.True(t, secret.IsSealed(sealed))
		if len(plain) > 3 {
			require.NotContains(t, sealed, plain)
		}
		require.Equal(t, r.PrimaryID(), secret.KeyID(sealed))
		got, err := r.Open(sealed, place)
		require.NoError(t, err)
		require.Equal(t, plain, got)
	}
}

func TestSealIsRandomized(t *testing.T) {
	t.Parallel()
	r := keyring(t, 1)
	place := secret.Place("mailboxes", "password", 1)
	a, err := r.Seal(token, place)
	require.NoError(t, err)
	b, err := r.Seal(token, place)
	require.NoError(t, err)
	require.NotEqual(t, a, b, "equal secrets must not give equal ciphertexts")
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	r := keyring(t, 1)
	place := secret.Place("mailboxes", "refresh_token", 7)
	sealed, err := r.Seal(token, place)
	require.NoError(t, err)
	body := sealed[strings.LastIndex(sealed, ":")+1:]
	raw, err := base64.RawURLEncoding.DecodeString(body)
	require.NoError(t, err)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-20] ^= 1
	prefix := sealed[:len(sealed)-len(body)]

	for _, tc := range []struct {
		name   string
		keys   *secret.Keyring
		stored string
		place  []byte
		want   error
	}{
		{"wrong key", keyring(t, 2), sealed, place, secret.ErrUnknownKey},
		{"no key", nil, sealed, place, secret.ErrNoKey},
		{"swapped rows", r, sealed, secret.Place("mailboxes", "refresh_token", 8), secret.ErrTampered},
		{"swapped columns", r, sealed, secret.Place("mailboxes", "client_secret", 7), secret.ErrTampered},
		{"truncated", r, sealed[:len(sealed)-12], place, secret.ErrTampered},
		{"truncated to the nonce", r, prefix + base64.RawURLEncoding.EncodeToString(raw[:12]), place, secret.ErrTampered},
		{"bit flipped", r, prefix + base64.RawURLEncoding.EncodeToString(flipped), place, secret.ErrTampered},
		{"not base64", r, prefix + "!!!", place, secret.ErrFormat},
		{"no key id", r, "enc:v1:abc", place, secret.ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.keys.Open(tc.stored, tc.place)
			require.ErrorIs(t, err, tc.want)
			require.Empty(t, got)
			require.NotContains(t, err.Error(), token)
		})
	}
}

func TestOldKeyStillOpens(t *testing.T) {
	t.Parallel()
	place := secret.Place("mailboxes", "client_secret", 3)
	old := keyring(t, 1)
	sealed, err := old.Seal(token, place)
	require.NoError(t, err)

	rotated := keyring(t, 2, 1)
	require.True(t, rotated.Stale(sealed), "a value under the old key is stale")
	got, err := rotated.Open(sealed, place)
	require.NoError(t, err)
	require.Equal(t, token, got)

	resealed, err := rotated.Seal(got, place)
	require.NoError(t, err)
	require.False(t, rotated.Stale(resealed))
	require.NotEqual(t, secret.KeyID(sealed), secret.KeyID(resealed))
	_, err = old.Open(resealed, place)
	require.ErrorIs(t, err, secret.ErrUnknownKey)
}

func TestPlainValues(t *testing.T) {
	t.Parallel()
	r := keyring(t, 1)
	place := secret.Place("mailboxes", "password", 1)
	got, err := r.Open("admin typed this", place)
	require.NoError(t, err)
	require.Equal(t, "admin typed this", got)
	require.True(t, r.Stale("admin typed this"), "a plain value is sealed in place")
	require.False(t, r.Stale(""), "an absent secret stays absent")

	empty, err := r.Seal("", place)
	require.NoError(t, err)
	require.Empty(t, empty)

	var none *secret.Keyring
	same, err := none.Seal(token, place)
	require.NoError(t, err)
	require.Equal(t, token, same, "without a key values are stored as given")
	require.False(t, none.Stale(token))
	require.False(t, none.Enabled())
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	raw := material(0xab)
	for _, tc := range []struct {
		name, text string
		ok         bool
	}{
		{"base64", base64.StdEncoding.EncodeToString(raw), true},
		{"base64 unpadded", base64.RawStdEncoding.EncodeToString(raw), true},
		{"base64url", base64.URLEncoding.EncodeToString(raw), true},
		{"hex", hex.EncodeToString(raw), true},
		{"with newline", base64.StdEncoding.EncodeToString(raw) + "\n", true},
		{"too short", base64.StdEncoding.EncodeToString(raw[:16]), false},
		{"passphrase", "correct horse battery staple", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := secret.ParseKey(tc.text)
			if !tc.ok {
				require.Error(t, err)
				require.Contains(t, err.Error(), "fetcher secrets genkey")
				return
			}
			require.NoError(t, err)
			require.Equal(t, raw, got)
		})
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	a, err := secret.GenerateKey()
	require.NoError(t, err)
	b, err := secret.GenerateKey()
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	k, err := secret.ParseKey(a)
	require.NoError(t, err)
	require.Len(t, k, secret.KeySize)
}

func TestNewKeyringRejectsShortKeys(t *testing.T) {
	t.Parallel()
	_, err := secret.NewKeyring(material(1)[:31])
	require.Error(t, err)
	_, err = secret.NewKeyring(material(1), material(2)[:5])
	require.ErrorContains(t, err, "old secret key 1")
}

func TestDigest(t *testing.T) {
	t.Parallel()
	a, b := keyring(t, 1), keyring(t, 2)
	require.Equal(t, a.Digest("x", "y"), keyring(t, 1).Digest("x", "y"), "stable under one key")
	require.NotEqual(t, a.Digest("x", "y"), b.Digest("x", "y"), "keyed")
	require.NotEqual(t, a.Digest("xy"), a.Digest("x", "y"), "parts are delimited")
	var none *secret.Keyring
	require.Len(t, none.Digest("x"), 32)
}
