package fetch_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fetcherhq/fetcher/internal/bench"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// BenchmarkPass measures a whole pass over one mailbox of 1,000
// realistic messages (bench.Generator: mostly 5 to 50 KB), from the
// in-process IMAP server into Postgres: fetching, parsing, storing and
// flagging them \Seen.
func BenchmarkPass(b *testing.B) {
	const n = 1000
	gen := bench.Generator{Seed: 1}
	var bytes int64
	raws := make([][]byte, n)
	for i := range n {
		raws[i] = gen.Message(0, i).Raw
		bytes += int64(len(raws[i]))
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		db := storetest.Postgres(b)
		tb := setup(&testing.T{}, db)
		user := fmt.Sprintf("bench%d@example.com", i)
		tb.addMailbox(&testing.T{}, "Bench", user, tb.tokens.IssueRefreshToken(clientID, user), "after_fetch", "mark_seen")
		for j := range n {
			if _, err := tb.imap.Deliver(user, "INBOX", raws[j]); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		sum, err := tb.runner.RunOnce(context.Background())
		if err != nil || !sum.OK() {
			b.Fatalf("pass: %v %v", err, sum.Failed)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msg/s")

}
