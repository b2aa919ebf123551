package provision

// up's discovery: what of the stack exists (one read per resource), whose
// it is, and the plan of what converging would change.

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/local"
)

// found is what exists of a stack, read without changing anything.
type found struct {
	user      *cloud.UserFound
	role      *cloud.RoleFound
	bucket    *cloud.BucketFound
	sg        *cloud.SGFound
	keyPair   *cloud.KeyPairFound
	instances []ec2types.Instance
	image     *ec2types.Image
	images    []ec2types.Image // every image the Ubuntu lookup listed: their owners are known
	params    *cloud.ParamsFound
	db        *cloud.DBFound
	bootstrap []string // keys of the bootstrap objects the bucket lacks
	backups   string   // the kept bucket's backups a new server restores ("" for none)
}

// discover reads what exists (concurrently, read-only) and plans.
func (r *upRun) discover(ctx context.Context) error {
	r.log.Step("checking stack %s in account %s, %s", r.n.Stack, r.s.Account, r.s.Region)
	s, n := r.s, r.n
	f, err := r.findAll(ctx)
	if err == nil {
		f.db.Password, f.db.Endpoint = f.params.DBPassword, f.params.DBEndpoint
		err = r.ownInstances(ctx, f)
	}
	if err == nil && len(f.instances) == 0 {
		err = r.refuseUntagged(ctx)
	}
	if err == nil && f.bucket.Exists && len(f.instances) == 0 {
		f.backups, err = keptBackups(ctx, s.S3, n.Bucket)
	}
	if err == nil {
		err = r.chooseDatabase(ctx, f)
	}
	if err == nil {
		f.bootstrap, err = missingObjects(ctx, s.S3, n.Bucket, f.bucket.Exists, r.bootstrap)
	}
	if err != nil {
		return err
	}
	if r.secrets == nil && len(f.instances) > 0 {
		return fmt.Errorf("stack %s already runs instance %s but this machine has no local secrets for it (%s): "+
			"run mlstack where the stack was created, or remove the stack (`%s`) and create it again",
			n.Stack, aws.ToString(f.instances[0].InstanceId), r.dir.Path(), r.h.cmd("down", "--yes"))
	}
	r.found = f
	if err := r.chooseMode(ctx); err != nil {
		return err
	}
	if err := r.planReplace(ctx, r.explicitType); err != nil {
		return err
	}
	insts := cloud.InstancesPlan(f.instances, n, f.image, r.places[0])
	if r.replace != nil {
		insts = replacePlan(r.replace)
	}
	for _, lines := range [][]cloud.PlanStep{f.user.Plan(n, r.mode == ArtifactsDirect), f.role.Plan(n), f.bucket.Plan(n), f.sg.Plan(n, r.rules),
		f.keyPair.Plan(n), f.params.Plan(n, r.wantParams(r.keep.secrets)), modePlan(n, f.params.Mode, r.mode, r.restart),
		r.dbPlan(), bootstrapPlan(n.Bucket, f.bootstrap), insts, restorePlan(n.Bucket, f.backups)} {
		r.plan = append(r.plan, lines...)
	}
	return nil
}

// findAll runs the finders concurrently. openStack's findHome read the
// user, and the role unless the user was the stack's, and resolveBucket the
// bucket's HeadBucket: none is asked twice.
func (r *upRun) findAll(ctx context.Context) (*found, error) {
	s, n, f := r.s, r.n, &found{}
	err := cloud.Parallel(
		func() (err error) { f.user, err = cloud.FindUserFrom(ctx, s.IAM, n, r.policy, r.home.User); return },
		func() (err error) {
			if r.home.RoleRead {
				f.role, err = cloud.FindRoleFrom(ctx, s.IAM, n, r.rolePolicy, r.home.Role)
			} else {
				f.role, err = cloud.FindRole(ctx, s.IAM, n, r.rolePolicy)
			}
			return
		},
		func() (err error) {
			if r.bucketHead.Asked {
				f.bucket, err = cloud.FindBucketFrom(ctx, s.S3, n, r.keep.secrets.PendingBucket, r.bucketHead.Err)
			} else {
				f.bucket, err = cloud.FindBucket(ctx, s.S3, n, r.keep.secrets.PendingBucket)
			}
			return
		},
		func() (err error) { f.sg, err = cloud.FindSecurityGroup(ctx, s.EC2, n); return },
		func() (err error) {
			f.keyPair, err = cloud.FindKeyPair(ctx, s.EC2, n, r.keep.secrets.SSHPublicKey)
			return
		},
		func() (err error) {
			f.instances, err = cloud.FindInstances(ctx, s.EC2, n.Stack, cloud.UsableStates)
			return
		},
		func() (err error) { f.image, f.images, err = cloud.UbuntuImage(ctx, s.EC2, r.arch, s.Region); return },
		func() (err error) { f.params, err = cloud.FindParams(ctx, s.SSM, n); return },
		func() (err error) {
			// A sqlite stack's up needs no database network: chooseDatabase
			// reads it when the stack turns out to be postgres.
			f.db, err = cloud.FindDatabaseOf(ctx, s, n, cmp.Or(r.o.Database, r.db) == cloud.DBPostgres)
			return
		},
	)
	return f, err
}

// chooseMode picks the artifacts mode (--artifacts, else the stack's, else
// direct) and, when it switches a running server, checks that the server
// can switch and marks it for a reboot.
func (r *upRun) chooseMode(ctx context.Context) error {
	f := r.found
	r.mode = r.o.Artifacts
	if r.mode == "" {
		if r.mode = modeOf(f.params.Mode); validateArtifacts(r.mode) != nil {
			r.log.Warn("SSM parameter %s holds %q, which the server refuses: setting it to %s", r.n.Param(cloud.ParamArtifacts), r.mode, ArtifactsDirect)
			r.mode = ArtifactsDirect
		}
	}
	if modeOf(f.params.Mode) == r.mode || len(f.instances) == 0 {
		return nil
	}
	switch cloud.StateOf(&f.instances[0]) {
	case ec2types.InstanceStateNameRunning, ec2types.InstanceStateNamePending:
		r.restart = &f.instances[0]
		ud, err := r.userDataOf(ctx, r.restart)
		if err != nil {
			return err
		}
		return canSwitch(ud, r.restart, r.n.Stack, r.h.cmd("down", "--yes"))
	}
	return nil // a stopped server reads the mode when up starts it
}

// ownInstances keeps the stack's own instances in f (the one this machine
// recorded first, then oldest first) and refuses a tagged look-alike before
// anything changes: it is never terminated as a duplicate, nor used for the
// tracking URI.
func (r *upRun) ownInstances(ctx context.Context, f *found) error {
	if len(f.instances) == 0 {
		return nil
	}
	w, err := cloud.RefsFor(ctx, r.s.EC2, r.n, f.sg.ID, f.instances, f.images...)
	if err != nil {
		return err
	}
	own, others := cloud.SplitInstances(f.instances, w)
	if len(others) > 0 {
		return others[0].Error(r.n.Stack)
	}
	if r.secrets != nil {
		own = recordedFirst(own, r.secrets.InstanceID)
	}
	f.instances = own
	return nil
}

// refuseUntagged refuses an up that finds no tagged instance while the one
// this machine recorded still lives: its tag was removed, and a new server
// would restore an old backup while the old one keeps backing up into the
// same bucket. The filter, not InstanceIds, so a gone id reads as none.
func (r *upRun) refuseUntagged(ctx context.Context) error {
	if r.secrets == nil || r.secrets.InstanceID == "" {
		return nil
	}
	id := r.secrets.InstanceID
	insts, err := cloud.DescribeInstances(ctx, r.s.EC2, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("instance-id"), Values: []string{id}},
		{Name: aws.String("instance-state-name"), Values: cloud.UsableStates},
	}})
	if err != nil {
		return fmt.Errorf("reading recorded instance %s of stack %s: %w", id, r.n.Stack, err)
	}
	if len(insts) == 0 {
		return nil
	}
	retag := r.h.aws(r.s.Region, "ec2", "create-tags", "--resources", id, "--tags", "Key="+cloud.TagStack+",Value="+r.n.Stack)
	return cloud.Usagef("instance %s of stack %s is %s but no longer carries the tag %s=%s, so up would launch a second server "+
		"beside it: tag it again (`%s`) and run up again, or terminate it first (`%s`)",
		id, r.n.Stack, cloud.StateOf(&insts[0]), cloud.TagStack, r.n.Stack, retag,
		r.h.aws(r.s.Region, "ec2", "terminate-instances", "--instance-ids", id))
}

// recordedFirst moves the instance with id to the front.
func recordedFirst(insts []ec2types.Instance, id string) []ec2types.Instance {
	for i := range insts {
		if aws.ToString(insts[i].InstanceId) == id && i > 0 {
			out := append([]ec2types.Instance{insts[i]}, insts[:i]...)
			return append(out, insts[i+1:]...)
		}
	}
	return insts
}

// wantParams are the secrets the server reads from SSM at boot.
func (r *upRun) wantParams(sec local.Secrets) map[string]string {
	return map[string]string{cloud.ParamAdminPassword: sec.MLflowPassword, cloud.ParamFlaskSecret: sec.FlaskSecretKey}
}

// printPlan is --dry-run's answer: "(plan) would …" lines, or JSON.
func (r *upRun) printPlan() error {
	if r.o.Output == "json" {
		return writeJSON(r.o.Out, struct {
			Stack   string           `json:"stack"`
			Account string           `json:"account"`
			Region  string           `json:"region"`
			DryRun  bool             `json:"dry_run"`
			Plan    []cloud.PlanStep `json:"plan"`
		}{r.n.Stack, r.s.Account, r.s.Region, true, cloud.NonNil(r.plan)})
	}
	if len(r.plan) == 0 {
		fmt.Fprintf(r.o.Out, "(plan) stack %s is complete: nothing to do\n", r.n.Stack)
	}
	for _, p := range r.plan {
		fmt.Fprintf(r.o.Out, "(plan) would %s\n", p.Text)
	}
	return nil
}

// keepLocal saves what makeLocal generated, before anything is created in
// AWS; from here on every change of the secrets goes through r.store.
func (r *upRun) keepLocal(context.Context) error {
	if r.keep.secrets.Bucket != r.n.Bucket {
		r.keep.secrets.Bucket, r.keep.changed = r.n.Bucket, true
	}
	if !slices.Equal(r.keep.secrets.AllowCIDRs, r.o.AllowCIDRs) || r.keep.secrets.SSH != r.o.SSH {
		r.keep.secrets.AllowCIDRs, r.keep.secrets.SSH, r.keep.changed = r.o.AllowCIDRs, r.o.SSH, true
	}
	if r.keep.secrets.Artifacts != r.mode {
		r.keep.secrets.Artifacts, r.keep.changed = r.mode, true
	}
	if r.keep.secrets.Database != r.db {
		r.keep.secrets.Database, r.keep.changed = r.db, true
	}
	k := r.keep
	if k.loginKey != nil && r.found.keyPair.ID != "" {
		r.log.Warn("key pair exists in AWS but its private key is not in %s: SSH to the instance will not work", r.dir.Path())
	}
	r.store = local.NewStore(r.dir, k.secrets)
	if k.loginKey != nil {
		if err := r.dir.SaveSSHKey(k.loginKey); err != nil {
			return err
		}
	}
	if k.changed {
		return r.dir.Save(&k.secrets)
	}
	return nil
}
