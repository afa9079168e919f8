package fetch

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBudgetIsFirstComeFirstServed: a large acquire waiting for the whole
// budget gets it although small ones keep coming and going; they queue
// behind it.
func TestBudgetIsFirstComeFirstServed(t *testing.T) {
	t.Parallel()
	b := newBudget(1 << 20)
	ctx := context.Background()
	held, err := b.acquire(ctx, 64<<10)
	require.NoError(t, err)

	large := make(chan int64, 1)
	go func() {
		n, _ := b.acquire(ctx, 25<<20) // more than the budget: all of it
		b.release(n)
		large <- n
	}()
	require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 1 }, time.Second, time.Millisecond)

	// A small acquire now waits its turn behind the large one ...
	small := make(chan int64, 1)
	go func() {
		n, _ := b.acquire(ctx, 64<<10)
		b.release(n)
		small <- n
	}()
	select {
	case <-small:
		t.Fatal("a small acquire overtook the large one waiting")
	case <-time.After(50 * time.Millisecond):
	}
	// ... and both get theirs once the first holder releases.
	b.release(held)
	require.Equal(t, int64(1<<20), <-large)
	require.Equal(t, int64(64<<10), <-small)
	require.Equal(t, b.size, b.free)
}

// TestBudgetAcquireEndsWithItsContext: a waiting acquire gives up with its
// context, and its place in the queue passes to the next.
func TestBudgetAcquireEndsWithItsContext(t *testing.T) {
	t.Parallel()
	b := newBudget(100)
	held, err := b.acquire(context.Background(), 60)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = b.acquire(ctx, 100)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	n, err := b.acquire(context.Background(), 40) // not blocked by the one that left
	require.NoError(t, err)
	b.release(n)
	b.release(held)
	require.Equal(t, int64(100), b.free)
	require.Empty(t, b.waiters)
}
