package fetch

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/secret"
	"github.com/fetcherhq/fetcher/internal/store"
)

func TestDescribePanicHidesValues(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a panic with a value of type string", describePanic("token=Secret123"))
	err := func() (err error) {
		defer func() { err = recover().(error) }()
		s := []int{1}
		i := len(s)
		return fmt.Errorf("unreachable %d", s[i]) // index out of range: a runtime error
	}()
	require.Equal(t, err.Error(), describePanic(err))
}

func TestFingerprintIsKeyed(t *testing.T) {
	t.Parallel()
	mb := store.Mailbox{Protocol: "imap", Host: "h", RefreshToken: "rt", ClientSecret: "cs"}
	k1, err := secret.NewKeyring(bytes.Repeat([]byte{1}, secret.KeySize))
	require.NoError(t, err)
	k2, err := secret.NewKeyring(bytes.Repeat([]byte{2}, secret.KeySize))
	require.NoError(t, err)
	same, err := secret.NewKeyring(bytes.Repeat([]byte{1}, secret.KeySize))
	require.NoError(t, err)
	require.Equal(t, fingerprint(mb, k1), fingerprint(mb, same), "stable under one key")
	require.NotEqual(t, fingerprint(mb, k1), fingerprint(mb, k2), "the digest depends on the key")
	require.NotEqual(t, fingerprint(mb, nil), fingerprint(mb, k1))
	changed := mb
	changed.TLSCACert = "-----BEGIN CERTIFICATE-----"
	require.NotEqual(t, fingerprint(mb, k1), fingerprint(changed, k1), "a new CA unparks the mailbox")
}
