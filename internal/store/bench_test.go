package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
	"github.com/fetcherhq/fetcher/internal/ticket"
)

// benchRaw is a support mail of about 20 KB with a small attachment.
func benchRaw(i int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Customer %d <c%d@example.com>\r\nTo: support@example.org\r\nSubject: Printer %d is broken\r\n"+
		"Date: Mon, 3 Jun 2024 10:00:00 +0200\r\nMessage-ID: <bench-%d@example.com>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", i, i, i, i)
	for range 120 {
		b.WriteString("The printer on the third floor prints every page twice since Monday.\r\n")
	}
	b.WriteString("--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n")
	for range 120 {
		b.WriteString("<p>The printer on the third floor prints every page twice since Monday.</p>\r\n")
	}
	b.WriteString("--b--\r\n")
	return []byte(b.String())
}

// BenchmarkSave stores messages of about 20 KB one per transaction
// (store.Tickets.Save), parsing included.
func BenchmarkSave(b *testing.B) {
	db := storetest.Postgres(b)
	mb := store.Mailbox{Name: "bench", Protocol: "imap", Host: "imap.example.com", Port: 993, UseSSL: true,
		Username: "u", OAuthProvider: "microsoft", ClientID: "c", RefreshToken: "rt", Enabled: true}
	if err := db.Mailboxes().Create(context.Background(), &mb); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		raw := benchRaw(n)
		f := store.Fetched{MailboxID: mb.ID, SourceKey: fmt.Sprintf("imap:INBOX:1:%d", n), Raw: raw,
			Parsed: ticket.Parse(raw), Action: store.ActionMarkSeen,
			Cursor: &store.Cursor{MailboxID: mb.ID, Folder: "INBOX", UIDValidity: 1, LastUID: uint32(n)}}
		if _, err := db.Tickets().Save(ctx, f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSaveBatch stores batches of 150 parsed messages of about 20 KB,
// each batch in one transaction (store.Tickets.SaveBatch); ns/msg is the
// time per message. Parsing is not timed.
func BenchmarkSaveBatch(b *testing.B) {
	db := storetest.Postgres(b)
	mb := store.Mailbox{Name: "bench", Protocol: "imap", Host: "imap.example.com", Port: 993, UseSSL: true,
		Username: "u", OAuthProvider: "microsoft", ClientID: "c", RefreshToken: "rt", Enabled: true}
	if err := db.Mailboxes().Create(context.Background(), &mb); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const batch = 150
	n := 0
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		parsed := make([]store.Fetched, 0, batch)
		for range batch {
			n++
			raw := benchRaw(n)
			p := ticket.Parse(raw)
			parsed = append(parsed, store.Fetched{MailboxID: mb.ID, SourceKey: fmt.Sprintf("imap:INBOX:1:%d", n), Raw: raw,
				Parsed: p, Action: store.ActionMarkSeen,
				Cursor: &store.Cursor{MailboxID: mb.ID, Folder: "INBOX", UIDValidity: 1, LastUID: uint32(n)}})
		}
		b.StartTimer()
		t0 := time.Now()
		if _, err := db.Tickets().SaveBatch(ctx, parsed); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(n), "ns/msg")
}
