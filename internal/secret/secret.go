// Package secret encrypts the credentials the fetcher stores (passwords,
// client secrets, private keys, refresh and access tokens) with
// AES-256-GCM under a key only the fetcher holds, so that a database dump,
// a backup or a read-only SQL account does not hand out the keys to every
// support mailbox.
//
// A sealed value is text, so it fits the existing text columns:
//
//	enc:v1:<key id>:<base64url(nonce || ciphertext || tag)>
//
// The version names the algorithm and layout; the key id (8 hex digits of
// a hash of the key, which reveals nothing of it) says which key sealed the
// value, so values under an old key can be found and re-sealed. Each value
// is bound to its place (table, column and row id) as GCM's associated
// data: a ciphertext copied into another row or column does not open.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

// prefix starts every sealed value of this format version.
const prefix = "enc:v1:"

// Errors a caller can test for with errors.Is.
var (
	// ErrNoKey: the value is sealed but no key is configured.
	ErrNoKey = errors.New("the value is encrypted but no secret key is configured")
	// ErrUnknownKey: the value was sealed under a key not configured now.
	ErrUnknownKey = errors.New("the value was encrypted with a key that is not configured")
	// ErrTampered: the value does not open with its key in this place: it
	// was altered, truncated, or copied from another row or column.
	ErrTampered = errors.New("the encrypted value is damaged or belongs to another row or column")
	// ErrFormat: the value starts like a sealed value but is malformed.
	ErrFormat = errors.New("the encrypted value is malformed")
)

// Key is one AES-256 key with the subkeys derived from it.
type Key struct {
	id   string
	aead cipher.AEAD
	mac  []byte
}

// NewKey derives a Key from 32 bytes of key material. The material is
// never used directly: HKDF (RFC 5869) derives one subkey for encryption
// and one for digests, so the two uses cannot interfere.
func NewKey(material []byte) (*Key, error) {
	if len(material) != KeySize {
		return nil, fmt.Errorf("a secret key must be %d bytes, got %d", KeySize, len(material))
	}
	enc, err := hkdf.Key(sha256.New, material, nil, "fetcher secret v1 aes-256-gcm", KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive encryption key: %w", err)
	}
	mac, err := hkdf.Key(sha256.New, material, nil, "fetcher secret v1 digest", KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive digest key: %w", err)
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	idSum, err := hkdf.Key(sha256.New, material, nil, "fetcher secret v1 key id", 4)
	if err != nil {
		return nil, fmt.Errorf("derive key id: %w", err)
	}
	return &Key{id: hex.EncodeToString(idSum), aead: aead, mac: mac}, nil
}

// ID names the key without revealing it (8 hex digits).
func (k *Key) ID() string { return k.id }

// ParseKey reads a key written as base64 (standard or URL alphabet, with
// or without padding) or as 64 hex digits, as `fetcher secrets genkey`
// prints it. Surrounding white space is ignored.
func ParseKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if len(text) == 2*KeySize {
		if b, err := hex.DecodeString(text); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("a secret key must be %d random bytes written as base64 (44 characters) or hex (64 digits); this one is %d characters that decode to neither: generate one with `fetcher secrets genkey`", KeySize, len(text))
}

// GenerateKey returns a new random key written as base64.
func GenerateKey() (string, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// IsSealed reports whether value is in the sealed format (of any version
// this package knows).
func IsSealed(value string) bool { return strings.HasPrefix(value, prefix) }

// KeyID returns the id of the key that sealed value, or "" for a value
// that is not sealed.
func KeyID(value string) string {
	if !IsSealed(value) {
		return ""
	}
	id, _, _ := strings.Cut(value[len(prefix):], ":")
	return id
}

// Place binds a value to where it is stored: a table, a column and a row.
// It is GCM's associated data, so it must be the same when opening as when
// sealing.
func Place(table, column string, id int64) []byte {
	return fmt.Appendf(nil, "fetcher/%s/%s/%d", table, column, id)
}

func (k *Key) seal(plain string, place []byte) (string, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	// A random 96-bit nonce is safe for far more values than a fetcher
	// will ever seal under one key (NIST SP 800-38D section 8.3: 2^32).
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("read random nonce: %w", err)
	}
	box := k.aead.Seal(nonce, nonce, []byte(plain), place)
	return prefix + k.id + ":" + base64.RawURLEncoding.EncodeToString(box), nil
}

func (k *Key) open(body string, place []byte) (string, error) {
	box, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return "", fmt.Errorf("%w: not base64", ErrFormat)
	}
	n := k.aead.NonceSize()
	if len(box) < n+k.aead.Overhead() {
		return "", fmt.Errorf("%w: too short", ErrTampered)
	}
	plain, err := k.aead.Open(nil, box[:n], box[n:], place)
	if err != nil {
		return "", ErrTampered
	}
	return string(plain), nil
}

// digest is an HMAC-SHA256 of data under the key's digest subkey.
func (k *Key) digest(data []byte) []byte {
	m := hmac.New(sha256.New, k.mac)
	m.Write(data)
	return m.Sum(nil)
}
