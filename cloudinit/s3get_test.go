package cloudinit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mlstack/mlstack/templates"
)

// sigS3 serves one object and answers 403 unless the request carries the
// signature the AWS SDK's own SigV4 signer makes for it with creds: the
// fetcher's hand-written signing must agree with the reference.
type sigS3 struct {
	t      *testing.T
	creds  aws.Credentials
	region string
	body   []byte
}

func (s *sigS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		http.Error(w, "no X-Amz-Date", http.StatusForbidden)
		return
	}
	re, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	for _, h := range []string{"X-Amz-Content-Sha256", "X-Amz-Security-Token"} {
		re.Header.Set(h, r.Header.Get(h))
	}
	err = v4.NewSigner().SignHTTP(context.Background(), s.creds, re, r.Header.Get("X-Amz-Content-Sha256"), "s3", s.region, when)
	if err != nil || re.Header.Get("Authorization") != r.Header.Get("Authorization") {
		s.t.Logf("signature differs from the SDK's:\n got %s\nwant %s", r.Header.Get("Authorization"), re.Header.Get("Authorization"))
		http.Error(w, "SignatureDoesNotMatch", http.StatusForbidden)
		return
	}
	_, _ = w.Write(s.body)
}

// TestS3GetFetchesPinnedObject: mlstack_s3get.py signs its GET as the SDK
// does, with the role's credentials from IMDSv2 (waiting for a role that
// is not there yet), and keeps the object only when its sha256 is the
// pinned one; it never prints the credentials.
func TestS3GetFetchesPinnedObject(t *testing.T) {
	t.Parallel()
	python := needTool(t, "python3")
	src, err := templates.FS.ReadFile("mlstack_s3get.py")
	must(t, err)
	dir := t.TempDir()
	script := filepath.Join(dir, "mlstack_s3get.py")
	must(t, os.WriteFile(script, src, 0o644))
	creds := aws.Credentials{AccessKeyID: "ASIAROLEKEY000000001", SecretAccessKey: "role/secret+key/0123456789abcdefghijKLMN", SessionToken: "role-session-token//+=0123456789"}
	cj, _ := json.Marshal(map[string]string{"AccessKeyId": creds.AccessKeyID, "SecretAccessKey": creds.SecretAccessKey, "Token": creds.SessionToken})
	body := []byte("# mlstack's lock, the part for x86_64.\nmlflow==3.17.2 \\\n    --hash=sha256:00\n")
	sum := sha256.Sum256(body)
	pin := hex.EncodeToString(sum[:])

	for _, tt := range []struct {
		name      string
		failCreds int32
		served    []byte
		ok        bool
	}{
		{"signed and pinned", 0, body, true},
		{"role not there yet", 2, body, true},
		{"another object", 0, append(body, '#'), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			imds := httptest.NewServer(&fakeIMDS{role: "mlstack-demo-server", creds: string(cj), failCreds: tt.failCreds})
			defer imds.Close()
			s3 := httptest.NewServer(&sigS3{t: t, creds: creds, region: "eu-west-3", body: tt.served})
			defer s3.Close()
			dest := filepath.Join(dir, "lock-"+strings.ReplaceAll(tt.name, " ", "-"))
			cmd := exec.Command(python, script, s3.URL+"/mlstack-demo-bucket/bootstrap/mlflow-lock-x86_64-0123.txt", "eu-west-3", pin, dest)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "MLSTACK_IMDS_ENDPOINT=" + imds.URL, "MLSTACK_S3GET_ATTEMPTS=4"}
			out, err := cmd.CombinedOutput()
			for _, secret := range []string{creds.SecretAccessKey, creds.SessionToken} {
				if strings.Contains(string(out), secret) {
					t.Errorf("the fetcher printed a credential")
				}
			}
			got, rerr := os.ReadFile(dest)
			if !tt.ok {
				if err == nil || rerr == nil || !strings.Contains(string(out), "giving up") || !strings.Contains(string(out), "want "+pin) {
					t.Errorf("an object with another sha256: err %v, written %v\n%s", err, rerr == nil, out)
				}
				return
			}
			if err != nil || string(got) != string(body) {
				t.Fatalf("fetch: %v (read %v)\n%s", err, rerr, out)
			}
			if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %o", fi.Mode().Perm())
			}
		})
	}
}
