package oauthtest

import "time"

// Failure is an error the token endpoint answers with instead of doing its
// job, in Microsoft's shape unless Google is set.
type Failure struct {
	// Status is the HTTP status; 0 with a Delay means answer normally after
	// the delay, 0 otherwise means 400.
	Status int
	// Code is RFC 6749's error, e.g. "invalid_grant". Empty sends a plain
	// text body instead of JSON, like a proxy's error page.
	Code string
	// AADSTS is Microsoft's error code; 0 sends no error_codes.
	AADSTS int
	// Message is the error text after "AADSTSn: ".
	Message string
	// RetryAfter is sent as a Retry-After header in whole seconds.
	RetryAfter time.Duration
	// Delay holds the answer back this long, or until the client gives up.
	Delay time.Duration
	// Google sends only error and error_description, as Google does.
	Google bool
}

// FailNext makes the next token request fail with f. Calls queue up.
func (s *Server) FailNext(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = append(s.failNext, f)
}

// SetFailure makes every token request fail with f (after any FailNext ones)
// until it is called with nil.
func (s *Server) SetFailure(f *Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f != nil {
		c := *f
		f = &c
	}
	s.failure = f
}

// takeFailure returns the failure for this request, if any.
func (s *Server) takeFailure() (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failNext) > 0 {
		f := s.failNext[0]
		s.failNext = s.failNext[1:]
		return f, true
	}
	if s.failure != nil {
		return *s.failure, true
	}
	return Failure{}, false
}
