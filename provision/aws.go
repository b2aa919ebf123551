package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
)

// session holds the clients and identity one command works with.
type session struct {
	cfg       aws.Config // for clients of other regions (ls --all-regions)
	ec2       *ec2.Client
	s3        *s3.Client
	iam       *iam.Client
	sts       *sts.Client
	region    string
	account   string
	partition string // aws, aws-cn, aws-us-gov: part of every ARN
	// s3Endpoint is the S3 endpoint override in use, if any; clients then
	// need MLFLOW_S3_ENDPOINT_URL too.
	s3Endpoint string
}

// CallLog records AWS operations as "Service.Operation", once per call
// (retries are not counted twice).
type CallLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *CallLog) add(op string) {
	l.mu.Lock()
	l.calls = append(l.calls, op)
	l.mu.Unlock()
}

// Calls returns a copy of the recorded operations in call order.
func (l *CallLog) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// Reset forgets the recorded operations.
func (l *CallLog) Reset() {
	l.mu.Lock()
	l.calls = nil
	l.mu.Unlock()
}

// Mutating returns the recorded operations that can change AWS state.
func (l *CallLog) Mutating() []string {
	var out []string
	for _, c := range l.Calls() {
		if IsMutating(c) {
			out = append(out, c)
		}
	}
	return out
}

// Summary is "N calls (M mutating): Op×k, …" for progress output and benchmarks.
func (l *CallLog) Summary() string {
	calls := l.Calls()
	count := map[string]int{}
	for _, c := range calls {
		count[c]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, count[k]))
	}
	return fmt.Sprintf("%d calls (%d mutating): %s", len(calls), len(l.Mutating()), strings.Join(parts, ", "))
}

// IsMutating reports whether "Service.Operation" may change state. Reads in
// these APIs all start with one of a few verbs.
func IsMutating(call string) bool {
	op := call[strings.LastIndex(call, ".")+1:]
	for _, p := range []string{"Describe", "List", "Get", "Head"} {
		if strings.HasPrefix(op, p) {
			return false
		}
	}
	return true
}

// countCalls is SDK middleware that records each operation in log.
func countCalls(log *CallLog) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("mlstackCallLog",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				log.add(awsmiddleware.GetServiceID(ctx) + "." + middleware.GetOperationName(ctx))
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}

// s3EndpointOverride returns the S3 endpoint set in the environment, the
// same variables the SDK reads (service-specific one first).
func s3EndpointOverride() string {
	if v := os.Getenv("AWS_ENDPOINT_URL_S3"); v != "" {
		return v
	}
	if os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") == "true" {
		return ""
	}
	return os.Getenv("AWS_ENDPOINT_URL")
}

// connect loads AWS configuration and learns who we are. It rejects the
// stack's own scoped keys before any other call, because everything after
// would fail with a confusing AccessDenied.
func connect(ctx context.Context, c *Config) (*session, error) {
	// The SDK's own warnings (IMDS fallbacks) would bury our one-line errors.
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{}), config.WithRetryer(newRetryer)}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.Calls != nil {
		opts = append(opts, config.WithAPIOptions([]func(*middleware.Stack) error{countCalls(c.Calls)}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, usagef("loading AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		return nil, usagef("no AWS region: pass --region or set AWS_REGION / a profile region")
	}
	if err := ValidateRegion(cfg.Region); err != nil {
		return nil, err
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, usagef("no usable AWS credentials (environment, --profile, SSO or instance role): log in, or pass --profile NAME")
	}
	s := &session{cfg: cfg, region: cfg.Region, s3Endpoint: s3EndpointOverride()}
	s.ec2 = ec2.NewFromConfig(cfg)
	s.iam = iam.NewFromConfig(cfg)
	s.sts = sts.NewFromConfig(cfg)
	s.s3 = s3.NewFromConfig(cfg, func(o *s3.Options) {
		// Local endpoints (emulators, MinIO) cannot serve virtual-host buckets.
		o.UsePathStyle = s.s3Endpoint != ""
	})
	id, err := s.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		if code := errorCode(err); code != "" {
			return nil, usagef("checking AWS credentials (sts:GetCallerIdentity): %s: log in or pass --profile", code)
		}
		return nil, fmt.Errorf("checking AWS credentials (sts:GetCallerIdentity): %w", err)
	}
	s.account = aws.ToString(id.Account)
	s.partition = "aws"
	if parts := strings.SplitN(aws.ToString(id.Arn), ":", 3); len(parts) == 3 && parts[1] != "" {
		s.partition = parts[1]
	}
	if arn := aws.ToString(id.Arn); strings.Contains(arn, ":user"+iamPath) {
		return nil, usagef("mlstack was called with a stack's own scoped keys (%s), probably exported by `mlstack env`: "+
			"run it with an admin identity instead, e.g. `env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY mlstack …` or --profile NAME", arn)
	}
	return s, nil
}

// errorCode returns the AWS error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// hasCode reports whether err carries one of the given AWS error codes.
func hasCode(err error, codes ...string) bool {
	c := errorCode(err)
	if c == "" {
		return false
	}
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// NotOwnedError is a resource with a stack's name that lacks its stack tag:
// mlstack never adopts, changes or deletes such a resource.
type NotOwnedError struct {
	Kind, Name, Stack string
}

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("%s %q exists but is not tagged %s=%s: mlstack will not adopt, change or delete it; "+
		"remove or rename it, or choose another --stack", e.Kind, e.Name, TagStack, e.Stack)
}
