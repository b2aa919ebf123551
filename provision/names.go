package provision

import "fmt"

// iamPath holds every IAM entity of every stack: `ls` and sweeps list it.
const iamPath = "/mlstack/"

// names are every AWS name derived from a stack, with the account and
// region they were derived for.
type names struct {
	Stack, User, Role, Profile, Bucket, SecurityGroup, KeyPair, Instance, Policy string
	Account, Region                                                              string
}

// namesFor derives the resource names. The bucket carries account and region
// because bucket names are global across all of AWS.
func namesFor(stack, account, region string) names {
	base := "mlstack-" + stack
	return names{
		Stack:         stack,
		User:          base,
		Role:          base + "-server",
		Profile:       base + "-server",
		Bucket:        fmt.Sprintf("%s-%s-%s", base, account, region),
		SecurityGroup: base,
		KeyPair:       base,
		Instance:      base,
		Policy:        "mlstack-bucket",
		Account:       account,
		Region:        region,
	}
}

// check verifies the derived names fit AWS limits (bucket 63, IAM user 64, role 64).
func (n names) check() error {
	if len(n.Bucket) > 63 {
		return usagef("bucket name %q would be %d characters (limit 63): choose a shorter stack name", n.Bucket, len(n.Bucket))
	}
	if len(n.Role) > 64 || len(n.User) > 64 {
		return usagef("IAM names for stack %q would exceed 64 characters", n.Stack)
	}
	return nil
}
