package main

// The service models' rules in the proxy: every request is read back into
// the model's tree (awsmodel.DecodeRequest) and checked (CheckTree) before
// moto sees it, as the in-memory fake checks the SDK's inputs. A request
// the decoder cannot read is answered 500 and fails the test that sent
// it: an unchecked request would pass whatever it broke.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

// rulesLog is what the models' rules refused and what could not be read.
type rulesLog struct {
	refused, unread []string
}

// checkRules answers a request that breaks a model rule with the
// service's error, or one it cannot read with InternalFailure; false:
// the request may go on.
func (a *awsLike) checkRules(w http.ResponseWriter, req *http.Request, body []byte) bool {
	if req.ContentLength > 0 && int64(len(body)) < req.ContentLength {
		// The client went away mid-request (the interrupt tests do that):
		// nobody reads an answer, and a cut body is no request to judge.
		return false
	}
	svc, op, tree, err := awsmodel.DecodeRequest(req, body)
	if err != nil {
		what := fmt.Sprintf("%s %s: %v", req.Method, req.URL, err)
		a.mu.Lock()
		a.note("unread")
		a.rules.unread = append(a.rules.unread, what)
		a.mu.Unlock()
		writeAWSError(w, svc, http.StatusInternalServerError, "InternalFailure", "the test proxy cannot read "+what)
		return true
	}
	e := awsmodel.CheckTree(svc, op, tree)
	if e == nil && svc == "ec2" && op == "DescribeInstanceTypes" {
		// moto answers every type in every region; AWS only the region's.
		e = regionTypes(regionOf(req), tree)
	}
	if e == nil {
		return false
	}
	a.mu.Lock()
	a.note("rules")
	a.rules.refused = append(a.rules.refused, fmt.Sprintf("%s.%s: %s: %s", svc, op, e.Code, e.Message))
	a.mu.Unlock()
	writeModelError(w, svc, e)
	return true
}

// checkReadAll fails t for every request the proxy could not read, and
// logs what the rules refused (a refusal a test did not expect fails it
// by its own check).
func (a *awsLike) checkReadAll(t *testing.T) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.rules.refused {
		t.Logf("refused by the service model's rules: %s", r)
	}
	for _, u := range a.rules.unread {
		t.Errorf("the proxy could not read a request, so no rule checked it: %s", u)
	}
}

// TestProxyRefusesModelRules: a request that breaks a rule of the service
// model, sent by the SDK through the proxy, gets AWS's code and message
// in the service's own error format, and moto never sees it.
func TestProxyRefusesModelRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	viaEC2, viaS3, viaIAM := clients(t, e.rec.srv.URL, "test", "test")
	viaSSM := e.ssmAs("test", "test", "")
	viaSSM = ssm.New(viaSSM.Options(), func(o *ssm.Options) { o.BaseEndpoint = aws.String(e.rec.srv.URL) })
	long := strings.Repeat("u", 65)
	for i, tc := range []struct {
		name, code, inMsg string
		call              func() error
	}{
		{"iam user name of 65 characters", "ValidationError", "Value '" + long + "' at 'userName' failed to satisfy constraint: Member must have length less than or equal to 64",
			func() error {
				_, err := viaIAM.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(long)})
				return err
			}},
		{"ssm parameter type outside its enum", "ValidationException", "at 'type' failed to satisfy constraint: Member must satisfy enum value set",
			func() error {
				_, err := viaSSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/x"), Value: aws.String("v"), Type: ssmtypes.ParameterType("Secret")})
				return err
			}},
		{"ec2 page below its minimum", "InvalidParameterValue", "at 'maxResults'",
			func() error {
				_, err := viaEC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{MaxResults: aws.Int32(2)})
				return err
			}},
		{"s3 bucket listing of no buckets", "InvalidArgument", "at 'maxBuckets'",
			func() error {
				_, err := viaS3.ListBuckets(ctx, &s3.ListBucketsInput{MaxBuckets: aws.Int32(0)})
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var api smithy.APIError
			if err := tc.call(); !errors.As(err, &api) || api.ErrorCode() != tc.code || !strings.Contains(api.ErrorMessage(), tc.inMsg) {
				t.Fatalf("got %v, want %s containing %q", err, tc.code, tc.inMsg)
			}
			if n := e.rec.aws.count("rules"); n != i+1 {
				t.Fatalf("%d refusals counted, want %d", n, i+1)
			}
		})
	}
	if _, err := e.iam.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(long)}); err == nil {
		t.Fatal("moto created the user the rules refused")
	}
}

// regionTypes is EC2's answer in region to the DescribeInstanceTypes tree.
func regionTypes(region string, tree map[string]any) *awsmodel.Error {
	var types []string
	items, _ := tree["InstanceTypes"].([]any)
	for _, it := range items {
		if s, ok := it.(string); ok {
			types = append(types, s)
		}
	}
	if err := awsmodel.DescribeInstanceTypes(region, types); err != nil {
		e, _ := err.(*awsmodel.Error)
		return e
	}
	return nil
}

// regionOf is the region a request is signed for.
func regionOf(req *http.Request) string {
	parts := strings.Split(credentialOf(req), "/")
	if len(parts) < 3 {
		return ""
	}
	return parts[2]
}
