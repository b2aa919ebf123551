package server

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// UIProxy is `mlstack ui`: a reverse proxy on a loopback port that a
// browser on this machine opens instead of the tracking URI. It talks to
// the server over TLS that trusts the pinned certificate alone and signs in
// with basic auth itself, so the browser sees neither a certificate warning
// nor a password prompt, and the password never reaches the browser. To the
// server, the requests come from its own public origin: Host, Origin and
// Referer are the upstream's, so --allowed-hosts and the CORS list accept
// them.
//
// Anything on this machine can reach a loopback port, web pages and every
// other local user included, and every request through the proxy is signed
// in: so it answers only to its own address (no DNS rebinding), refuses a
// foreign Origin and cross-site state-changing requests
// (http.CrossOriginProtection), and serves only the browser that opened the
// URL it printed. That URL carries a random token, traded once for a
// session cookie, as notebook servers do (see authorize).
type UIProxy struct {
	upstream       *url.URL // scheme://host:port, no path
	user, password string
	transport      http.RoundTripper
	log            Warner
	rotateHint     string
	warnOnce       sync.Once

	token, session string // random per run: the URL's token, the cookie's value
	mu             sync.Mutex
	spent          bool // the token was traded for the cookie
	refusedOnce    sync.Once
}

// TokenParam is the query parameter of the sign-in URL (URL).
const TokenParam = "mlstack-token"

// UIProxyConfig is what NewUIProxy needs.
type UIProxyConfig struct {
	// Upstream is the tracking URI: https://HOST:PORT.
	Upstream       string
	User, Password string
	// TLS trusts the pinned certificate (PinnedTLS). Only with AllowHTTP may
	// it be nil, for an http:// upstream in tests.
	TLS       *tls.Config
	AllowHTTP bool
	Log       Warner
	// RotateHint is the command that sets a new MLflow password, for the
	// warning when the server refuses the login.
	RotateHint string
}

// Warner is all the proxy reports: what went wrong on the way upstream.
type Warner interface {
	Warn(format string, a ...any)
}

// NewUIProxy checks cfg and makes the proxy.
func NewUIProxy(cfg UIProxyConfig) (*UIProxy, error) {
	u, err := url.Parse(cfg.Upstream)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, errors.New("the tracking URI must be https://HOST:PORT")
	}
	switch {
	case u.Scheme == "https" && cfg.TLS == nil:
		return nil, errors.New("no pinned certificate for the tracking server")
	case u.Scheme == "http" && !cfg.AllowHTTP:
		return nil, fmt.Errorf("the tracking URI %s is plain http: the password would cross the network in clear text", u.Redacted())
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, errors.New("the tracking URI must be https://HOST:PORT")
	}
	if cfg.User == "" || cfg.Password == "" {
		return nil, errors.New("no MLflow username or password for the tracking server")
	}
	if cfg.Log == nil {
		cfg.Log = discard{}
	}
	return &UIProxy{
		upstream: &url.URL{Scheme: u.Scheme, Host: u.Host},
		user:     cfg.User, password: cfg.Password,
		transport: pinnedTransport(cfg.TLS),
		log:       cfg.Log, rotateHint: cmp.Or(cfg.RotateHint, "mlstack creds rotate"),
		token: randomSecret(), session: randomSecret(),
	}, nil
}

// randomSecret is 256 random bits, URL-safe.
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails: it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// Handler serves the proxy at self, the listener's address (127.0.0.1:PORT).
func (p *UIProxy) Handler(self string) http.Handler {
	own := "http://" + self
	rp := &httputil.ReverseProxy{
		Rewrite:        func(r *httputil.ProxyRequest) { p.rewrite(r, own) },
		Transport:      p.transport,
		ModifyResponse: func(resp *http.Response) error { p.modifyResponse(resp, own); return nil },
		ErrorHandler:   p.upstreamError,
	}
	return p.guard(self, own, p.authorize(self, http.NewCrossOriginProtection().Handler(rp)))
}

// URL is the sign-in URL for the proxy at self: the one line the user
// needs, printed once and opened in the browser; it holds the token.
func (p *UIProxy) URL(self string) string {
	return "http://" + self + "/?" + TokenParam + "=" + p.token
}

// cookieName names the session cookie by port: cookies are per host, not per
// port, so two mlstack ui runs on 127.0.0.1 would overwrite each other's.
func cookieName(self string) string {
	_, port, _ := net.SplitHostPort(self)
	return "mlstack-ui-" + port
}

// authorize serves only the browser holding the session cookie. The token
// in the printed URL is traded once for that cookie (HttpOnly: no script
// reads it; SameSite=Strict: no other site's page sends it), then the
// browser is sent to the same URL without the token, to keep it out of the
// upstream's logs and the page's address. A second trade is refused: the
// URL also reaches the browser opener's command line, which every local
// user can read. Secrets are compared in constant time. Cookies ignore
// ports, so the browser also sends this one to other servers on 127.0.0.1
// it visits: it is good for this run alone.
func (p *UIProxy) authorize(self string, next http.Handler) http.Handler {
	name := cookieName(self)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signedIn := false
		if c, err := r.Cookie(name); err == nil {
			signedIn = subtle.ConstantTimeCompare([]byte(c.Value), []byte(p.session)) == 1
		}
		q := r.URL.Query()
		if tok, ok := q[TokenParam]; ok {
			if !signedIn && !p.trade(r.Method, tok[0]) {
				// The user hears of it: a spent link they did not spend means
				// someone else's browser holds the session.
				p.refusedOnce.Do(func() {
					p.log.Warn("refused a sign-in with a wrong or spent link: if it was yours and your browser is not signed in, " +
						"someone else may be; stop with Ctrl-C and run mlstack ui again")
				})
				http.Error(w, "mlstack ui: this sign-in link is wrong or was used already (it works once): "+
					"run mlstack ui again for a new one", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: name, Value: p.session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			q.Del(TokenParam)
			http.Redirect(w, r, withoutToken(r.URL, q), http.StatusSeeOther)
			return
		}
		if !signedIn {
			http.Error(w, "mlstack ui: not signed in. This port serves the stack's MLflow signed in as its user, so it "+
				"answers only to the browser that opened the link mlstack ui printed (http://"+self+"/?"+TokenParam+"=…)",
				http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// trade spends the token if tok is it, on a page load (GET).
func (p *UIProxy) trade(method, tok string) bool {
	if method != http.MethodGet {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.spent || subtle.ConstantTimeCompare([]byte(tok), []byte(p.token)) != 1 {
		return false
	}
	p.spent = true
	return true
}

// withoutToken is u's path with query q, kept on the proxy: a path that
// starts with // or /\ would send the browser to another host.
func withoutToken(u *url.URL, q url.Values) string {
	loc := "/" + strings.TrimLeft(u.EscapedPath(), "/\\")
	if len(q) > 0 {
		loc += "?" + q.Encode()
	}
	return loc
}

// guard lets through only requests addressed to the proxy itself, from no
// origin or its own.
func (p *UIProxy) guard(self, own string, next http.Handler) http.Handler {
	_, port, _ := net.SplitHostPort(self)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != self && r.Host != "localhost:"+port {
			http.Error(w, "mlstack ui answers only at "+own+"/", http.StatusMisdirectedRequest)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != own && o != "http://localhost:"+port {
			http.Error(w, "mlstack ui: cross-origin request refused", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// rewrite sends the request to the upstream as if the browser were at the
// upstream's own origin, signed in as the stack's user.
func (p *UIProxy) rewrite(r *httputil.ProxyRequest, own string) {
	r.SetURL(p.upstream)
	r.Out.Host = p.upstream.Host
	up := p.upstream.String()
	r.Out.Header.Del("Authorization") // whatever the browser sent, the stack's login goes
	r.Out.SetBasicAuth(p.user, p.password)
	dropCookie(r.Out, cookieName(strings.TrimPrefix(own, "http://")))
	if r.In.Header.Get("Origin") != "" {
		r.Out.Header.Set("Origin", up)
	}
	if ref := r.In.Header.Get("Referer"); ref != "" {
		if rest, ok := cutOrigin(ref, r.In.Host); ok {
			r.Out.Header.Set("Referer", up+rest)
		} else {
			r.Out.Header.Del("Referer")
		}
	}
}

// dropCookie keeps the session cookie on the proxy: it is no business of the server's.
func dropCookie(r *http.Request, name string) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		if c.Name != name {
			r.AddCookie(c)
		}
	}
}

// cutOrigin is the path (and query) of an http URL at host, the proxy's
// address as the browser named it.
func cutOrigin(ref, host string) (string, bool) {
	rest, ok := strings.CutPrefix(ref, "http://"+host)
	if !ok || (rest != "" && rest[0] != '/' && rest[0] != '?') {
		return "", false
	}
	return rest, true
}

// modifyResponse keeps the browser from asking for a password (the proxy
// signs in; a 401 means the stack's login is wrong, which the browser cannot
// fix) and keeps redirects on the proxy.
func (p *UIProxy) modifyResponse(resp *http.Response, own string) {
	resp.Header.Del("WWW-Authenticate")
	if resp.StatusCode == http.StatusUnauthorized {
		p.warnOnce.Do(func() {
			p.log.Warn("the tracking server refused the stack's MLflow login (401): the env file's password is not the "+
				"server's; `%s` sets a new one", p.rotateHint)
		})
	}
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, p.upstream.String()) {
		resp.Header.Set("Location", own+strings.TrimPrefix(loc, p.upstream.String()))
	}
}

// upstreamError answers 502 and says why on stderr; neither holds the
// password (it travels in a header, not in the URL).
func (p *UIProxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	p.log.Warn("%s %s: the tracking server %s did not answer: %v", r.Method, r.URL.Path, p.upstream.Host, err)
	http.Error(w, fmt.Sprintf("mlstack ui: the tracking server did not answer: %v", err), http.StatusBadGateway)
}

// ListenLoopback listens on addr, which must be a loopback IP and a port:
// the proxy signs every request in, so it must not be reachable from
// another machine.
func ListenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %q: only a loopback IP address (127.0.0.1) may serve the signed-in UI", addr)
	}
	return net.Listen("tcp", addr)
}

type discard struct{}

func (discard) Warn(string, ...any) {}
