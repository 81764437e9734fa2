//go:build unix

package dlp

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used (user and system). The
// benchmarks report throughput per CPU second as well as per wall second,
// because the machine they run on is often shared.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
