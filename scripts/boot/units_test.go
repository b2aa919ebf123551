package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestRecorder: the boot test's proxy in front of moto records Query
// protocol calls and forwards every request whole, the Host the client
// addressed kept.
func TestRecorder(t *testing.T) {
	var gotBody, gotHost string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotHost = string(b), r.Host
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	rec := startRecorder(t, backend.URL)
	form := url.Values{"Action": {"RebootInstances"}, "InstanceId.1": {"i-0123"}}.Encode()
	resp, err := http.Post(rec.url+"/", "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if gotBody != form || gotHost != strings.TrimPrefix(rec.url, "http://") {
		t.Fatalf("moto got body %q, Host %q; want %q, the proxy's address", gotBody, gotHost, form)
	}
	from := rec.since()
	if resp, err = http.Post(rec.url+"/bucket/key", "application/octet-stream", strings.NewReader("Action=NotOne")); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := len(rec.find(0, "RebootInstances", "InstanceId.1", "i-0123")); n != 1 {
		t.Fatalf("found %d RebootInstances of i-0123, want 1", n)
	}
	if n := len(rec.find(0, "RebootInstances", "InstanceId.1", "i-9")); n != 0 {
		t.Fatalf("found %d RebootInstances of i-9, want 0", n)
	}
	if rec.since() != from || len(rec.find(from, "NotOne", "", "")) != 0 {
		t.Fatal("a request that is not a Query protocol call was recorded")
	}
}

// TestCloudInitClean: done passes; an error passes only when it is the
// container's swapon and the warnings are the mounts module's.
func TestCloudInitClean(t *testing.T) {
	swap := []string{"('mounts', ProcessExecutionError('swapon: /swap.img: swapon failed: Operation not permitted'))"}
	for _, c := range []struct {
		s    cloudInitStatus
		want bool
	}{
		{cloudInitStatus{Status: "done"}, true},
		{cloudInitStatus{Status: "running"}, false},
		{cloudInitStatus{Status: "error", ExtendedStatus: "error - done", Errors: swap,
			Recoverable: map[string][]string{"WARNING": {"Failed to create swapfile: mounts"}}}, true},
		{cloudInitStatus{Status: "error", ExtendedStatus: "error - done", Errors: swap,
			Recoverable: map[string][]string{"WARNING": {"package_update failed"}}}, false},
		{cloudInitStatus{Status: "error", ExtendedStatus: "error - done", Errors: []string{"runcmd failed"}}, false},
		{cloudInitStatus{Status: "error", ExtendedStatus: "error - running", Errors: swap}, false},
		{cloudInitStatus{Status: "error", ExtendedStatus: "error - done"}, false},
	} {
		if got := c.s.cleanEnough(); got != c.want {
			t.Errorf("%+v: clean %v, want %v", c.s, got, c.want)
		}
	}
}
