package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

func TestLease(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boxes := db.Mailboxes()
		id := newMailbox(t, db, "leased").ID
		t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		const ttl = 2 * time.Minute
		steps := []struct {
			name  string
			do    func() (bool, error)
			want  bool
			owner string // lease_owner afterwards
		}{
			{"a free mailbox is leased", func() (bool, error) { return boxes.Lease(ctx, id, "a", t0, ttl) }, true, "a"},
			{"another worker is refused", func() (bool, error) { return boxes.Lease(ctx, id, "b", t0.Add(time.Minute), ttl) }, false, "a"},
			{"the owner may lease again", func() (bool, error) { return boxes.Lease(ctx, id, "a", t0.Add(time.Minute), ttl) }, true, "a"},
			{"the owner renews", func() (bool, error) { return boxes.Renew(ctx, id, "a", t0.Add(4*time.Minute)) }, true, "a"},
			{"another worker cannot renew", func() (bool, error) { return boxes.Renew(ctx, id, "b", t0.Add(9*time.Minute)) }, false, "a"},
			{"still refused before the renewed expiry", func() (bool, error) { return boxes.Lease(ctx, id, "b", t0.Add(3*time.Minute), ttl) }, false, "a"},
			{"a dead owner's lease expires and is taken over", func() (bool, error) { return boxes.Lease(ctx, id, "b", t0.Add(5*time.Minute), ttl) }, true, "b"},
			{"the old owner finds it lost", func() (bool, error) { return boxes.Renew(ctx, id, "a", t0.Add(8*time.Minute)) }, false, "b"},
			{"release by a non-owner changes nothing", func() (bool, error) { return true, boxes.Release(ctx, id, "a") }, true, "b"},
			{"release by the owner frees it", func() (bool, error) { return true, boxes.Release(ctx, id, "b") }, true, ""},
			{"then anyone leases it", func() (bool, error) { return boxes.Lease(ctx, id, "c", t0.Add(6*time.Minute), ttl) }, true, "c"},
		}
		for _, st := range steps {
			got, err := st.do()
			require.NoError(t, err, st.name)
			require.Equal(t, st.want, got, st.name)
			mb, err := boxes.Get(ctx, id)
			require.NoError(t, err)
			require.Equal(t, st.owner, mb.LeaseOwner, st.name)
		}
	})
}

func TestLockSingleWorker(t *testing.T) {
	t.Parallel()
	t.Run("sqlite allows one worker", func(t *testing.T) {
		db := storetest.SQLite(t)
		release, err := db.LockSingleWorker()
		require.NoError(t, err)
		_, err = db.LockSingleWorker()
		require.ErrorIs(t, err, store.ErrOtherWorker)
		require.Contains(t, err.Error(), "use Postgres")
		release()
		release, err = db.LockSingleWorker()
		require.NoError(t, err, "a released lock can be taken again")
		release()
	})
	t.Run("postgres workers coordinate by leases", func(t *testing.T) {
		db := storetest.Postgres(t)
		for range 2 {
			release, err := db.LockSingleWorker()
			require.NoError(t, err)
			defer release()
		}
	})
}
