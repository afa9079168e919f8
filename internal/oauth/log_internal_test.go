package oauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{&Error{Status: 400, Code: "invalid_grant", AADSTS: 70008}, "invalid_grant AADSTS70008"},
		{&Error{Status: 400, Code: "invalid_grant"}, "invalid_grant"},
		{&Error{Status: 503, Code: "temporarily_unavailable", AADSTS: 90033}, "http 503 temporarily_unavailable AADSTS90033"},
		{&Error{Status: 429}, "http 429"},
		{&Error{Status: 403}, "http 403"},
		{fmt.Errorf("token request: %w", context.DeadlineExceeded), "timeout"},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, "network error"},
		{context.Canceled, "canceled"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, outcome(tt.err), "outcome(%v)", tt.err)
	}
}
