package authorize

import (
	"html/template"
	"net/http"
)

// page is what the browser shows after the redirect.
type page struct {
	Title string
	Lines []string
}

// pageTemplate escapes every value: an error description comes from the
// provider.
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fetcher: {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:42em;margin:4em auto;padding:0 1em;line-height:1.5}</style>
</head><body><h1>{{.Title}}</h1>
{{range .Lines}}<p>{{.}}</p>
{{end}}</body></html>
`))

func successPage(user string) page {
	return page{"Mailbox authorized", []string{
		"fetcher stored a new refresh token for " + user + ".",
		"You can close this window.",
	}}
}

func failurePage(err error) page {
	return page{"Authorization failed", []string{err.Error(),
		"Nothing was stored. Close this window and see the terminal where fetcher authorize runs."}}
}

func wrongStatePage() page {
	return page{"Sign-in answer refused", []string{ErrStateMismatch.Error(),
		"If you started fetcher authorize just now, open the address it printed in this run."}}
}

func usedPage() page {
	return page{"Already answered", []string{"fetcher authorize already received its sign-in answer. " +
		"You can close this window."}}
}

// writePage sends p.
func writePage(w http.ResponseWriter, status int, p page) {
	noStore(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, p)
}

// noStore sets the headers of every answer of the loopback listener. The
// address the browser asked for holds the code: no cache may keep the page,
// and no referrer may carry the address elsewhere; the page loads nothing
// and runs no script.
func noStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
}
