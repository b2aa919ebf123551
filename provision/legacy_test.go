package provision

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local"
)

// legacyUserData is what an earlier mlstack sent: the admin password in a
// basic-auth file, gzip-compressed.
func legacyUserData(t *testing.T) string {
	t.Helper()
	doc := "#cloud-config\nwrite_files:\n  - path: /etc/mlflow/basic_auth.ini\n    content: |\n      admin_password = old-password-123\n"
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	must(t, zw.Close())
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// TestUpKeepsLegacyStackWorking: up on a stack made before TLS and SSM
// keeps its plain-HTTP server working, writes the http URI without a
// certificate, and says what changed and which commands move it over.
func TestUpKeepsLegacyStackWorking(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		userData func(t *testing.T) string
		legacy   bool
	}{
		{"earlier stack", legacyUserData, true},
		{"today's stack", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newInstalledFake(t)
			dir := upStack(t, f, "demo")
			id := f.LiveInstances()[0]
			if tc.userData != nil {
				f.Mu.Lock()
				f.Instance(id).UserData = tc.userData(t)
				f.Mu.Unlock()
			}
			o, out, log := upOpts(dir, "demo")
			mustUp(t, f, o)
			uri := strings.TrimSpace(out.String())
			env, err := os.ReadFile(local.StackDir(dir, "demo").EnvFile())
			must(t, err)
			warned := strings.Contains(log.String(), "made by an earlier mlstack")
			if tc.legacy {
				if !strings.HasPrefix(uri, "http://") || !strings.Contains(string(env), "MLFLOW_TRACKING_URI='"+uri+"'") {
					t.Errorf("legacy stack: URI %q, env file:\n%s", uri, env)
				}
				if strings.Contains(string(env), "MLFLOW_TRACKING_SERVER_CERT_PATH=") {
					t.Errorf("legacy env file names a certificate:\n%s", env)
				}
				for _, want := range []string{"plain HTTP", "user-data holds", "`mlstack down --stack demo --state-dir " + dir, "--yes`", "`mlstack up --stack demo --state-dir " + dir} {
					if !strings.Contains(log.String(), want) {
						t.Errorf("warning lacks %q:\n%s", want, log)
					}
				}
				return
			}
			if warned || !strings.HasPrefix(uri, "https://") || !strings.Contains(string(env), "MLFLOW_TRACKING_SERVER_CERT_PATH=") {
				t.Errorf("today's stack: warned %v, URI %q, env:\n%s", warned, uri, env)
			}
		})
	}
}

// TestStatusOfEarlierStack: status shows an earlier stack's plain-HTTP
// address and asks its health there, not over https.
func TestStatusOfEarlierStack(t *testing.T) {
	t.Parallel()
	for _, legacy := range []bool{true, false} {
		f := newInstalledFake(t)
		upStack(t, f, "demo")
		id := f.LiveInstances()[0]
		if legacy {
			f.Mu.Lock()
			f.Instance(id).UserData = legacyUserData(t)
			f.Mu.Unlock()
		}
		o, out := statusOpts("demo", "json")
		must(t, Status(f.Ctx(), o))
		var rep cloud.StackJSON
		must(t, json.Unmarshal(out.Bytes(), &rep))
		want := "https://"
		if legacy {
			want = "http://"
		}
		if rep.TrackingURI == nil || !strings.HasPrefix(*rep.TrackingURI, want) {
			t.Errorf("legacy %v: tracking URI %v, want %s…", legacy, rep.TrackingURI, want)
		}
	}
}
