package oauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" // x5t is a SHA-1 thumbprint by definition (RFC 7515 section 4.1.7)
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"time"
)

// Client authentication with a certificate (RFC 7523 section 2.2).
const (
	// ClientAssertionType is the client_assertion_type of a JWT assertion.
	ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// AssertionLifetime is how long a client assertion is valid. Microsoft
	// advises 5 to 10 minutes; each request gets a new one anyway.
	AssertionLifetime = 10 * time.Minute
)

// assertionHeader is the JOSE header Microsoft documents for certificate
// credentials: the SHA-1 thumbprint in x5t (its RS256 format) and the
// SHA-256 one in x5t#S256 (its newer PS256 format), RFC 7515 sections 4.1.7
// and 4.1.8.
type assertionHeader struct {
	Alg     string `json:"alg"`
	Typ     string `json:"typ"`
	X5t     string `json:"x5t"`
	X5tS256 string `json:"x5t#S256"`
}

// assertionClaims are the claims of RFC 7523 section 3.
type assertionClaims struct {
	Aud string `json:"aud"` // the token endpoint URL
	Exp int64  `json:"exp"`
	Iss string `json:"iss"` // the client id
	Jti string `json:"jti"` // random, never reused
	Nbf int64  `json:"nbf"`
	Sub string `json:"sub"` // the client id
	Iat int64  `json:"iat"`
}

// ClientAssertion returns a client assertion for a token request to
// tokenURL at now: a JWT signed with RS256 by client_private_key, naming the
// certificate by its thumbprints, with aud tokenURL, iss and sub the client
// id, a random jti, nbf and iat now, and exp now+[AssertionLifetime] (RFC
// 7523; Microsoft's "certificate credentials"). The assertion is a
// credential for its lifetime: never log it.
//
// It returns a [*ConfigError] when c has no usable certificate credential.
// Most callers want [Config.ClientAuthParams].
func (c Config) ClientAssertion(now time.Time, tokenURL string) (string, error) {
	if !c.UsesCertificate() {
		return "", &ConfigError{"client_certificate", "is empty",
			"store a certificate and its key (docs/certificate-credential.md)"}
	}
	cred, err := c.certificate(now)
	if err != nil {
		return "", err
	}
	return cred.assertion(c.ClientID, tokenURL, now)
}

// ClientAuthParams returns the form parameters that authenticate the app in
// a token request to tokenURL at now (RFC 6749 section 2.3.1, RFC 7523
// section 2.2): client_assertion_type and a fresh client_assertion with a
// certificate credential (the secret is then never sent), client_secret with
// a secret, none for a public client. client_id is not included.
//
// Every token request of this package sends them in the POST body; a caller
// with its own exchange (the authorization code or device code grant) sends
// the same, with oauth2.Config.ClientSecret left empty:
//
//	params, err := cfg.ClientAuthParams(now, endpoint.TokenURL)
//	var opts []oauth2.AuthCodeOption
//	for k := range params {
//		opts = append(opts, oauth2.SetAuthURLParam(k, params.Get(k)))
//	}
//	tok, err := oc.Exchange(ctx, code, opts...) // oc.Endpoint.AuthStyle = AuthStyleInParams
//
// Build them per request: an assertion is valid for [AssertionLifetime]
// and its jti for one use.
func (c Config) ClientAuthParams(now time.Time, tokenURL string) (url.Values, error) {
	switch {
	case c.UsesCertificate():
		a, err := c.ClientAssertion(now, tokenURL)
		if err != nil {
			return nil, err
		}
		return url.Values{"client_assertion_type": {ClientAssertionType}, "client_assertion": {a}}, nil
	case c.ClientSecret != "":
		return url.Values{"client_secret": {c.ClientSecret}}, nil
	}
	return url.Values{}, nil
}

// assertion builds and signs the JWT (RFC 7515 compact serialization).
func (cred *certificate) assertion(clientID, tokenURL string, now time.Time) (string, error) {
	sha1Sum := sha1.Sum(cred.cert.Raw)
	sha256Sum := sha256.Sum256(cred.cert.Raw)
	header, err := json.Marshal(assertionHeader{Alg: "RS256", Typ: "JWT",
		X5t:     base64.RawURLEncoding.EncodeToString(sha1Sum[:]),
		X5tS256: base64.RawURLEncoding.EncodeToString(sha256Sum[:])})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(assertionClaims{Aud: tokenURL, Iss: clientID, Sub: clientID,
		Jti: newRequestID(), Nbf: now.Unix(), Iat: now.Unix(), Exp: now.Add(AssertionLifetime).Unix()})
	if err != nil {
		return "", err
	}
	signingInput := b64(header) + "." + b64(claims)
	digest := sha256.Sum256([]byte(signingInput))
	sig, err := rsa.SignPKCS1v15(rand.Reader, cred.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err // only a broken key; the text names no key material
	}
	return signingInput + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
