package oauthtest

import (
	"net/http"
	"time"
)

// fakeApp is the application id the canned failures name.
const fakeApp = "00000000-0000-0000-0000-00000000a11e"

// ExpiredRefreshToken is invalid_grant AADSTS70008: refresh token (or code)
// expired due to inactivity.
func ExpiredRefreshToken() Failure {
	return Failure{Status: 400, Code: "invalid_grant", AADSTS: 70008, Message: "The provided " +
		"authorization code or refresh token has expired due to inactivity. Send a new " +
		"interactive authorization request for this user and resource."}
}

// UnusedRefreshToken is invalid_grant AADSTS700082: unused for 90 days.
func UnusedRefreshToken() Failure {
	return Failure{Status: 400, Code: "invalid_grant", AADSTS: 700082, Message: "The refresh " +
		"token has expired due to inactivity. The token was issued on 2024-01-02T03:04:05Z " +
		"and was inactive for 90.00:00:00."}
}

// GrantRevoked is invalid_grant AADSTS50173: revoked by a password reset.
func GrantRevoked() Failure {
	return Failure{Status: 400, Code: "invalid_grant", AADSTS: 50173, Message: "The provided " +
		"grant has expired due to it being revoked, a fresh auth token is needed. The user " +
		"might have changed or reset their password."}
}

// CodeRedeemed is invalid_grant AADSTS54005: authorization code used twice.
func CodeRedeemed() Failure {
	return Failure{Status: 400, Code: "invalid_grant", AADSTS: 54005, Message: "OAuth2 " +
		"Authorization code was already redeemed, please retry with a new valid code or use " +
		"an existing refresh token."}
}

// ConsentMissing is invalid_grant AADSTS65001: no user or admin consent.
func ConsentMissing() Failure {
	return Failure{Status: 400, Code: "invalid_grant", AADSTS: 65001, Message: "The user or " +
		"administrator has not consented to use the application with ID '" + fakeApp +
		"' named 'fetcher'. Send an interactive authorization request for this user and resource."}
}

// WrongSecret is invalid_client AADSTS7000215, usually the secret's id pasted.
func WrongSecret() Failure {
	return Failure{Status: 401, Code: "invalid_client", AADSTS: 7000215, Message: "Invalid " +
		"client secret provided. Ensure the secret being sent in the request is the client " +
		"secret value, not the client secret ID, for a secret added to app '" + fakeApp + "'."}
}

// SecretExpired is invalid_client AADSTS7000222.
func SecretExpired() Failure {
	return Failure{Status: 401, Code: "invalid_client", AADSTS: 7000222, Message: "The provided " +
		"client secret keys for app '" + fakeApp + "' are expired. Visit the Azure portal to " +
		"create new keys for your app: https://aka.ms/NewClientSecret"}
}

// MFARequired is invalid_grant AADSTS50076.
func MFARequired() Failure {
	return Failure{Status: 400, Code: "invalid_grant", AADSTS: 50076, Message: "Due to a " +
		"configuration change made by your administrator, or because you moved to a new " +
		"location, you must use multi-factor authentication to access '" + fakeApp + "'."}
}

// ConditionalAccess is invalid_grant AADSTS53003.
func ConditionalAccess() Failure {
	return Failure{Status: 400, Code: "invalid_grant", AADSTS: 53003, Message: "Access has " +
		"been blocked by Conditional Access policies. The access policy does not allow token issuance."}
}

// TenantNotFound is invalid_request AADSTS90002.
func TenantNotFound() Failure {
	return Failure{Status: 400, Code: "invalid_request", AADSTS: 90002, Message: "Tenant " +
		"'contoso.example' not found. Check to make sure you have the correct tenant ID and " +
		"are signing into the correct cloud."}
}

// AppNotFound is unauthorized_client AADSTS700016.
func AppNotFound() Failure { return appNotFound(fakeApp, "common") }

func appNotFound(clientID, tenant string) Failure {
	return Failure{Status: 400, Code: "unauthorized_client", AADSTS: 700016, Message: "Application " +
		"with identifier '" + clientID + "' was not found in the directory '" + tenant + "'. This " +
		"can happen if the application has not been installed by the administrator of the " +
		"tenant or consented to by any user in the tenant. You may have sent your " +
		"authentication request to the wrong tenant."}
}

// SingleTenantOnCommon is invalid_request AADSTS50194.
func SingleTenantOnCommon() Failure {
	return Failure{Status: 400, Code: "invalid_request", AADSTS: 50194, Message: "Application '" +
		fakeApp + "'(fetcher) is not configured as a multi-tenant application. Usage of the " +
		"/common endpoint is not supported for such applications created after '10/15/2018'. " +
		"Use a tenant-specific endpoint or configure the application to be multi-tenant."}
}

// ScopeMissing is invalid_request AADSTS900144 for a missing scope.
func ScopeMissing() Failure { return missingParam("scope") }

func missingParam(name string) Failure {
	return Failure{Status: 400, Code: "invalid_request", AADSTS: 900144,
		Message: "The request body must contain the following parameter: '" + name + "'."}
}

// GoogleExpiredOrRevoked is Google's invalid_grant for a dead refresh token
// (also what an app in "Testing" status gets after 7 days).
func GoogleExpiredOrRevoked() Failure {
	return Failure{Status: 400, Code: "invalid_grant", Google: true,
		Message: "Token has been expired or revoked."}
}

// Unavailable is HTTP 503 temporarily_unavailable AADSTS90033.
func Unavailable() Failure {
	return Failure{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
		AADSTS: 90033, Message: "A transient error has occurred. Please try again."}
}

// BadGateway is a proxy's HTTP 502 with a plain text body.
func BadGateway() Failure { return Failure{Status: http.StatusBadGateway} }

// Throttled is HTTP 429 with a Retry-After header.
func Throttled(retryAfter time.Duration) Failure {
	return Failure{Status: http.StatusTooManyRequests, Code: "temporarily_unavailable",
		RetryAfter: retryAfter, Message: "Request is throttled. Retry after the interval " +
			"in the Retry-After header."}
}

// Slow answers normally after d, or not at all if the client gives up first.
func Slow(d time.Duration) Failure { return Failure{Delay: d} }
