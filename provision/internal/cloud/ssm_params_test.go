package cloud_test

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

func TestEnsureParamsStoresOnlyWhatIsMissing(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	want := map[string]string{cloud.ParamAdminPassword: "pw-1", cloud.ParamFlaskSecret: "flask-1"}

	found, err := cloud.FindParams(ctx, f, n)
	must(t, err)
	if len(found.Values) != 0 || found.Mode != "" {
		t.Fatalf("found %+v in an empty account", found)
	}
	if p := found.Plan(n, want); len(p) != 2 || p[0].Name != n.Param(cloud.ParamAdminPassword) || p[0].Verb != "store" {
		t.Errorf("plan %+v", p)
	}
	must(t, cloud.EnsureParams(ctx, f, found, n, want, tags, "mlstack creds rotate", newProgress(io.Discard)))
	for name, v := range want {
		p := f.Params[n.Param(name)]
		if p == nil || p.Value != v || p.Typ != ssmtypes.ParameterTypeSecureString || p.Tags[cloud.TagStack] != "demo" {
			t.Errorf("%s: %+v", name, p)
		}
	}

	// Read back, everything is there: no plan, no call.
	found, err = cloud.FindParams(ctx, f, n)
	must(t, err)
	if found.Values[cloud.ParamAdminPassword] != "pw-1" || len(found.Plan(n, want)) != 0 {
		t.Fatalf("found %+v", found)
	}
	f.ResetCalls()
	must(t, cloud.EnsureParams(ctx, f, found, n, want, tags, "mlstack creds rotate", newProgress(io.Discard)))
	if len(f.Calls()) != 0 {
		t.Errorf("second ensure called %v", f.Calls())
	}

	// A secret rotated elsewhere is kept, with a warning that never shows a value.
	var log strings.Builder
	changed := map[string]string{cloud.ParamAdminPassword: "pw-2", cloud.ParamFlaskSecret: "flask-1"}
	must(t, cloud.EnsureParams(ctx, f, found, n, changed, tags, "mlstack creds rotate", newProgress(&log)))
	if f.Params[n.Param(cloud.ParamAdminPassword)].Value != "pw-1" || len(f.Mutating()) != 0 {
		t.Errorf("overwrote a secret rotated elsewhere: %v", f.Mutating())
	}
	if !strings.Contains(log.String(), "differs from this machine's state") || strings.Contains(log.String(), "pw-") {
		t.Errorf("log %q", log.String())
	}
}

func TestFindParamsSplitsModeAndDatabase(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for name, v := range map[string]string{
		cloud.ParamAdminPassword: "pw", cloud.ParamArtifacts: "proxied", cloud.ParamDBPassword: "dbpw",
		cloud.ParamDatabase: "db.example:5432", cloud.ParamTLSCert: "cert",
	} {
		f.PutPublished(n.Param(name), v)
	}
	f.PutPublished(cloud.NamesFor("other", cloudfake.FakeAccount, cloudfake.FakeRegion).Param(cloud.ParamFlaskSecret), "not ours")
	found, err := cloud.FindParams(f.Ctx(), f, n)
	must(t, err)
	if len(found.Values) != 1 || found.Values[cloud.ParamAdminPassword] != "pw" || found.Mode != "proxied" ||
		found.DBPassword != "dbpw" || found.DBEndpoint != "db.example:5432" {
		t.Errorf("found %+v", found)
	}
	if c := f.Count("SSM.GetParameters"); c != 1 {
		t.Errorf("%d GetParameters calls, want 1", c)
	}
	f.FailNext("GetParameters", cloudfake.AwsErr("ThrottlingException"), 1)
	if _, err := cloud.FindParams(f.Ctx(), f, n); err == nil || !strings.Contains(err.Error(), "reading SSM parameters") || cloud.ErrorCode(err) != "ThrottlingException" {
		t.Errorf("find = %v", err)
	}
}

func TestUpdateParamsOverwritesAndRetags(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	found := &cloud.ParamsFound{Values: map[string]string{}}
	must(t, cloud.EnsureParams(ctx, f, found, n, map[string]string{cloud.ParamAdminPassword: "old"}, tags, "", newProgress(io.Discard)))
	f.ResetCalls()
	want := map[string]string{cloud.ParamAdminPassword: "new", cloud.ParamFlaskSecret: "flask"}
	must(t, cloud.UpdateParams(ctx, f, found, n, want, tags, newProgress(io.Discard)))
	for name, v := range want {
		if p := f.Params[n.Param(name)]; p.Value != v || p.Tags[cloud.TagStack] != "demo" || found.Values[name] != v {
			t.Errorf("%s: %+v, found %q", name, p, found.Values[name])
		}
	}
	// The existing one is overwritten and tagged apart (SSM refuses tags with
	// Overwrite); the new one gets its tags as it is made.
	if f.Count("SSM.PutParameter") != 2 || f.Count("SSM.AddTagsToResource") != 1 {
		t.Errorf("calls %v", f.Calls())
	}

	for _, c := range []struct{ op, want string }{
		{"PutParameter", "storing SSM parameter /mlstack/demo/admin-password"},
		{"AddTagsToResource", "tagging SSM parameter /mlstack/demo/admin-password"},
	} {
		f.FailNext(c.op, cloudfake.AwsErr("AccessDeniedException"), 1)
		err := cloud.UpdateParams(ctx, f, found, n, want, tags, newProgress(io.Discard))
		if err == nil || !strings.Contains(err.Error(), c.want) || cloud.ErrorCode(err) != "AccessDeniedException" {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}
	f.FailNext("PutParameter", cloudfake.AwsErr("AccessDeniedException"), 1)
	if err := cloud.EnsureParams(ctx, f, &cloud.ParamsFound{Values: map[string]string{}}, n, want, tags, "", newProgress(io.Discard)); cloud.ErrorCode(err) != "AccessDeniedException" {
		t.Errorf("ensure = %v", err)
	}
}

func TestPutParamOverwritesOneMadeMeanwhile(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f.PutPublished(n.Param(cloud.ParamArtifacts), "direct")
	in := &ssm.PutParameterInput{Name: aws.String(n.Param(cloud.ParamArtifacts)), Value: aws.String("proxied"), Type: ssmtypes.ParameterTypeString}
	must(t, cloud.PutParam(f.Ctx(), f, in, false, cloudfake.StackTagsFor("demo", time.Now())))
	if p := f.Params[n.Param(cloud.ParamArtifacts)]; p.Value != "proxied" || f.Count("SSM.PutParameter") != 2 {
		t.Errorf("param %+v, calls %v", p, f.Calls())
	}
}

func TestParamInventoryAndDelete(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	rows, _, err := cloud.ParamInventory(ctx, f, n)
	if err != nil || rows != nil {
		t.Fatalf("inventory of nothing: %v %v", rows, err)
	}
	var names []string
	for i := range 12 {
		name := n.Param(fmt.Sprintf("p%02d", i))
		f.PutPublished(name, "v")
		names = append(names, name)
	}
	f.PutPublished(n.Param("nested/deeper"), "v") // under the path, one level down; listed sorted, first
	names = append(names, n.Param("nested/deeper"))
	other := cloud.NamesFor("demo2", cloudfake.FakeAccount, cloudfake.FakeRegion).Param(cloud.ParamTLSCert)
	f.PutPublished(other, "v")
	f.PutPublished(n.Param(cloud.ParamArtifacts), "proxied") // a String: its value is the mode
	names = append(names, n.Param(cloud.ParamArtifacts))

	rows, mode, err := cloud.ParamInventory(ctx, f, n)
	must(t, err)
	if mode != "proxied" {
		t.Errorf("artifacts mode %q, want proxied", mode)
	}
	if len(rows) != len(names) || rows[0].Kind != cloud.KindParam || rows[0].Name != n.Param(cloud.ParamArtifacts) || rows[1].Name != n.Param("nested/deeper") || rows[len(rows)-1].Name != n.Param("p11") {
		t.Fatalf("inventory %+v", rows)
	}
	var all []string
	for _, r := range rows {
		all = append(all, r.Name)
	}
	must(t, cloud.DeleteParams(ctx, f, n, all, newProgress(io.Discard)))
	if f.Count("SSM.DeleteParameters") != 2 || len(f.Params) != 1 || f.Params[other] == nil {
		t.Errorf("left %v, calls %v", f.Params, f.Calls())
	}
	f.ResetCalls()
	must(t, cloud.DeleteParams(ctx, f, n, nil, newProgress(io.Discard)))
	if len(f.Calls()) != 0 {
		t.Errorf("delete of nothing called %v", f.Calls())
	}

	f.FailNext("GetParametersByPath", cloudfake.AwsErr("ThrottlingException"), 1)
	if _, _, err := cloud.ParamInventory(ctx, f, n); err == nil || !strings.Contains(err.Error(), "listing SSM parameters under /mlstack/demo/") {
		t.Errorf("inventory = %v", err)
	}
	// One failing chunk does not keep the other from going; both errors are told.
	f.PutPublished(names[0], "v")
	f.FailNext("DeleteParameters", cloudfake.AwsErr("ThrottlingException"), 1)
	err = cloud.DeleteParams(ctx, f, n, all, newProgress(io.Discard))
	if cloud.ErrorCode(err) != "ThrottlingException" || f.Count("SSM.DeleteParameters") != 2 {
		t.Errorf("delete = %v, calls %v", err, f.Calls())
	}
}

func TestPublished(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	got, err := cloud.Published(f.Ctx(), f, n, cloud.ParamTLSCert, cloud.ParamHostKey)
	if err != nil || len(got) != 0 {
		t.Fatalf("nothing published: %v %v", got, err)
	}
	f.PutPublished(n.Param(cloud.ParamTLSCert), "cert")
	got, err = cloud.Published(f.Ctx(), f, n, cloud.ParamTLSCert, cloud.ParamHostKey)
	if err != nil || len(got) != 1 || got[cloud.ParamTLSCert].Value != "cert" || got[cloud.ParamTLSCert].At.IsZero() {
		t.Errorf("published %+v %v", got, err)
	}
	// A SecureString where the server writes a String is not the server's.
	f.Params[n.Param(cloud.ParamHostKey)] = f.Params[n.Param(cloud.ParamTLSCert)]
	f.Params[n.Param(cloud.ParamHostKey)].Typ = ssmtypes.ParameterTypeSecureString
	if _, err := cloud.Published(f.Ctx(), f, n, cloud.ParamHostKey); err == nil || !strings.Contains(err.Error(), "not the String the server writes") {
		t.Errorf("published a SecureString: %v", err)
	}
	f.FailNext("GetParameters", cloudfake.AwsErr("ThrottlingException"), 1)
	if _, err := cloud.Published(f.Ctx(), f, n, cloud.ParamTLSCert); cloud.ErrorCode(err) != "ThrottlingException" {
		t.Errorf("published = %v", err)
	}
}
