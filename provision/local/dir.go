// Package local owns mlstack's files on this machine: one folder per stack
// under the state dir, mode 0700, holding what AWS cannot give back (the
// secrets, the SSH key, the pinned host key and certificate) and the env file. Every write
// goes through Dir: atomic, mode 0600.
package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names inside a stack's folder.
const (
	secretsName    = "state.json"
	envName        = "env"
	sshKeyName     = "id_ed25519"
	hostKeyName    = "ssh_host_key.pub"
	knownHostsName = "known_hosts"
	serverCertName = "server.crt"
)

// Dir is one stack's folder of local files.
type Dir struct{ path string }

// StackDir is the folder of stack under the state dir root.
func StackDir(root, stack string) Dir { return Dir{path: filepath.Join(root, stack)} }

// Path is the folder itself.
func (d Dir) Path() string { return d.path }

func (d Dir) file(name string) string { return filepath.Join(d.path, name) }

// EnvFile holds the stack's client variables (export lines).
func (d Dir) EnvFile() string { return d.file(envName) }

// SSHKeyFile holds the private key of the stack's EC2 key pair.
func (d Dir) SSHKeyFile() string { return d.file(sshKeyName) }

// HostKeyFile holds the instance's SSH host key as the instance published
// it (public; pinned).
func (d Dir) HostKeyFile() string { return d.file(hostKeyName) }

// ServerCertFile holds the server's TLS certificate as the instance
// published it (public; pinned): clients trust it alone.
func (d Dir) ServerCertFile() string { return d.file(serverCertName) }

// KnownHostsFile pins the host key for the instance's public DNS name and IP.
func (d Dir) KnownHostsFile() string { return d.file(knownHostsName) }

// NotWritableError is a state directory that cannot be created or written:
// a usage problem, found before anything is created in AWS.
type NotWritableError struct {
	Dir string
	Err error
}

func (e *NotWritableError) Error() string {
	return fmt.Sprintf("state directory %s is not writable: %v", e.Dir, e.Err)
}

func (e *NotWritableError) Unwrap() error { return e.Err }

// notWritable keeps the cause (permission denied, not a directory) without
// the path that the caller names already.
func notWritable(dir string, err error) error {
	if u := errors.Unwrap(err); u != nil {
		err = u
	}
	return &NotWritableError{Dir: dir, Err: err}
}

// writeFile writes one file of the folder atomically with mode 0600, so an
// interrupt leaves the old or the new file, never half of one.
func (d Dir) writeFile(name string, data []byte) error {
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
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), d.file(name))
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// CheckWritable fails early when the folder cannot be written, before
// anything is created in AWS. A folder it made for the check it removes
// again: a run that fails later (bad credentials) leaves no empty folder.
func (d Dir) CheckWritable() error {
	made := !exists(d.path)
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return notWritable(d.path, err)
	}
	f, err := os.CreateTemp(d.path, ".probe*")
	if err == nil {
		f.Close()
		err = os.Remove(f.Name())
	}
	if made {
		_ = os.Remove(d.path) // empty unless another run wrote to it meanwhile
	}
	if err != nil {
		return notWritable(d.path, err)
	}
	return nil
}

// Remove deletes the stack's folder.
func (d Dir) Remove() error {
	if err := os.RemoveAll(d.path); err != nil {
		return fmt.Errorf("removing local state %s: %w", d.path, err)
	}
	return nil
}

// HasEnvFile reports whether this machine holds the stack's env file.
func (d Dir) HasEnvFile() bool { return exists(d.EnvFile()) }

// HasSSHKeys reports whether this machine holds the stack's login key and
// host key, the two files SSH to the instance needs.
func (d Dir) HasSSHKeys() bool {
	return exists(d.SSHKeyFile()) && exists(d.HostKeyFile())
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
