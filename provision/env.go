package provision

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/mlstack/mlstack/provision/envfile"
)

// envVars are the variables a client needs to log to the stack.
func envVars(st *State, uri, region, s3Endpoint string) []envfile.Var {
	vars := []envfile.Var{
		{Name: "MLFLOW_TRACKING_URI", Value: uri},
		{Name: "MLFLOW_TRACKING_USERNAME", Value: st.MLflowUser},
		{Name: "MLFLOW_TRACKING_PASSWORD", Value: st.MLflowPassword},
		{Name: "AWS_ACCESS_KEY_ID", Value: st.AccessKeyID},
		{Name: "AWS_SECRET_ACCESS_KEY", Value: st.SecretAccessKey},
		{Name: "AWS_DEFAULT_REGION", Value: region},
	}
	if s3Endpoint != "" {
		vars = append(vars, envfile.Var{Name: "MLFLOW_S3_ENDPOINT_URL", Value: s3Endpoint})
	}
	return vars
}

func writeEnv(sd stateDir, vars []envfile.Var) error {
	b, err := envfile.FormatShell(vars)
	if err != nil {
		return fmt.Errorf("formatting env file: %w", err)
	}
	return sd.writeFile("env", b)
}

// Env prints the stack's variables as shell-quoted export lines. It reads
// only local files, so it works offline and with any credentials exported.
func Env(_ context.Context, c Config) error {
	if err := ValidateStack(c.Stack); err != nil {
		return err
	}
	if c.StateDir == "" {
		return usagef("no state directory: pass --state-dir or set MLSTACK_STATE_DIR")
	}
	sd := newStateDir(c.StateDir, c.Stack)
	b, err := os.ReadFile(sd.EnvFile())
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no env file for stack %s at %s: run `mlstack up --stack %s` on this machine "+
			"(the secret access key and MLflow password exist only where the stack was created)", c.Stack, sd.EnvFile(), c.Stack)
	}
	if err != nil {
		return fmt.Errorf("reading env file: %w", err)
	}
	vars, err := envfile.Parse(b)
	if err != nil {
		return fmt.Errorf("env file %s is damaged (%v): run `mlstack up --stack %s` to rewrite it", sd.EnvFile(), err, c.Stack)
	}
	out, err := envfile.FormatShell(vars)
	if err != nil {
		return err
	}
	_, err = c.Out.Write(out)
	return err
}
