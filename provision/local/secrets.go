package local

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/big"
	"os"
)

// Secrets is what AWS cannot give back, kept in state.json (0600). The SSH
// private keys live in files of their own, never in this JSON.
type Secrets struct {
	Stack           string `json:"stack"`
	Account         string `json:"account"`
	Region          string `json:"region"`
	AccessKeyID     string `json:"access_key_id,omitempty"`
	SecretAccessKey string `json:"secret_access_key,omitempty"`
	// MLflowUser and MLflowPassword are the server's admin login: it
	// stays here, and never goes into an env file.
	MLflowUser     string `json:"mlflow_username"`
	MLflowPassword string `json:"mlflow_password"`
	// Users are the non-admin MLflow logins made from this machine, name →
	// password; EnvUser is the one the env file carries (up's creator).
	Users          map[string]string `json:"mlflow_users,omitempty"`
	EnvUser        string            `json:"env_user,omitempty"`
	FlaskSecretKey string            `json:"flask_secret_key"`
	SSHPublicKey   string            `json:"ssh_public_key"`
	// LaunchNonce varies the RunInstances client token between launches.
	LaunchNonce string `json:"launch_nonce,omitempty"`
	// InstanceID is the server this machine launched or kept last: up
	// keeps it rather than another instance of the stack.
	InstanceID string `json:"instance_id,omitempty"`
	// Bucket is the stack's bucket; PendingBucket one that this machine
	// created and has not tagged yet (set just before CreateBucket).
	Bucket        string `json:"bucket,omitempty"`
	PendingBucket string `json:"pending_bucket,omitempty"`
	// AllowCIDRs and SSH are what the last up here asked for: commands that
	// read only local files advise an up that keeps them.
	AllowCIDRs []string `json:"allow_cidrs,omitempty"`
	SSH        bool     `json:"ssh,omitempty"`
	// Artifacts is the stack's artifacts mode as the last up here set it
	// ("" before modes: direct); proxied env files carry no AWS key.
	Artifacts string `json:"artifacts,omitempty"`
	// Database is the stack's database engine as the last up here set it
	// (sqlite, postgres): an up interrupted before RDS made the database
	// still knows which.
	Database string `json:"database,omitempty"`
}

// Clone is a copy that shares nothing with s.
func (s Secrets) Clone() Secrets {
	s.Users = maps.Clone(s.Users)
	return s
}

// SetUser records name's password ("" forgets the user).
func (s *Secrets) SetUser(name, password string) {
	if password == "" {
		delete(s.Users, name)
		return
	}
	if s.Users == nil {
		s.Users = map[string]string{}
	}
	s.Users[name] = password
}

// Load reads the secrets; a missing file gives (nil, nil).
func (d Dir) Load() (*Secrets, error) {
	b, err := os.ReadFile(d.file(secretsName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading local state: %w", err)
	}
	var s Secrets
	if err := json.Unmarshal(b, &s); err != nil {
		// Never echo the content: it holds secrets.
		return nil, fmt.Errorf("local state %s is not valid JSON; move it away to start over", d.file(secretsName))
	}
	return &s, nil
}

// LoadFor reads the secrets and refuses those made for another account or
// region (a *ForeignError); a missing file gives (nil, nil).
func (d Dir) LoadFor(account, region string) (*Secrets, error) {
	s, err := d.Load()
	if err != nil || s == nil {
		return s, err
	}
	if s.Account != account || s.Region != region {
		return nil, &ForeignError{Dir: d.path, Stack: s.Stack, Account: s.Account, Region: s.Region, WantAccount: account, WantRegion: region}
	}
	return s, nil
}

// Save writes the secrets atomically.
func (d Dir) Save(s *Secrets) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding local state: %w", err)
	}
	return d.writeFile(secretsName, b)
}

// ForeignError is a state folder made for another account or region: its
// secrets belong to another stack of the same name.
type ForeignError struct {
	Dir, Stack, Account, Region string
	WantAccount, WantRegion     string
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("local state %s belongs to stack %q in account %s, region %s (you are in account %s, region %s): "+
		"pass another --state-dir or the matching --region/--profile", e.Dir, e.Stack, e.Account, e.Region, e.WantAccount, e.WantRegion)
}

const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// RandomSecret returns n characters from a crypto-random source. The
// alphabet avoids characters that need quoting anywhere.
func RandomSecret(n int) (string, error) {
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
