package cloudinit

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

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
