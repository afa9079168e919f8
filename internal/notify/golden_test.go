package notify

import (
	"flag"
	"net/mail"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/ticket"
)

var update = flag.Bool("update", false, "rewrite testdata/*.eml from the current output")

// TestGolden plans and builds one acknowledgement and one admin
// notification with a fixed date and Message-ID and compares the bytes
// with testdata. Run `go test ./internal/notify -run TestGolden -update`
// after an intended change, and read the diff.
func TestGolden(t *testing.T) {
	ev := newEvent()
	ev.TicketSubject = "Drucker im 3. Stock: alle Seiten bleiben weiß"
	m := ev.Message
	m.Subject = "Drucker im 3. Stock: alle Seiten bleiben weiß"
	m.FromName = "Jörg Müller"
	m.FromEmail = "joerg.mueller@example.com"
	m.SentAt = mustTime(t, "2024-05-25T10:14:15Z")
	m.BodyText = "Hallo,\n\nder Drucker druckt seit heute früh nur leere Seiten.\n\nGrüße\nJörg"
	m.Attachments = []ticket.Attachment{{Filename: "testseite.pdf", Data: make([]byte, 48213)}}
	tt := TicketType{Name: "IT", AdminEmail: "it-admin@example.org", NotifyNew: true, Acknowledge: true}
	drafts := Plan(tt, testSender, ev)
	require.Len(t, drafts, 2)
	for _, d := range drafts {
		require.Empty(t, d.Suppressed)
		raw, err := Build(Outgoing{
			Kind:       d.Kind,
			TicketID:   ev.TicketID,
			From:       mail.Address{Name: testSender.Name, Address: testSender.Address},
			To:         d.Recipient,
			Subject:    d.Subject,
			Body:       d.Body,
			MessageID:  "<fetcher.42.0123456789abcdef@example.org>",
			InReplyTo:  d.InReplyTo,
			References: d.References,
			Date:       mustTime(t, "2024-05-25T10:15:00Z"),
		})
		require.NoError(t, err)
		path := filepath.Join("testdata", d.Kind+".eml")
		if *update {
			require.NoError(t, os.WriteFile(path, raw, 0o644))
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, string(want), string(raw), "%s differs; rerun with -update if intended", path)
	}
}
