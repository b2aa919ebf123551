package provision

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local/envfile"

	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
)

// Check runs the user's smoke test of a stack from this machine, with
// exactly the variables of its env file (see server.Check). It reads only
// local files: the env file, and the state for the bucket's name.
func Check(ctx context.Context, o CheckOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	dir := local.StackDir(o.StateDir, o.Stack.Name)
	sec, err := dir.Load()
	if err != nil {
		return err
	}
	if sec == nil {
		return fmt.Errorf("no local state for stack %s in %s: run `%s` where the stack was created",
			o.Stack.Name, dir.Path(), hints{stack: o.Stack.Name, stateDir: o.StateDir}.cmd("check"))
	}
	t, err := checkTarget(dir, localUp(o.Stack, sec), sec.Artifacts == ArtifactsProxied)
	if err != nil {
		return err
	}
	t.Bucket = sec.Bucket
	if t.Bucket == "" { // state written before mlstack recorded it: the global name
		n := cloud.NamesFor(o.Stack.Name, sec.Account, sec.Region)
		t.Bucket = cmp.Or(n.GlobalBucket, n.Bucket)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	return server.Check(ctx, t, o.Out)
}

// clientEnv is the environment a user has after exporting the env file in
// this shell: the caller's variables, with the file's set and cleared.
// check signs with what is left, so a variable the file fails to clear
// (a session token) fails the check as it would fail the user.
func clientEnv(environ []string, vars []envfile.Var) map[string]string {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for _, v := range vars {
		if v.Unset {
			delete(env, v.Name)
		} else {
			env[v.Name] = v.Value
		}
	}
	return env
}

// checkTarget reads what a client of the stack has from its env file; up
// is the command that writes it. With proxied artifacts a client needs no
// AWS variable.
func checkTarget(dir local.Dir, up string, proxied bool) (server.CheckTarget, error) {
	vars, err := dir.ReadEnv()
	var damaged *local.DamagedEnvError
	switch {
	case errors.As(err, &damaged):
		return server.CheckTarget{}, fmt.Errorf("%w: `%s` rewrites it", err, up)
	case err != nil:
		return server.CheckTarget{}, fmt.Errorf("no env file %s: `%s` writes it", dir.EnvFile(), up)
	}
	env := clientEnv(os.Environ(), vars)
	var missing []string
	need := []string{"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
	if !proxied {
		need = append(need, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
	}
	for _, k := range need {
		if env[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return server.CheckTarget{}, fmt.Errorf("env file %s lacks %s: `%s` rewrites it", dir.EnvFile(), strings.Join(missing, ", "), up)
	}
	httpc, err := pinnedFromEnv(env, dir.EnvFile(), up)
	if err != nil {
		return server.CheckTarget{}, err
	}
	return server.CheckTarget{
		MLflow: server.Client{
			URI:  strings.TrimRight(env["MLFLOW_TRACKING_URI"], "/"),
			User: env["MLFLOW_TRACKING_USERNAME"], Password: env["MLFLOW_TRACKING_PASSWORD"], HTTP: httpc,
		},
		AccessKey: env["AWS_ACCESS_KEY_ID"], SecretKey: env["AWS_SECRET_ACCESS_KEY"], SessionToken: env["AWS_SESSION_TOKEN"],
		Region: env["AWS_DEFAULT_REGION"], S3Endpoint: env["MLFLOW_S3_ENDPOINT_URL"], Proxied: proxied,
	}, nil
}

// pinnedFromEnv is the HTTP client a client of the stack uses: over https,
// it trusts the certificate MLFLOW_TRACKING_SERVER_CERT_PATH names alone,
// as MLflow's client does; nil (the default) for plain http (tests). up
// is the command that rewrites the env file and pins the certificate.
func pinnedFromEnv(env map[string]string, envFile, up string) (*http.Client, error) {
	if !strings.HasPrefix(env["MLFLOW_TRACKING_URI"], "https://") {
		return nil, nil
	}
	path := env["MLFLOW_TRACKING_SERVER_CERT_PATH"]
	if path == "" {
		return nil, fmt.Errorf("env file %s lacks MLFLOW_TRACKING_SERVER_CERT_PATH: `%s` rewrites it", envFile, up)
	}
	cert, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("the pinned server certificate: %w; `%s` pins it", err, up)
	}
	return server.PinnedClient(cert, 20*time.Second)
}
