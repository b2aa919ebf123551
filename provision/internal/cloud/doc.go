// Package cloud is mlstack's AWS layer: the stack's resources, one file per
// kind (ec2_*, iam_*, s3_bucket, ssm_params, rds_database), each reading AWS
// through one finder and changing it through narrow interfaces of the SDK
// calls it makes, and the base they share: the session and its
// dependencies, retries, tags and ownership, derived names, errors, the
// listing model (Resource, StackSet, StackInfo) and the plan's steps.
//
// It knows no command and no options: the lifecycles in package provision
// decide what to create or delete and in which order, and hand in a Log for
// progress. It imports nothing of provision but its leaf packages (local,
// region), cloudinit and templates, so the compiler keeps the wall: go list -deps
// ./provision/internal/cloud shows no github.com/mlstack/mlstack/provision.
// Internal, so that only provision can hand a command another AWS (Deps).
package cloud
