package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/local/envfile"
)

// clearedVars would make a client sign or log in with something other than
// the stack's key and login: a caller's temporary credentials (SSO, OIDC in
// CI, aws-vault) leave a session token that, paired with the stack's
// long-term key, fails every S3 call. Every env format clears them; the
// AWS ones only where the env file sets a key (proxied artifacts need
// none, and the caller's own credentials stay whole).
var (
	clearedVars    = []string{"MLFLOW_TRACKING_TOKEN"}
	clearedAWSVars = []string{"AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CREDENTIAL_EXPIRATION"}
)

// withCleared adds the cleared variables that vars does not name yet (env
// files written before mlstack cleared them).
func withCleared(vars []envfile.Var) []envfile.Var {
	have := map[string]bool{}
	for _, v := range vars {
		have[v.Name] = true
	}
	cleared := clearedVars
	if have["AWS_ACCESS_KEY_ID"] {
		cleared = append(slices.Clone(clearedAWSVars), clearedVars...)
	}
	for _, name := range cleared {
		if !have[name] {
			vars = append(vars, envfile.Var{Name: name, Unset: true})
		}
	}
	return vars
}

// envVars are the variables a client needs to log to the stack, signed in
// as the creator's user (never the admin); certPath is the pinned server
// certificate, which MLflow's client then trusts alone. With proxied
// artifacts there is no AWS variable: the server stores them.
func envVars(sec *local.Secrets, uri, certPath, region, s3Endpoint string) []envfile.Var {
	vars := []envfile.Var{
		{Name: "MLFLOW_TRACKING_URI", Value: uri},
		{Name: "MLFLOW_TRACKING_SERVER_CERT_PATH", Value: certPath},
		{Name: "MLFLOW_TRACKING_USERNAME", Value: sec.EnvUser},
		{Name: "MLFLOW_TRACKING_PASSWORD", Value: sec.Users[sec.EnvUser]},
		{Name: "AWS_ACCESS_KEY_ID", Value: sec.AccessKeyID},
		{Name: "AWS_SECRET_ACCESS_KEY", Value: sec.SecretAccessKey},
		{Name: "AWS_DEFAULT_REGION", Value: region},
	}
	if s3Endpoint != "" {
		vars = append(vars, envfile.Var{Name: "MLFLOW_S3_ENDPOINT_URL", Value: s3Endpoint})
	}
	if sec.Artifacts == ArtifactsProxied {
		vars = slices.DeleteFunc(vars, func(v envfile.Var) bool {
			return strings.HasPrefix(v.Name, "AWS_") || v.Name == "MLFLOW_S3_ENDPOINT_URL"
		})
	}
	if certPath == "" {
		// A plain-HTTP server (an earlier stack): no certificate, and none
		// left over from another stack in the same shell.
		vars[1] = envfile.Var{Name: vars[1].Name, Unset: true}
	}
	if sec.EnvUser == "" { // a state from before users: no login to give (never the admin's)
		vars = slices.Delete(vars, 2, 4)
	}
	return withCleared(vars)
}

var envFormats = map[string]func([]envfile.Var) ([]byte, error){
	"shell": envfile.FormatShell, "dotenv": envfile.FormatDotenv, "json": envfile.FormatJSON, "github": envfile.FormatGitHub,
}

// Env prints the stack's variables in the chosen format (shell export lines
// by default). It reads only local files, so it works offline and with any
// credentials exported; only when this machine has nothing of the stack
// does it ask AWS whether the stack exists, to say what to do.
func Env(ctx context.Context, o EnvOptions) error {
	o.Streams.fill()
	if err := o.Stack.validate(); err != nil {
		return err
	}
	if o.Format == "" {
		o.Format = "shell"
	}
	format, ok := envFormats[o.Format]
	if !ok {
		return cloud.Usagef("--format %q: use shell, dotenv, json or github", o.Format)
	}
	dir := local.StackDir(o.StateDir, o.Stack.Name)
	vars, err := dir.ReadEnv()
	if err != nil {
		return envReadError(ctx, o, dir, err)
	}
	if o.User != "" {
		if vars, err = userLogin(dir, o.Stack, vars, o.User); err != nil {
			return err
		}
	}
	vars = withCleared(vars)
	out, err := format(vars)
	if err != nil {
		return err
	}
	if o.Format == "github" {
		return githubEnv(o.Out, vars, out)
	}
	_, err = o.Out.Write(out)
	return err
}

// envReadError says what to do about an env file that cannot be read.
func envReadError(ctx context.Context, o EnvOptions, dir local.Dir, err error) error {
	var damaged *local.DamagedEnvError
	sec, lerr := dir.Load()
	switch {
	case lerr != nil:
		return lerr
	case errors.As(err, &damaged):
		return fmt.Errorf("%w: `%s` rewrites it", err, localUp(o.Stack, sec))
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading env file: %w", err)
	case sec != nil:
		return fmt.Errorf("no env file for stack %s here (%s is missing): `%s` writes it", o.Stack.Name, dir.EnvFile(), localUp(o.Stack, sec))
	}
	return missingStack(ctx, o)
}

// envAskTimeout bounds env's one question to AWS.
const envAskTimeout = 15 * time.Second

// missingStack says what to do when this machine has nothing of the
// stack: create it when it does not exist; else get its secrets where it
// was made, or issue new ones here.
func missingStack(ctx context.Context, o EnvOptions) error {
	h := hintsFor(o.Stack, o.AWS)
	ctx, cancel := context.WithTimeout(ctx, envAskTimeout)
	defer cancel()
	s, err := cloud.OpenSession(ctx, o.AWS)
	var home cloud.StackHome
	if err == nil {
		home, err = cloud.FindHome(ctx, s.IAM, cloud.NamesFor(o.Stack.Name, s.Account, s.Region))
	}
	elsewhere := fmt.Sprintf("its secret access key and MLflow password exist only where it was created: run `%s` there, "+
		"or, from an admin identity here, `%s` issues a new key and password for this machine (the old ones stop working)",
		h.cmd("env"), h.cmd("creds rotate"))
	switch {
	case err != nil:
		return fmt.Errorf("this machine has no local state for stack %s (%s), and AWS could not tell whether the stack exists (%w). "+
			"If it does (`%s` tells), %s", o.Stack.Name, local.StackDir(o.StateDir, o.Stack.Name).Path(), err, h.cmd("status"), elsewhere)
	case home.From == "":
		return fmt.Errorf("stack %s does not exist in account %s, %s, and this machine has no local state for it: `%s` creates it",
			o.Stack.Name, s.Account, s.Region, h.cmd("up"))
	}
	return fmt.Errorf("this machine has no local state for stack %s (%s is missing): %s", o.Stack.Name, local.StackDir(o.StateDir, o.Stack.Name).Path(), elsewhere)
}

// githubEnv masks the secrets first, so they are hidden before anything can
// print them, then appends to $GITHUB_ENV when the runner set it.
func githubEnv(w io.Writer, vars []envfile.Var, out []byte) error {
	var secrets []string
	for _, v := range vars {
		if v.Name == "AWS_SECRET_ACCESS_KEY" || v.Name == "MLFLOW_TRACKING_PASSWORD" {
			secrets = append(secrets, v.Value)
		}
	}
	if _, err := w.Write(envfile.MaskLines(secrets)); err != nil {
		return err
	}
	if path := os.Getenv("GITHUB_ENV"); path != "" {
		return appendFile(path, out)
	}
	_, err := w.Write(out)
	return err
}

// appendFile appends to the runner's $GITHUB_ENV file.
func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening $GITHUB_ENV: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing $GITHUB_ENV: %w", err)
	}
	return f.Close()
}
