package provision

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/internal/testhooks"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
)

// Version is stamped into the mlstack:version tag.
const Version = cloud.Version

// Defaults that the command line shows.
const (
	DefaultInstanceType = "t2.micro"
	DefaultTimeout      = 15 * time.Minute
	// DefaultCheckTimeout bounds the whole of `mlstack check`.
	DefaultCheckTimeout = 2 * time.Minute
)

// Stack names one stack and the folder of its local files (--stack, --state-dir).
type Stack struct {
	Name     string
	StateDir string // root of the local state; one folder per stack below it
}

func (s Stack) validate() error {
	if err := cloud.ValidateStack(s.Name); err != nil {
		return err
	}
	if s.StateDir == "" {
		return cloud.Usagef("no state directory: pass --state-dir or set MLSTACK_STATE_DIR")
	}
	var unsafe *local.UnsafeDirError
	if err := local.CheckSafe(s.StateDir, s.Name); errors.As(err, &unsafe) {
		return cloud.Usagef("state directory: %v", err)
	} else if err != nil {
		return err
	}
	return nil
}

// Streams are where a command writes: data to Out, progress to Log.
type Streams struct {
	Out, Log io.Writer
	// LogTerminal says Log is a terminal: waits show a live line.
	LogTerminal bool
	// Color colours Log's markers on a terminal (cmd leaves it off under NO_COLOR).
	Color bool
}

func (s *Streams) fill() {
	if s.Out == nil {
		s.Out = io.Discard
	}
	if s.Log == nil {
		s.Log = io.Discard
	}
}

// UpOptions are what `mlstack up` takes.
type UpOptions struct {
	Stack
	cloud.AWS
	Streams
	// AllowCIDRs may reach port 5000 (and 22 with SSH); empty: the caller's
	// public IP as a /32.
	AllowCIDRs    []string
	InstanceType  string
	MLflowVersion string
	TTL           string // tag the stack to expire after this long ("90m", "4h", "2d")
	Output        string // "table" (the default) or "json"
	Timeout       time.Duration
	SSH           bool   // open tcp 22 to AllowCIDRs; without it up closes the port
	User          string // the MLflow user the env file signs in as; "": the one before, else the OS login name
	// Artifacts is the artifacts mode, proxied or direct; "" keeps the
	// stack's (direct for a new one).
	Artifacts string
	// Database is where MLflow keeps its tracking data: sqlite (on the
	// instance) or postgres (RDS); "" keeps the stack's (sqlite for a new one).
	Database string
	// DBClass is the RDS instance class; "" picks the smallest burstable one offered.
	DBClass string
	NoWait  bool
	DryRun  bool
	// Yes opens wide CIDRs without asking; Confirm asks on a terminal (nil
	// when there is none, and then up refuses them without Yes).
	Yes     bool
	Confirm func(prompt string) (bool, error)

	// hooks are tests' stand-ins for the server and checkip (hooksOf).
	hooks testhooks.Hooks

	// restoreFrom (mlstack restore) replaces the instance with one that
	// restores this backup (its folder under backups/).
	restoreFrom string
}

// validate checks what can be checked without AWS and fills defaults; it
// returns the parsed TTL.
func (o *UpOptions) validate() (ttl time.Duration, err error) {
	if ttl, err = cloud.ParseTTL(o.TTL); err != nil {
		return 0, err
	}
	if err := validateAll(o.Stack.validate, o.AWS.Validate); err != nil {
		return 0, err
	}
	if o.InstanceType == "" {
		o.InstanceType = DefaultInstanceType
	}
	if o.MLflowVersion == "" {
		o.MLflowVersion = cloudinit.DefaultMLflowVersion
	}
	err = validateAll(
		func() error { return cloud.ValidateInstanceType(o.InstanceType) },
		func() error { return cloud.ValidateMLflowVersion(o.MLflowVersion) },
		func() error { return cloud.ValidateTimeout(&o.Timeout, DefaultTimeout) },
		func() error { return cloud.ValidateOutput(&o.Output) },
		func() (err error) { o.AllowCIDRs, err = cloud.ParseCIDRs(o.AllowCIDRs); return err },
		func() error {
			if o.User == "" {
				return nil
			}
			return validateUserName(o.User)
		},
		func() error { return validateArtifacts(o.Artifacts) },
		func() error { return cloud.ValidateDatabase(o.Database, o.DBClass, o.Stack.Name) },
	)
	o.Streams.fill()
	return ttl, err
}

// DownOptions are what `mlstack down` takes. With Expired or All it sweeps:
// every matching stack of the region goes, and Stack.Name must be empty.
type DownOptions struct {
	Stack
	cloud.AWS
	Streams
	Timeout time.Duration
	DryRun  bool
	Yes     bool
	// KeepData keeps the bucket (artifacts and backups) for a later up.
	KeepData bool
	// Sweep selectors.
	Expired   bool          // stacks whose mlstack:expires-at has passed
	All       bool          // every stack (with OlderThan: only older ones)
	OlderThan time.Duration // created more than this long ago
	// AnyOwner sweeps the stacks of every principal, not only the caller's.
	AnyOwner bool
	// hooks.TrackingURI is the server tests ask how many runs down deletes.
	hooks testhooks.Hooks
	// Confirm asks on a terminal; nil when there is none, and then down
	// refuses without Yes.
	Confirm func(prompt string) (bool, error)
}

func (o *DownOptions) sweep() bool { return o.Expired || o.All }

func (o *DownOptions) validate() error {
	switch {
	case !o.sweep() && o.OlderThan != 0:
		return cloud.Usagef("--older-than goes with --all or --expired")
	case o.sweep() && o.OlderThan < 0:
		return cloud.Usagef("--older-than must be positive")
	case o.sweep() && o.Stack.Name != "":
		return cloud.Usagef("--stack cannot be combined with --expired or --all")
	case !o.sweep() && o.AnyOwner:
		return cloud.Usagef("--any-owner goes with --all or --expired")
	case o.sweep() && o.KeepData:
		return cloud.Usagef("--keep-data goes with --stack (one stack), not with --expired or --all")
	}
	st := o.Stack
	if o.sweep() {
		st.Name = "sweep" // no stack of its own; the state dir is still needed
	}
	o.Streams.fill()
	return validateAll(st.validate, o.AWS.Validate, func() error { return cloud.ValidateTimeout(&o.Timeout, DefaultTimeout) })
}

// StatusOptions are what `mlstack status` takes.
type StatusOptions struct {
	Stack
	cloud.AWS
	Streams
	Output string // "table" (the default) or "json"
	// hooks.HealthURL is asked instead of the server's /health (tests).
	hooks testhooks.Hooks
}

// LsOptions are what `mlstack ls` takes.
type LsOptions struct {
	cloud.AWS
	Streams
	AllRegions bool
	Output     string // "table" (the default) or "json"
}

// EnvOptions are what `mlstack env` takes. AWS is asked only when this
// machine has nothing of the stack, to tell whether it exists.
type EnvOptions struct {
	Stack
	cloud.AWS
	Streams
	Format string // shell (the default), dotenv, json or github
	User   string // sign in as this MLflow user (its password from the state); "": the env file's
}

// CheckOptions are what `mlstack check` takes.
type CheckOptions struct {
	Stack
	Streams
	Timeout time.Duration // for all checks together
}

// RotateOptions are what `mlstack creds rotate` takes.
type RotateOptions struct {
	Stack
	cloud.AWS
	Streams
	// SkipMLflow rotates only the AWS key (the server is down or unreachable).
	SkipMLflow bool
	// hooks.TrackingURI is the server tests reach instead of the stack's.
	hooks testhooks.Hooks
}

// SSHOptions are what `mlstack ssh` takes.
type SSHOptions struct {
	Stack
	cloud.AWS
	Streams
	Remote server.Remote
	// Command runs one command; empty opens a shell.
	Command []string
	Stdin   io.Reader
}

// LogsOptions are what `mlstack logs` takes.
type LogsOptions struct {
	Stack
	cloud.AWS
	Streams
	Remote server.Remote
	Logs   server.LogOptions
}

// hooksOf is a call's test hooks: those its context carries (cmd's tests
// set them through internal/testhooks), else those provision's own tests
// put on its options. Production has neither, so no exported option or
// flag can send the stack's admin login to another server.
func hooksOf(ctx context.Context, set testhooks.Hooks) testhooks.Hooks {
	if h, ok := testhooks.From(ctx); ok {
		return h
	}
	return set
}

// validateAll runs validations in order and returns the first error: a
// later one may read what an earlier one normalised.
func validateAll(checks ...func() error) error {
	for _, c := range checks {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}

func (o *StatusOptions) validate() error {
	o.Streams.fill()
	return validateAll(o.Stack.validate, o.AWS.Validate, func() error { return cloud.ValidateOutput(&o.Output) })
}

func (o *LsOptions) validate() error {
	o.Streams.fill()
	return validateAll(func() error { return cloud.ValidateOutput(&o.Output) }, o.AWS.Validate)
}

func (o *RotateOptions) validate() error {
	o.Streams.fill()
	return validateAll(o.Stack.validate, o.AWS.Validate)
}

func (o *CheckOptions) validate() error {
	o.Streams.fill()
	if o.Timeout <= 0 {
		o.Timeout = DefaultCheckTimeout
	}
	return o.Stack.validate()
}

// DefaultStateDir is where local state goes without --state-dir or
// MLSTACK_STATE_DIR: the user config dir.
func DefaultStateDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "mlstack")
	}
	return ""
}
