package provision

// The stack's MLflow users: one login per person, made, listed, changed and
// removed through the server's own REST API as its admin, over the pinned
// TLS. A user's generated password is kept in the stack's state (0600) on
// this machine and handed out with `mlstack env --user NAME`; the admin
// login stays in the state and never goes into an env file.
//
// What each role may do comes from MLflow's basic-auth app with
// default_permission EDIT (mlstack_keys.py): every user reads every
// experiment, run and model and may log runs into them; the creator of an
// experiment or model gets MANAGE on it (delete it, grant permissions);
// only the admin manages users.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/internal/testhooks"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/local/envfile"
	"github.com/mlstack/mlstack/provision/server"
)

// UsersOptions is one `mlstack users` command (and `creds rotate --user`).
type UsersOptions struct {
	Stack
	cloud.AWS
	Streams
	Name string // the user to add, remove or give a new password
	// RotateKey (remove, direct artifacts) rotates the stack's shared AWS
	// key after the removal: the removed person holds it too.
	RotateKey bool
	// hooks.TrackingURI is the server tests reach instead of the stack's.
	hooks testhooks.Hooks
}

// validateUserName refuses a name MLflow or an env file cannot carry, and
// the admin's, whose login never leaves the state.
func validateUserName(name string) error {
	switch {
	case name == "":
		return cloud.Usagef("missing user name: pass NAME (e.g. `mlstack users add alice`)")
	case name == mlflowUser:
		return cloud.Usagef("%q is the server's admin login, which stays in mlstack's state: pick another name", name)
	case !cloudinit.ValidUserName(name):
		return cloud.Usagef("user name %q: 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit", name)
	}
	return nil
}

// userRun is one users command on an opened stack, signed in as admin.
type userRun struct {
	o     UsersOptions
	log   *progress
	op    *openedStack
	store *local.Store
	admin *server.Client
}

// openUsers checks the input before anything else, then opens the stack
// (locked), finds its server and signs in as the admin.
func openUsers(ctx context.Context, o UsersOptions, named bool) (*userRun, error) {
	o.Streams.fill()
	o.hooks = hooksOf(ctx, o.hooks)
	if err := validateAll(o.Stack.validate, o.AWS.Validate); err != nil {
		return nil, err
	}
	if named {
		if err := validateUserName(o.Name); err != nil {
			return nil, err
		}
	}
	r := &userRun{o: o, log: newProgress(o.Log)}
	var err error
	if r.op, err = openStack(ctx, o.Stack, o.AWS, r.log, true); err != nil {
		return nil, err
	}
	if err = r.signIn(ctx); err != nil {
		r.op.release()
		return nil, err
	}
	return r, nil
}

func (r *userRun) signIn(ctx context.Context) error {
	s, n := r.op.s, r.op.n
	sec := local.Secrets{Stack: n.Stack, Account: s.Account, Region: s.Region, MLflowUser: mlflowUser}
	if r.op.secrets != nil {
		sec = *r.op.secrets
	}
	r.store = local.NewStore(r.op.dir, sec)
	uri := r.o.hooks.TrackingURI
	var err error
	if uri == "" {
		if uri, err = serverURI(ctx, r.op); err != nil {
			return fmt.Errorf("%w: `%s` starts it", err, upHintFor(ctx, r.op, hintsFor(r.o.Stack, r.o.AWS)))
		}
	}
	password, err := adminPassword(ctx, r.op, sec)
	if err != nil {
		return err
	}
	httpc, err := serverHTTP(r.op.dir, uri, func() string { return upHintFor(ctx, r.op, hintsFor(r.o.Stack, r.o.AWS)) })
	if err != nil {
		return err
	}
	r.admin = &server.Client{URI: uri, User: sec.MLflowUser, Password: password, HTTP: httpc}
	return nil
}

// envHint is an `mlstack env` command for st with the flags in use, to
// run as printed.
func envHint(st Stack, a cloud.AWS, extra ...string) string {
	return hintsFor(st, a).cmd("env", extra...)
}

// hint is `mlstack users SUB NAME` with the flags in use, to run as printed.
func (r *userRun) hint(sub string) string {
	return hintsFor(r.o.Stack, r.o.AWS).cmd("users "+sub, r.o.Name)
}

// AddUser makes a non-admin MLflow user with a generated password, saved
// here before the server gets it, so that it is never lost.
func AddUser(ctx context.Context, o UsersOptions) error {
	r, err := openUsers(ctx, o, true)
	if err != nil {
		return err
	}
	defer r.op.release()
	password, err := local.RandomSecret(32)
	if err != nil {
		return err
	}
	name := o.Name
	prev := r.store.Get().Users[name]
	if err := r.store.Update(func(x *local.Secrets) { x.SetUser(name, password) }); err != nil {
		return err
	}
	r.log.Step("creating MLflow user %s on %s", name, r.admin.URI)
	if err := r.admin.CreateUser(ctx, name, password); err != nil {
		undo := r.store.Update(func(x *local.Secrets) { x.SetUser(name, prev) })
		if errors.Is(err, server.ErrUserExists) {
			err = fmt.Errorf("%w; `%s` gives it a new password here", server.ErrUserExists, r.hint("passwd"))
		}
		return errors.Join(fmt.Errorf("adding MLflow user %s: %w", name, err), undo)
	}
	r.log.Step("MLflow user %s made: `%s` prints the variables for them", name, envHint(r.o.Stack, r.o.AWS, "--user", name))
	return nil
}

// ListUsers prints the server's users: name, role, and whether this
// machine holds the login (`env --user NAME` works here).
func ListUsers(ctx context.Context, o UsersOptions) error {
	r, err := openUsers(ctx, o, false)
	if err != nil {
		return err
	}
	defer r.op.release()
	users, err := r.admin.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("listing MLflow users: %w", err)
	}
	sec := r.store.Get()
	tw := tabwriter.NewWriter(o.Out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tROLE\tLOGIN HERE")
	for _, u := range users {
		role, here := "user", "no"
		if u.Admin {
			role = "admin"
		}
		switch {
		case u.Name == sec.MLflowUser:
			here = "admin (state only)"
		case sec.Users[u.Name] != "" && u.Name == sec.EnvUser:
			here = "yes (env file)"
		case sec.Users[u.Name] != "":
			here = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, role, here)
	}
	return tw.Flush()
}

// RemoveUser deletes a user on the server and forgets its login here.
func RemoveUser(ctx context.Context, o UsersOptions) error {
	r, err := openUsers(ctx, o, true)
	if err != nil {
		return err
	}
	defer func() { r.op.release() }() // the rotation may have released it
	name := o.Name
	r.log.Step("removing MLflow user %s from %s", name, r.admin.URI)
	err = r.admin.DeleteUser(ctx, name)
	switch {
	case errors.Is(err, server.ErrNoSuchUser):
		r.log.Info("the server has no user %s", name)
	case err != nil:
		return fmt.Errorf("removing MLflow user %s: %w", name, err)
	}
	if err := r.store.Update(func(x *local.Secrets) { x.SetUser(name, "") }); err != nil {
		return err
	}
	r.envUserGone(name)
	if modeOf(r.store.Get().Artifacts) == ArtifactsProxied {
		return nil // clients hold no AWS key
	}
	if !o.RotateKey {
		r.log.Warn("artifacts are direct: %s keeps read/write access to the artifacts through the stack's shared AWS key until it is rotated: `%s`",
			name, hintsFor(o.Stack, o.AWS).cmd("creds rotate", "--skip-mlflow"))
		return nil
	}
	// The rotation takes the stack's lock itself.
	r.op.release()
	r.op.release = func() {}
	return RotateCreds(ctx, RotateOptions{Stack: o.Stack, AWS: o.AWS, Streams: o.Streams, SkipMLflow: true, hooks: o.hooks})
}

// envUserGone says how to get an env file that signs in again when it
// signed in as the removed user.
func (r *userRun) envUserGone(name string) {
	if sec := r.store.Get(); sec.EnvUser == name {
		// A user that exists, so that the hint runs as printed.
		other := slices.Sorted(maps.Keys(sec.Users))
		if len(other) == 0 {
			r.log.Warn("the env file %s signs in as %s, who is gone: `%s` makes another user",
				r.op.dir.EnvFile(), name, hintsFor(r.o.Stack, r.o.AWS).cmd("users add", "NAME"))
			return
		}
		r.log.Warn("the env file %s signs in as %s, who is gone: `%s` prints %s's variables",
			r.op.dir.EnvFile(), name, envHint(r.o.Stack, r.o.AWS, "--user", other[0]), other[0])
	}
}

// SetUserPassword gives one user a new generated password (`users passwd`,
// `creds rotate --user`); the AWS key and every other login stay as they
// are. The env file is rewritten when it signs in as that user.
func SetUserPassword(ctx context.Context, o UsersOptions) error {
	r, err := openUsers(ctx, o, true)
	if err != nil {
		return err
	}
	defer r.op.release()
	name := o.Name
	password, err := local.RandomSecret(32)
	if err != nil {
		return err
	}
	r.log.Step("setting a new password for MLflow user %s on %s", name, r.admin.URI)
	if err := r.admin.SetPassword(ctx, name, password); err != nil {
		if errors.Is(err, server.ErrNoSuchUser) {
			err = fmt.Errorf("%w; `%s` makes it", server.ErrNoSuchUser, r.hint("add"))
		}
		return fmt.Errorf("new password for MLflow user %s: %w", name, err)
	}
	// The server switched already: keep the new password whatever follows.
	if err := r.store.Update(func(x *local.Secrets) { x.SetUser(name, password) }); err != nil {
		return err
	}
	if r.store.Get().EnvUser == name {
		if err := relogin(r.op.dir, name, password); err != nil {
			return err
		}
		r.log.Step("rewrote %s", r.op.dir.EnvFile())
	}
	r.log.Step("new password for %s: `%s` prints it", name, envHint(r.o.Stack, r.o.AWS, "--user", name))
	return nil
}

// relogin puts a new password for name into the env file, if it has one.
func relogin(dir local.Dir, name, password string) error {
	vars, err := dir.ReadEnv()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading env file: %w", err)
	}
	return dir.WriteEnv(withLogin(vars, name, password))
}

// withLogin is vars signing in as name (in place of the login they carry).
func withLogin(vars []envfile.Var, name, password string) []envfile.Var {
	login := []envfile.Var{{Name: "MLFLOW_TRACKING_USERNAME", Value: name}, {Name: "MLFLOW_TRACKING_PASSWORD", Value: password}}
	out := make([]envfile.Var, 0, len(vars)+2)
	for _, v := range vars {
		switch v.Name {
		case login[0].Name:
			v, login[0].Name = login[0], ""
		case login[1].Name:
			v, login[1].Name = login[1], ""
		}
		out = append(out, v)
	}
	for _, v := range login {
		if v.Name != "" { // a file without a login (none was made yet)
			out = append(out, v)
		}
	}
	return out
}

// userLogin is vars signing in as the user name, whose password this
// machine's state holds; the admin's login is never handed out.
func userLogin(dir local.Dir, st Stack, vars []envfile.Var, name string) ([]envfile.Var, error) {
	if err := validateUserName(name); err != nil {
		return nil, err
	}
	sec, err := dir.Load()
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Users[name] == "" {
		flags := fmt.Sprintf("--stack %s --state-dir %s %s", cloud.ShellWord(st.Name), cloud.ShellWord(st.StateDir), name)
		return nil, fmt.Errorf("no login for MLflow user %s on this machine (%s): `mlstack users add %s` makes the user, "+
			"`mlstack users passwd %s` gives an existing one a new password here", name, dir.Path(), flags, flags)
	}
	return withLogin(vars, name, sec.Users[name]), nil
}
