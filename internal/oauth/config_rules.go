package oauth

import "strings"

// checkTenant: client credentials name the tenant the app acts in, so a
// multi-tenant alias cannot work (AADSTS9001023, AADSTS50059).
func (c Config) checkTenant() error {
	if c.Provider != Microsoft || c.grant() != GrantClientCredentials {
		return nil
	}
	switch strings.ToLower(strings.TrimSpace(c.TenantID)) {
	case "":
		return &ConfigError{"tenant_id", "is required for client_credentials",
			"set it to the directory (tenant) id"}
	case "common", "organizations", "consumers":
		return &ConfigError{"tenant_id", "cannot be " + strings.ToLower(c.TenantID) +
			" for client_credentials", "set it to the directory (tenant) id"}
	}
	return nil
}

// checkSecret: app-only access needs a confidential client, with a secret
// or a certificate credential (checkCertificate checks the latter).
func (c Config) checkSecret() error {
	if c.grant() == GrantClientCredentials && c.ClientSecret == "" && !c.UsesCertificate() {
		return &ConfigError{"client_secret", "is required for client_credentials",
			"create a client secret in the app registration and store its value, or use a " +
				"certificate (client_certificate and client_private_key, docs/certificate-credential.md)"}
	}
	return nil
}

func (c Config) checkScopes() error {
	if c.checkProvider() != nil {
		return nil // reported by checkProvider
	}
	scopes := c.EffectiveScopes()
	switch {
	case len(scopes) == 0 && c.Provider != Custom:
		return &ConfigError{"scopes", "is empty and protocol " + quoteOrNone(c.Protocol) +
			" has no default", "set protocol to imap, pop3 or smtp, or list the scopes"}
	case c.Provider == Microsoft && c.grant() == GrantClientCredentials && !allDefault(scopes):
		return &ConfigError{"scopes", "must end in /.default for client_credentials",
			"leave it empty or set it to https://outlook.office365.com/.default"}
	}
	return nil
}

func allDefault(scopes []string) bool {
	for _, s := range scopes {
		if !strings.HasSuffix(s, "/.default") {
			return false
		}
	}
	return true
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return `"` + s + `"`
}
