package secretscan

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/mlstack/mlstack/provision/local"
)

// SecretFiles are the files of a stack's folder that hold secrets by
// design (docs/secrets.md, "Local state and secrets"). Every other file under a
// state dir (known_hosts, lock files, anything new) must hold none.
var SecretFiles = map[string]bool{"state.json": true, "env": true, "id_ed25519": true}

// AddStateDir adds the secrets of every stack folder under root, an
// mlstack state dir: from state.json the secret access key, the MLflow
// password and the Flask secret key; from id_ed25519 the private key. It returns the other regular
// files under root, sorted: the ones that must hold no secret. A missing
// root, or a file removed meanwhile, has nothing; a secret file that cannot
// be read is an error, since its secrets would go unscanned.
func (s *Scanner) AddStateDir(root string) (others []string, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			return nil // no state dir (or not a directory), or removed meanwhile by a down
		case err != nil:
			return err
		case !d.Type().IsRegular():
			return nil
		case !SecretFiles[d.Name()]:
			others = append(others, path)
			return nil
		case d.Name() == "env": // holds the state.json secrets again
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Name() == "state.json" {
			return s.addState(path, b)
		}
		s.AddPrivateKey(path, b)
		return nil
	})
	sort.Strings(others)
	return others, err
}

func (s *Scanner) addState(path string, b []byte) error {
	var st local.Secrets
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("%s is not JSON, so its secrets cannot be scanned for: %w", path, err)
	}
	for what, v := range map[string]string{"secret access key": st.SecretAccessKey, "MLflow password": st.MLflowPassword,
		"Flask secret key": st.FlaskSecretKey} {
		s.AddString(what+" ("+path+")", v)
	}
	for name, v := range st.Users {
		s.AddString("MLflow password of user "+name+" ("+path+")", v)
	}
	return nil
}

// AddPrivateKey adds an SSH private key: for ed25519, its seed, and the
// base64 of the seed as it sits in the key file, cut by its line breaks, so
// that a printed key file is found too. A file that does not parse adds
// its lines.
func (s *Scanner) AddPrivateKey(path string, pemBytes []byte) {
	what := "SSH private key (" + path + ")"
	var body [][]byte
	for _, line := range bytes.Split(pemBytes, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 && !bytes.HasPrefix(line, []byte("-----")) {
			body = append(body, line)
		}
	}
	// The secret part alone: the file's other lines also hold the public
	// key, which a certificate or an authorized_keys line shows by design
	// (the lines of a P-256 key's PEM matched its own certificate).
	var seed []byte
	k, err := ssh.ParseRawPrivateKey(pemBytes)
	switch priv := k.(type) {
	case *ed25519.PrivateKey:
		seed = priv.Seed()
	case *ecdsa.PrivateKey:
		// The scalar, fixed-length big-endian; a curve Bytes cannot
		// encode leaves seed nil: the lines are scanned instead.
		seed, _ = priv.Bytes()
	}
	if err != nil || seed == nil {
		for _, line := range body {
			s.Add(what, line)
		}
		return
	}
	s.Add(what, seed)
	block, _ := pem.Decode(pemBytes)
	off := -1
	if block != nil {
		off = bytes.Index(block.Bytes, seed)
	}
	if off < 0 {
		return
	}
	// The characters made of the seed's bits alone, in the body's text.
	first, last := (8*off+5)/6, 8*(off+len(seed))/6
	pos := 0
	for _, line := range body {
		from, to := max(first-pos, 0), min(last-pos, len(line))
		if from < to {
			s.Add(what+", as in the file", line[from:to])
		}
		pos += len(line)
	}
}

// ScanPaths scans files, and every regular file under directories, except
// the files and directories skip (if not nil) returns true for. It returns
// the findings and how many files it read; a path that does not exist is
// an error.
func (s *Scanner) ScanPaths(paths []string, skip func(path string) bool) (findings []Finding, files int, err error) {
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if skip != nil && path != root && skip(path) {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			findings = append(findings, s.Scan(path, b)...)
			return nil
		})
		if err != nil {
			return findings, files, err
		}
	}
	return findings, files, nil
}
