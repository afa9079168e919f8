package store

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/fetcherhq/fetcher/internal/ticket"
)

// TestLookupsReadTextsOnlyForPossibleDuplicates: the lookups of a batch
// read the stored texts of the batch's own Message-IDs (findDuplicate
// compares them) and, for the ids a reply's References name, only which
// tickets they are in: a long thread's quoted bodies are never loaded.
func TestLookupsReadTextsOnlyForPossibleDuplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, mb := sqliteForTest(t)
	fetched := func(key, raw string) Fetched {
		return Fetched{MailboxID: mb.ID, SourceKey: key, Raw: []byte(raw), Parsed: ticket.Parse([]byte(raw)), Action: ActionKeep}
	}
	body := strings.Repeat("quoted text line\r\n", 1000)
	var refs []string
	for i := range 5 {
		raw := fmt.Sprintf("From: c@example.com\r\nSubject: t\r\nMessage-ID: <t%d@x>\r\n\r\n%s", i, body)
		_, err := db.Tickets().Save(ctx, fetched(fmt.Sprint("k", i), raw))
		require.NoError(t, err)
		refs = append(refs, fmt.Sprintf("<t%d@x>", i))
	}
	reply := fetched("reply", "From: c@example.com\r\nSubject: Re: t\r\nMessage-ID: <reply@x>\r\nReferences: "+
		strings.Join(refs, " ")+"\r\n\r\nthanks\r\n")
	resend := fetched("resend", fmt.Sprintf("From: c@example.com\r\nSubject: t\r\nMessage-ID: <t0@x>\r\n\r\n%s", body))

	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		l, err := prefetch(tx, nil, []Fetched{reply, resend})
		require.NoError(t, err)
		for _, id := range refs {
			rows := l.rows[mb.ID][id]
			require.Len(t, rows, 1, id)
			if id == "<t0@x>" { // the resend's own Message-ID: compared by text
				require.NotNil(t, rows[0].BodyText)
				continue
			}
			require.Nil(t, rows[0].BodyText, "%s is only referenced: its text is not read", id)
		}
		require.NotNil(t, l.findDuplicate(resend))
		id, kind := l.findReferenced(mb.ID, reply.Parsed.ReferencedIDs(), true)
		require.NotZero(t, id)
		require.Equal(t, KindMail, kind)
		return nil
	})
	require.NoError(t, err)
}
