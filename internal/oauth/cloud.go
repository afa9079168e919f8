package oauth

import (
	"net/url"
	"strings"
)

// cloud names the Exchange Online resources of one Microsoft cloud. A token
// serves one resource, so the scopes must match the cloud of the authority.
type cloud struct {
	delegated string // resource of the delegated *.AccessAsUser.All scopes
	app       string // resource of the app-only /.default scope
}

// cloudOf picks the cloud from the authority host: login.microsoftonline.us
// is US Government (GCC High/DoD), login.partner.microsoftonline.cn is 21Vianet.
// Anything else, including test servers, gets the global cloud.
func cloudOf(authority string) cloud {
	var host string
	if u, err := url.Parse(authority); err == nil {
		host = strings.ToLower(u.Hostname())
	}
	switch {
	case strings.HasSuffix(host, "microsoftonline.us"):
		return cloud{delegated: "https://outlook.office365.us", app: "https://outlook.office365.us"}
	case strings.HasSuffix(host, "microsoftonline.cn"):
		return cloud{delegated: "https://partner.outlook.cn", app: "https://partner.outlook.cn"}
	}
	return cloud{delegated: "https://outlook.office.com", app: "https://outlook.office365.com"}
}

func microsoftScopes(c cloud, protocol, grant string) []string {
	if grant == GrantClientCredentials {
		return []string{c.app + "/.default"}
	}
	var s string
	switch protocol {
	case "imap":
		s = "/IMAP.AccessAsUser.All"
	case "pop3":
		s = "/POP.AccessAsUser.All"
	case "smtp":
		s = "/SMTP.Send"
	default:
		return nil
	}
	return []string{scopeOfflineAccess, c.delegated + s}
}
