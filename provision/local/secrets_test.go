package local

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func sampleSecrets() *Secrets {
	return &Secrets{
		Stack: "demo", Account: "123456789012", Region: "eu-west-3",
		AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s3cr3t/+=", MLflowUser: "admin",
		MLflowPassword: "pw'\"$`", FlaskSecretKey: "flask", SSHPublicKey: "ssh-ed25519 AAAA mlstack-demo\n",
	}
}

func modeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestSecretsSaveLoad(t *testing.T) {
	tests := []struct {
		name     string
		preexist bool // the stack dir already exists with a loose mode
	}{
		{"fresh dir", false},
		{"pre-existing 0755 dir", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			d := StackDir(root, "demo")
			if tt.preexist {
				if err := os.Mkdir(d.path, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(d.path, 0o755); err != nil { // beat the umask
					t.Fatal(err)
				}
			}
			want := sampleSecrets()
			if err := d.Save(want); err != nil {
				t.Fatalf("save: %v", err)
			}
			got, err := d.Load()
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if got == nil || !reflect.DeepEqual(*got, *want) {
				t.Errorf("load = %+v, want %+v", got, want)
			}
			// Secrets: the file 0600 and the folder 0700, whatever existed before.
			if m := modeOf(t, d.file(secretsName)); m != 0o600 {
				t.Errorf("state.json mode %o, want 600", m)
			}
			if m := modeOf(t, d.path); m != 0o700 {
				t.Errorf("state dir mode %o, want 700", m)
			}
		})
	}
}

func TestSecretsLoadMissing(t *testing.T) {
	st, err := StackDir(t.TempDir(), "demo").Load()
	if st != nil || err != nil {
		t.Errorf("load of a missing state = %v, %v; want nil, nil", st, err)
	}
}

// A corrupt state file must not echo its content: it holds secrets.
func TestSecretsLoadCorruptDoesNotLeak(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	if err := d.writeFile(secretsName, []byte(`{"secret_access_key": "TOPSECRETVALUE"`)); err != nil {
		t.Fatal(err)
	}
	_, err := d.Load()
	if err == nil {
		t.Fatal("load accepted invalid JSON")
	}
	if strings.Contains(err.Error(), "TOPSECRETVALUE") {
		t.Errorf("error leaks the file content: %v", err)
	}
}

func TestWriteFileAtomicNoTempLeft(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	for i, content := range []string{"first", "second, longer content"} {
		if err := d.writeFile("env", []byte(content)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		b, err := os.ReadFile(d.EnvFile())
		if err != nil || string(b) != content {
			t.Errorf("after write %d: %q, %v", i, b, err)
		}
	}
	entries, err := os.ReadDir(d.path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "env" {
		t.Errorf("state dir holds %v, want only [env]", names)
	}
	if m := modeOf(t, d.EnvFile()); m != 0o600 {
		t.Errorf("env mode %o, want 600", m)
	}
}

func TestLoadFor(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	if err := d.Save(sampleSecrets()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		account, region string
		ok              bool
	}{
		{"same", "123456789012", "eu-west-3", true},
		{"other account", "210987654321", "eu-west-3", false},
		{"other region", "123456789012", "us-east-1", false},
		{"both", "210987654321", "us-east-1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := d.LoadFor(tt.account, tt.region)
			if tt.ok {
				if err != nil || s == nil || !reflect.DeepEqual(*s, *sampleSecrets()) {
					t.Fatalf("LoadFor = %+v, %v", s, err)
				}
				return
			}
			var fe *ForeignError
			if !errors.As(err, &fe) || s != nil {
				t.Fatalf("LoadFor = %v, %v; want a *ForeignError", s, err)
			}
			// The message names both identities so the user can pick the right one.
			for _, want := range []string{d.Path(), "123456789012", "eu-west-3", tt.account, tt.region} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
		})
	}
	if s, err := StackDir(t.TempDir(), "none").LoadFor("1", "eu-west-3"); s != nil || err != nil {
		t.Errorf("LoadFor of a missing state = %v, %v; want nil, nil", s, err)
	}
}

func TestRandomSecret(t *testing.T) {
	tests := []int{1, 32, 48, 200}
	for _, n := range tests {
		s, err := RandomSecret(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != n {
			t.Errorf("RandomSecret(%d) has length %d", n, len(s))
		}
		for _, r := range s {
			if !strings.ContainsRune(passwordAlphabet, r) {
				t.Errorf("RandomSecret(%d) = %q has %q outside the alphabet", n, s, r)
			}
		}
	}
	a, errA := RandomSecret(32)
	b, errB := RandomSecret(32)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a == b {
		t.Errorf("two secrets are equal: %q", a)
	}
	// The alphabet must need no quoting and avoid look-alikes.
	for _, bad := range "0O1lI'\"$`\\ " {
		if strings.ContainsRune(passwordAlphabet, bad) {
			t.Errorf("alphabet contains %q", bad)
		}
	}
}

func TestCheckWritable(t *testing.T) {
	root := t.TempDir()
	// Tests run as root, where permission bits do not stop writes: a path
	// below a regular file cannot be created by anyone.
	file := filepath.Join(root, "afile")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  Dir
		ok   bool
	}{
		{"new dir", StackDir(root, "demo"), true},
		{"below a file", Dir{path: filepath.Join(file, "sub")}, false},
		{"is a file", Dir{path: file}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.dir.CheckWritable()
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckWritable = %v", err)
				}
				// The folder it made for the check is gone again.
				if _, err := os.Stat(tt.dir.path); !os.IsNotExist(err) {
					t.Errorf("CheckWritable left %s behind (%v)", tt.dir.path, err)
				}
				// An existing folder stays, without the probe.
				must(t, os.MkdirAll(tt.dir.path, 0o700))
				must(t, tt.dir.CheckWritable())
				if entries, err := os.ReadDir(tt.dir.path); err != nil || len(entries) != 0 {
					t.Errorf("probe file left behind: %v %v", entries, err)
				}
				return
			}
			var nw *NotWritableError
			if !errors.As(err, &nw) {
				t.Fatalf("CheckWritable = %v, want a *NotWritableError", err)
			}
			if !strings.Contains(err.Error(), tt.dir.path) || strings.Contains(err.Error(), "<nil>") {
				t.Errorf("message %q should name the dir and the cause", err)
			}
		})
	}
}

func TestDirRemove(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	if err := d.Save(sampleSecrets()); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.path); !os.IsNotExist(err) {
		t.Errorf("state dir still there: %v", err)
	}
	// Removing again is fine: down must be safe to re-run.
	if err := d.Remove(); err != nil {
		t.Errorf("second remove: %v", err)
	}
}

// NewSSHKey produces what the state dir stores: an OpenSSH
// private key and its authorized_keys line.
func TestNewSSHKey(t *testing.T) {
	priv, authorized, err := NewSSHKey("mlstack-demo")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatalf("ssh.ParsePrivateKey: %v", err)
	}
	if got := signer.PublicKey().Type(); got != ssh.KeyAlgoED25519 {
		t.Errorf("key type %q, want %q", got, ssh.KeyAlgoED25519)
	}
	pub, _, _, rest, err := ssh.ParseAuthorizedKey(authorized)
	if err != nil {
		t.Fatalf("authorized line %q: %v", authorized, err)
	}
	if len(rest) != 0 {
		t.Errorf("authorized line has trailing data %q", rest)
	}
	if !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
		t.Error("authorized key does not match the private key")
	}
	if !bytes.HasPrefix(priv, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Errorf("private key is not OpenSSH PEM: %.40q", priv)
	}
	// Two calls give two keys.
	_, other, err := NewSSHKey("mlstack-demo")
	if err != nil || bytes.Equal(other, authorized) {
		t.Errorf("second key equals the first (err %v)", err)
	}
}
