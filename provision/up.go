package provision

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
	"golang.org/x/crypto/ssh"
)

// mlflowUser is the MLflow admin login mlstack creates.
const mlflowUser = "admin"

// upRun is one `mlstack up`: each phase reads what the earlier ones left.
type upRun struct {
	o   UpOptions
	ttl time.Duration
	log *progress
	h   hints
	*openedStack

	// preflight
	policy     string // the client user's
	rolePolicy string // the server role's
	rules      []cloud.Rule
	places     []cloud.Placement // where the server can run, best first
	arch       ec2types.ArchitectureValues
	keep       upLocal
	userData   []byte
	bootstrap  []cloudinit.Object // put in the bucket before launch
	// discover
	found   *found
	plan    []cloud.PlanStep
	mode    string             // the artifacts mode the stack gets
	db      string             // the database engine the stack gets (sqlite, postgres)
	dbClass string             // postgres: the RDS class of a database still to make
	restart *ec2types.Instance // the running server to reboot into it, if it switches
	replace *replacement       // the instance to replace, if what runs differs
	// explicitType, explicitVersion: --instance-type, --mlflow-version were
	// given (only the default type falls back; only asked-for changes are
	// refused where a replacement would lose data).
	explicitType, explicitVersion bool
	// converge
	since time.Time // keys published before this (SSM's clock) are the old server's
	// keepLocal, converge, publish
	store *local.Store
	tags  map[string]string
	inst  *ec2types.Instance
	uri   string
	tls   *tls.Config // trusts the pinned server certificate alone
	// instanceUD holds the instances' user-data as read once (drift, mode
	// switch and legacy checks all look at it), by instance id.
	instanceUD map[string][]byte
}

// userDataOf is inst's user-data, unpacked, read from EC2 once per up.
func (r *upRun) userDataOf(ctx context.Context, inst *ec2types.Instance) ([]byte, error) {
	id := aws.ToString(inst.InstanceId)
	if ud, ok := r.instanceUD[id]; ok {
		return ud, nil
	}
	ud, err := cloud.UserData(ctx, r.s.EC2, inst)
	if err != nil {
		return nil, err
	}
	if r.instanceUD == nil {
		r.instanceUD = map[string][]byte{}
	}
	r.instanceUD[id] = ud
	return ud, nil
}

// upLocal is what up keeps on this machine. It is made in memory first, so
// that the user-data can be rendered (and checked) once before anything is
// written here or created in AWS.
type upLocal struct {
	secrets  local.Secrets
	changed  bool   // secrets differ from the saved ones
	loginKey []byte // a new private login key to save; nil keeps the saved one
}

// Up creates or converges the stack, waits for the server and writes the
// env file: preflight → discover and plan → keep local state → converge →
// publish → wait → report.
func Up(ctx context.Context, o UpOptions) error {
	o.hooks = hooksOf(ctx, o.hooks)
	r, err := preflight(ctx, o)
	if err != nil {
		return err
	}
	defer r.release()
	if err := r.discover(ctx); err != nil {
		return err
	}
	if r.o.DryRun {
		return r.printPlan()
	}
	if err := r.confirmReplace(); err != nil {
		return err
	}
	if err := r.keepLocal(ctx); err != nil {
		return err
	}
	if err := r.converge(ctx); err != nil {
		return r.rollback(ctx, err) // a replacement begun is undone
	}
	// A replacement's new server must answer before the old one goes. The
	// server publishes its keys once it knows where its database is.
	for _, phase := range []func(context.Context) error{r.readyDatabase, r.publish, r.wait, r.ensureLogin} {
		if err := phase(ctx); err != nil {
			return r.rollback(ctx, err)
		}
	}
	if err := r.retire(ctx); err != nil {
		return err
	}
	return r.report(ctx)
}

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
	if errors.Is(err, server.ErrUserExists) { // made elsewhere, with another password
		err = admin.SetPassword(ctx, name, sec.Users[name])
	}
	if err != nil {
		return fmt.Errorf("making MLflow user %s: %w", name, err)
	}
	return nil
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

// converge creates or repairs the stack's resources (the independent ones
// concurrently), then the instance.
func (r *upRun) converge(ctx context.Context) error {
	r.tags = cloud.StackTags(r.n.Stack, r.s.Region, r.s.Principal, time.Now(), r.ttl)
	if r.ttl > 0 {
		if err := r.extendTTL(ctx); err != nil {
			return err
		}
	}
	s, n, f, log := r.s, r.n, r.found, r.log
	err := cloud.Parallel(
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
			return cloud.EnsureBucket(ctx, s.S3, f.bucket, cloud.EnsureBucketInput{Names: n, Tags: r.tags, Log: log,
				Pending: func(name string) error {
					return r.store.Update(func(x *local.Secrets) { x.PendingBucket = name })
				}})
		},
		func() error { return cloud.EnsureSecurityGroup(ctx, s.EC2, f.sg, n, r.rules, r.tags, log) },
		func() error {
			return cloud.EnsureKeyPair(ctx, s.EC2, f.keyPair, n, []byte(r.store.Get().SSHPublicKey), r.tags, log)
		},
		func() error {
			return cloud.EnsureParams(ctx, s.SSM, f.params, n, r.wantParams(r.store.Get()), r.tags, r.h.cmd("creds rotate"), log)
		},
	)
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

// wait polls /health until the server answers; on a timeout it explains
// what the bootstrap log says.
func (r *upRun) wait(ctx context.Context) error {
	if r.o.NoWait {
		return nil
	}
	health := r.o.hooks.HealthURL
	if health == "" {
		health = r.uri + "/health"
	}
	if err := server.WaitHealthy(ctx, health, r.tls, r.o.Timeout, r.log, r.explainStall); err != nil {
		return r.target().explainUnhealthy(ctx, err, r.log)
	}
	return nil
}

// upHint is this up as a command to run again: the allowed CIDRs, SSH and
// an --artifacts given (a stack that failed before storing its mode would
// otherwise get direct).
func (r *upRun) upHint(extra ...string) string {
	if r.o.Artifacts != "" {
		extra = append([]string{"--artifacts", r.o.Artifacts}, extra...)
	}
	if r.o.Database != "" {
		extra = append([]string{"--db", r.o.Database}, extra...)
	}
	if r.o.DBClass != "" {
		extra = append([]string{"--db-class", r.o.DBClass}, extra...)
	}
	return r.h.up(r.o.AllowCIDRs, r.o.SSH, extra...)
}

// target is the instance as ssh and logs reach it, with hints that keep
// the allowed CIDRs and SSH as this up has them.
func (r *upRun) target() *target {
	t := newTarget(r.h, r.dir, r.s, r.inst, r.o.SSH)
	t.cidrs = r.o.AllowCIDRs
	return t
}

// explainStall says why the server does not answer yet and what to do.
func (r *upRun) explainStall(kind server.Stall) string {
	host := cloud.TrackingHost(r.inst)
	if kind == server.Refused {
		return fmt.Sprintf("%s:%d refuses connections: the instance is up but nothing listens on the port yet, "+
			"so the bootstrap is still installing MLflow (`%s` shows it). Still waiting", host, cloud.MlflowPort, r.h.cmd("logs"))
	}
	// The shell fills in the address: the command runs as printed.
	add := r.upHint() + ` --allow-cidr "$(curl -fsS https://checkip.amazonaws.com)/32"`
	msg := fmt.Sprintf("connections to %s:%d time out: packets are dropped before they reach the server. "+
		"The security group lets in only %s. If your traffic leaves from another address (a VPN, a corporate NAT), "+
		"add the address it leaves from: `%s`", host, cloud.MlflowPort, strings.Join(r.o.AllowCIDRs, ", "), add)
	if p := server.ProxyFor(r.uri); p != "" {
		msg += fmt.Sprintf(". These requests go through your HTTP proxy %s: allow the proxy's egress address, or set NO_PROXY=%s", p, host)
	}
	return msg + ". Still waiting"
}

// report prints the tracking URI, or with --output json the stack in the
// schema status and ls share, on stdout.
func (r *upRun) report(ctx context.Context) error {
	if r.o.Output == "json" {
		info, _, err := r.describe(ctx)
		if err != nil {
			return err
		}
		info.SetInstance(r.inst)
		info.TrackingURI = r.uri // plain HTTP on an earlier stack
		info.Health = cloud.HealthOK
		if r.o.NoWait {
			info.Health = cloud.HealthNotChecked
		}
		if err := writeJSON(r.o.Out, info); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(r.o.Out, r.uri)
	}
	env, what := r.h.cmd("env"), "the tracking URI, scoped credentials and %s's login"
	if r.mode == ArtifactsProxied {
		what = "the tracking URI and %s's login (no AWS key: artifacts go through the server)"
	}
	r.log.Step("ready: `%s >> .envrc` exports "+what+
		" (or put `eval \"$(%s)\"` in .envrc: the secrets then stay in %s)", env, r.store.Get().EnvUser, env, r.dir.Path())
	return nil
}
