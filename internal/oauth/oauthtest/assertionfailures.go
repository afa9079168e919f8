package oauthtest

import (
	"crypto/x509"
	"time"
)

// Microsoft's answers to a bad client assertion: invalid_client, HTTP 401.
// See https://learn.microsoft.com/entra/identity-platform/certificate-credentials.

// certDocs ends Microsoft's client assertion messages.
const certDocs = " Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."

// fakeThumbprint is the SHA-1 thumbprint the canned failures name.
const fakeThumbprint = "84E05C1D98BCE3A5421D225B140B36E86A3D5534"

// CertificateNotRegistered is invalid_client AADSTS700027: the assertion
// was signed with a certificate the app registration does not have.
func CertificateNotRegistered() Failure { return certificateNotRegistered(fakeThumbprint, fakeApp) }

func certificateNotRegistered(thumbprint, clientID string) Failure {
	return Failure{Status: 401, Code: "invalid_client", AADSTS: 700027, Message: "The certificate " +
		"with identifier used to sign the client assertion is not registered on application. " +
		"[Reason - The key was not found., Thumbprint of key used by client: '" + thumbprint +
		"', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see " +
		"configured keys for app Id '" + clientID + "'.]"}
}

// invalidSignature is AADSTS700027 for a certificate that is registered but
// did not verify the signature, or is expired.
func invalidSignature(reason, thumbprint string, cert *x509.Certificate) Failure {
	const msDate = "01/02/2006 15:04:05"
	return Failure{Status: 401, Code: "invalid_client", AADSTS: 700027, Message: "Client " +
		"assertion contains an invalid signature. [Reason - " + reason + ", Thumbprint of key " +
		"used by client: '" + thumbprint + "', Found key 'Start=" + cert.NotBefore.UTC().Format(msDate) +
		", End=" + cert.NotAfter.UTC().Format(msDate) + "']"}
}

// AssertionNotInTimeRange is invalid_client AADSTS700024: the assertion's
// nbf..exp window does not hold the server's time (a skewed clock).
func AssertionNotInTimeRange() Failure {
	t := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	return assertionTimeRange(t, t.Add(time.Hour), t.Add(time.Hour+10*time.Minute))
}

func assertionTimeRange(now, nbf, exp time.Time) Failure {
	const f = "2006-01-02T15:04:05.0000000Z"
	return Failure{Status: 401, Code: "invalid_client", AADSTS: 700024, Message: "Client " +
		"assertion is not within its valid time range. Current time: " + now.UTC().Format(f) +
		", assertion valid from " + nbf.UTC().Format(f) + ", expiry time of assertion " +
		exp.UTC().Format(f) + "." + certDocs}
}

// AssertionReplayed refuses a client assertion whose jti was already used.
// Microsoft documents no code for this; the fake answers with invalid_client
// AADSTS50013 (InvalidAssertion), its code for an invalid assertion.
func AssertionReplayed() Failure {
	return Failure{Status: 401, Code: "invalid_client", AADSTS: 50013, Message: "Assertion is " +
		"invalid: the client assertion's jti was already used (replay)." + certDocs}
}

func assertionWrongApp() Failure {
	return Failure{Status: 401, Code: "invalid_client", AADSTS: 700021, Message: "Client " +
		"assertion application identifier doesn't match 'client_id' parameter." + certDocs}
}

func assertionWrongAudience() Failure {
	return Failure{Status: 401, Code: "invalid_client", AADSTS: 700023, Message: "Client " +
		"assertion audience claim does not match Realm issuer." + certDocs}
}

func malformedAssertion() Failure {
	return Failure{Status: 401, Code: "invalid_client", AADSTS: 50027, Message: "JWT token is " +
		"invalid or malformed." + certDocs}
}
