package cloudinit

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mlstack/mlstack/templates"
)

// fakeIMDS serves the IMDSv2 endpoints allowed-hosts.sh uses. A metadata
// item set to "" answers 404, as IMDS does for an item the instance lacks.
type fakeIMDS struct {
	hostname, ipv4 string
	failTokens     int32 // answer this many token requests with 503 first
	tokens         atomic.Int32
	// role and creds (JSON) answer iam/security-credentials/; failCreds
	// answers that many credential requests with 404 first (a new role).
	role, creds string
	failCreds   int32
	credReqs    atomic.Int32
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
	case strings.HasPrefix(r.URL.Path, "/latest/meta-data/iam/security-credentials/") && f.role != "":
		if f.credReqs.Add(1) <= f.failCreds {
			http.NotFound(w, r)
			return
		}
		if strings.TrimPrefix(r.URL.Path, "/latest/meta-data/iam/security-credentials/") == "" {
			_, _ = w.Write([]byte(f.role))
			return
		}
		_, _ = w.Write([]byte(f.creds))
	default:
		http.NotFound(w, r)
	}
}

func TestAllowedHostsScript(t *testing.T) {
	t.Parallel()
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
	localOrigins := ",https://localhost:5000,https://127.0.0.1:5000"
	// envFile is what the script must write: the allowed hosts, the UI's
	// origins (https, as the server serves) and the addresses themselves.
	envFile := func(host, ip string) string {
		var hosts, origins []string
		for _, a := range []string{host, ip} {
			if a != "" {
				hosts = append(hosts, a, a+":5000")
				origins = append(origins, "https://"+a+":5000")
			}
		}
		return "MLFLOW_SERVER_ALLOWED_HOSTS=" + strings.Join(hosts, ",") + local + "\n" +
			"MLFLOW_SERVER_CORS_ALLOWED_ORIGINS=" + strings.Join(origins, ",") + localOrigins + "\n" +
			"MLSTACK_PUBLIC_DNS=" + host + "\nMLSTACK_PUBLIC_IP=" + ip + "\n"
	}
	tests := []struct {
		name     string
		imds     *fakeIMDS // nil: unreachable
		want     string    // expected file content; "" means the script must fail
		inStderr string
	}{
		{"dns and ip", &fakeIMDS{hostname: dns, ipv4: ip}, envFile(dns, ip), ""},
		{"token retried", &fakeIMDS{hostname: dns, ipv4: ip, failTokens: 2}, envFile(dns, ip), "attempt 2/3"},
		{"no public dns", &fakeIMDS{ipv4: ip}, envFile("", ip), "no public DNS name"},
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
