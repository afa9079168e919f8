package mailbox

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHideCredentialsPassword(t *testing.T) {
	t.Parallel()
	refused := &AuthError{Mechanism: pop3UserPass, Username: "u@example.com", ServerText: "-ERR unknown command PASS Hunter2!x"}
	err := hideCredentials(refused, Account{Password: "Hunter2!x"})
	require.NotContains(t, err.Error(), "Hunter2!x")
	require.Contains(t, err.Error(), "PASS [redacted]")
	var ae *AuthError
	require.ErrorAs(t, err, &ae, "callers still see the login refusal")
	require.NoError(t, hideCredentials(nil, Account{Password: "Hunter2!x"}))
	require.Same(t, refused, hideCredentials(refused, Account{Password: "abc"}), "too short to hide without eating words")
	plain := errors.New("no password here")
	require.Equal(t, plain.Error(), hideCredentials(plain, Account{Password: "Hunter2!x"}).Error())
}
