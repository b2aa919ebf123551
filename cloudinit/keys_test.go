package cloudinit

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/templates"
)

// nastySecrets are valid secrets full of characters that configparser,
// systemd or a shell would interpret.
var nastySecrets = []struct{ name, password, secretKey string }{
	{"quotes dollar backslash", `a'b"c$d\e-pw`, `a'b"c$d\e-flask-key`},
	{"percent interpolation", `%(here)s%%100%-pw`, `%(here)s%%100%-flask-key`},
	{"shell substitution", "$(reboot)`reboot`${HOME}", "$(reboot)`reboot`${HOME}-key"},
	{"trailing backslash", `ends-with-backslash\`, `ends-with-backslash-key\\`},
	{"ini lookalikes", `[mlflow] x = y ; z`, `KEY=value # comment`},
	{"escape sequences", `\n\t\x41\u0041"\"`, `\\n\\t'\''"'"'-flask-key`},
}

// keysRig runs templates/mlstack_keys.py as mlflow.service runs it, with the
// pinned MLflow venv's Python (boto3, cryptography), against moto's SSM.
type keysRig struct {
	t         *testing.T
	python    string
	ssm       *ssm.Client
	motoURL   string
	path      string // the stack's parameter path
	run, tls  string // MLSTACK_RUN_DIR, MLSTACK_TLS_DIR
	hostKey   string // the SSH host public key file
	script    string
	dns, ip   string
	secretIDs []string
	// destination is the unit's _MLFLOW_SERVER_ARTIFACT_DESTINATION.
	destination string
	env         []string // more of the unit's environment (MLSTACK_DATABASE), and knobs
}

func newKeysRig(t *testing.T) *keysRig {
	t.Helper()
	venv := os.Getenv("MLSTACK_TEST_MLFLOW_VENV")
	if venv == "" {
		testenv.Missing(t, "no MLflow venv (MLSTACK_TEST_MLFLOW_VENV is not set; scripts/mlflow-venv.sh makes one)")
	}
	// The shared moto: cmd/mlstack, whose tests reset moto, runs its own.
	moto := os.Getenv("MLSTACK_TEST_MOTO_URL")
	if moto == "" {
		testenv.Missing(t, "no moto server (MLSTACK_TEST_MOTO_URL is not set; scripts/test.sh starts one)")
	}
	dir := t.TempDir()
	r := &keysRig{t: t, python: filepath.Join(venv, "bin", "python"), motoURL: moto,
		path: fmt.Sprintf("/mlstack/keys%d/", time.Now().UnixNano()),
		run:  filepath.Join(dir, "run"), tls: filepath.Join(dir, "tls"),
		hostKey: filepath.Join(dir, "ssh_host_ed25519_key.pub"), script: filepath.Join(dir, "mlstack_keys.py"),
		dns: "ec2-54-1-2-3.compute-1.amazonaws.com", ip: "54.1.2.3", destination: keysDestination}
	r.ssm = ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	src, err := templates.FS.ReadFile("mlstack_keys.py")
	must(t, err)
	must(t, os.WriteFile(r.script, src, 0o644))
	must(t, os.Mkdir(r.run, 0o700))
	must(t, os.WriteFile(r.hostKey, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheTest root@ip-10-0-0-1\n"), 0o644))
	t.Cleanup(r.cleanup)
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// putSecrets writes the two SecureString parameters, as mlstack up does.
func (r *keysRig) putSecrets(password, secretKey string) {
	for name, v := range map[string]string{"admin-password": password, "flask-secret-key": secretKey} {
		_, err := r.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(r.path + name),
			Value: aws.String(v), Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)})
		must(r.t, err)
	}
	r.secretIDs = []string{password, secretKey}
}

// keysDestination is a unit's _MLFLOW_SERVER_ARTIFACT_DESTINATION.
const keysDestination = "s3://mlstack-keys-bucket/artifacts"

// command is the script as mlflow.service runs it, not started.
func (r *keysRig) command() *exec.Cmd {
	cmd := exec.Command(r.python, r.script)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + r.t.TempDir(),
		"MLSTACK_PARAM_PATH=" + r.path, "MLSTACK_ADMIN_USERNAME=admin",
		"MLSTACK_PUBLIC_DNS=" + r.dns, "MLSTACK_PUBLIC_IP=" + r.ip,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_ENDPOINT_URL_SSM=" + r.motoURL,
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"MLSTACK_RUN_DIR=" + r.run, "MLSTACK_TLS_DIR=" + r.tls, "MLSTACK_SSH_HOST_KEY=" + r.hostKey,
		"MLSTACK_KEYS_ATTEMPTS=2", "_MLFLOW_SERVER_ARTIFACT_DESTINATION=" + r.destination}, r.env...)
	return cmd
}

// exec runs the script once and returns its stderr.
func (r *keysRig) exec() (string, error) {
	cmd := r.command()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	r.noSecretIn(stderr.String())
	return stderr.String(), err
}

// noSecretIn fails the test when out shows a secret of the rig, as it is
// or URL-encoded (the database URI's form).
func (r *keysRig) noSecretIn(out string) {
	for _, s := range r.secretIDs {
		if strings.Contains(out, s) || strings.Contains(out, url.QueryEscape(s)) || strings.Contains(out, url.PathEscape(s)) {
			r.t.Errorf("mlstack_keys.py printed a secret")
		}
	}
}

// published returns a parameter's value and version ("" when absent).
func (r *keysRig) published(name string) (string, int64) {
	out, err := r.ssm.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(r.path + name)})
	if err != nil {
		return "", 0
	}
	return aws.ToString(out.Parameter.Value), out.Parameter.Version
}

// cleanup deletes the test's parameters and proves none is left.
func (r *keysRig) cleanup() {
	ctx := context.Background()
	var names []string
	for _, n := range []string{"admin-password", "flask-secret-key", "tls-cert", "ssh-host-key", "artifacts", "database", "db-password"} {
		names = append(names, r.path+n)
	}
	_, _ = r.ssm.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: names})
	out, err := r.ssm.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String(r.path), Recursive: aws.Bool(true)})
	if err != nil || len(out.Parameters) > 0 {
		r.t.Errorf("parameters left under %s: %v %v", r.path, out, err)
	}
}

func (r *keysRig) readFile(name string) (string, os.FileMode) {
	r.t.Helper()
	p := filepath.Join(r.run, name)
	if strings.HasPrefix(name, "tls/") {
		p = filepath.Join(r.tls, strings.TrimPrefix(name, "tls/"))
	}
	b, err := os.ReadFile(p)
	must(r.t, err)
	fi, err := os.Stat(p)
	must(r.t, err)
	return string(b), fi.Mode().Perm()
}

// TestKeysScriptSecrets: the secrets read from SSM reach the basic-auth
// config as configparser reads it and the environment file as systemd
// reads it, unchanged, in files only their owner may read, never printed.
func TestKeysScriptSecrets(t *testing.T) {
	t.Parallel()
	r := newKeysRig(t)
	py := pythonYAML(t)
	for _, tt := range nastySecrets {
		t.Run(tt.name, func(t *testing.T) {
			r.t = t
			r.putSecrets(tt.password, tt.secretKey)
			if out, err := r.exec(); err != nil {
				t.Fatalf("mlstack_keys.py: %v\n%s", err, out)
			}
			ini, mode := r.readFile("basic_auth.ini")
			if mode != 0o600 {
				t.Errorf("basic_auth.ini mode %o", mode)
			}
			cmd := exec.Command(py, "-c", `import configparser, sys
c = configparser.ConfigParser()
c.read_string(sys.stdin.read())
sys.stdout.write(c["mlflow"]["admin_username"] + "\n" + c["mlflow"]["admin_password"])`)
			cmd.Stdin = strings.NewReader(ini)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("configparser rejects basic_auth.ini: %v", err)
			}
			if string(out) != "admin\n"+tt.password {
				t.Error("admin_username / admin_password do not read back as stored in SSM")
			}
			env, mode := r.readFile("secrets.env")
			if mode != 0o600 || parseSystemdEnv(env)["MLFLOW_FLASK_SERVER_SECRET_KEY"] != tt.secretKey {
				t.Errorf("secrets.env (mode %o) does not give the Flask secret key as stored in SSM", mode)
			}
		})
	}
}

// TestKeysScriptTLSAndPublish: the key is made once and kept; the
// certificate names the public DNS name and IP, is made again when they
// change, and is published with the host key at every start.
func TestKeysScriptTLSAndPublish(t *testing.T) {
	t.Parallel()
	r := newKeysRig(t)
	r.putSecrets("a-good-password-1", "a-good-flask-secret-key")
	if out, err := r.exec(); err != nil {
		t.Fatalf("mlstack_keys.py: %v\n%s", err, out)
	}
	keyPEM, mode := r.readFile("tls/server.key")
	if mode != 0o600 || !strings.Contains(keyPEM, "PRIVATE KEY") {
		t.Errorf("server.key mode %o", mode)
	}
	certPEM, _ := r.readFile("tls/server.crt")
	pub, v1 := r.published("tls-cert")
	if pub != certPEM {
		t.Fatal("the published certificate is not the one the server serves")
	}
	cert := parseCert(t, certPEM)
	for _, h := range []string{r.dns, r.ip} {
		if err := cert.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
	if cert.IsCA || time.Until(cert.NotAfter) < 300*24*time.Hour {
		t.Errorf("certificate: CA %v, valid until %s", cert.IsCA, cert.NotAfter)
	}
	if hk, _ := r.published("ssh-host-key"); hk != "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheTest" {
		t.Errorf("published host key %q", hk)
	}

	// A restart with the same addresses: same key and certificate, published again.
	if out, err := r.exec(); err != nil {
		t.Fatalf("second start: %v\n%s", err, out)
	}
	pub2, v2 := r.published("tls-cert")
	if pub2 != certPEM || v2 <= v1 {
		t.Errorf("restart: certificate changed %v, version %d after %d (want it published again)", pub2 != certPEM, v2, v1)
	}

	// A stop and start: a new public IP, a new certificate, the same key.
	r.ip = "54.9.9.9"
	if out, err := r.exec(); err != nil {
		t.Fatalf("start with a new address: %v\n%s", err, out)
	}
	key2, _ := r.readFile("tls/server.key")
	pub3, _ := r.published("tls-cert")
	if key2 != keyPEM || pub3 == certPEM || parseCert(t, pub3).VerifyHostname("54.9.9.9") != nil {
		t.Error("after an address change: want the same key and a new certificate for the new address")
	}
}

// TestKeysScriptMissingSecret: without the parameters the start fails,
// naming them, and writes no config.
func TestKeysScriptMissingSecret(t *testing.T) {
	t.Parallel()
	r := newKeysRig(t)
	out, err := r.exec()
	if err == nil || !strings.Contains(out, r.path+"admin-password") {
		t.Fatalf("want a failure naming %sadmin-password: %v\n%s", r.path, err, out)
	}
	if _, err := os.Stat(filepath.Join(r.run, "basic_auth.ini")); err == nil {
		t.Error("basic_auth.ini written without secrets")
	}
}

// TestKeysScriptArtifactsMode: the stack's artifacts parameter, read at
// every start, sets the default artifact root for mlflow.service; no
// parameter is direct (stacks made before it), a value it does not know
// fails the start, naming the parameter.
func TestKeysScriptArtifactsMode(t *testing.T) {
	t.Parallel()
	r := newKeysRig(t)
	r.putSecrets("a-good-password-1", "a-good-flask-secret-key")
	for _, tt := range []struct {
		mode, root string // mode "": no parameter; root "": the start fails
	}{
		{"", keysDestination},
		{"proxied", "mlflow-artifacts:/"},
		{"direct", keysDestination},
		{"Proxied", ""},
		{"proxied", "mlflow-artifacts:/"},
	} {
		if tt.mode != "" {
			_, err := r.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(r.path + "artifacts"),
				Value: aws.String(tt.mode), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)})
			must(t, err)
		}
		must(t, os.RemoveAll(filepath.Join(r.run, "artifacts.env")))
		out, err := r.exec()
		if tt.root == "" {
			if err == nil || !strings.Contains(out, r.path+"artifacts is 'Proxied', want proxied or direct") {
				t.Errorf("mode %q: want a failure naming the parameter: %v\n%s", tt.mode, err, out)
			}
			continue
		}
		if err != nil {
			t.Fatalf("mode %q: %v\n%s", tt.mode, err, out)
		}
		env, mode := r.readFile("artifacts.env")
		if got := parseSystemdEnv(env)["_MLFLOW_SERVER_ARTIFACT_ROOT"]; got != tt.root || mode != 0o600 {
			t.Errorf("mode %q: artifact root %q (file mode %o), want %q", tt.mode, got, mode, tt.root)
		}
	}
}

func parseCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("not PEM: %.60q", s)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	must(t, err)
	return c
}
