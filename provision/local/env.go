package local

import (
	"fmt"
	"os"

	"github.com/mlstack/mlstack/provision/local/envfile"
)

// WriteEnv writes the env file: single-quoted export lines, 0600.
func (d Dir) WriteEnv(vars []envfile.Var) error {
	b, err := envfile.FormatShell(vars)
	if err != nil {
		return fmt.Errorf("formatting env file: %w", err)
	}
	return d.writeFile(envName, b)
}

// ReadEnv reads the env file back. A missing file is an error that wraps
// fs.ErrNotExist; a damaged one is a *DamagedEnvError.
func (d Dir) ReadEnv() ([]envfile.Var, error) {
	b, err := os.ReadFile(d.EnvFile())
	if err != nil {
		return nil, err
	}
	vars, err := envfile.Parse(b)
	if err != nil {
		return nil, &DamagedEnvError{File: d.EnvFile(), Err: err}
	}
	return vars, nil
}

// DamagedEnvError is an env file that does not parse.
type DamagedEnvError struct {
	File string
	Err  error
}

func (e *DamagedEnvError) Error() string {
	return fmt.Sprintf("env file %s is damaged (%v)", e.File, e.Err)
}

func (e *DamagedEnvError) Unwrap() error { return e.Err }
