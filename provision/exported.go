package provision

// The parts of the AWS layer that the command line uses, under the names
// it has always used.

import (
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"
)

type (
	// AWS chooses the account and region to work in (--region, --profile).
	AWS = cloud.AWS
	// CallLog records every AWS operation a command makes.
	CallLog = cloud.CallLog
	// UsageError is bad input: the command line exits 2 and says how to fix it.
	UsageError = cloud.UsageError
)

// IsUsage says err is (or wraps) a UsageError.
func IsUsage(err error) bool { return cloud.IsUsage(err) }

// ParseDuration reads a duration flag (15m, 2h, 7d); flag names it in errors.
func ParseDuration(flag, s string) (time.Duration, error) { return cloud.ParseDuration(flag, s) }

// FormatDuration writes d as ParseDuration reads it.
func FormatDuration(d time.Duration) string { return cloud.FormatDuration(d) }
