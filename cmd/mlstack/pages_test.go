package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

// TestLsPastIAMsFirstPage: IAM answers 100 users a page (moto all of
// them; the proxy pages as IAM does), so the 101st stack is on the
// second page of ListUsers, and ls must list it (issue 25).
func TestLsPastIAMsFirstPage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 101 {
		s := fmt.Sprintf("s%03d", i)
		_, err := e.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("mlstack-" + s), Path: aws.String("/mlstack/"),
			Tags: []iamtypes.Tag{{Key: aws.String("mlstack:stack"), Value: aws.String(s)}, {Key: aws.String("mlstack:region"), Value: aws.String(testRegion)},
				{Key: aws.String("mlstack:created-at"), Value: aws.String("2026-02-01T00:00:00Z")}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimRight(e.ok("ls").stdout, "\n"), "\n")
	if len(lines) != 102 || !strings.HasPrefix(lines[101], "s100 ") {
		t.Errorf("ls listed %d stacks, the last %q", len(lines)-1, lines[len(lines)-1])
	}
	if e.rec.aws.count("IAM page") == 0 {
		t.Error("the proxy never paged ListUsers")
	}

	// A marker IAM did not hand out, or one brought to another listing, is refused.
	_, _, viaProxy := clients(t, e.rec.srv.URL, "test", "test")
	first, err := viaProxy.ListUsers(ctx, &iam.ListUsersInput{PathPrefix: aws.String("/mlstack/")})
	if err != nil || len(first.Users) != 100 || !first.IsTruncated {
		t.Fatalf("first page: %v", err)
	}
	for _, c := range []struct{ prefix, marker, code string }{
		{"/mlstack/", aws.ToString(first.Marker), ""},
		{"/mlstack/", "mlstack-s099", "ValidationError"},
		{"/", aws.ToString(first.Marker), "ValidationError"},
	} {
		_, err := viaProxy.ListUsers(ctx, &iam.ListUsersInput{PathPrefix: aws.String(c.prefix), Marker: aws.String(c.marker)})
		var ae smithy.APIError
		code := ""
		if asAPIError(err, &ae) {
			code = ae.ErrorCode()
		} else if err != nil {
			code = err.Error()
		}
		if code != c.code {
			t.Errorf("ListUsers %s after %.12q: %q, want %q", c.prefix, c.marker, code, c.code)
		}
	}
}
