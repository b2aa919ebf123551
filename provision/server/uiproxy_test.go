package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	pxUser     = "admin"
	pxPassword = "px-Secret-Password-42xyz"
)

// syncLog is a Logger that several handler goroutines may write.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) printf(prefix, f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, prefix+f+"\n", a...)
}
func (l *syncLog) Step(f string, a ...any) { l.printf("• ", f, a...) }
func (l *syncLog) Info(f string, a ...any) { l.printf("  ", f, a...) }
func (l *syncLog) Warn(f string, a ...any) { l.printf("! ", f, a...) }
func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// upstream is a fake tracking server that records what reached it and
// answers with status and headers.
type upstream struct {
	mu     sync.Mutex
	got    []*http.Request
	status int
	header http.Header
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.got = append(u.got, r.Clone(r.Context()))
	status, header := u.status, u.header
	u.mu.Unlock()
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(max(status, 200))
	_, _ = io.WriteString(w, "upstream body")
}

func (u *upstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.got
}

// px is a UIProxy served for a test.
type px struct {
	self   string // 127.0.0.1:PORT, what the browser types
	url    string // the sign-in URL, with the token
	log    *syncLog
	cookie *http.Cookie // the session, traded for the token
}

// proxyTo serves a UIProxy in front of target and signs in: send carries
// the session cookie.
func proxyTo(t *testing.T, cfg UIProxyConfig) *px {
	t.Helper()
	x := &px{log: &syncLog{}}
	cfg.Log, cfg.User, cfg.Password = x.log, pxUser, pxPassword
	p, err := NewUIProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := ListenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x.self = ln.Addr().String()
	x.url = p.URL(x.self)
	srv := &http.Server{Handler: p.Handler(x.self)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	resp, _ := x.send(t, "GET", strings.TrimPrefix(x.url, "http://"+x.self), map[string]string{"Cookie": ""})
	if cs := resp.Cookies(); resp.StatusCode != http.StatusSeeOther || len(cs) != 1 {
		t.Errorf("signing in: %d with %d cookies, want 303 and the session", resp.StatusCode, len(cs))
		return x // the test goes on without the session, to show what it gets
	}
	x.cookie = resp.Cookies()[0]
	return x
}

// send sends a request to the proxy with the session cookie, unless header
// sets Cookie itself ("": none).
func (x *px) send(t *testing.T, method, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+x.self+path, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := header["Cookie"]; !ok && x.cookie != nil {
		req.AddCookie(x.cookie)
	}
	for k, v := range header {
		switch {
		case k == "Host":
			req.Host = v
		case v != "":
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestUIProxyRequests: what reaches the server, and what is refused before.
func TestUIProxyRequests(t *testing.T) {
	up := &upstream{}
	ts := httptest.NewServer(up)
	defer ts.Close()
	upHost := strings.TrimPrefix(ts.URL, "http://")
	x := proxyTo(t, UIProxyConfig{Upstream: ts.URL, AllowHTTP: true})
	own := "http://" + x.self
	_, port, _ := net.SplitHostPort(x.self)
	for _, tt := range []struct {
		name         string
		method, path string
		header       map[string]string
		status       int
		want         map[string]string // headers at the server; "" = absent
	}{
		{"page", "GET", "/#/experiments", nil, 200,
			map[string]string{"Host": upHost, "Origin": "", "Referer": ""}},
		{"UI's POST", "POST", "/ajax-api/2.0/mlflow/runs/search", map[string]string{"Origin": own, "Referer": own + "/#/experiments/1/runs", "Sec-Fetch-Site": "same-origin"}, 200,
			map[string]string{"Host": upHost, "Origin": ts.URL, "Referer": ts.URL + "/#/experiments/1/runs"}},
		{"at localhost", "POST", "/ajax-api/2.0/mlflow/runs/search", map[string]string{"Host": "localhost:" + port, "Origin": "http://localhost:" + port, "Sec-Fetch-Site": "same-origin"}, 200,
			map[string]string{"Host": upHost, "Origin": ts.URL}},
		{"browser's own credentials", "GET", "/", map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}, 200, nil},
		{"referer from elsewhere", "GET", "/static-files/x.js", map[string]string{"Referer": "https://elsewhere.example/page"}, 200,
			map[string]string{"Referer": ""}},
		{"referer at a look-alike host", "GET", "/", map[string]string{"Referer": own + ".evil.example/"}, 200,
			map[string]string{"Referer": ""}},
		{"DNS rebinding: another Host", "GET", "/", map[string]string{"Host": "evil.example:" + port}, 421, nil},
		{"foreign Origin", "GET", "/ajax-api/2.0/mlflow/experiments/search", map[string]string{"Origin": "https://evil.example"}, 403, nil},
		{"cross-site POST", "POST", "/ajax-api/2.0/mlflow/runs/delete", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(up.requests())
			resp, body := x.send(t, tt.method, tt.path, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tt.status)
			}
			reqs := up.requests()
			if tt.status != 200 {
				if len(reqs) != before {
					t.Errorf("a refused request reached the server")
				}
				return
			}
			got := reqs[len(reqs)-1]
			if u, pw, ok := got.BasicAuth(); !ok || u != pxUser || pw != pxPassword {
				t.Errorf("the server got basic auth %q (ok %v), want the stack's login", u, ok)
			}
			for k, want := range tt.want {
				v := got.Header.Get(k)
				if k == "Host" {
					v = got.Host
				}
				if v != want {
					t.Errorf("%s at the server = %q, want %q", k, v, want)
				}
			}
		})
	}
}

// TestUIProxySignIn: another local user, who can reach the port but did
// not open the printed URL, is refused before anything reaches the server;
// the token is traded once for the session cookie, and neither reaches the
// server or a message. The steps run in order on one proxy.
func TestUIProxySignIn(t *testing.T) {
	up := &upstream{}
	ts := httptest.NewServer(up)
	defer ts.Close()
	x := proxyTo(t, UIProxyConfig{Upstream: ts.URL, AllowHTTP: true})
	before := len(up.requests()) // signing in reaches nothing: 0
	u, _ := url.Parse(x.url)
	token := u.Query().Get(TokenParam)
	none, wrong := map[string]string{"Cookie": ""}, map[string]string{"Cookie": cookieName(x.self) + "=" + strings.Repeat("A", 43)}
	for _, tt := range []struct {
		name, method, path string
		header             map[string]string
		status             int
		location           string
	}{
		{"no secret", "GET", "/", none, 403, ""},
		{"no secret, an API call", "PATCH", "/api/2.0/mlflow/users/update-password", none, 403, ""},
		{"a wrong cookie", "GET", "/", wrong, 403, ""},
		{"a wrong token", "GET", "/?" + TokenParam + "=" + strings.Repeat("A", 43), none, 403, ""},
		{"the spent token", "GET", "/?" + TokenParam + "=" + token, none, 403, ""},
		{"the spent token, signed in", "GET", "/static-files/x.js?" + TokenParam + "=" + token + "&v=2", nil, 303, "/static-files/x.js?v=2"},
		{"signed in", "GET", "/#/experiments", nil, 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := x.send(t, tt.method, tt.path, tt.header)
			if resp.StatusCode != tt.status || resp.Header.Get("Location") != tt.location {
				t.Fatalf("%d to %q %q, want %d to %q", resp.StatusCode, resp.Header.Get("Location"), body, tt.status, tt.location)
			}
			reqs := up.requests()
			if n := len(reqs) - before; (tt.status == 200) != (n == 1) {
				t.Fatalf("%d request(s) reached the server", n)
			}
			before = len(reqs)
			if tt.status == 200 && (reqs[len(reqs)-1].Header.Get("Cookie") != "" || strings.Contains(reqs[len(reqs)-1].URL.String(), token)) {
				t.Errorf("the server got the session or the token: %s, Cookie %q", reqs[len(reqs)-1].URL, reqs[len(reqs)-1].Header.Get("Cookie"))
			}
			if strings.Contains(body+x.log.String(), token) || (x.cookie != nil && strings.Contains(body+x.log.String(), x.cookie.Value)) {
				t.Errorf("the answer or the log holds a secret: %q", body)
			}
		})
	}
	// The user hears of refused sign-in links, once: a spent link they did
	// not spend means another browser holds the session.
	if n := strings.Count(x.log.String(), "refused a sign-in with a wrong or spent link"); n != 1 {
		t.Errorf("said %d time(s) that sign-in links were refused, want once:\n%s", n, x.log)
	}
}

// TestUIProxyToken: the token buys the session cookie once (HttpOnly,
// SameSite=Strict, Path=/) and a redirect to the same URL without it.
func TestUIProxyToken(t *testing.T) {
	for _, tt := range []struct {
		name, method, query string
		status              int
		location            string
	}{
		{"the printed URL", "GET", "", 303, "/"},
		{"with more query", "GET", "&v=1", 303, "/?v=1"},
		{"a POST", "POST", "", 403, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewUIProxy(UIProxyConfig{Upstream: "http://127.0.0.1:9", AllowHTTP: true, User: pxUser, Password: pxPassword})
			if err != nil {
				t.Fatal(err)
			}
			self := "127.0.0.1:8123"
			req := httptest.NewRequest(tt.method, p.URL(self)+tt.query, nil)
			w := httptest.NewRecorder()
			p.Handler(self).ServeHTTP(w, req)
			if w.Code != tt.status || w.Header().Get("Location") != tt.location {
				t.Fatalf("%d to %q, want %d to %q", w.Code, w.Header().Get("Location"), tt.status, tt.location)
			}
			cs := w.Result().Cookies()
			if tt.status != 303 {
				if len(cs) != 0 {
					t.Errorf("a refused request got a cookie")
				}
				return
			}
			if len(cs) != 1 || cs[0].Name != "mlstack-ui-8123" || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode ||
				cs[0].Path != "/" || len(cs[0].Value) < 43 || strings.Contains(p.URL(self), cs[0].Value) {
				t.Errorf("%d cookie(s), the first %q: want one HttpOnly, SameSite=Strict session for Path=/, not the token", len(cs), cs[0].Name)
			}
		})
	}
}

// TestUIProxyResponses: the browser is never asked for a password, stays on
// the proxy when redirected, and sees why when the server cannot be
// reached; no message holds the password.
func TestUIProxyResponses(t *testing.T) {
	up := &upstream{}
	ts := httptest.NewServer(up)
	x := proxyTo(t, UIProxyConfig{Upstream: ts.URL, AllowHTTP: true})
	log := x.log

	up.status, up.header = 401, http.Header{"Www-Authenticate": {`Basic realm="mlflow"`}}
	for range 2 {
		resp, _ := x.send(t, "GET", "/", nil)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("a 401 reaches the browser as %d with WWW-Authenticate %q: it would prompt", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if n := strings.Count(log.String(), "refused the stack's MLflow login"); n != 1 {
		t.Errorf("want the refused login said once, said %d times:\n%s", n, log)
	}

	up.status, up.header = 302, http.Header{"Location": {ts.URL + "/#/experiments"}}
	if resp, _ := x.send(t, "GET", "/old", nil); resp.Header.Get("Location") != "http://"+x.self+"/#/experiments" {
		t.Errorf("redirect to %q, want it on the proxy", resp.Header.Get("Location"))
	}

	ts.Close()
	resp, body := x.send(t, "GET", "/", nil)
	if resp.StatusCode != 502 || !strings.Contains(body, "did not answer") {
		t.Errorf("server down: %d %q, want 502 saying so", resp.StatusCode, body)
	}
	if !strings.Contains(log.String(), "did not answer") {
		t.Errorf("server down, nothing on stderr:\n%s", log)
	}
	if strings.Contains(log.String()+body, pxPassword) {
		t.Errorf("a message holds the password")
	}
}

// TestUIProxyPinnedTLS: the proxy reaches an https server only when it
// serves the pinned certificate.
func TestUIProxyPinnedTLS(t *testing.T) {
	servedPEM, served := selfSigned(t)
	otherPEM, _ := selfSigned(t)
	ts := httptest.NewUnstartedServer(&upstream{})
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{served}}
	ts.StartTLS()
	defer ts.Close()
	for _, tt := range []struct {
		name   string
		pin    []byte
		status int
	}{
		{"pinned", servedPEM, 200},
		{"another certificate", otherPEM, 502},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := PinnedTLS(tt.pin)
			if err != nil {
				t.Fatal(err)
			}
			x := proxyTo(t, UIProxyConfig{Upstream: ts.URL, TLS: cfg})
			if resp, body := x.send(t, "GET", "/", nil); resp.StatusCode != tt.status {
				t.Errorf("status %d %q, want %d; log:\n%s", resp.StatusCode, body, tt.status, x.log)
			}
		})
	}
}

// selfSigned is a certificate for 127.0.0.1, as PEM and for a server.
func selfSigned(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestNewUIProxyRefuses(t *testing.T) {
	pinned := &tls.Config{}
	for _, tt := range []struct {
		name string
		cfg  UIProxyConfig
		want string
	}{
		{"plain http", UIProxyConfig{Upstream: "http://ec2-1.example:5000", TLS: pinned}, "clear text"},
		{"https without a pin", UIProxyConfig{Upstream: "https://ec2-1.example:5000"}, "no pinned certificate"},
		{"credentials in the URI", UIProxyConfig{Upstream: "https://admin:" + pxPassword + "@ec2-1.example:5000", TLS: pinned}, "https://HOST:PORT"},
		{"a path", UIProxyConfig{Upstream: "https://ec2-1.example:5000/mlflow", TLS: pinned}, "https://HOST:PORT"},
		{"another scheme", UIProxyConfig{Upstream: "ftp://ec2-1.example:5000", TLS: pinned, AllowHTTP: true}, "https://HOST:PORT"},
		{"no password", UIProxyConfig{Upstream: "https://ec2-1.example:5000", TLS: pinned, User: pxUser}, "password"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.User == "" {
				tt.cfg.User, tt.cfg.Password = pxUser, pxPassword
			}
			if tt.name == "no password" {
				tt.cfg.Password = ""
			}
			_, err := NewUIProxy(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewUIProxy = %v, want an error saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), pxPassword) {
				t.Errorf("the error holds the password: %v", err)
			}
		})
	}
}

func TestListenLoopback(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"[::1]:0", true},
		{"0.0.0.0:0", false},
		{":0", false},
		{"localhost:0", false}, // a name may resolve anywhere
		{"192.0.2.1:0", false},
		{"127.0.0.1", false},
	} {
		ln, err := ListenLoopback(tt.addr)
		if ln != nil {
			ln.Close()
		}
		if tt.ok && err != nil && !strings.Contains(err.Error(), "cannot assign") {
			t.Errorf("ListenLoopback(%q) = %v, want it to listen", tt.addr, err)
		}
		if !tt.ok && err == nil {
			t.Errorf("ListenLoopback(%q) listened, want a refusal", tt.addr)
		}
	}
}
