package mailboxtest

import (
	"encoding/json"
	"net/http"
	"strings"
)

// IntrospectionHandler answers a mail server's token checks (RFC 7662
// shaped, as Dovecot's oauth2 passdb in "auth" mode asks them): the token
// comes as "Authorization: Bearer TOKEN", and the answer names the user it
// was issued to.
func IntrospectionHandler(lookup func(token string) (user string, ok bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		user, ok := lookup(token)
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"active": false, "error": "invalid_token"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "email": user})
	})
}
