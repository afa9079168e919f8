package oauthtest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// newJWTLike returns a random token shaped like an Entra ID access token: a
// JWT header, a ~1200-character payload and a signature, about 1.6 KB. Real
// ones are as long, which breaks code that puts them on one protocol line.
func newJWTLike() string {
	header := base64.RawURLEncoding.EncodeToString([]byte(
		`{"typ":"JWT","nonce":"fake","alg":"RS256","x5t":"oauthtest","kid":"oauthtest"}`))
	return header + "." + randomB64(900) + "." + randomB64(256)
}

// newOpaqueToken returns a random refresh token shaped like Microsoft's.
func newOpaqueToken() string { return "1.AXoA" + randomB64(900) }

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

// newUUID returns a random UUID version 4 (RFC 9562 section 5.4).
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
