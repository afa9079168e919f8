package oauthtest

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Device flow timing (RFC 8628 section 3.2).
const (
	deviceCodeLifetime = 15 * time.Minute
	devicePollInterval = 1 // seconds; Microsoft says 5, tests want speed
)

// deviceCode is a pending device authorization.
type deviceCode struct {
	grant
	userCode string
	expiry   time.Time
	approved bool
}

// deviceResponse is Microsoft's device authorization response.
type deviceResponse struct {
	UserCode        string `json:"user_code"`
	DeviceCode      string `json:"device_code"`
	VerificationURI string `json:"verification_uri"`
	ExpiresIn       int    `json:"expires_in"`
	Interval        int    `json:"interval"`
	Message         string `json:"message"`
}

// handleDeviceCode serves POST {tenant}/oauth2/v2.0/devicecode.
func (s *Server) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	clientID := r.PostForm.Get("client_id")
	if !s.knownClient(clientID) {
		s.writeFailure(w, r, appNotFound(clientID, r.PathValue("tenant")))
		return
	}
	d := &deviceCode{grant: grant{clientID: clientID,
		scopes: strings.Fields(r.PostForm.Get("scope"))},
		userCode: newUserCode(), expiry: s.now().Add(deviceCodeLifetime)}
	code := "DAQABAAEAAA" + randomB64(150)
	s.mu.Lock()
	s.devices[code] = d
	s.mu.Unlock()
	uri := s.URL() + "/devicelogin"
	writeJSON(w, http.StatusOK, deviceResponse{UserCode: d.userCode, DeviceCode: code,
		VerificationURI: uri, ExpiresIn: int(deviceCodeLifetime.Seconds()),
		Interval: devicePollInterval, Message: fmt.Sprintf("To sign in, use a web browser to "+
			"open the page %s and enter the code %s to authenticate.", uri, d.userCode)})
}

// ApproveDevice lets user sign in with userCode, as a person would on a
// second device. It reports whether a pending code matched.
func (s *Server) ApproveDevice(userCode, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.userCode == userCode && !d.approved {
			d.approved, d.user = true, user
			return true
		}
	}
	return false
}

// deviceGrant serves the device_code grant (RFC 8628 section 3.4).
// s.mu must be held.
func (s *Server) deviceGrant(req tokenRequest) (*tokenResponse, *Failure) {
	if f := s.authenticate(req); f != nil {
		return nil, f
	}
	code := req.form.Get("device_code")
	d, ok := s.devices[code]
	switch {
	case code == "":
		return fail(missingParam("device_code"))
	case !ok || d.clientID != req.clientID:
		return fail(Failure{Status: 400, Code: "invalid_grant", AADSTS: 70000,
			Message: "Provided grant is invalid or malformed."})
	case !s.now().Before(d.expiry):
		return fail(Failure{Status: 400, Code: "expired_token", AADSTS: 70019,
			Message: "Verification code expired."})
	case !d.approved:
		return fail(Failure{Status: 400, Code: "authorization_pending", AADSTS: 70016,
			Message: "OAuth 2.0 device flow error. Authorization is pending. Continue polling."})
	}
	delete(s.devices, code)
	g := d.grant
	g.family = newUUID()
	return s.issue(g, g.scopes, slices.Contains(g.scopes, "offline_access")), nil
}

// newUserCode returns 9 characters a person can type, like "FJX5QXGYD".
func newUserCode() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
