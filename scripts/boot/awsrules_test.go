package main

// The service models' rules in the boot test's proxy, as in the CLI
// tests' (cmd/mlstack/awsrules_test.go): a request that breaks one is
// answered as AWS answers it, before moto sees it. Here the instance's
// own clients (boto3 in the MLflow server, the bootstrap's) go through
// the proxy too and call operations mlstack's trimmed models do not hold
// (multipart uploads), as does the boot helper (AssumeRole): a request
// the decoder cannot read is passed on and logged, failing the test only
// when the Go SDK sent it for an operation the models hold (the decoder
// is then behind what mlstack sends).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

// maxChecked bounds the body read to check a request: payloads the rules
// read are small; an object's bytes (PutObject) are not read at all.
const maxChecked = 1 << 20

// rulesLog is what the rules refused and what could not be read.
type rulesLog struct {
	refused, unread, unreadSDK []string // unreadSDK: an operation of the models
}

// checkRules answers a request that breaks a model rule; false: it may
// go on to moto.
func (r *awsRecorder) checkRules(w http.ResponseWriter, req *http.Request) bool {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxChecked))
	req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), req.Body))
	if err != nil {
		return false
	}
	svc, op, tree, err := awsmodel.DecodeRequest(req, body)
	if err != nil {
		what := fmt.Sprintf("%s %s (%s): %v", req.Method, req.URL, req.UserAgent(), err)
		r.mu.Lock()
		if strings.HasPrefix(req.UserAgent(), "aws-sdk-go-v2/") && !errors.Is(err, awsmodel.ErrUnknownOperation) {
			r.rules.unreadSDK = append(r.rules.unreadSDK, what)
		} else {
			r.rules.unread = append(r.rules.unread, what)
		}
		r.mu.Unlock()
		return false
	}
	e := awsmodel.CheckTree(svc, op, tree)
	if e == nil {
		return false
	}
	r.mu.Lock()
	r.rules.refused = append(r.rules.refused, fmt.Sprintf("%s.%s: %s: %s", svc, op, e.Code, e.Message))
	r.mu.Unlock()
	awsmodel.WriteError(w, svc, e.Status, e.Code, e.Message)
	return true
}

// reportRules logs what the rules refused and what went unchecked, and
// fails t for a request of mlstack's that the decoder could not read.
func (r *awsRecorder) reportRules(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.rules.refused {
		t.Logf("refused by the service model's rules: %s", s)
	}
	for _, s := range r.rules.unread {
		t.Logf("not checked by the service model's rules (an operation they lack, or not the Go SDK): %s", s)
	}
	for _, s := range r.rules.unreadSDK {
		t.Errorf("the proxy could not read a request of mlstack's, so no rule checked it: %s", s)
	}
}

// TestRecorderRules: the boot test's proxy refuses, as IAM does, a
// request that breaks the model's rules, and passes on a good one.
func TestRecorderRules(t *testing.T) {
	for _, tc := range []struct {
		name, user string
		status     int
		code       string
	}{
		{"a name of 64 characters", strings.Repeat("u", 64), http.StatusOK, ""},
		{"a name of 65 characters", strings.Repeat("u", 65), http.StatusBadRequest, "<Code>ValidationError</Code>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reached atomic.Bool
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store(true) }))
			defer backend.Close()
			rec := startRecorder(t, backend.URL)
			form := url.Values{"Action": {"CreateUser"}, "Version": {"2010-05-08"}, "UserName": {tc.user}}.Encode()
			req, _ := http.NewRequest(http.MethodPost, rec.url+"/", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.code) || reached.Load() != (tc.code == "") {
				t.Fatalf("%d %s, moto reached %v", resp.StatusCode, b, reached.Load())
			}
		})
	}
}
