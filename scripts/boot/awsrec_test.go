package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// awsRecorder is a reverse proxy in front of moto that records the Query
// protocol calls (EC2, IAM, RDS, STS: Action=… in a form body) it
// forwards. Some of what mlstack does leaves nothing in moto to look at
// (RebootInstances), or nothing that tells how it came about (a database
// restored from a snapshot rather than created): the test asserts on the
// calls instead of on mlstack's wording.
type awsRecorder struct {
	url   string
	mu    sync.Mutex
	calls []awsCall
	rules rulesLog // the service models' refusals (awsrules_test.go)
}

// awsCall is one recorded call: its action and its parameters.
type awsCall struct {
	action string
	params url.Values
}

// startRecorder serves the proxy on 127.0.0.1 (the container shares the
// host's network, so the instance reaches it too) until t ends.
func startRecorder(t *testing.T, moto string) *awsRecorder {
	target, err := url.Parse(moto)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &awsRecorder{url: "http://" + l.Addr().String()}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		// The Host the client signed and addressed (path-style S3, the
		// presigned URLs the server makes) stays as it sent it.
		pr.Out.Host = pr.In.Host
	}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.record(req)
		if r.checkRules(w, req) {
			return
		}
		proxy.ServeHTTP(w, req)
	}), ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { r.reportRules(t) })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return r
}

// record notes a Query protocol call and puts its body back for the proxy.
func (r *awsRecorder) record(req *http.Request) {
	if req.Method != http.MethodPost || !strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), req.Body))
	if err != nil {
		return
	}
	v, err := url.ParseQuery(string(body))
	if err != nil || v.Get("Action") == "" {
		return
	}
	r.mu.Lock()
	r.calls = append(r.calls, awsCall{action: v.Get("Action"), params: v})
	r.mu.Unlock()
}

// since is the index of the next call: find(…, since()) then sees only
// the calls made after this point.
func (r *awsRecorder) since() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// find returns the calls of action from index from on whose parameter
// key has a value that starts with prefix.
func (r *awsRecorder) find(from int, action, key, prefix string) []awsCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []awsCall
	for _, c := range r.calls[from:] {
		if c.action == action && (key == "" || strings.HasPrefix(c.params.Get(key), prefix) && c.params.Has(key)) {
			out = append(out, c)
		}
	}
	return out
}
