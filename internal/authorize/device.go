package authorize

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/oauth2"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

// Device runs the device authorization grant (RFC 8628) for a server
// without a browser: it prints the verification address and the user code,
// polls the token endpoint until someone signs in on another device (or
// the code or Timeout expires) and saves the tokens.
func (f *Flow) Device(ctx context.Context) (oauth.Token, error) {
	if err := f.checkDevice(); err != nil {
		return oauth.Token{}, err
	}
	oc, err := f.oauth2Config("")
	if err != nil {
		return oauth.Token{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout())
	defer cancel()
	var da *oauth2.DeviceAuthResponse
	err = f.client().Request(ctx, f.Config, oauth.GrantDeviceCode, func(ctx context.Context) error {
		var err error
		da, err = oc.DeviceAuth(ctx)
		return err
	})
	if err != nil {
		return oauth.Token{}, f.timedOut(ctx, fmt.Errorf("start the device sign-in: %w", err))
	}
	f.printf("On any device with a browser, open %s and enter the code %s, then sign in as %s.\n"+
		"Waiting for the sign-in (up to %s) ...\n", da.VerificationURI, da.UserCode, f.LoginHint, f.timeout())
	tok, err := f.poll(ctx, oc, da)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return oauth.Token{}, fmt.Errorf("the code %s expired before anyone signed in with it; "+
				"nothing was stored", da.UserCode)
		}
		return oauth.Token{}, f.timedOut(ctx, err)
	}
	return f.finish(ctx, tok)
}

// poll waits for the sign-in (RFC 8628 section 3.4). x/oauth2 sends the same
// parameters on every poll, so a certificate's client assertion is built
// once and must outlive the poll: Microsoft's device codes last 15 minutes.
func (f *Flow) poll(ctx context.Context, oc *oauth2.Config, da *oauth2.DeviceAuthResponse) (*oauth2.Token, error) {
	opts, secrets, err := f.clientAuth(oc.Endpoint.TokenURL)
	if err != nil {
		return nil, err
	}
	var tok *oauth2.Token
	err = f.client().Request(ctx, f.Config, oauth.GrantDeviceCode, func(ctx context.Context) error {
		var err error
		tok, err = oc.DeviceAccessToken(ctx, da, opts...)
		return err
	}, append(secrets, da.DeviceCode)...)
	return tok, err
}

// checkDevice: Google's device flow does not allow the Gmail scope, and a
// custom provider has no device endpoint setting.
func (f *Flow) checkDevice() error {
	if f.Config.UsesCertificate() {
		// x/oauth2 resends one assertion on every poll, which outlives
		// neither its 10-minute lifetime nor replay checks; and the device
		// flow is for public clients, which send no credential at all.
		return errors.New("the device code flow is for public clients, which have no certificate: " +
			"run fetcher authorize without --device (a Web redirect URL works from any machine)")
	}
	if err := f.check(); err != nil {
		return err
	}
	switch f.Config.Provider {
	case oauth.Google:
		return errors.New("the device code flow does not work for Gmail: Google does not allow " +
			"the https://mail.google.com/ scope there; run fetcher authorize without --device " +
			"(on a server without a browser, forward the redirect port with ssh -L)")
	case oauth.Custom:
		return errors.New("the device code flow needs the provider's device endpoint, which a " +
			"custom provider has no setting for; run fetcher authorize without --device")
	}
	return nil
}
