package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// CheckFailedError says how many checks failed; the per-check lines are
// already printed.
type CheckFailedError struct{ Failed, Total int }

func (e *CheckFailedError) Error() string {
	return fmt.Sprintf("check: %d of %d checks failed", e.Failed, e.Total)
}

// CheckTarget is what a client of the stack has: the env file's variables
// and the stack's bucket.
type CheckTarget struct {
	MLflow               Client
	AccessKey, SecretKey string
	SessionToken         string // what the user's environment holds; normally none
	Region, S3Endpoint   string
	Bucket               string
	// Proxied: artifacts go through the server (no AWS key); else the
	// client writes them to S3 with the key.
	Proxied bool
}

// secrets are the values no output may contain.
func (t CheckTarget) secrets() []string { return []string{t.MLflow.Password, t.SecretKey} }

// checker prints one line per check and counts failures.
type checker struct {
	out           io.Writer
	secrets       []string
	failed, total int
	skipping      string // set after a failure that makes later steps pointless
}

// mask replaces every secret in s.
func (c *checker) mask(s string) string {
	for _, sec := range c.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// run runs one check unless an earlier failure made it pointless.
func (c *checker) run(name string, fn func() (string, error)) bool {
	c.total++
	if c.skipping != "" {
		c.failed++
		fmt.Fprintf(c.out, "✗ %s: not run (%s)\n", name, c.skipping)
		return false
	}
	detail, err := fn()
	if err != nil {
		c.failed++
		fmt.Fprintf(c.out, "✗ %s: %s\n", name, c.mask(err.Error()))
		return false
	}
	if detail != "" {
		fmt.Fprintf(c.out, "✓ %s: %s\n", name, c.mask(detail))
	} else {
		fmt.Fprintf(c.out, "✓ %s\n", name)
	}
	return true
}

// Check is the user's smoke test of a stack, with exactly the variables of
// its env file: the MLflow REST API (health, auth, create an experiment and
// a run, log and read back a metric, delete both) and artifacts: an S3
// put/get/delete with the scoped keys, or with proxied artifacts the same
// through the server, into the run. One ✓/✗ line per check goes to out;
// the error is a *CheckFailedError when any check failed.
func Check(ctx context.Context, t CheckTarget, out io.Writer) error {
	ck := &checker{out: out, secrets: t.secrets()}
	fmt.Fprintf(out, "checking %s as %s\n", t.MLflow.URI, t.MLflow.User)
	checkMLflow(ctx, ck, &t)
	ck.skipping = ""
	if !t.Proxied {
		checkS3(ctx, ck, t)
	}
	if ck.failed > 0 {
		fmt.Fprintf(out, "%d of %d checks failed\n", ck.failed, ck.total)
		return &CheckFailedError{Failed: ck.failed, Total: ck.total}
	}
	fmt.Fprintf(out, "all %d checks passed\n", ck.total)
	return nil
}

// checkMLflow drives the REST API and cleans up whatever it created, even
// after a failure in between.
func checkMLflow(ctx context.Context, ck *checker, t *CheckTarget) {
	api := &t.MLflow
	if !ck.run("server answers /health", func() (string, error) { return "", api.health(ctx) }) {
		ck.skipping = "the server does not answer"
	}
	ck.run("API refuses requests without credentials", func() (string, error) { return "", api.refusesAnonymous(ctx) })

	var expID, runID, artifactLoc, runArtifacts string
	name := "mlstack-check-" + randomHex(6)
	ck.run("create experiment", func() (s string, err error) {
		expID, artifactLoc, err = api.createExperiment(ctx, name)
		return name + " (id " + expID + ")", err
	})
	if expID == "" && ck.skipping == "" {
		ck.skipping = "no experiment"
	}
	ck.run(artifactsWhere(t), func() (string, error) {
		want := "s3://" + t.Bucket + "/"
		if t.Proxied {
			want = proxiedScheme
		}
		if !strings.HasPrefix(artifactLoc, want) {
			return "", fmt.Errorf("artifact location is %q, want %s…", artifactLoc, want)
		}
		return artifactLoc, nil
	})
	expSkip := ck.skipping
	ck.run("create run", func() (s string, err error) {
		runID, runArtifacts, err = api.createRun(ctx, expID)
		return "id " + runID, err
	})
	if runID == "" && ck.skipping == "" {
		ck.skipping = "no run"
	}
	ck.run("log and read back a metric", func() (string, error) { return "", api.logMetric(ctx, runID) })
	if t.Proxied {
		checkProxied(ctx, ck, api, runArtifacts)
	}
	ck.skipping = expSkip
	if runID != "" {
		ck.run("delete run", func() (string, error) { return "", api.post(ctx, "runs/delete", map[string]any{"run_id": runID}, nil) })
	}
	if expID != "" {
		ck.run("delete experiment", func() (string, error) {
			return "", api.post(ctx, "experiments/delete", map[string]any{"experiment_id": expID}, nil)
		})
	}
}

// checkS3 puts, reads back and deletes one object with the scoped keys.
func checkS3(ctx context.Context, ck *checker, t CheckTarget) {
	s3c := t.s3Client()
	key := "artifacts/mlstack-check/" + randomHex(8) + ".txt" // the client key reaches artifacts/ alone
	body := []byte("mlstack check " + time.Now().UTC().Format(time.RFC3339) + "\n")
	put := ck.run("S3 put with the scoped keys", func() (string, error) {
		_, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: &t.Bucket, Key: &key, Body: bytes.NewReader(body)})
		return "s3://" + t.Bucket + "/" + key, s3Error(err)
	})
	if !put {
		ck.skipping = "put failed"
	}
	ck.run("S3 get returns what was put", func() (string, error) {
		o, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: &t.Bucket, Key: &key})
		if err != nil {
			return "", s3Error(err)
		}
		defer o.Body.Close()
		got, err := io.ReadAll(io.LimitReader(o.Body, 1<<20))
		if err != nil {
			return "", err
		}
		if !bytes.Equal(got, body) {
			return "", fmt.Errorf("got %d bytes that differ from the %d put", len(got), len(body))
		}
		return "", nil
	})
	ck.run("S3 delete", func() (string, error) {
		_, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &t.Bucket, Key: &key})
		return "", s3Error(err)
	})
}

// s3Client talks to the bucket with the env file's keys, as a client with
// that environment would: no shared config, no other credentials. Local endpoints need path-style addressing.
func (t CheckTarget) s3Client() *s3.Client {
	return s3.New(s3.Options{
		Region:      t.Region,
		Credentials: credentials.NewStaticCredentialsProvider(t.AccessKey, t.SecretKey, t.SessionToken),
		BaseEndpoint: func() *string {
			if t.S3Endpoint == "" {
				return nil
			}
			return aws.String(t.S3Endpoint)
		}(),
		UsePathStyle: t.S3Endpoint != "",
		HTTPClient:   &http.Client{Timeout: 20 * time.Second},
	})
}

// s3Error shortens an SDK error to the service's code and message, or the
// transport's cause.
func s3Error(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
