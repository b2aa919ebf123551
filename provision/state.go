package provision

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
)

// State is what AWS cannot give back: secrets. It lives in
// <state-dir>/<stack>/state.json (0600) in a 0700 directory.
type State struct {
	// hostKey is the instance's SSH host key, kept in its own 0600 file
	// (ssh_host_ed25519_key), never in this JSON.
	hostKey *hostKey

	Stack           string `json:"stack"`
	Account         string `json:"account"`
	Region          string `json:"region"`
	AccessKeyID     string `json:"access_key_id,omitempty"`
	SecretAccessKey string `json:"secret_access_key,omitempty"`
	MLflowUser      string `json:"mlflow_username"`
	MLflowPassword  string `json:"mlflow_password"`
	FlaskSecretKey  string `json:"flask_secret_key"`
	SSHPublicKey    string `json:"ssh_public_key"`
	// LaunchNonce varies the RunInstances client token between launches.
	LaunchNonce string `json:"launch_nonce,omitempty"`
}

// stateDir is one stack's folder of local state.
type stateDir struct{ path string }

func newStateDir(root, stack string) stateDir { return stateDir{path: filepath.Join(root, stack)} }

func (d stateDir) file(name string) string { return filepath.Join(d.path, name) }

// EnvFile is where up writes the stack's variables.
func (d stateDir) EnvFile() string { return d.file("env") }

// SSHKeyFile holds the private key of the stack's key pair.
func (d stateDir) SSHKeyFile() string { return d.file("id_ed25519") }

// load reads the state; a missing file gives (nil, nil).
func (d stateDir) load() (*State, error) {
	b, err := os.ReadFile(d.file("state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading local state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		// Never echo the content: it holds secrets.
		return nil, fmt.Errorf("local state %s is not valid JSON; move it away to start over", d.file("state.json"))
	}
	return &s, nil
}

// loadFor reads the state and refuses one made for another account or
// region; a missing file gives (nil, nil).
func (d stateDir) loadFor(account, region string) (*State, error) {
	st, err := d.load()
	if err != nil || st == nil {
		return st, err
	}
	if err := st.checkIdentity(d.path, account, region); err != nil {
		return nil, err
	}
	return st, nil
}

// save writes the state atomically, so an interrupt leaves the old or the new file.
func (d stateDir) save(s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding local state: %w", err)
	}
	return d.writeFile("state.json", b)
}

// writeFile writes one file of the state dir atomically with mode 0600.
func (d stateDir) writeFile(name string, data []byte) error {
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	// MkdirAll keeps an existing directory's mode; secrets need 0700.
	if err := os.Chmod(d.path, 0o700); err != nil {
		return fmt.Errorf("securing state directory: %w", err)
	}
	tmp, err := os.CreateTemp(d.path, "."+name+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), d.file(name)); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// checkWritable fails early (a usage error) when the state dir cannot be
// written, before anything is created in AWS.
func (d stateDir) checkWritable() error {
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return usagef("state directory %s is not writable: %v", d.path, errors.Unwrap(err))
	}
	f, err := os.CreateTemp(d.path, ".probe*")
	if err != nil {
		return usagef("state directory %s is not writable: %v", d.path, errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// remove deletes the stack's local state.
func (d stateDir) remove() error {
	if err := os.RemoveAll(d.path); err != nil {
		return fmt.Errorf("removing local state %s: %w", d.path, err)
	}
	return nil
}

// checkIdentity refuses a state folder made for another account or region:
// its secrets belong to another stack of the same name.
func (s *State) checkIdentity(dir, account, region string) error {
	if s.Account != account || s.Region != region {
		return usagef("local state %s belongs to stack %q in account %s, region %s (you are in account %s, region %s): "+
			"pass another --state-dir or the matching --region/--profile", dir, s.Stack, s.Account, s.Region, account, region)
	}
	return nil
}

const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// randomSecret returns n characters from a crypto-random source. The
// alphabet avoids characters that need quoting anywhere.
func randomSecret(n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(passwordAlphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generating secret: %w", err)
		}
		b[i] = passwordAlphabet[v.Int64()]
	}
	return string(b), nil
}
