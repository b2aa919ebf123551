package cloud

import (
	"fmt"
	"strings"
)

// IAMPath holds every IAM entity of every stack: `ls` and sweeps list it.
const IAMPath = "/mlstack/"

// Names are every AWS name derived from a stack, with the account and
// region they were derived for.
type Names struct {
	Stack, User, Role, Profile, Bucket, SecurityGroup, KeyPair, Instance, Policy string
	// DB, DBSubnetGroup and DBSecurityGroup: the RDS database (up --db postgres).
	DB, DBSubnetGroup, DBSecurityGroup string
	Account, Region                    string
	// GlobalBucket is the bucket's name in S3's shared global namespace when
	// Bucket is the account-regional one: stacks made before mlstack used
	// that namespace keep it (see resolveBucket).
	GlobalBucket string
}

// NamesFor derives the resource names. The bucket carries account and region
// because bucket names are global across all of AWS.
func NamesFor(stack, account, region string) Names {
	base := "mlstack-" + stack
	bucket, global := bucketNames(base, account, region)
	return Names{
		Stack:         stack,
		User:          base,
		Role:          base + "-server",
		Profile:       base + "-server",
		Bucket:        bucket,
		GlobalBucket:  global,
		SecurityGroup: base,
		KeyPair:       base,
		Instance:      base,
		DB:            base,
		DBSubnetGroup: base,
		// Not base-db: the server's group name is base, and a stack may be named x-db.
		DBSecurityGroup: base + ".db",
		Policy:          "mlstack-bucket",
		Account:         account,
		Region:          region,
	}
}

// regionalSuffix ends a bucket name in S3's account-regional namespace.
const regionalSuffix = "-an"

// noRegionalNamespace are the regions where S3 has no account-regional
// bucket namespace.
var noRegionalNamespace = map[string]bool{"me-south-1": true, "me-central-1": true}

// bucketNames returns the bucket's name: in the account's regional
// namespace, which no other account can take (before or after us), where
// S3 offers it and the name fits; else in the global namespace. The name
// carries account and region because global names are unique across AWS.
func bucketNames(base, account, region string) (bucket, global string) {
	name := fmt.Sprintf("%s-%s-%s", base, account, region)
	if noRegionalNamespace[region] || len(name+regionalSuffix) > 63 {
		return name, ""
	}
	return name + regionalSuffix, name
}

// Check verifies the derived names fit AWS limits (bucket 63, IAM user 64, role 64).
func (n Names) Check() error {
	if len(n.Bucket) > 63 {
		return Usagef("bucket name %q would be %d characters (limit 63): choose a shorter stack name", n.Bucket, len(n.Bucket))
	}
	if len(n.Role) > 64 || len(n.User) > 64 {
		return Usagef("IAM names for stack %q would exceed 64 characters", n.Stack)
	}
	return nil
}

// ShellWord quotes s for a POSIX shell when it needs it.
func ShellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@=+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
