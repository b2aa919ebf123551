// Package pgtest runs a private PostgreSQL cluster (Debian's postgresql
// package) on a loopback port for a test, as Amazon RDS serves mlstack's
// server: password (SCRAM) logins over TCP with SSL only, from a
// self-signed certificate. The cluster lives in a temp dir and runs in a
// process group of its own, stopped when the test ends. PostgreSQL refuses
// to run as root: as root it runs as the postgres system user the package
// made. Without the package the test fails in CI and is skipped and
// counted elsewhere (testenv).
package pgtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/proctest"
	"github.com/mlstack/mlstack/internal/sshdtest"
	"github.com/mlstack/mlstack/internal/testenv"
)

// Server is one running cluster.
type Server struct {
	Host string // 127.0.0.1, or StartAt's
	Port int
	Pid  int // the postmaster's, the leader of the cluster's process group
	Log  *sshdtest.SyncBuffer
	bin  string // the PostgreSQL version's bin dir
	dir  string // data dir, socket, certificate
	cred *syscall.Credential
}

// Start runs a new cluster on a free port of 127.0.0.1 and waits until it
// takes connections.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartAt(t, "127.0.0.1", testenv.FreePort(t))
}

// StartAt is Start on a given loopback address and port: the boot test's
// RDS stand-in must answer on the port moto gives the database's endpoint
// (5432), at an address no system PostgreSQL listens on (127.0.0.2). host
// must be a loopback address.
func StartAt(t testing.TB, host string, port int) *Server {
	t.Helper()
	s := &Server{Host: host, Port: port, Log: &sshdtest.SyncBuffer{}, bin: binDir(t)}
	s.dir, s.cred = ownedDir(t)
	s.run(t, filepath.Join(s.bin, "initdb"), "--no-sync", "-D", s.data(), "-U", "postgres", "-E", "UTF8", "--locale=C")
	// Like RDS with rds.force_ssl: no TCP login without SSL. From all of
	// loopback: a client of 127.0.0.2 connects from 127.0.0.1.
	s.write(t, filepath.Join(s.data(), "pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.0/8 scram-sha-256\n", 0o600)
	certPEM, keyPEM := selfSigned(t)
	s.write(t, filepath.Join(s.dir, "server.crt"), string(certPEM), 0o644)
	s.write(t, filepath.Join(s.dir, "server.key"), string(keyPEM), 0o600)

	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.data(),
		"-c", "listen_addresses="+s.Host, "-c", "port="+strconv.Itoa(s.Port), "-c", "unix_socket_directories="+s.dir,
		"-c", "ssl=on", "-c", "ssl_cert_file="+filepath.Join(s.dir, "server.crt"), "-c", "ssl_key_file="+filepath.Join(s.dir, "server.key"),
		// A test's data need not survive a crash of the machine.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=40", "-c", "shared_buffers=32MB")
	s.as(cmd)
	cmd.Stdout, cmd.Stderr = s.Log, s.Log
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("PostgreSQL log:\n%s", s.Log.String())
		}
	})
	// The postmaster forks a process per connection and its helpers: stop
	// the whole group (SIGTERM is a smart shutdown; its clients are gone by
	// then, as their cleanups ran first).
	exited, err := proctest.Start(t, cmd, 20*time.Second)
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	s.Pid = cmd.Process.Pid
	s.waitReady(t, exited)
	return s
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// SocketDir is the directory of the cluster's Unix socket, where the
// superuser logs in without a password (psql -h DIR).
func (s *Server) SocketDir() string { return s.dir }

// binDir is the newest PostgreSQL's bin dir (Debian: /usr/lib/postgresql/N/bin).
func binDir(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(a) - version(b) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	testenv.Missing(t, "PostgreSQL is not installed (Debian: apt-get install postgresql)")
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// ownedDir makes the cluster's dir, owned by the user PostgreSQL runs as:
// the postgres user when the tests run as root (t.TempDir's parents are
// root's, 0700), else the test's user. It is removed after the cluster
// has stopped.
func ownedDir(t testing.TB) (string, *syscall.Credential) {
	t.Helper()
	dir, err := os.MkdirTemp("", "mlstack-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() != 0 {
		return dir, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		testenv.Missing(t, "PostgreSQL is not installed (Debian: apt-get install postgresql)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

// as makes cmd run as the cluster's user, in its dir.
func (s *Server) as(cmd *exec.Cmd) {
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
}

func (s *Server) run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	s.as(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(name), err, out)
	}
}

func (s *Server) write(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if s.cred != nil {
		if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *Server) waitReady(t testing.TB, exited <-chan struct{}) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if _, err = s.query("postgres", "SELECT 1"); err == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("PostgreSQL exited before it took connections:\n%s", s.Log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("PostgreSQL took no connection within a minute: %v", err)
}

// query runs SQL as the superuser over the cluster's Unix socket and
// returns psql's unaligned output.
func (s *Server) query(db, sql string) (string, error) {
	cmd := exec.Command(filepath.Join(s.bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", s.dir, "-p", strconv.Itoa(s.Port), "-U", "postgres", "-d", db)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "PGCONNECT_TIMEOUT=5"}
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql: %w: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Query runs SQL in database db as the superuser, failing t on an error.
func (s *Server) Query(t testing.TB, db, sql string) string {
	t.Helper()
	out, err := s.query(db, sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CreateDatabase makes what RDS makes for its master user: a login role
// with password, and a database it owns.
func (s *Server) CreateDatabase(t testing.TB, user, password, db string) {
	t.Helper()
	s.Query(t, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD %s;\nCREATE DATABASE %s OWNER %s;\n",
		ident(user), literal(password), ident(db), ident(user)))
}

func ident(s string) string   { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// selfSigned makes the cluster's certificate: clients with sslmode=require
// encrypt without checking it, as mlstack's server does with RDS.
func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}
