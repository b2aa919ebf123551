package provision

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/internal/mlflowtest"
	"github.com/mlstack/mlstack/internal/sshdtest"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/local/envfile"
)

const uiPassword = "ui-Secret-Password-42xyz"

// uiStack writes stack demo's env file in a fresh state dir: uri, the
// login, and certPEM (when set) as the pinned certificate.
func uiStack(t *testing.T, uri string, certPEM []byte) string {
	t.Helper()
	root := t.TempDir()
	dir := local.StackDir(root, "demo")
	vars := []envfile.Var{{Name: "MLFLOW_TRACKING_URI", Value: uri}, {Name: "MLFLOW_TRACKING_USERNAME", Value: "admin"},
		{Name: "MLFLOW_TRACKING_PASSWORD", Value: uiPassword}}
	if certPEM != nil {
		must(t, os.MkdirAll(dir.Path(), 0o700))
		path := filepath.Join(dir.Path(), "server.crt")
		must(t, os.WriteFile(path, certPEM, 0o600))
		vars = append(vars, envfile.Var{Name: "MLFLOW_TRACKING_SERVER_CERT_PATH", Value: path})
	}
	must(t, dir.WriteEnv(vars))
	return root
}

// tlsUpstream is an https server at 127.0.0.1 with its own certificate,
// recording the basic-auth user of each request.
func tlsUpstream(t *testing.T) (*httptest.Server, []byte, *sshdtest.SyncBuffer) {
	t.Helper()
	certPEM, keyPEM, err := mlflowtest.SelfSigned("ec2-203-0-113-10.example", net.IPv4(127, 0, 0, 1))
	must(t, err)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	must(t, err)
	seen := &sshdtest.SyncBuffer{}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		if p == uiPassword {
			io.WriteString(seen, u+" "+r.Host+"\n")
		}
		io.WriteString(w, "mlflow")
	}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts, certPEM, seen
}

// TestUIServesUntilCancelled: the URL on stdout serves the stack's server,
// signed in; the browser opener gets the URL; cancelling stops it cleanly;
// nothing printed holds the password.
func TestUIServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ts, certPEM, seen := tlsUpstream(t)
	root := uiStack(t, ts.URL, certPEM)
	var out, logs sshdtest.SyncBuffer
	opened := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- UI(ctx, UIOptions{Stack: Stack{Name: "demo", StateDir: root}, Streams: Streams{Out: &out, Log: &logs},
			OpenBrowser: func(u string) error { opened <- u; return nil }})
	}()
	var addr string
	select {
	case addr = <-opened:
	case err := <-done:
		t.Fatalf("UI returned early: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("no URL within 10 s")
	}
	u, err := url.Parse(addr)
	must(t, err)
	token := u.Query().Get("mlstack-token")
	if strings.TrimSpace(out.String()) != addr || u.Scheme != "http" || !strings.HasPrefix(u.Host, "127.0.0.1:") || len(token) < 43 {
		t.Fatalf("stdout and opened URL differ, or are not the one loopback URL with a token (%d bytes)", len(token))
	}
	if status, _ := getUI(t, http.DefaultClient, "http://"+u.Host+"/health"); status != 403 || seen.String() != "" {
		t.Errorf("without the link: %d, the server saw %q; want 403 and nothing", status, seen.String())
	}
	jar, err := cookiejar.New(nil)
	must(t, err)
	browser := &http.Client{Jar: jar}
	getUI(t, browser, addr)
	if status, body := getUI(t, browser, "http://"+u.Host+"/health"); status != 200 || body != "mlflow" ||
		seen.String() != strings.Repeat("admin "+strings.TrimPrefix(ts.URL, "https://")+"\n", 2) {
		t.Errorf("through the proxy: %d %q; the server saw %q", status, body, seen.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("UI after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("UI still serving 10 s after cancel")
	}
	if _, err := http.Get(addr); err == nil {
		t.Error("the port still answers after UI returned")
	}
	if strings.Contains(out.String()+logs.String(), uiPassword) || strings.Contains(logs.String(), token) {
		t.Errorf("the output holds the password, or the log the token:\n%s", logs.String())
	}
}

// getUI gets u with client and returns the status and body.
func getUI(t *testing.T, client *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := client.Get(u)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestUIRefuses: what mlstack ui will not serve, and says why.
func TestUIRefuses(t *testing.T) {
	t.Parallel()
	ts, certPEM, _ := tlsUpstream(t)
	otherPEM, _, err := mlflowtest.SelfSigned("elsewhere.example")
	must(t, err)
	for _, tt := range []struct {
		name  string
		root  string
		edit  func(*UIOptions)
		want  string
		usage bool
	}{
		{"no env file", t.TempDir(), nil, "no local secrets for stack demo", false},
		{"plain http", uiStack(t, "http://ec2-1-2-3-4.example:5000", nil), nil, "clear text. To move the stack over, make it again: `mlstack down --stack demo --state-dir ", false},
		{"no pinned certificate", uiStack(t, ts.URL, nil), nil, "names no pinned certificate", false},
		{"a certificate for another host", uiStack(t, ts.URL, otherPEM), nil, "does not fit 127.0.0.1", false},
		{"a port out of range", uiStack(t, ts.URL, certPEM), func(o *UIOptions) { o.Port = 70000 }, "--port 70000", true},
		{"a bad stack name", uiStack(t, ts.URL, certPEM), func(o *UIOptions) { o.Stack.Name = "Demo!" }, "", true},
		{"a state directory others can write", writableByOthers(t, uiStack(t, ts.URL, certPEM)), nil,
			"is writable by others (mode 0777): other users of this machine could plant the files mlstack trusts there; `chmod go-w ", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs sshdtest.SyncBuffer
			o := UIOptions{Stack: Stack{Name: "demo", StateDir: tt.root}, Streams: Streams{Log: &logs}, NoBrowser: true}
			if tt.edit != nil {
				tt.edit(&o)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := UI(ctx, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || cloud.IsUsage(err) != tt.usage {
				t.Fatalf("UI = %v (usage %v), want an error saying %q (usage %v)", err, cloud.IsUsage(err), tt.want, tt.usage)
			}
			if strings.Contains(err.Error()+logs.String(), uiPassword) {
				t.Errorf("the error or the log holds the password: %v", err)
			}
		})
	}
}

// writableByOthers makes the state directory root world-writable, as a
// shared /tmp/... root made by someone else may be.
func writableByOthers(t *testing.T, root string) string {
	t.Helper()
	must(t, os.Chmod(root, 0o777))
	return root
}

// TestUIAllowHTTP: the hidden test switch lets a local http server through,
// and the browser is not opened with NoBrowser.
func TestUIAllowHTTP(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "plain") }))
	defer ts.Close()
	root := uiStack(t, ts.URL, nil)
	var out sshdtest.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- UI(ctx, UIOptions{Stack: Stack{Name: "demo", StateDir: root}, Streams: Streams{Out: &out}, AllowHTTP: true, NoBrowser: true,
			OpenBrowser: func(string) error { return errors.New("opened with NoBrowser") }})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasSuffix(out.String(), "\n") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	jar, err := cookiejar.New(nil)
	must(t, err)
	_, body := getUI(t, &http.Client{Jar: jar}, strings.TrimSpace(out.String()))
	cancel()
	if err := <-done; err != nil || body != "plain" {
		t.Errorf("UI = %v, body %q", err, body)
	}
}
