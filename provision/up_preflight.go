package provision

// up's first phase, before AWS is asked anything but who we are: the options
// checked against the caller, the local state and logins made, the
// bootstrap rendered.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os/user"
	"strings"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
)

// preflight checks the input, opens the stack (lock, identity, local
// secrets), makes the local secrets and keys in memory, renders the
// user-data and checks the instance type: nothing is written or created.
func preflight(ctx context.Context, o UpOptions) (*upRun, error) {
	explicitType := o.InstanceType != "" // only the default falls back
	explicitVersion := o.MLflowVersion != ""
	ttl, err := o.validate()
	if err != nil {
		return nil, err
	}
	r := &upRun{o: o, ttl: ttl, log: o.Streams.progress(), h: hintsFor(o.Stack, o.AWS), explicitType: explicitType, explicitVersion: explicitVersion,
		db: cmp.Or(o.Database, cloud.DBSQLite)}
	if err := r.allowCIDRs(); err != nil {
		return nil, err
	}
	if err := checkMLflowRelease(ctx, o.MLflowVersion, r.log); err != nil {
		return nil, err
	}
	if !o.DryRun {
		if err := local.StackDir(o.StateDir, o.Stack.Name).CheckWritable(); err != nil {
			return nil, cloud.AsUsage(err)
		}
	}
	if r.openedStack, err = openStack(ctx, o.Stack, o.AWS, r.log, !o.DryRun); err != nil {
		return nil, err
	}
	if o.Database == "" && r.secrets != nil && r.secrets.Database != "" {
		r.db = r.secrets.Database // discover checks it against AWS
	}
	r.policy = cloud.BucketPolicy(r.s.Partition, r.n.Bucket)
	r.rolePolicy = cloud.RolePolicy(r.s.Partition, r.s.Account, r.n)
	r.rules = cloud.WantRules(r.o.AllowCIDRs, r.o.SSH)
	err = r.makeLocal()
	if err == nil {
		// Before the render, which needs the architecture: an unknown or
		// unoffered instance type is a usage error, reported alone.
		r.places, r.arch, err = cloud.Placements(ctx, r.s.EC2, r.o.InstanceType, explicitType, r.s.Region)
	}
	if err == nil {
		err = r.render()
	}
	if err != nil {
		r.release()
		return nil, err
	}
	return r, nil
}

// allowCIDRs defaults the allowed CIDRs to the caller's public IP and warns
// about a rule open to the world.
func (r *upRun) allowCIDRs() error {
	if len(r.o.AllowCIDRs) == 0 {
		cidr, err := cloud.DetectCIDR(r.o.hooks.DetectIP)
		if err != nil {
			return err
		}
		r.log.Info("no --allow-cidr given: allowing only your public IP %s", cidr)
		r.o.AllowCIDRs = []string{cidr}
	}
	for _, c := range cloud.NonPublicCIDRs(r.o.AllowCIDRs) {
		r.log.Warn("--allow-cidr %s holds no public address: it lets in only machines inside the VPC, "+
			"never your traffic over the internet; add the address it leaves from (`curl https://checkip.amazonaws.com` shows it)", c)
	}
	return r.confirmWide()
}

// confirmWide asks before opening the server to more than an office's
// worth of public addresses (or needs --yes); without a terminal it refuses.
func (r *upRun) confirmWide() error {
	wide := cloud.WideOpening(r.o.AllowCIDRs)
	if wide == "" {
		return nil
	}
	ports := "tcp 5000"
	if r.o.SSH {
		ports += " and SSH on tcp 22"
	}
	what := fmt.Sprintf("--allow-cidr %s opens the tracking server (%s) to %s: anyone there can try the admin password",
		strings.Join(r.o.AllowCIDRs, " "), ports, wide)
	switch {
	case r.o.Yes:
		r.log.Warn("%s", what)
		return nil
	case r.o.Confirm == nil:
		return cloud.Usagef("%s; pass --yes to open it all the same, or a /%d or narrower CIDR (no terminal to ask on)", what, cloud.WidestAllowed)
	}
	ok, err := r.o.Confirm(what + ". Open it? [y/N] ")
	if err != nil {
		return err
	}
	if !ok {
		return cloud.Usagef("not confirmed: nothing created or changed")
	}
	r.o.Yes = true // later hints carry --yes
	return nil
}

// makeLocal loads or generates (in memory) the secrets, the login key and
// the host key.
func (r *upRun) makeLocal() error {
	k := &r.keep
	stack := r.o.Stack.Name
	if r.secrets != nil {
		k.secrets = r.secrets.Clone()
	} else {
		k.secrets = local.Secrets{Stack: stack, Account: r.s.Account, Region: r.s.Region, MLflowUser: mlflowUser}
		k.changed = true
	}
	if err := r.creatorLogin(); err != nil {
		return err
	}
	for _, s := range []struct {
		value *string
		n     int
	}{{&k.secrets.MLflowPassword, 32}, {&k.secrets.FlaskSecretKey, 48}} {
		if *s.value == "" {
			v, err := local.RandomSecret(s.n)
			if err != nil {
				return err
			}
			*s.value, k.changed = v, true
		}
	}
	if k.secrets.SSHPublicKey == "" {
		priv, pub, err := local.NewSSHKey("mlstack-" + stack)
		if err != nil {
			return err
		}
		k.loginKey, k.secrets.SSHPublicKey, k.changed = priv, string(pub), true
	}
	return nil
}

// creatorLogin picks the MLflow user the env file signs in as (--user,
// else the one chosen before, else the login name on this machine) and
// generates its password in memory; ensureLogin makes it on the server.
func (r *upRun) creatorLogin() error {
	k := &r.keep
	name := cmp.Or(r.o.User, k.secrets.EnvUser, osUserName())
	if err := validateUserName(name); err != nil {
		return cloud.Usagef("the MLflow user for the env file: %v; pass --user NAME", err)
	}
	if k.secrets.EnvUser != name {
		k.secrets.EnvUser, k.changed = name, true
	}
	if k.secrets.Users[name] == "" {
		password, err := local.RandomSecret(32)
		if err != nil {
			return err
		}
		k.secrets.SetUser(name, password)
		k.changed = true
	}
	return nil
}

// osUserName is this machine's login name in a form MLflow takes ("" if none).
func osUserName() string {
	u, err := user.Current()
	if err != nil {
		return ""
	}
	name := u.Username
	if i := strings.LastIndexAny(name, `\/`); i >= 0 { // DOMAIN\name
		name = name[i+1:]
	}
	return name
}

// ensureLogin makes the env file's user on the server once it answers, as
// a non-admin, unless its login works already; with --no-wait it says how.
// A user the server has already, with another password, keeps it (see
// loginTaken); that refusal waits in r.loginRefused, so a replacement is not
// undone for it.
func (r *upRun) ensureLogin(ctx context.Context) error {
	sec := r.store.Get()
	name := sec.EnvUser
	if r.o.NoWait {
		r.log.Info("the env file signs in as MLflow user %s, made once the server answers: `%s` (without --no-wait) makes it",
			name, r.upHint())
		return nil
	}
	uri := r.uri
	if h := r.o.hooks.HealthURL; h != "" { // tests: the server answers there
		uri = strings.TrimSuffix(h, "/health")
	}
	httpc, err := serverHTTP(r.dir, uri, func() string { return r.upHint() })
	if err != nil {
		return err
	}
	c := &server.Client{URI: uri, User: name, Password: sec.Users[name], HTTP: httpc}
	if ok, err := c.LoginWorks(ctx); ok || err != nil {
		return err
	}
	admin := &server.Client{URI: uri, User: sec.MLflowUser, Password: sec.MLflowPassword, HTTP: httpc}
	r.log.Step("making MLflow user %s (not an admin) for the env file", name)
	err = admin.CreateUser(ctx, name, sec.Users[name])
	if errors.Is(err, server.ErrUserExists) {
		r.loginRefused = r.loginTaken(name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("making MLflow user %s: %w", name, err)
	}
	return nil
}

// loginTaken refuses to sign the env file in as name, a user the server
// has with another password than this machine's (made elsewhere, or an
// admin made with users): setting ours would take their login away,
// silently. (The stack's own admin name is refused before: creatorLogin.)
func (r *upRun) loginTaken(name string) error {
	return cloud.Usagef("MLflow user %s exists on the server with another password than this machine holds, so the env file "+
		"%s cannot sign in as them: up does not reset an existing user's password (they would lose their login). If %s is you, "+
		"`%s` gives them a new password here and rewrites the env file; else `%s` with a name of your own",
		name, r.dir.EnvFile(), name, r.h.cmd("users passwd", name), r.upHint("--user", "NAME"))
}

// render makes the user-data, once, for the instance type's architecture;
// bad parameters are usage errors found before anything is created.
func (r *upRun) render() error {
	sec := r.keep.secrets
	p := cloudinit.Params{
		Stack: r.n.Stack, Bucket: r.n.Bucket, Region: r.s.Region, MLflowVersion: r.o.MLflowVersion,
		AdminUsername: sec.MLflowUser, S3EndpointURL: r.s.S3Endpoint, SSMEndpointURL: r.s.SSMEndpoint,
		Arch: cloudinit.ArchX8664,
	}
	if r.db == cloud.DBPostgres {
		p.Database = cloud.DBPostgres
	}
	if r.arch == ec2types.ArchitectureValuesArm64 {
		p.Arch = cloudinit.ArchAarch64
	}
	ud, err := cloudinit.UserData(p)
	if err != nil {
		return cloud.Usagef("bootstrap parameters: %v", err)
	}
	if !p.Locked() {
		r.log.Warn("MLflow %s is not the locked %s: the instance installs it by version pins, without hash checks,"+
			" and runs it with `mlflow server` (about 250 MiB more memory)", p.MLflowVersion, cloudinit.DefaultMLflowVersion)
	}
	r.userData = ud
	r.bootstrap, err = cloudinit.Bootstrap(p)
	return err
}
