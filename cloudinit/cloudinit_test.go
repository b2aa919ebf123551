package cloudinit

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mlstack/mlstack/templates"
)

var update = flag.Bool("update", false, "rewrite testdata/cloud-config.golden")

const (
	testPassword  = "Pw-0f-the-golden-admin"
	testSecretKey = "flask-secret-key-for-golden-test"
)

func validParams() Params {
	return Params{
		Stack:          "demo",
		Bucket:         "mlstack-demo-123456789012-us-east-1",
		Region:         "us-east-1",
		MLflowVersion:  DefaultMLflowVersion,
		AdminUsername:  "admin",
		AdminPassword:  testPassword,
		FlaskSecretKey: testSecretKey,
	}
}

// needTool finds an external checker. Locally a missing tool skips the test;
// in CI (CI set) it fails, because CI must never silently skip a check.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		missing(t, name+" is not installed: "+err.Error())
	}
	return path
}

func missing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skip(msg)
	}
	t.Fatal(msg + " (CI is set, so this is a failure, not a skip)")
}

// pythonYAML returns a python3 that can import PyYAML, the parser cloud-init uses.
func pythonYAML(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import yaml").Run() == nil {
			return py
		}
	}
	missing(t, "no python3 with PyYAML (Debian: python3-yaml)")
	return ""
}

func render(t *testing.T, p Params) []byte {
	t.Helper()
	out, err := Render(p)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return out
}

type writeFile struct {
	Path        string `json:"path"`
	Owner       string `json:"owner"`
	Permissions string `json:"permissions"`
	Defer       bool   `json:"defer"`
	Content     string `json:"content"`
}

type cloudConfig struct {
	Swap          map[string]any `json:"swap"`
	PackageUpdate bool           `json:"package_update"`
	Packages      []string       `json:"packages"`
	Users         []any          `json:"users"`
	WriteFiles    []writeFile    `json:"write_files"`
	Runcmd        []any          `json:"runcmd"`
}

func (c cloudConfig) file(t *testing.T, path string) writeFile {
	t.Helper()
	for _, f := range c.WriteFiles {
		if f.Path == path {
			return f
		}
	}
	t.Fatalf("write_files has no %s", path)
	return writeFile{}
}

// parse loads the user-data with PyYAML's safe_load, as cloud-init does.
func parse(t *testing.T, userData []byte) cloudConfig {
	t.Helper()
	cmd := exec.Command(pythonYAML(t), "-c",
		"import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
	cmd.Stdin = bytes.NewReader(userData)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("PyYAML cannot parse the user-data: %v\n%s", err, stderr.String())
	}
	var c cloudConfig
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("decode parsed user-data: %v", err)
	}
	return c
}

func TestRenderGolden(t *testing.T) {
	got := render(t, validParams())
	golden := filepath.Join("testdata", "cloud-config.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cloudinit -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered user-data differs from %s; review the change, then run go test ./cloudinit -update\n--- got ---\n%s", golden, got)
	}
}

func TestRenderStartsWithCloudConfigHeader(t *testing.T) {
	if got := render(t, validParams()); !bytes.HasPrefix(got, []byte("#cloud-config\n")) {
		t.Errorf("user-data starts with %q", got[:min(len(got), 20)])
	}
}

func TestRenderDefaultsMLflowVersion(t *testing.T) {
	p := validParams()
	p.MLflowVersion = ""
	c := parse(t, render(t, p))
	want := []any{"/usr/local/sbin/mlstack-setup", DefaultMLflowVersion}
	if len(c.Runcmd) != 1 || !sameList(c.Runcmd[0], want) {
		t.Errorf("runcmd = %v, want [%v]", c.Runcmd, want)
	}
}

func sameList(v any, want []any) bool {
	l, ok := v.([]any)
	if !ok || len(l) != len(want) {
		return false
	}
	for i := range l {
		if l[i] != want[i] {
			return false
		}
	}
	return true
}

func TestValidate(t *testing.T) {
	const secretPw = "Leaky-Password-%$"     // valid, so it must never be echoed
	const secretKey = "leaky-flask-key-9876" // valid, so it must never be echoed
	tests := []struct {
		name  string
		field string // "" means valid
		edit  func(*Params)
	}{
		{"valid", "", func(*Params) {}},
		{"valid with endpoint", "", func(p *Params) { p.S3EndpointURL = "http://127.0.0.1:9000" }},
		{"valid empty version means default", "", func(p *Params) { p.MLflowVersion = "" }},
		{"valid minimum version", "", func(p *Params) { p.MLflowVersion = "3.5.0" }},
		{"valid newer major", "", func(p *Params) { p.MLflowVersion = "4.0.0" }},
		{"valid nasty password", "", func(p *Params) { p.AdminPassword = `a'b"c$d\e%f#g;h` + "`x`" }},
		{"empty stack", "Stack", func(p *Params) { p.Stack = "" }},
		{"uppercase stack", "Stack", func(p *Params) { p.Stack = "Demo" }},
		{"stack with space", "Stack", func(p *Params) { p.Stack = "de mo" }},
		{"empty bucket", "Bucket", func(p *Params) { p.Bucket = "" }},
		{"bucket uppercase", "Bucket", func(p *Params) { p.Bucket = "Bucket-1" }},
		{"bucket double dot", "Bucket", func(p *Params) { p.Bucket = "a..b" }},
		{"bucket ip", "Bucket", func(p *Params) { p.Bucket = "192.168.1.1" }},
		{"bucket too long", "Bucket", func(p *Params) { p.Bucket = strings.Repeat("a", 64) }},
		{"bucket with slash", "Bucket", func(p *Params) { p.Bucket = "a/b" }},
		{"empty region", "Region", func(p *Params) { p.Region = "" }},
		{"bad region", "Region", func(p *Params) { p.Region = "us east 1" }},
		{"version with v", "MLflowVersion", func(p *Params) { p.MLflowVersion = "v3.17.2" }},
		{"version two parts", "MLflowVersion", func(p *Params) { p.MLflowVersion = "3.17" }},
		{"version rc", "MLflowVersion", func(p *Params) { p.MLflowVersion = "3.17.2rc1" }},
		{"version too old", "MLflowVersion", func(p *Params) { p.MLflowVersion = "3.4.9" }},
		{"version 2.x", "MLflowVersion", func(p *Params) { p.MLflowVersion = "2.22.0" }},
		{"version injection", "MLflowVersion", func(p *Params) { p.MLflowVersion = "3.17.2; rm -rf /" }},
		{"empty username", "AdminUsername", func(p *Params) { p.AdminUsername = "" }},
		{"username with colon", "AdminUsername", func(p *Params) { p.AdminUsername = "ad:min" }},
		{"username with newline", "AdminUsername", func(p *Params) { p.AdminUsername = "admin\nx" }},
		{"empty password", "AdminPassword", func(p *Params) { p.AdminPassword = "" }},
		{"short password", "AdminPassword", func(p *Params) { p.AdminPassword = "Sh0rt-pass!" }},
		{"password newline", "AdminPassword", func(p *Params) { p.AdminPassword = "first-line-ok\nsecond-line" }},
		{"password CR", "AdminPassword", func(p *Params) { p.AdminPassword = "first-line-ok\rsecond-line" }},
		{"password NUL", "AdminPassword", func(p *Params) { p.AdminPassword = "nul-inside\x00-password" }},
		{"password tab", "AdminPassword", func(p *Params) { p.AdminPassword = "tab-inside\t-password" }},
		{"password non-ASCII", "AdminPassword", func(p *Params) { p.AdminPassword = "pässwörd-with-umlauts" }},
		{"password leading space", "AdminPassword", func(p *Params) { p.AdminPassword = " leading-space-pw" }},
		{"password trailing space", "AdminPassword", func(p *Params) { p.AdminPassword = "trailing-space-pw " }},
		{"password too long", "AdminPassword", func(p *Params) { p.AdminPassword = strings.Repeat("p", 257) }},
		{"password legacy default", "AdminPassword", func(p *Params) { p.AdminPassword = "password1234" }},
		{"empty secret key", "FlaskSecretKey", func(p *Params) { p.FlaskSecretKey = "" }},
		{"short secret key", "FlaskSecretKey", func(p *Params) { p.FlaskSecretKey = "short-key" }},
		{"secret key newline", "FlaskSecretKey", func(p *Params) { p.FlaskSecretKey = "secret-key-line-1\nline-2" }},
		{"secret key too long", "FlaskSecretKey", func(p *Params) { p.FlaskSecretKey = strings.Repeat("k", 257) }},
		{"endpoint no scheme", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "127.0.0.1:9000" }},
		{"endpoint ftp", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "ftp://example.com" }},
		{"endpoint no host", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "http://" }},
		{"endpoint with space", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "http://exa mple.com" }},
		{"endpoint newline", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "http://example.com\nX=1" }},
		{"endpoint credentials", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "http://AKIDEXAMPLE:" + secretKey + "@example.com" }},
		{"endpoint bad escape", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "http://" + secretKey + "%zz@example.com" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validParams()
			p.AdminPassword = secretPw
			p.FlaskSecretKey = secretKey
			tt.edit(&p)
			err := p.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %s", tt.field)
			}
			if !errors.Is(err, ErrInvalidParams) {
				t.Errorf("error does not wrap ErrInvalidParams: %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.field+":") {
				t.Errorf("error %q does not name field %s", msg, tt.field)
			}
			for _, s := range []string{secretPw, secretKey, p.AdminPassword, p.FlaskSecretKey} {
				if s != "" && strings.Contains(msg, s) {
					t.Errorf("error %q contains a secret value", msg)
				}
			}
			if _, rerr := Render(p); !errors.Is(rerr, ErrInvalidParams) {
				t.Errorf("Render did not refuse the invalid params: %v", rerr)
			}
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	err := Params{}.Validate()
	if err == nil {
		t.Fatal("Validate() of zero Params = nil")
	}
	for _, f := range []string{"Stack", "Bucket", "Region", "AdminUsername", "AdminPassword", "FlaskSecretKey"} {
		if !strings.Contains(err.Error(), f+":") {
			t.Errorf("error does not name %s:\n%v", f, err)
		}
	}
}

// nastySecrets are valid secrets full of characters that YAML, configparser,
// systemd or a shell would interpret.
var nastySecrets = []struct{ name, password, secretKey string }{
	{"quotes dollar backslash", `a'b"c$d\e-pw`, `a'b"c$d\e-flask-key`},
	{"percent interpolation", `%(here)s%%100%-pw`, `%(here)s%%100%-flask-key`},
	{"shell substitution", "$(reboot)`reboot`${HOME}", "$(reboot)`reboot`${HOME}-key"},
	{"yaml indicators", `- &a *a !tag | > : # {} [] ,`, `? key: value # not a comment`},
	{"trailing backslash", `ends-with-backslash\`, `ends-with-backslash-key\\`},
	{"document markers", `--- ... %YAML 1.2`, `...---...---...---`},
	{"ini lookalikes", `[mlflow] x = y ; z`, `KEY=value # comment`},
	{"escape sequences", `\n\t\x41\u0041"\"`, `\\n\\t'\''"'"'-flask-key`},
}

func TestSecretsSurviveYAMLAndFileFormats(t *testing.T) {
	py := pythonYAML(t)
	for _, tt := range nastySecrets {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := validParams()
			p.AdminPassword = tt.password
			p.FlaskSecretKey = tt.secretKey
			p.S3EndpointURL = "http://127.0.0.1:9000/s3?x=$y"
			c := parse(t, render(t, p))

			// basic_auth.ini as MLflow reads it: ConfigParser() with default interpolation.
			ini := c.file(t, "/etc/mlflow/basic_auth.ini").Content
			cmd := exec.Command(py, "-c", `import configparser, json, sys
c = configparser.ConfigParser()
c.read_string(sys.stdin.read())
json.dump({k: c["mlflow"].get(k) for k in c["mlflow"]}, sys.stdout)`)
			cmd.Stdin = strings.NewReader(ini)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("configparser rejects basic_auth.ini: %v\n%s", err, ini)
			}
			var got map[string]string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if got["admin_password"] != tt.password {
				t.Errorf("admin_password reads back as %q, want %q", got["admin_password"], tt.password)
			}
			if got["admin_username"] != p.AdminUsername {
				t.Errorf("admin_username reads back as %q", got["admin_username"])
			}

			// mlflow.env as systemd reads an EnvironmentFile.
			env := parseSystemdEnv(c.file(t, "/etc/mlflow/mlflow.env").Content)
			if env["MLFLOW_FLASK_SERVER_SECRET_KEY"] != tt.secretKey {
				t.Errorf("MLFLOW_FLASK_SERVER_SECRET_KEY reads back as %q, want %q", env["MLFLOW_FLASK_SERVER_SECRET_KEY"], tt.secretKey)
			}
			for _, k := range []string{"MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
				if env[k] != p.S3EndpointURL {
					t.Errorf("%s reads back as %q, want %q", k, env[k], p.S3EndpointURL)
				}
			}

			// Secrets only in the two root/owner-only files, never in the unit
			// (systemctl show) or runcmd (ps, cloud-init logs).
			for _, f := range c.WriteFiles {
				if f.Path == "/etc/mlflow/basic_auth.ini" || f.Path == "/etc/mlflow/mlflow.env" {
					continue
				}
				if strings.Contains(f.Content, tt.password) || strings.Contains(f.Content, tt.secretKey) {
					t.Errorf("%s contains a secret", f.Path)
				}
			}
			if rc, _ := json.Marshal(c.Runcmd); bytes.Contains(rc, []byte(tt.password)) || bytes.Contains(rc, []byte(tt.secretKey)) {
				t.Error("runcmd contains a secret")
			}
		})
	}
}

// parseSystemdEnv follows systemd's env-file.c (parse_env_file_internal, as
// used for EnvironmentFile=): unquoted, '…' and "…" values, where inside
// double quotes a backslash escapes only " \ ` $ and stays literal before
// anything else. Nothing is expanded.
func parseSystemdEnv(s string) map[string]string {
	const (
		preKey = iota
		key
		preValue
		value
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
	)
	env := map[string]string{}
	state := preKey
	var k, v []byte
	lastWS := -1
	push := func() {
		if state == value && lastWS >= 0 {
			v = v[:lastWS]
		}
		env[strings.TrimRight(string(k), " \t")] = string(v)
		k, v, lastWS = nil, nil, -1
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case preKey:
			if c == '#' || c == ';' {
				state = comment
			} else if !strings.ContainsRune(" \t\n\r", rune(c)) {
				state, k = key, append(k, c)
			}
		case key:
			switch c {
			case '\n', '\r':
				state, k = preKey, nil
			case '=':
				state, lastWS = preValue, -1
			default:
				k = append(k, c)
			}
		case preValue:
			switch c {
			case '\n', '\r':
				push()
				state = preKey
			case '\'':
				state = singleQuote
			case '"':
				state = doubleQuote
			case '\\':
				state = valueEscape
			case ' ', '\t':
			default:
				state, v = value, append(v, c)
			}
		case value:
			switch c {
			case '\n', '\r':
				push()
				state = preKey
			case '\\':
				state, lastWS = valueEscape, -1
			default:
				if c == ' ' || c == '\t' {
					if lastWS < 0 {
						lastWS = len(v)
					}
				} else {
					lastWS = -1
				}
				v = append(v, c)
			}
		case valueEscape:
			state = value
			if c != '\n' && c != '\r' {
				v = append(v, c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				v = append(v, c)
			}
		case doubleQuote:
			if c == '"' {
				state = preValue
			} else if c == '\\' {
				state = doubleQuoteEscape
			} else {
				v = append(v, c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			if strings.IndexByte("\"\\`$", c) >= 0 {
				v = append(v, c)
			} else if c != '\n' {
				v = append(v, '\\', c)
			}
		case comment:
			if c == '\n' || c == '\r' {
				state = preKey
			}
		}
	}
	if state != preKey && state != key && state != comment {
		push()
	}
	return env
}

func TestParseSystemdEnv(t *testing.T) {
	got := parseSystemdEnv("# c\nA=plain  \nB=\"q\\\"\\$\\n\"\nC='s\\x'\n")
	want := map[string]string{"A": "plain", "B": `q"$\n`, "C": `s\x`}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
}

func TestCloudInitSchema(t *testing.T) {
	ci := needTool(t, "cloud-init")
	variants := map[string]Params{"plain": validParams()}
	p := validParams()
	p.S3EndpointURL = "http://127.0.0.1:9000"
	variants["endpoint"] = p
	for _, s := range nastySecrets {
		p := validParams()
		p.AdminPassword, p.FlaskSecretKey = s.password, s.secretKey
		variants["secrets "+s.name] = p
	}
	for name, p := range variants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "user-data")
			if err := os.WriteFile(f, render(t, p), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(ci, "schema", "--config-file", f).CombinedOutput()
			if err != nil {
				t.Fatalf("cloud-init schema: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "Valid cloud-config") {
				t.Errorf("cloud-init schema did not say valid:\n%s", out)
			}
		})
	}
}

func TestShellcheck(t *testing.T) {
	sc := needTool(t, "shellcheck")
	check := func(t *testing.T, name, script string) {
		t.Helper()
		cmd := exec.Command(sc, "--shell=sh", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", name, err, out)
		}
	}

	// The template files themselves.
	scripts, err := fs.Glob(templates.FS, "*.sh")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no *.sh in templates.FS (err %v)", err)
	}
	for _, name := range scripts {
		src, err := templates.FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		check(t, name, string(src))
	}

	// What actually lands on the instance: every written script, and any
	// runcmd entry given as a string (those run through sh).
	c := parse(t, render(t, validParams()))
	for _, f := range c.WriteFiles {
		if strings.HasPrefix(f.Content, "#!") {
			check(t, f.Path, f.Content)
		}
	}
	for i, rc := range c.Runcmd {
		if s, ok := rc.(string); ok {
			check(t, "runcmd entry "+string(rune('0'+i)), "#!/bin/sh\n"+s+"\n")
		}
	}
}

func TestUserDataSize(t *testing.T) {
	// The longest values Validate accepts, in the characters that grow most
	// when escaped.
	p := Params{
		Stack:          strings.Repeat("s", 63),
		Bucket:         strings.Repeat("b", 63),
		Region:         "ap-southeast-2",
		MLflowVersion:  "3.17.2",
		AdminUsername:  "a" + strings.Repeat("_", 63),
		AdminPassword:  strings.Repeat("%", maxSecretLen),
		FlaskSecretKey: strings.Repeat(`"`, maxSecretLen),
		S3EndpointURL:  "http://" + strings.Repeat("e", maxURLLen-len("http://")),
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("worst-case params must be valid: %v", err)
	}
	got := render(t, p)
	if len(got) > MaxUserDataSize {
		t.Errorf("worst-case user-data is %d bytes, over EC2's %d", len(got), MaxUserDataSize)
	}
	t.Logf("user-data: %d bytes typical, %d worst case, limit %d", len(render(t, validParams())), len(got), MaxUserDataSize)
}

func TestUserDataContents(t *testing.T) {
	p := validParams()
	p.S3EndpointURL = "http://127.0.0.1:9000"
	raw := render(t, p)
	// The server reaches S3 through the instance role; keys must never be here.
	for _, bad := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "aws_access_key", "AKIA"} {
		if bytes.Contains(raw, []byte(bad)) {
			t.Errorf("user-data contains %q", bad)
		}
	}
	c := parse(t, raw)

	if c.Swap["filename"] == nil || c.Swap["size"] == nil {
		t.Errorf("no swap file configured: %v", c.Swap)
	}
	if !contains(c.Packages, "python3-venv") {
		t.Errorf("packages %v lack python3-venv", c.Packages)
	}

	files := map[string]struct{ owner, perm string }{
		"/etc/mlflow/basic_auth.ini":                  {"mlflow:mlflow", "0600"},
		"/etc/mlflow/mlflow.env":                      {"root:root", "0600"},
		"/etc/systemd/system/mlflow.service":          {"root:root", "0644"},
		"/usr/local/libexec/mlstack/allowed-hosts.sh": {"root:root", "0755"},
		"/usr/local/sbin/mlstack-setup":               {"root:root", "0755"},
	}
	for path, want := range files {
		f := c.file(t, path)
		if f.Owner != want.owner || f.Permissions != want.perm {
			t.Errorf("%s: owner %s mode %s, want %s %s", path, f.Owner, f.Permissions, want.owner, want.perm)
		}
	}
	// The service user exists only after the users module, which runs after
	// the normal write_files stage.
	if !c.file(t, "/etc/mlflow/basic_auth.ini").Defer {
		t.Error("basic_auth.ini is owned by mlflow but not deferred")
	}

	ini := c.file(t, "/etc/mlflow/basic_auth.ini").Content
	for _, line := range []string{
		"[mlflow]",
		"default_permission = READ",
		"database_uri = sqlite:////var/lib/mlflow/basic_auth.db",
		"admin_username = admin",
		"admin_password = " + testPassword,
		"authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
	} {
		if !hasLine(ini, line) {
			t.Errorf("basic_auth.ini lacks line %q", line)
		}
	}

	env := parseSystemdEnv(c.file(t, "/etc/mlflow/mlflow.env").Content)
	wantEnv := map[string]string{
		"MLFLOW_AUTH_CONFIG_PATH":        "/etc/mlflow/basic_auth.ini",
		"MLFLOW_FLASK_SERVER_SECRET_KEY": testSecretKey,
		"AWS_DEFAULT_REGION":             "us-east-1",
		"MLFLOW_S3_ENDPOINT_URL":         "http://127.0.0.1:9000",
		"AWS_ENDPOINT_URL_S3":            "http://127.0.0.1:9000",
	}
	for k, w := range wantEnv {
		if env[k] != w {
			t.Errorf("mlflow.env %s = %q, want %q", k, env[k], w)
		}
	}

	unit := c.file(t, "/etc/systemd/system/mlflow.service").Content
	for _, line := range []string{
		"After=network-online.target",
		"User=mlflow",
		"Restart=always",
		"RestartSec=5",
		"EnvironmentFile=/etc/mlflow/mlflow.env",
		"EnvironmentFile=-/run/mlflow/allowed-hosts.env",
		"RuntimeDirectory=mlflow",
		"ExecStartPre=/usr/local/libexec/mlstack/allowed-hosts.sh /run/mlflow/allowed-hosts.env",
		"WantedBy=multi-user.target",
	} {
		if !hasLine(unit, line) {
			t.Errorf("mlflow.service lacks line %q", line)
		}
	}
	execStart := strings.Join(strings.Fields(strings.ReplaceAll(unitValue(t, unit, "ExecStart"), "\\\n", " ")), " ")
	want := "/opt/mlflow/bin/mlflow server --app-name basic-auth --host 0.0.0.0 --port 5000 --workers 1" +
		" --backend-store-uri sqlite:////var/lib/mlflow/mlflow.db --default-artifact-root s3://" + p.Bucket + "/artifacts"
	if execStart != want {
		t.Errorf("ExecStart =\n  %s\nwant\n  %s", execStart, want)
	}

	// The files that the unit and runcmd execute are the ones written.
	if len(c.Runcmd) != 1 || !sameList(c.Runcmd[0], []any{"/usr/local/sbin/mlstack-setup", DefaultMLflowVersion}) {
		t.Errorf("runcmd = %v", c.Runcmd)
	}
	setup := c.file(t, "/usr/local/sbin/mlstack-setup").Content
	if !strings.Contains(setup, `"mlflow[auth]==$version" boto3`) || !strings.Contains(setup, "systemctl enable --now mlflow.service") {
		t.Errorf("setup script does not install the pinned mlflow[auth] with boto3 and start the unit:\n%s", setup)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func hasLine(text, line string) bool {
	for l := range strings.Lines(text) {
		if strings.TrimRight(l, "\n") == line {
			return true
		}
	}
	return false
}

// unitValue returns KEY's value in a unit file, continuation lines included.
func unitValue(t *testing.T, unit, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + key + `=((?:.*\\\n)*.*)$`).FindStringSubmatch(unit)
	if m == nil {
		t.Fatalf("unit has no %s=", key)
	}
	return m[1]
}

// fakeIMDS serves the IMDSv2 endpoints allowed-hosts.sh uses. A metadata
// item set to "" answers 404, as IMDS does for an item the instance lacks.
type fakeIMDS struct {
	hostname, ipv4 string
	failTokens     int32 // answer this many token requests with 503 first
	tokens         atomic.Int32
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const token = "fake-token-123"
	switch {
	case r.URL.Path == "/latest/api/token":
		if r.Method != http.MethodPut || r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "IMDSv2 token needs PUT with a TTL header", http.StatusBadRequest)
			return
		}
		if f.tokens.Add(1) <= f.failTokens {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(token))
	case r.Header.Get("X-aws-ec2-metadata-token") != token:
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	case r.Method != http.MethodGet:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	case r.URL.Path == "/latest/meta-data/public-hostname" && f.hostname != "":
		_, _ = w.Write([]byte(f.hostname))
	case r.URL.Path == "/latest/meta-data/public-ipv4" && f.ipv4 != "":
		_, _ = w.Write([]byte(f.ipv4))
	default:
		http.NotFound(w, r)
	}
}

func TestAllowedHostsScript(t *testing.T) {
	needTool(t, "curl")
	sh := needTool(t, "sh")
	script, err := templates.FS.ReadFile("allowed-hosts.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	scriptPath := filepath.Join(dir, "allowed-hosts.sh")
	if err := os.WriteFile(scriptPath, script, 0o755); err != nil {
		t.Fatal(err)
	}

	// An address where nothing listens, for "IMDS unreachable".
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + l.Addr().String()
	l.Close()

	const (
		dns = "ec2-54-1-2-3.compute-1.amazonaws.com"
		ip  = "54.1.2.3"
	)
	local := ",localhost,localhost:5000,127.0.0.1,127.0.0.1:5000"
	tests := []struct {
		name     string
		imds     *fakeIMDS // nil: unreachable
		want     string    // expected file content; "" means the script must fail
		inStderr string
	}{
		{"dns and ip", &fakeIMDS{hostname: dns, ipv4: ip},
			"MLFLOW_SERVER_ALLOWED_HOSTS=" + dns + "," + dns + ":5000," + ip + "," + ip + ":5000" + local + "\n", ""},
		{"token retried", &fakeIMDS{hostname: dns, ipv4: ip, failTokens: 2},
			"MLFLOW_SERVER_ALLOWED_HOSTS=" + dns + "," + dns + ":5000," + ip + "," + ip + ":5000" + local + "\n", "attempt 2/3"},
		{"no public dns", &fakeIMDS{ipv4: ip},
			"MLFLOW_SERVER_ALLOWED_HOSTS=" + ip + "," + ip + ":5000" + local + "\n", "no public DNS name"},
		{"no public address", &fakeIMDS{}, "", "giving up"},
		{"token always refused", &fakeIMDS{hostname: dns, ipv4: ip, failTokens: 100}, "", "giving up"},
		{"unreachable", nil, "", "giving up"},
		{"wildcard hostname", &fakeIMDS{hostname: "*", ipv4: ip}, "", "refusing"},
		{"wildcard in hostname", &fakeIMDS{hostname: "ec2-*.amazonaws.com", ipv4: ip}, "", "refusing"},
		{"injection in ip", &fakeIMDS{hostname: dns, ipv4: "1.2.3.4\nMLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE=true"}, "", "refusing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := deadURL
			if tt.imds != nil {
				srv := httptest.NewServer(tt.imds)
				defer srv.Close()
				url = srv.URL
			}
			out := filepath.Join(t.TempDir(), "allowed-hosts.env")
			cmd := exec.Command(sh, scriptPath, out)
			cmd.Env = append(os.Environ(),
				"MLSTACK_IMDS_ENDPOINT="+url,
				"MLSTACK_IMDS_ATTEMPTS=3",
				"MLSTACK_IMDS_RETRY_DELAY=0",
			)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			got, readErr := os.ReadFile(out)
			if tt.want == "" {
				if err == nil {
					t.Errorf("script succeeded, want failure; wrote %q", got)
				}
				if readErr == nil {
					t.Errorf("failed script left an env file: %q", got)
				}
			} else {
				if err != nil {
					t.Fatalf("script failed: %v\n%s", err, stderr.String())
				}
				if string(got) != tt.want {
					t.Errorf("env file = %q, want %q", got, tt.want)
				}
				if strings.Contains(string(got), "*") {
					t.Errorf("env file has a wildcard: %q", got)
				}
			}
			if !strings.Contains(stderr.String(), tt.inStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.inStderr, stderr.String())
			}
		})
	}
}

// TestYAMLScalars checks both scalar styles yamlText picks against PyYAML,
// including strings that a block scalar cannot carry.
func TestYAMLScalars(t *testing.T) {
	cases := []string{
		"plain\n",
		"two\nlines\n",
		"no trailing newline",
		"two trailing newlines\n\n",
		"\nleading newline\n",
		"  leading spaces\n",
		"inner\n\n  blank and indented\n",
		"tab\tinside\n",
		"carriage\r\nreturn\n",
		"nul\x00bell\x07del\x7f\n",
		"unicode é ü 日本 😀\n",
		"line separators \u2028 \u0085\n",
		`quotes ' " backslash \ # : - [ ] { } & * ! | > % @ ` + "`\n",
		"--- \n...\n",
		"",
	}
	var doc strings.Builder
	keys := make([]string, len(cases))
	for i, s := range cases {
		keys[i] = "k" + strconv.Itoa(i)
		doc.WriteString(keys[i] + ": " + yamlText(2, s) + "\n")
		doc.WriteString(keys[i] + "q: " + yamlQuote(s) + "\n")
	}
	cmd := exec.Command(pythonYAML(t), "-c",
		"import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
	cmd.Stdin = strings.NewReader(doc.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("PyYAML: %v\n%s\n%s", err, out, doc.String())
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for i, s := range cases {
		if got[keys[i]] != s {
			t.Errorf("yamlText(%q) reads back as %q", s, got[keys[i]])
		}
		if got[keys[i]+"q"] != s {
			t.Errorf("yamlQuote(%q) reads back as %q", s, got[keys[i]+"q"])
		}
	}
}
