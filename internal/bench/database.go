package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fetcherhq/fetcher/internal/secret"
	"github.com/fetcherhq/fetcher/internal/store"
)

// benchDB is the database a benchmark creates for itself.
type benchDB struct {
	adminURL string
	name     string
	url      string
	// conn reads the counts between passes.
	conn *pgx.Conn
	// keys encrypt the mailbox rows' secrets.
	keys *secret.Keyring
	// mailboxIndex maps mailbox ids to the scenario's mailbox indexes.
	mailboxIndex map[int64]int
}

// createDatabase creates fetcher_bench_<random> on the server of adminURL,
// migrates it, and opens it with keys for the mailbox rows' secrets.
func createDatabase(ctx context.Context, adminURL string, keys *secret.Keyring) (*benchDB, error) {
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("connect to Postgres at %s (--database-url): %w", store.Redact(adminURL), err)
	}
	defer func() { _ = admin.Close(context.Background()) }()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	d := &benchDB{adminURL: adminURL, name: "fetcher_bench_" + hex.EncodeToString(b), keys: keys, mailboxIndex: map[int64]int{}}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+d.name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", d.name, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, errors.Join(err, d.close(true))
	}
	u.Path = "/" + d.name
	d.url = u.String()
	if d.conn, err = pgx.Connect(ctx, d.url); err != nil {
		return nil, errors.Join(err, d.close(true))
	}
	db, err := store.Open(ctx, d.url)
	if err != nil {
		return nil, errors.Join(err, d.close(true))
	}
	defer func() { _ = db.Close() }()
	db.SetKeyring(keys)
	if _, err := db.Migrate(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("migrate %s: %w", d.name, err), d.close(true))
	}
	return d, nil
}

// addMailboxes inserts the mailbox rows, their secrets encrypted.
func (d *benchDB) addMailboxes(ctx context.Context, rows []store.Mailbox) error {
	db, err := store.Open(ctx, d.url)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	db.SetKeyring(d.keys)
	for i := range rows {
		if err := db.Mailboxes().Create(ctx, &rows[i]); err != nil {
			return err
		}
		d.mailboxIndex[rows[i].ID] = i
	}
	return nil
}

// counts is the state of the database between passes.
type counts struct {
	messages int
	bytes    int64
	lastRun  int64 // the highest fetch_runs id
}

func (d *benchDB) counts(ctx context.Context) (counts, error) {
	var c counts
	err := d.conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(octet_length(raw)), 0) FROM ticket_messages`).Scan(&c.messages, &c.bytes)
	if err == nil {
		err = d.conn.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM fetch_runs`).Scan(&c.lastRun)
	}
	return c, err
}

// visited counts the mailboxes the pass after before wrote fetch_runs
// rows for.
func (d *benchDB) visited(ctx context.Context, before counts) (int, error) {
	var n int
	err := d.conn.QueryRow(ctx, `SELECT count(DISTINCT mailbox_id) FROM fetch_runs WHERE id > $1`, before.lastRun).Scan(&n)
	return n, err
}

// storedRow is one ticket_messages row: its mailbox's index in the
// scenario and its Message-ID.
type storedRow struct {
	mailbox   int
	messageID string
}

// check compares the stored messages with the delivered ones (Message-ID
// to mailbox index).
func (d *benchDB) check(ctx context.Context, expected map[string]int) (Check, error) {
	rows, err := d.conn.Query(ctx, `SELECT mailbox_id, coalesce(message_id, '') FROM ticket_messages`)
	if err != nil {
		return Check{}, err
	}
	defer rows.Close()
	var stored []storedRow
	for rows.Next() {
		var id int64
		var mid string
		if err := rows.Scan(&id, &mid); err != nil {
			return Check{}, err
		}
		mb, ok := d.mailboxIndex[id]
		if !ok {
			mb = -1
		}
		stored = append(stored, storedRow{mailbox: mb, messageID: mid})
	}
	if err := rows.Err(); err != nil {
		return Check{}, err
	}
	return compare(stored, expected), nil
}

// compare checks that every delivered message (Message-ID to the index of
// its mailbox) was stored exactly once, in its mailbox, and nothing else.
func compare(stored []storedRow, expected map[string]int) Check {
	c := Check{Delivered: len(expected), Stored: len(stored)}
	seen := map[string]int{}
	for _, s := range stored {
		mb, ok := expected[s.messageID]
		switch {
		case !ok:
			c.Unexpected++
			c.Problems = append(c.Problems, fmt.Sprintf("stored a message that was not delivered: %q", s.messageID))
		case s.mailbox != mb:
			c.Unexpected++
			c.Problems = append(c.Problems, fmt.Sprintf("stored %s in the wrong mailbox: delivered to bench %04d", s.messageID, mb+1))
		default:
			seen[s.messageID]++
		}
	}
	var missing, doubled []string
	for mid := range expected {
		switch n := seen[mid]; {
		case n == 0:
			c.Missing++
			missing = append(missing, mid)
		case n > 1:
			c.Doubled += n - 1
			doubled = append(doubled, fmt.Sprintf("%s ×%d", mid, n))
		}
	}
	if len(missing) > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d missing, such as %s", len(missing), firstSorted(missing)))
	}
	if len(doubled) > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d stored more than once, such as %s", len(doubled), firstSorted(doubled)))
	}
	if len(c.Problems) > 10 {
		c.Problems = append(c.Problems[:10], fmt.Sprintf("and %d more problems", len(c.Problems)-10))
	}
	c.OK = c.Missing == 0 && c.Doubled == 0 && c.Unexpected == 0
	return c
}

func firstSorted(s []string) string {
	sort.Strings(s)
	return s[0]
}

// close closes the connection and, when drop is set, drops the database.
func (d *benchDB) close(drop bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if d.conn != nil {
		_ = d.conn.Close(ctx)
	}
	if !drop {
		return nil
	}
	admin, err := pgx.Connect(ctx, d.adminURL)
	if err != nil {
		return err
	}
	defer func() { _ = admin.Close(ctx) }()
	_, err = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)")
	return err
}
