//go:build !unix

package dlp

import "time"

func cpuTime() time.Duration { return 0 }
