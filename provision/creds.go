package provision

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
)

// rotation is one `mlstack creds rotate`.
type rotation struct {
	o     RotateOptions
	log   *progress
	h     hints
	op    *openedStack
	store *local.Store
	keys  []string // the access keys before the rotation
	uri   string
	// proxied: the stack's artifacts go through the server, its IAM user
	// has no key, only the MLflow password rotates.
	proxied bool
}

// RotateCreds gives the stack a new access key and MLflow password and
// rewrites the env file. The old key is deleted only after the new one
// works; the old password stops working once the server accepted the new.
// From a machine without local secrets it reads the current MLflow
// password from SSM (an admin identity can); SSM then gets the new one, for
// the next instance that boots.
func RotateCreds(ctx context.Context, o RotateOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	o.hooks = hooksOf(ctx, o.hooks)
	r := &rotation{o: o, log: o.Streams.progress(), h: hintsFor(o.Stack, o.AWS)}
	var err error
	if r.op, err = openStack(ctx, o.Stack, o.AWS, r.log, true); err != nil {
		return err
	}
	defer r.op.release()
	if err := r.read(ctx); err != nil {
		return err
	}
	if r.proxied {
		r.log.Info("artifacts are proxied: stack %s has no AWS key to rotate (clients need none)", o.Stack.Name)
	} else if err := r.rotateKey(ctx); err != nil {
		return err
	}
	mlErr := r.rotatePassword(ctx)
	// The old key is gone: the env file must carry the new one, with the
	// server's address as the instance or the last env file gives it.
	if uri := cmp.Or(r.uri, r.lastURI()); uri != "" {
		sec := r.store.Get()
		if err := r.op.dir.WriteEnv(envVars(&sec, uri, cloud.CertPathFor(r.op.dir, uri), r.op.s.Region, r.op.s.S3Endpoint)); err != nil {
			return err
		}
		r.log.Step("rewrote %s", r.op.dir.EnvFile())
		r.noLoginHint(sec)
	} else {
		r.noServerHint(ctx)
	}
	if mlErr != nil && !r.proxied {
		return fmt.Errorf("access key rotated; %w", mlErr)
	}
	if mlErr != nil {
		return mlErr
	}
	r.log.Step("credentials of stack %s rotated", o.Stack.Name)
	return nil
}

// noLoginHint says how a machine that rotated without the stack's local
// state (the users' logins stay where they were made) gets an MLflow login
// into its env file: a user of its own, made with the new admin password.
func (r *rotation) noLoginHint(sec local.Secrets) {
	if sec.EnvUser != "" {
		return
	}
	name := osUserName()
	if validateUserName(name) != nil {
		name = "me"
	}
	r.log.Warn("the env file holds no MLflow login: the users' passwords are where they were made. "+
		"`%s` makes one for this machine, then `%s` prints the variables with it",
		r.h.cmd("users add", name), r.h.cmd("env", "--user", name))
}

// noServerHint says how the env file gets written when no server runs and
// no env file was here: an up launches one, but only where the stack's SSH
// key is (elsewhere up refuses the stack's key pair).
func (r *rotation) noServerHint(ctx context.Context) {
	if r.op.dir.HasSSHKeys() {
		r.log.Warn("no running instance and no env file here: `%s` launches one and writes the env file with the new key", r.upHint(ctx))
		return
	}
	r.log.Warn("no running instance and no env file here, and this machine cannot launch one (the stack's SSH key is where it was created): "+
		"once the stack's server runs again, `%s` here writes the env file", r.again())
}

// upHint is an up that keeps the stack's allowed CIDRs and SSH as its
// security group has them (else as the last up here asked).
func (r *rotation) upHint(ctx context.Context) string {
	return upHintFor(ctx, r.op, r.h)
}

// again is this rotation as a command.
func (r *rotation) again() string {
	if r.o.SkipMLflow {
		return r.h.cmd("creds rotate", "--skip-mlflow")
	}
	return r.h.cmd("creds rotate")
}

// lastURI is the tracking URI of the env file written before, if any.
func (r *rotation) lastURI() string {
	vars, err := r.op.dir.ReadEnv()
	if err != nil {
		return ""
	}
	for _, v := range vars {
		if v.Name == "MLFLOW_TRACKING_URI" {
			return v.Value
		}
	}
	return ""
}

// read finds the user's keys and the server, and starts from the local
// secrets (or empty ones on a machine that has none).
func (r *rotation) read(ctx context.Context) error {
	s, n := r.op.s, r.op.n
	u, err := cloud.FindUser(ctx, s.IAM, n, cloud.BucketPolicy(s.Partition, n.Bucket))
	if err != nil {
		return err
	}
	if !u.Exists {
		return fmt.Errorf("stack %s has no IAM user %s: `%s` creates it", n.Stack, n.User, r.upHint(ctx))
	}
	if len(u.Keys) >= 2 {
		return fmt.Errorf("IAM user %s already has %d access keys (the limit is 2): `%s` removes stray ones", n.User, len(u.Keys), r.upHint(ctx))
	}
	r.keys = u.Keys
	r.uri = r.o.hooks.TrackingURI
	if r.uri == "" {
		if r.uri, err = serverURI(ctx, r.op); err != nil && !errors.Is(err, errNoServer) {
			return err
		}
	}
	params, err := cloud.FindParams(ctx, s.SSM, n)
	if err != nil {
		return err
	}
	sec := local.Secrets{Stack: n.Stack, Account: s.Account, Region: s.Region, MLflowUser: mlflowUser}
	if r.op.secrets != nil {
		sec = *r.op.secrets
	}
	sec.Artifacts = modeOf(params.Mode)
	if r.proxied = sec.Artifacts == ArtifactsProxied; r.proxied && r.o.SkipMLflow {
		return cloud.Usagef("stack %s has proxied artifacts, so no AWS key to rotate, and --skip-mlflow leaves the MLflow password: nothing to do", n.Stack)
	}
	r.store = local.NewStore(r.op.dir, sec)
	return nil
}

// rotateKey creates and saves a new key, proves it works, then deletes the old ones.
func (r *rotation) rotateKey(ctx context.Context) error {
	s, n := r.op.s, r.op.n
	r.log.Step("creating a new access key for %s", n.User)
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	out, err := s.IAM.CreateAccessKey(kctx, &iam.CreateAccessKeyInput{UserName: aws.String(n.User)})
	if err != nil {
		return fmt.Errorf("creating access key for %s: %w", n.User, err)
	}
	id, secret := aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey)
	if err := r.store.Update(func(x *local.Secrets) { x.AccessKeyID, x.SecretAccessKey = id, secret }); err != nil {
		_, derr := s.IAM.DeleteAccessKey(kctx, &iam.DeleteAccessKeyInput{UserName: aws.String(n.User), AccessKeyId: out.AccessKey.AccessKeyId})
		return fmt.Errorf("saving the new access key: %w (removing it again: %v)", err, derr)
	}
	r.log.Step("checking that the new key can use bucket %s", n.Bucket)
	if err := probeKey(ctx, s.S3As(id, secret), n.Bucket); err != nil {
		return fmt.Errorf("the new access key %s does not work yet (%w); the old key was kept: run `%s` again later", id, err, r.again())
	}
	for _, old := range r.keys {
		r.log.Step("deleting old access key %s", old)
		if _, err := s.IAM.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(n.User), AccessKeyId: aws.String(old)}); err != nil && !cloud.HasCode(err, "NoSuchEntity") {
			return fmt.Errorf("deleting old access key %s: %w", old, err)
		}
	}
	return nil
}

// probeKey lists the bucket with the new key until it works: a new key
// takes some seconds to be accepted everywhere.
func probeKey(ctx context.Context, api cloud.KeyProbeAPI, bucket string) error {
	return cloud.RetryOn(ctx, time.Minute, func(err error) bool {
		return cloud.HasCode(err, "InvalidAccessKeyId", "AccessDenied", "SignatureDoesNotMatch")
	}, nil,
		func() error {
			// The key may list the artifact prefix alone. One page of one
			// key: the probe asks whether listing works, not what is there.
			p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(cloud.ArtifactPrefix), MaxKeys: aws.Int32(1)})
			_, err := p.NextPage(ctx)
			return err
		})
}

// rotatePassword changes the MLflow admin password through the server's
// own API, with the current one (from SSM when this machine has none), and
// then stores the new one in SSM, where a replacement instance reads it.
func (r *rotation) rotatePassword(ctx context.Context) error {
	switch {
	case r.o.SkipMLflow:
		r.log.Warn("MLflow password not rotated (--skip-mlflow)")
		return nil
	case r.uri == "":
		return errors.New("no running instance: MLflow password not rotated")
	}
	s, n := r.op.s, r.op.n
	params, err := cloud.FindParams(ctx, s.SSM, n)
	if err != nil {
		return err
	}
	sec := r.store.Get()
	current := cmp.Or(sec.MLflowPassword, params.Values[cloud.ParamAdminPassword])
	next, err := local.RandomSecret(32)
	if err != nil {
		return err
	}
	client, err := serverHTTP(r.op.dir, r.uri, func() string { return r.upHint(ctx) })
	if err != nil {
		return err
	}
	r.log.Step("setting a new MLflow admin password on %s", r.uri)
	c := &server.Client{URI: r.uri, User: sec.MLflowUser, Password: current, HTTP: client}
	if err := c.ChangePassword(ctx, next); err != nil {
		return fmt.Errorf("MLflow password not rotated: %w", err)
	}
	// Saved before the check: the server already switched to it.
	if err := r.store.Update(func(x *local.Secrets) { x.MLflowPassword = next }); err != nil {
		return err
	}
	want := map[string]string{cloud.ParamAdminPassword: next}
	if err := cloud.UpdateParams(ctx, s.SSM, params, n, want, map[string]string{cloud.TagStack: n.Stack}, r.log); err != nil {
		return fmt.Errorf("the new MLflow password works on the server but SSM still holds the old one (run `%s` again): %w", r.h.cmd("creds rotate"), err)
	}
	c.Password = next
	if err := c.CheckLogin(ctx); err != nil {
		return fmt.Errorf("the new MLflow password was set but does not work: %w", err)
	}
	return nil
}
