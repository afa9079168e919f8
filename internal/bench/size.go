package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Byte sizes use binary multiples: 1KB is 1024 bytes, 1MB is 1024 KB.
const (
	KB = 1 << 10
	MB = 1 << 20
)

// ParseSize reads a byte size such as 20KB, 8MB, 1.5MB, 25MiB or 1500 (bytes).
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", KB}, {"MIB", MB}, {"GIB", 1 << 30}, {"KB", KB}, {"MB", MB}, {"GB", 1 << 30}, {"K", KB}, {"M", MB}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 || f*float64(mult) > 1<<40 {
		return 0, fmt.Errorf("size %q: want a positive size like 20KB, 8MB or 1500", s)
	}
	return int64(f * float64(mult)), nil
}

// FormatSize writes n bytes the way ParseSize reads them: 20KB, 8MB, 1.5MB.
func FormatSize(n int64) string {
	switch {
	case n >= MB && n%MB == 0:
		return strconv.FormatInt(n/MB, 10) + "MB"
	case n >= MB:
		return strconv.FormatFloat(float64(n)/MB, 'f', 1, 64) + "MB"
	case n >= KB && n%KB == 0:
		return strconv.FormatInt(n/KB, 10) + "KB"
	case n >= KB:
		return strconv.FormatFloat(float64(n)/KB, 'f', 1, 64) + "KB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
