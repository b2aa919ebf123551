package provision

import (
	"context"
	"errors"
	"time"

	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mlstack/mlstack/internal/awsmodel"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
	"github.com/mlstack/mlstack/provision/region"
)

// matrixNames are the stack-name shapes mlstack accepts: the shortest,
// hyphens, and the longest, whose bucket name in the longest region name
// is S3's limit exactly.
var matrixNames = []string{"a", "ml-team-7", "abcdefghijklmnopqrstuvwx", "q0-0-0-0-0-0-0-0-0-0-0-9"}

// matrixCallers are principals whose ARN is the owner tag: root, an SSO
// role session, a user with a path, a user whose name holds a comma.
var matrixCallers = []string{
	"arn:aws:iam::123456789012:root",
	"arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/jane.doe@example.com",
	"arn:aws:iam::123456789012:user/dept/ci/deployer",
	"arn:aws:iam::123456789012:user/ops,eu",
}

// TestRulesMatrix: every request up and down send, for every stack-name
// shape × every region of the table × both artifact modes × both
// engines, passes AWS's rules (the fake checks each against the service
// models and the documented table: awsmodel.CheckInput), under each of the
// principals in turn; down leaves nothing. An ISO region is refused before
// any call.
func TestRulesMatrix(t *testing.T) {
	t.Parallel()
	health := healthServer(t, 200)
	i := 0
	for _, r := range region.Names() {
		if region.Isolated(r) != "" {
			t.Run(r, func(t *testing.T) { t.Parallel(); matrixISO(t, r) })
			continue
		}
		for _, name := range matrixNames {
			for _, arts := range []string{"direct", "proxied"} {
				for _, db := range []string{cloud.DBSQLite, cloud.DBPostgres} {
					caller := matrixCallers[i%len(matrixCallers)]
					i++
					t.Run(fmt.Sprintf("%s/%s/%s/%s", r, name, arts, db), func(t *testing.T) {
						t.Parallel()
						matrixUpDown(t, r, name, arts, db, caller, health)
					})
				}
			}
		}
	}
}

func matrixUpDown(t *testing.T, r, name, arts, db, caller, health string) {
	f := cloudfake.NewFakeAWS()
	f.Region = r
	f.SetCaller(caller)
	owner := region.Of(r).CanonicalOwner
	f.Mu.Lock()
	for i := range f.Images { // the partition's Canonical account publishes them
		f.Images[i].OwnerId = aws.String(owner)
	}
	f.Mu.Unlock()
	if refused := matrixRefusal(r); refused != "" {
		matrixRefused(t, f, name, refused)
		return
	}
	dir := t.TempDir()
	o, _, progress := upOpts(dir, name)
	o.Artifacts, o.Database = arts, db
	if db == cloud.DBPostgres {
		o.NoWait, o.hooks.HealthURL = false, health
	}
	if err := Up(f.Ctx(), o); err != nil {
		var ae *awsmodel.Error
		if errors.As(err, &ae) || strings.Contains(err.Error(), "validation error") {
			t.Fatalf("AWS's rules refuse a request of up: %v", err)
		}
		t.Fatalf("up: %v\n%s", err, progress)
	}
	// The fake answers at once: a down still waiting after 20 s is stuck.
	ctx, cancel := context.WithTimeout(f.Ctx(), 20*time.Second)
	defer cancel()
	do, _, downLog := downOpts(dir, name)
	do.Yes = true
	if err := Down(ctx, do); err != nil {
		t.Fatalf("down: %v\n%s", err, downLog)
	}
	if left := f.Owns(name); len(left) != 0 {
		t.Fatalf("down left %v", left)
	}
}

// matrixRefusal is the usage error up gives in r before it makes
// anything, "" where it makes the stack: a partition whose Ubuntu
// publisher mlstack does not know, a region whose offering data (moto's,
// from AWS) has neither t2.micro nor t3.micro.
func matrixRefusal(r string) string {
	switch {
	case region.Of(r).CanonicalOwner == "":
		return "which account publishes Canonical's Ubuntu images"
	case !awsmodel.RegionOffers(r, "t2.micro") && !awsmodel.RegionOffers(r, "t3.micro"):
		return "does not exist in " + r
	}
	return ""
}

func matrixRefused(t *testing.T, f *cloudfake.FakeAWS, name, want string) {
	o, _, _ := upOpts(t.TempDir(), name)
	err := Up(f.Ctx(), o)
	if err == nil || !IsUsage(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("up: %v (usage error: %v), want a usage error saying %q", err, IsUsage(err), want)
	}
	if len(f.Mutating()) != 0 {
		t.Fatalf("calls before the refusal: %v", f.Mutating())
	}
}

func matrixISO(t *testing.T, r string) {
	f := cloudfake.NewFakeAWS()
	f.Region = r
	o, _, _ := upOpts(t.TempDir(), "demo")
	o.AWS.Region = r
	err := Up(f.Ctx(), o)
	if err == nil || !IsUsage(err) || !strings.Contains(err.Error(), "ISO partitions") {
		t.Fatalf("up in %s: %v, want the ISO partitions refused", r, err)
	}
	if len(f.Mutating()) != 0 {
		t.Fatalf("calls before the refusal: %v", f.Mutating())
	}
}
