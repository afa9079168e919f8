package oauth

// aadstsAdvice maps Microsoft Entra ID error codes to what the admin must do.
// See https://learn.microsoft.com/entra/identity-platform/reference-error-codes
// and the table in CONTEXT.md.
func aadstsAdvice(code int) (advice, bool) {
	if a, ok := grantAdvice(code); ok {
		return a, true
	}
	if a, ok := appAdvice(code); ok {
		return a, true
	}
	if a, ok := assertionAdvice(code); ok {
		return a, true
	}
	return userAdvice(code)
}

// grantAdvice: the refresh token or code can no longer be used.
func grantAdvice(code int) (advice, bool) {
	switch code {
	case 70008: // refresh token or code expired due to inactivity
		return advice{true, doAuthorize}, true
	case 700082: // refresh token unused for 90 days
		return advice{true, doAuthorize + "; a refresh token unused for 90 days dies, " +
			"so keep the mailbox enabled"}, true
	case 50173: // grant revoked: password reset or admin revoked sessions
		return advice{true, doAuthorize + " (the grant was revoked, e.g. by a password reset)"}, true
	case 54005: // authorization code already redeemed
		return advice{true, "restart the authorize flow (fetcher authorize <mailbox>): " +
			"each authorization code works once"}, true
	case 70000: // grant invalid or issued to another app
		return advice{true, doAuthorize + " with this client_id"}, true
	case 65001: // consent missing
		return advice{true, "grant consent: authorize the mailbox again as the user, or have " +
			"an admin grant admin consent for the app's API permissions in Entra ID"}, true
	case 50196, 90033: // loop detected, transient error
		return advice{false, doRetry}, true
	}
	return advice{}, false
}

// appAdvice: the app registration, secret, tenant or scopes are wrong.
func appAdvice(code int) (advice, bool) {
	switch code {
	case 7000215: // invalid client secret, often the secret's id pasted
		return advice{true, "paste the client secret's Value (shown once when it was created), " +
			"not its Secret ID, into client_secret"}, true
	case 7000222: // client secret expired
		return advice{true, "create a new client secret under Certificates & secrets in the " +
			"app registration and store its value in client_secret"}, true
	case 7000218: // confidential client sent no secret
		return advice{true, "store the app's client secret value in client_secret, or enable " +
			"\"Allow public client flows\" in the app registration"}, true
	case 700025: // public client sent a secret
		return advice{true, "clear client_secret: the app is registered as a public client"}, true
	case 90002, 700016, 90010, 9001023, 50194:
		return tenantAdvice(code), true
	case 900144: // a required parameter (often scope) missing
		return advice{true, "check client_id, scopes and the stored refresh token: the token " +
			"request lacked the parameter named above"}, true
	case 1002012: // client credentials scope without /.default
		return advice{true, "leave scopes empty or set it to https://outlook.office365.com/.default"}, true
	case 70011, 28000, 500011: // invalid scope, scopes of two resources, resource not in tenant
		return advice{true, "fix scopes (leave it empty for the defaults; Graph scopes do not " +
			"work for IMAP, POP or SMTP) and check the tenant has Exchange Online"}, true
	case 7000112: // application disabled
		return advice{true, "have an admin enable the app's enterprise application in Entra ID"}, true
	}
	return advice{}, false
}

// assertionAdvice: Microsoft refused the client assertion of a certificate
// credential (see https://learn.microsoft.com/entra/identity-platform/certificate-credentials).
func assertionAdvice(code int) (advice, bool) {
	switch code {
	case 700027: // signature invalid: certificate not uploaded, another key, or expired there
		return advice{true, "upload the public part of the certificate in client_certificate " +
			"(the .cer or .pem file) under Certificates & secrets → Certificates in the app " +
			"registration, or store the certificate and key that are uploaded there; an expired " +
			"one must be replaced (docs/certificate-credential.md)"}, true
	case 700024: // assertion outside its nbf..exp window: the worker's clock is off
		return advice{false, "check the worker's clock (use NTP): each client assertion is " +
			"valid for 10 minutes from the time it is signed. The worker retries with backoff"}, true
	case 700021: // iss/sub differ from client_id
		return advice{true, "check client_id: it must be the application (client) id of the " +
			"app registration the certificate is uploaded to"}, true
	case 700023: // aud is not this token endpoint
		return advice{true, "check tenant_id and authority_url: the client assertion is made " +
			"for the token endpoint they name"}, true
	case 50027: // assertion malformed
		return advice{true, "check client_certificate and client_private_key " +
			"(docs/certificate-credential.md): Microsoft could not read the client assertion"}, true
	case 50013: // assertion invalid, e.g. replayed: the next request signs a new one
		return advice{false, "nothing if it happens once: every request signs a new client " +
			"assertion. If it repeats, check that nothing between the worker and Microsoft " +
			"re-sends token requests, and the certificate credential"}, true
	}
	return advice{}, false
}

func tenantAdvice(code int) advice {
	switch code {
	case 700016: // application not found in the directory
		return advice{true, "fix client_id or tenant_id: the app is not registered in that " +
			"directory (or authority_url points at another cloud)"}
	case 50194, 90010, 9001023: // single-tenant app or grant on common
		return advice{true, "set tenant_id to the app's directory (tenant) id instead of " +
			"common, organizations or consumers"}
	}
	return advice{true, "fix tenant_id (the directory id or domain) or authority_url " +
		"(the cloud's login host)"} // 90002 tenant not found
}

// userAdvice: the user must sign in, or policy blocks them.
func userAdvice(code int) (advice, bool) {
	switch code {
	case 50076, 50079: // multi-factor authentication required
		return advice{true, "multi-factor authentication is required: " + doAuthorize}, true
	case 53003: // blocked by Conditional Access
		return advice{true, "Conditional Access blocked the sign-in: have the Entra ID admin " +
			"allow this app for the mailbox user, then " + doAuthorize}, true
	case 50057: // user account disabled
		return advice{true, "enable the user account, then " + doAuthorize}, true
	case 50055: // password expired
		return advice{true, "have the user change the expired password, then " + doAuthorize}, true
	}
	return advice{}, false
}
