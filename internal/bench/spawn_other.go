//go:build !linux

package bench

import (
	"context"
	"os"
)

// runMeasured runs the child directly; its peak RSS is not known outside
// Linux (0).
func runMeasured(ctx context.Context, c childSpec) (measured, error) {
	m, err := runDirect(ctx, c)
	m.peakRSS = 0
	return m, err
}

func directRSS(*os.ProcessState) int64 { return 0 }
