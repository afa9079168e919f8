package secret

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Keyring is the key that seals new values and the older keys that still
// open values sealed before a rotation. A nil *Keyring is valid: it seals
// nothing (values stay as given) and opens only plain values.
type Keyring struct {
	primary *Key
	byID    map[string]*Key
}

// NewKeyring returns a keyring sealing with primary and opening with
// primary and every key in old.
func NewKeyring(primary []byte, old ...[]byte) (*Keyring, error) {
	p, err := NewKey(primary)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	r := &Keyring{primary: p, byID: map[string]*Key{p.id: p}}
	for i, material := range old {
		k, err := NewKey(material)
		if err != nil {
			return nil, fmt.Errorf("old secret key %d: %w", i+1, err)
		}
		if _, dup := r.byID[k.id]; !dup {
			r.byID[k.id] = k
		}
	}
	return r, nil
}

// Enabled reports whether values are sealed.
func (r *Keyring) Enabled() bool { return r != nil }

// PrimaryID is the id of the key that seals, or "" without a keyring.
func (r *Keyring) PrimaryID() string {
	if r == nil {
		return ""
	}
	return r.primary.id
}

// Has reports whether the key with this id is in the keyring.
func (r *Keyring) Has(id string) bool {
	return r != nil && r.byID[id] != nil
}

// Seal encrypts plain for place. Empty values stay empty (an absent
// secret is not a secret), and without a keyring plain is returned as is.
func (r *Keyring) Seal(plain string, place []byte) (string, error) {
	if r == nil || plain == "" {
		return plain, nil
	}
	return r.primary.seal(plain, place)
}

// Open returns the plain text of a stored value: a sealed value is
// decrypted with the key that sealed it; a plain value (an admin's SQL) is
// returned as is.
func (r *Keyring) Open(stored string, place []byte) (string, error) {
	if !IsSealed(stored) {
		return stored, nil
	}
	if r == nil {
		return "", ErrNoKey
	}
	id, body, ok := strings.Cut(stored[len(prefix):], ":")
	if !ok {
		return "", fmt.Errorf("%w: no key id", ErrFormat)
	}
	k := r.byID[id]
	if k == nil {
		return "", fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	return k.open(body, place)
}

// Stale reports whether a stored value should be sealed again: it is
// plain while a key is configured, or sealed under an old key.
func (r *Keyring) Stale(stored string) bool {
	if r == nil || stored == "" {
		return false
	}
	return KeyID(stored) != r.primary.id
}

// Digest returns a short hex digest of parts that reveals nothing about
// them without the key: HMAC-SHA256 under the primary key's digest
// subkey. Without a keyring it is a plain SHA-256, which is only as secret
// as the plain values it digests next to it. The digest changes when the
// primary key does.
func (r *Keyring) Digest(parts ...string) string {
	var data []byte
	for _, p := range parts {
		data = append(data, p...)
		data = append(data, 0)
	}
	var sum []byte
	if r == nil {
		s := sha256.Sum256(data)
		sum = s[:]
	} else {
		sum = r.primary.digest(data)
	}
	return hex.EncodeToString(sum)[:32]
}
