package provision

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
)

// UIOptions are what `mlstack ui` takes.
type UIOptions struct {
	Stack
	Streams
	Port      int  // on 127.0.0.1; 0 picks a free one
	NoBrowser bool // do not open the user's browser
	// AllowHTTP lets a plain http:// tracking URI through: tests' local
	// servers only (a hidden flag); the password would cross in clear text.
	AllowHTTP bool
	// OpenBrowser opens url in the user's browser; nil uses the system's
	// opener (xdg-open with a display, open, rundll32). Tests replace it.
	OpenBrowser func(url string) error
}

func (o *UIOptions) validate() error {
	o.Streams.fill()
	if err := o.Stack.validate(); err != nil {
		return err
	}
	if o.Port < 0 || o.Port > 65535 {
		return cloud.Usagef("--port %d: use 1-65535, or 0 for a free port", o.Port)
	}
	return nil
}

// UI serves the stack's MLflow UI on a loopback port until ctx ends (Ctrl-C):
// a proxy that reaches the server over TLS trusting the pinned certificate
// alone and signs in itself (server.UIProxy). It prints the URL on stdout.
func UI(ctx context.Context, o UIOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	p := o.Streams.progress()
	up, err := readUIUpstream(ctx, o)
	if err != nil {
		return err
	}
	proxy, err := server.NewUIProxy(server.UIProxyConfig{Upstream: up.uri, User: up.user, Password: up.password,
		TLS: up.tls, AllowHTTP: o.AllowHTTP, Log: p, RotateHint: hints{stack: o.Stack.Name, stateDir: o.StateDir}.cmd("creds rotate")})
	if err != nil {
		return fmt.Errorf("stack %s: %w", o.Stack.Name, err)
	}
	ln, err := server.ListenLoopback(net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
	if err != nil {
		return fmt.Errorf("mlstack ui: %w", err)
	}
	self := ln.Addr().String()
	// The sign-in URL holds the token: stdout gets it once, for the user;
	// the progress names the port alone.
	fmt.Fprintln(o.Out, proxy.URL(self))
	p.Step("serving the MLflow UI of stack %s at http://%s/ until Ctrl-C", o.Stack.Name, self)
	p.Info("it reaches %s trusting only the stack's pinned certificate and signs in as %s: "+
		"no certificate warning, no password prompt", up.uri, up.user)
	p.Info("only the browser that opens the URL on stdout gets in, once: its token is traded for a cookie")
	if !o.NoBrowser {
		openBrowser(o.OpenBrowser, proxy.URL(self), p)
	}
	return serveUI(ctx, ln, proxy.Handler(self), p)
}

// serveUI serves until ctx ends, then lets requests in flight finish.
func serveUI(ctx context.Context, ln net.Listener, h http.Handler, p *progress) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving the UI: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	p.Step("stopped serving the UI")
	return nil
}

// uiUpstream is what the proxy needs from the env file.
type uiUpstream struct {
	uri, user, password string
	tls                 *tls.Config
}

// readUIUpstream reads the tracking URI, the login and the pinned
// certificate from the stack's env file, and no other source: the caller's
// environment may name another server.
func readUIUpstream(ctx context.Context, o UIOptions) (uiUpstream, error) {
	dir := local.StackDir(o.StateDir, o.Stack.Name)
	sec, err := dir.Load()
	if err != nil {
		return uiUpstream{}, err
	}
	rewrite := localUp(o.Stack, sec)
	vars, err := dir.ReadEnv()
	if err != nil {
		return uiUpstream{}, uiEnvError(o.Stack, dir, sec, err)
	}
	env := map[string]string{}
	for _, v := range vars {
		env[v.Name] = v.Value
	}
	up := uiUpstream{uri: env["MLFLOW_TRACKING_URI"], user: env["MLFLOW_TRACKING_USERNAME"], password: env["MLFLOW_TRACKING_PASSWORD"]}
	if up.uri == "" || up.user == "" || up.password == "" {
		return uiUpstream{}, fmt.Errorf("env file %s lacks the tracking URI or the MLflow login: `%s` rewrites it",
			dir.EnvFile(), rewrite)
	}
	u, err := url.Parse(up.uri)
	if err == nil && u.Scheme == "http" && !o.AllowHTTP {
		h := hints{stack: o.Stack.Name, stateDir: o.StateDir}
		return up, fmt.Errorf("the tracking URI %s is plain http (a stack made before TLS): the password would cross the network "+
			"in clear text. To move the stack over, make it again: `%s`, then `%s`; this deletes its runs and artifacts, "+
			"so export what you need first", u.Redacted(), h.cmd("down", "--yes"), localUp(o.Stack, sec))
	}
	if err != nil || u.Scheme != "https" {
		return up, nil // NewUIProxy says what is wrong with it (plain http: only for tests)
	}
	up.tls, err = pinnedFor(dir, env["MLFLOW_TRACKING_SERVER_CERT_PATH"], u.Hostname(), rewrite)
	return up, err
}

// uiEnvError says what to do about an env file ui cannot read, from local
// files alone (ui asks nothing of AWS).
func uiEnvError(st Stack, dir local.Dir, sec *local.Secrets, err error) error {
	var damaged *local.DamagedEnvError
	h := hints{stack: st.Name, stateDir: st.StateDir}
	switch {
	case errors.As(err, &damaged):
		return fmt.Errorf("%w: `%s` rewrites it", err, localUp(st, sec))
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading env file: %w", err)
	case sec != nil:
		return fmt.Errorf("no env file for stack %s here (%s is missing): `%s` writes it", st.Name, dir.EnvFile(), localUp(st, sec))
	}
	return fmt.Errorf("no local secrets for stack %s on this machine (%s is missing). If the stack exists (`%s` tells), "+
		"its MLflow password exists only where it was created: run `%s` there, or, from an admin identity here, `%s` "+
		"issues a new key and password for this machine (the old ones stop working); if it does not, `%s` creates it",
		st.Name, dir.Path(), h.cmd("status"), h.cmd("ui"), h.cmd("creds rotate"), h.cmd("up"))
}

// pinnedFor trusts the stack's pinned certificate, after checking that it
// names host and is valid now (a clearer message than a failed handshake);
// up is the command that pins it again.
func pinnedFor(dir local.Dir, certPath, host, up string) (*tls.Config, error) {
	if certPath == "" {
		return nil, fmt.Errorf("env file %s names no pinned certificate (MLFLOW_TRACKING_SERVER_CERT_PATH): "+
			"`%s` pins the server's certificate", dir.EnvFile(), up)
	}
	if !filepath.IsAbs(certPath) {
		certPath = filepath.Join(dir.Path(), certPath)
	}
	pemBytes, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("reading the pinned certificate: %w", err)
	}
	cert, err := server.ParseCert(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("pinned certificate %s: %w", certPath, err)
	}
	if err := server.Covers(cert, host, time.Now()); err != nil {
		return nil, fmt.Errorf("the pinned certificate %s does not fit %s (%w): `%s` pins it again",
			certPath, host, err, up)
	}
	return server.PinnedTLS(pemBytes)
}

// errNoOpener: this machine has no way to open a browser (no display).
var errNoOpener = errors.New("no browser to open here")

// openBrowser opens addr in the user's browser, or says to; it never
// prints addr, which holds the token.
func openBrowser(open func(string) error, addr string, p *progress) {
	if open == nil {
		open = systemOpen
	}
	if err := open(addr); err != nil {
		p.Info("open the URL on stdout in your browser (%v)", err)
		return
	}
	p.Info("opened it in your browser")
}

// systemOpen hands url to the desktop's opener, without waiting for the
// browser.
func systemOpen(url string) error {
	name, args := "xdg-open", []string(nil)
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler"}
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errNoOpener
		}
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return errNoOpener
	}
	cmd := exec.Command(path, append(args, url)...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
