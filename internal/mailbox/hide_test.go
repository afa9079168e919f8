package mailbox

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHidePassword(t *testing.T) {
	t.Parallel()
	refused := &AuthError{Mechanism: pop3UserPass, Username: "u@example.com", ServerText: "-ERR unknown command PASS Hunter2!x"}
	err := hidePassword(refused, "Hunter2!x")
	require.NotContains(t, err.Error(), "Hunter2!x")
	require.Contains(t, err.Error(), "PASS [redacted]")
	var ae *AuthError
	require.ErrorAs(t, err, &ae, "callers still see the login refusal")
	require.NoError(t, hidePassword(nil, "Hunter2!x"))
	require.Same(t, refused, hidePassword(refused, "abc"), "too short to hide without eating words")
	plain := errors.New("no password here")
	require.Equal(t, plain.Error(), hidePassword(plain, "Hunter2!x").Error())
}
