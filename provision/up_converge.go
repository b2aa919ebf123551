package provision

// up's changes: converge the resources in order, extend a TTL, publish
// the stack's parameters and pin the server's keys.

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
	"golang.org/x/crypto/ssh"
)

// converge creates or repairs the stack's resources (the independent ones
// concurrently), then the instance.
func (r *upRun) converge(ctx context.Context) error {
	r.tags = cloud.StackTags(r.n.Stack, r.s.Region, r.s.Principal, time.Now(), r.ttl)
	if r.ttl > 0 {
		if err := r.extendTTL(ctx); err != nil {
			return err
		}
	}
	bucketMade, err := r.newRegionalBucket(ctx)
	if err == nil {
		err = r.convergeIndependent(ctx, bucketMade)
	}
	s, n, f, log := r.s, r.n, r.found, r.log
	if err == nil {
		err = ensureBootstrap(ctx, s.S3, n.Bucket, r.bootstrap, f.bootstrap, log)
	}
	if err == nil && r.db == cloud.DBPostgres {
		err = ensureDatabase(ctx, s, f.db, dbInput{names: n, serverGroup: f.sg.ID, class: r.dbClass, tags: r.tags, log: log})
	}
	if err == nil && f.backups != "" {
		log.Step("the kept bucket holds %s: the new server restores the newest before it starts", f.backups)
	}
	switch {
	case err == nil && r.replace != nil:
		r.inst, err = r.replaceInstance(ctx)
	case err == nil:
		r.inst, err = cloud.EnsureInstance(ctx, s.EC2, r.instanceInput())
	}
	if err == nil && r.restart != nil && aws.ToString(r.restart.InstanceId) == aws.ToString(r.inst.InstanceId) {
		err = restartServer(ctx, s.EC2, r.inst, r.mode, log)
		log.Info("%s", switchNote(r.mode))
	} else {
		r.since = time.Time{} // a new or started server reads the mode anyway
	}
	if err == nil && r.store.Get().InstanceID != aws.ToString(r.inst.InstanceId) {
		err = r.store.Update(func(x *local.Secrets) { x.InstanceID = aws.ToString(r.inst.InstanceId) })
	}
	if err != nil {
		return fmt.Errorf("%w\nrun `%s` again to converge, or `%s` to remove what was created", err, r.upHint(), r.h.cmd("down", "--yes"))
	}
	return nil
}

// convergeIndependent makes or repairs, concurrently, the resources that
// do not depend on each other (the bucket, unless made already).
func (r *upRun) convergeIndependent(ctx context.Context, bucketMade bool) error {
	s, n, f, log := r.s, r.n, r.found, r.log
	return cloud.Parallel(
		func() error {
			return cloud.EnsureUser(ctx, s.IAM, f.user, cloud.EnsureUserInput{
				Names: n, Policy: r.policy, Tags: r.tags, KnownKey: r.store.Get().AccessKeyID, Log: log,
				SaveKey: func(id, secret string) error {
					return r.store.Update(func(x *local.Secrets) { x.AccessKeyID, x.SecretAccessKey = id, secret })
				},
				NoKey: r.mode == ArtifactsProxied,
				ForgetKey: func() error {
					return r.store.Update(func(x *local.Secrets) { x.AccessKeyID, x.SecretAccessKey = "", "" })
				},
			})
		},
		func() (err error) {
			r.since, err = ensureMode(ctx, s.SSM, n, f.params.Mode, r.mode, r.tags, log)
			return err
		},
		func() error { return cloud.EnsureRole(ctx, s.IAM, f.role, n, r.rolePolicy, r.tags, log) },
		func() error {
			if bucketMade {
				return nil
			}
			return cloud.EnsureBucket(ctx, s.S3, f.bucket, r.bucketInput())
		},
		func() error { return cloud.EnsureSecurityGroup(ctx, s.EC2, f.sg, n, r.rules, r.tags, log) },
		func() error {
			return cloud.EnsureKeyPair(ctx, s.EC2, f.keyPair, n, []byte(r.store.Get().SSHPublicKey), r.tags, log)
		},
		func() error {
			return cloud.EnsureParams(ctx, s.SSM, f.params, n, r.wantParams(r.store.Get()), r.tags, r.h.cmd("creds rotate"), log)
		},
	)
}

// newRegionalBucket makes a new bucket of the account-regional namespace
// first, alone: where S3 refuses that namespace the bucket takes its
// global name, which the user's and the role's policies and the bootstrap
// made next must name. It reports whether it made the bucket.
func (r *upRun) newRegionalBucket(ctx context.Context) (bool, error) {
	if r.found.bucket.Exists || r.n.GlobalBucket == "" {
		return false, nil
	}
	return true, cloud.EnsureBucket(ctx, r.s.S3, r.found.bucket, r.bucketInput())
}

// bucketInput is EnsureBucket's input for the stack's bucket.
func (r *upRun) bucketInput() cloud.EnsureBucketInput {
	return cloud.EnsureBucketInput{Names: r.n, Tags: r.tags, Log: r.log, Renamed: r.bucketRenamed,
		Pending: func(name string) error {
			return r.store.Update(func(x *local.Secrets) { x.PendingBucket = name })
		}}
}

// bucketRenamed follows the bucket to its global name (S3 refused the
// account-regional namespace): the names, the policies that name the
// bucket, the bootstrap and the recorded bucket.
func (r *upRun) bucketRenamed(n cloud.Names) error {
	r.n = n
	r.policy = cloud.BucketPolicy(r.s.Partition, n.Bucket)
	r.rolePolicy = cloud.RolePolicy(r.s.Partition, r.s.Account, n)
	if err := r.render(); err != nil {
		return err
	}
	return r.store.Update(func(x *local.Secrets) { x.Bucket = n.Bucket })
}

func (r *upRun) instanceInput() cloud.EnsureInstanceInput {
	return cloud.EnsureInstanceInput{
		Found:  r.found.instances,
		Places: r.places,
		Launch: cloud.LaunchInput{
			Names: r.n, Image: r.found.image, SGID: r.found.sg.ID,
			Nonce: r.store.Get().LaunchNonce, UserData: r.userData, Tags: r.tags, RetryFor: 2 * time.Minute, Log: r.log,
		},
		RenewNonce: func() (string, error) {
			nonce, err := local.RandomSecret(12)
			if err == nil {
				err = r.store.Update(func(x *local.Secrets) { x.LaunchNonce = nonce })
			}
			return nonce, err
		},
		Wait: r.o.Timeout,
	}
}

// extendTTL moves mlstack:expires-at on the resources that existed before
// this up (new ones get it at creation): `up --ttl` on a live stack
// extends its life.
func (r *upRun) extendTTL(ctx context.Context) error {
	exp := r.tags[cloud.TagExpiresAt]
	r.log.Step("setting %s=%s on the stack's resources", cloud.TagExpiresAt, exp)
	var ids []string
	for _, f := range families {
		if f.ec2IDs != nil {
			ids = append(ids, f.ec2IDs(r.found)...)
		}
	}
	if err := cloud.RetagEC2(ctx, r.s.EC2, ids, cloud.TagExpiresAt, exp); err != nil {
		return err
	}
	for _, f := range families {
		if f.retag == nil {
			continue
		}
		if err := f.retag(ctx, r.s, r.found, r.n, exp); err != nil {
			return err
		}
	}
	return nil
}

// publish pins the certificate and host key the instance published and
// writes the env file.
func (r *upRun) publish(ctx context.Context) error {
	host := cloud.TrackingHost(r.inst)
	if host == "" {
		return fmt.Errorf("instance %s has no public DNS name or IP: is the default subnet public?", aws.ToString(r.inst.InstanceId))
	}
	// Only an instance that was there before this up can be an earlier one.
	legacy := false
	if len(r.found.instances) > 0 {
		ud, err := r.userDataOf(ctx, r.inst)
		if err != nil {
			return err
		}
		legacy = cloud.IsLegacyUserData(ud)
	}
	if legacy {
		r.log.Warn("%s", cloud.LegacyWarning(aws.ToString(r.inst.InstanceId), r.h.cmd("down", "--yes"), r.upHint()))
		r.uri = cloud.LegacyURI(r.inst)
	} else if err := r.pin(ctx); err != nil {
		return err
	} else {
		r.uri = cloud.TrackingURI(r.inst)
	}
	if r.o.SSH {
		r.log.Step("SSH is open to the allowed CIDRs: `%s`, or %s", r.h.cmd("ssh"), server.Hint(sshHost(r.dir, host)))
	}
	sec := r.store.Get()
	if err := r.dir.WriteEnv(envVars(&sec, r.uri, cloud.CertPathFor(r.dir, r.uri), r.s.Region, r.s.S3Endpoint)); err != nil {
		return err
	}
	r.log.Step("wrote %s", r.dir.EnvFile())
	return nil
}

// pin waits for the instance's published certificate and host key (with
// --no-wait it looks once) and pins them in the stack's folder.
func (r *upRun) pin(ctx context.Context) error {
	var keys *serverKeys
	var err error
	if r.o.NoWait {
		var why string
		if keys, why, err = readServerKeys(ctx, r.s.SSM, r.n, r.inst, r.since, time.Now()); err == nil && keys == nil {
			r.log.Info("%s: `%s` pins them once the server is up", why, r.upHint())
			return nil
		}
	} else {
		id := aws.ToString(r.inst.InstanceId)
		live := r.log.Wait("waiting for instance %s to publish its TLS certificate and SSH host key", id)
		if keys, err = waitServerKeys(ctx, r.s.SSM, r.n, r.inst, r.since, r.o.Timeout); err != nil {
			live.Stop()
			// The bootstrap publishes them: what its log says is why not.
			return r.target().explainUnhealthy(ctx, err, r.log)
		}
		live.Done("instance %s published them", id)
	}
	if err != nil {
		return err
	}
	changed, err := pinKeys(r.dir, keys, r.inst)
	if err != nil {
		return err
	}
	if changed {
		r.log.Step("pinned the server's certificate (SHA-256 of its key %s) in %s and its SSH host key %s in %s",
			server.SPKIHash(keys.cert), r.dir.ServerCertFile(), ssh.FingerprintSHA256(keys.hostKey), r.dir.KnownHostsFile())
	}
	r.tls, err = server.PinnedTLS(keys.certPEM)
	return err
}
