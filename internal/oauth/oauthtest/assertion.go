package oauthtest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1" // x5t is a SHA-1 thumbprint by definition (RFC 7515 section 4.1.7)
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// jwtBearer is the client_assertion_type of a JWT (RFC 7523 section 2.2).
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionHeader is the part of the JOSE header Microsoft reads.
type assertionHeader struct {
	Alg     string `json:"alg"`
	X5t     string `json:"x5t"`
	X5tS256 string `json:"x5t#S256"`
}

// assertionClaims are the claims Microsoft checks (RFC 7523 section 3).
type assertionClaims struct {
	Aud audience `json:"aud"`
	Iss string   `json:"iss"`
	Sub string   `json:"sub"`
	Jti string   `json:"jti"`
	Exp float64  `json:"exp"`
	Nbf float64  `json:"nbf"`
}

// audience is "aud": a string or an array of strings (RFC 7519 section 4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// parsedAssertion is a client assertion split into its parts.
type parsedAssertion struct {
	header       assertionHeader
	claims       assertionClaims
	signingInput string
	sig          []byte
}

// verifyAssertion checks req's client assertion as Microsoft does: the type,
// a known certificate by thumbprint, the RS256 or PS256 signature, the
// certificate's validity, iss and sub, aud equal to the token URL requested,
// the nbf..exp window, and a jti not seen before. s.mu must be held.
func (s *Server) verifyAssertion(req tokenRequest) *Failure {
	if t := req.form.Get("client_assertion_type"); t != jwtBearer {
		return ptr(missingParam("client_assertion_type"))
	}
	a, err := parseAssertion(req.assertion)
	if err != nil {
		return ptr(malformedAssertion())
	}
	if f := s.verifySignature(req.clientID, a); f != nil {
		return f
	}
	return s.checkClaims(req, a.claims)
}

func parseAssertion(jwt string) (*parsedAssertion, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	var a parsedAssertion
	a.signingInput = parts[0] + "." + parts[1]
	header, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	claims, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	a.sig = sig
	if err := errors.Join(json.Unmarshal(header, &a.header), json.Unmarshal(claims, &a.claims)); err != nil {
		return nil, err
	}
	return &a, nil
}

// verifySignature finds the registered certificate named by x5t#S256 or x5t
// and checks the signature with its key, and that it is valid now.
func (s *Server) verifySignature(clientID string, a *parsedAssertion) *Failure {
	thumb := thumbprintHex(a.header)
	cert := s.findCertificate(clientID, a.header)
	if cert == nil {
		return ptr(certificateNotRegistered(thumb, clientID))
	}
	if err := verifyRSA(cert, a); err != nil {
		return ptr(invalidSignature("Key was found, but use of the key to verify the signature failed.",
			thumb, cert))
	}
	if now := s.now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return ptr(invalidSignature("The key used is expired.", thumb, cert))
	}
	return nil
}

// findCertificate returns clientID's certificate with the header's
// thumbprint, or nil. s.mu must be held.
func (s *Server) findCertificate(clientID string, h assertionHeader) *x509.Certificate {
	for _, cert := range s.certs[clientID] {
		s1 := sha1.Sum(cert.Raw)
		s256 := sha256.Sum256(cert.Raw)
		if (h.X5tS256 != "" && h.X5tS256 == base64.RawURLEncoding.EncodeToString(s256[:])) ||
			(h.X5t != "" && h.X5t == base64.RawURLEncoding.EncodeToString(s1[:])) {
			return cert
		}
	}
	return nil
}

func verifyRSA(cert *x509.Certificate, a *parsedAssertion) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("not an RSA certificate")
	}
	digest := sha256.Sum256([]byte(a.signingInput))
	switch a.header.Alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], a.sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, digest[:], a.sig, nil)
	}
	return errors.New("unsupported alg")
}

// thumbprintHex is the thumbprint the client named, in the uppercase hex
// Microsoft's messages and the Entra portal show.
func thumbprintHex(h assertionHeader) string {
	for _, t := range []string{h.X5t, h.X5tS256} {
		if b, err := base64.RawURLEncoding.DecodeString(t); err == nil && len(b) > 0 {
			return strings.ToUpper(hex.EncodeToString(b))
		}
	}
	return ""
}

// checkClaims checks iss, sub, aud, the time window and the jti, which it
// then remembers until the assertion expires. s.mu must be held.
func (s *Server) checkClaims(req tokenRequest, c assertionClaims) *Failure {
	now := s.now()
	nbf, exp := unixTime(c.Nbf), unixTime(c.Exp)
	switch {
	case c.Iss != req.clientID || c.Sub != req.clientID:
		return ptr(assertionWrongApp())
	case len(c.Aud) != 1 || c.Aud[0] != req.tokenURL:
		return ptr(assertionWrongAudience())
	case now.Before(nbf) || !now.Before(exp):
		return ptr(assertionTimeRange(now, nbf, exp))
	}
	for jti, until := range s.jtis {
		if !now.Before(until) {
			delete(s.jtis, jti)
		}
	}
	key := req.clientID + " " + c.Jti
	if _, seen := s.jtis[key]; seen || c.Jti == "" {
		return ptr(AssertionReplayed())
	}
	s.jtis[key] = exp
	return nil
}

func unixTime(secs float64) time.Time { return time.Unix(int64(secs), 0).UTC() }
