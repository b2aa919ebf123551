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

// Env prints the stack's variables in the chosen format (shell export lines
// by default). It reads only local files, so it works offline and with any
// credentials exported.
func Env(_ context.Context, c Config, format string) error {
	if err := ValidateStack(c.Stack); err != nil {
		return err
	}
	if c.StateDir == "" {
		return usagef("no state directory: pass --state-dir or set MLSTACK_STATE_DIR")
	}
	formatters := map[string]func([]envfile.Var) ([]byte, error){
		"shell": envfile.FormatShell, "dotenv": envfile.FormatDotenv, "json": envfile.FormatJSON, "github": envfile.FormatGitHub,
	}
	if format == "" {
		format = "shell"
	}
	fmtr, ok := formatters[format]
	if !ok {
		return usagef("--format %q: use shell, dotenv, json or github", format)
	}
	sd := newStateDir(c.StateDir, c.Stack)
	b, err := os.ReadFile(sd.EnvFile())
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no local secrets for stack %s on this machine (%s is missing): the secret access key and "+
			"MLflow password exist only where the stack was created. Run mlstack there, or, from an admin identity here, "+
			"`mlstack creds rotate --stack %s` to issue a new key and password for this machine (the old ones stop working)",
			c.Stack, sd.EnvFile(), c.Stack)
	}
	if err != nil {
		return fmt.Errorf("reading env file: %w", err)
	}
	vars, err := envfile.Parse(b)
	if err != nil {
		return fmt.Errorf("env file %s is damaged (%v): run `mlstack up --stack %s` to rewrite it", sd.EnvFile(), err, c.Stack)
	}
	out, err := fmtr(vars)
	if err != nil {
		return err
	}
	if format == "github" {
		// Mask first, so the values are hidden before anything can print them.
		var secrets []string
		for _, v := range vars {
			if v.Name == "AWS_SECRET_ACCESS_KEY" || v.Name == "MLFLOW_TRACKING_PASSWORD" {
				secrets = append(secrets, v.Value)
			}
		}
		if _, err := c.Out.Write(envfile.MaskLines(secrets)); err != nil {
			return err
		}
		if path := os.Getenv("GITHUB_ENV"); path != "" {
			return appendFile(path, out)
		}
	}
	_, err = c.Out.Write(out)
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
