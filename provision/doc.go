// Package provision is mlstack's engine, the layer between the command
// line (cmd/mlstack, which only turns flags into options) and AWS: one
// exported function per command (Up, Down, Status, Ls, Check, Backup,
// Restore, ...) that validates its options, opens an AWS session and
// converges, reads or removes a stack's resources (IAM user and role, S3
// bucket, security group, key pair, EC2 instance, SSM parameters, RDS
// database), tagged so that only what a stack owns is touched.
//
// It holds the lifecycles (up.go, down.go, status.go, ...), each a
// sequence of phases, with the options, hints, plan and the registry of
// resource families (registry.go) that inventory, listing, TTL re-tagging
// and deletion loop over. The resources themselves and the AWS base
// (session, retries, tags, ownership, errors) live one layer down, in
// provision/internal/cloud, which never imports this package. Below both
// sit cloudinit (the instance's user-data), provision/server (talking to a
// running server), provision/local (the files kept on this machine) and
// provision/region.
package provision
