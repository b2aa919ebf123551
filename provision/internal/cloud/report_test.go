package cloud_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
	"github.com/mlstack/mlstack/provision/local"
)

func TestStackJSONKeepsEveryKey(t *testing.T) {
	t.Parallel()
	// An unknown stack: every key there, null where nothing is known, [] for lists.
	b, err := json.Marshal(cloud.StackInfo{Stack: "demo", Account: cloudfake.FakeAccount, Region: cloudfake.FakeRegion})
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	for _, k := range []string{"owner", "created_at", "expires_at", "instance", "tracking_uri", "artifacts", "database", "newest_backup", "env_file"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	if m["health"] != cloud.HealthNotChecked || fmt.Sprint(m["allowed_cidrs"]) != "[]" || fmt.Sprint(m["resources"]) != "[]" || m["expired"] != false {
		t.Errorf("json %s", b)
	}
	if m["cost_per_month_usd"] != 0.0 {
		t.Errorf("cost of nothing %v", m["cost_per_month_usd"])
	}

	// A running stack past its expiry, in another zone: times in UTC.
	paris := time.FixedZone("CET", 3600)
	info := cloud.StackInfo{
		Stack: "demo", Owner: cloudfake.FakeOwner, Health: "ok",
		CreatedAt: time.Date(2020, 1, 1, 12, 0, 0, 0, paris), ExpiresAt: time.Date(2020, 1, 2, 12, 0, 0, 0, paris),
		Instance: &cloud.InstanceInfo{ID: "i-1", Type: "t2.micro", State: "running"}, TrackingURI: "https://h:5000",
	}
	b, err = json.Marshal(info)
	must(t, err)
	var j cloud.StackJSON
	must(t, json.Unmarshal(b, &j))
	if !j.Expired || *j.Owner != cloudfake.FakeOwner || j.CreatedAt.Location() != time.UTC || !strings.Contains(string(b), `"created_at":"2020-01-01T11:00:00Z"`) ||
		j.Health != "ok" || j.Instance.State != "running" || j.CostPerMonthUSD == nil || *j.CostPerMonthUSD != 13.4 {
		t.Errorf("json %s", b)
	}
	if info.InstanceState() != "running" || (cloud.StackInfo{}).InstanceState() != "none" {
		t.Error("instance state")
	}
	if info.Expired(info.ExpiresAt.Add(-time.Second)) || !info.Expired(info.ExpiresAt) || (cloud.StackInfo{}).Expired(time.Now()) {
		t.Error("expired")
	}
	// An instance type not in the table: no cost, and no key value.
	info.Instance.Type = "p5.48xlarge"
	b, err = json.Marshal(info)
	must(t, err)
	must(t, json.Unmarshal(b, &m))
	if m["cost_per_month_usd"] != nil {
		t.Errorf("cost of an unknown type %v", m["cost_per_month_usd"])
	}
}

func TestCostPerMonth(t *testing.T) {
	t.Parallel()
	inst := func(typ, state string) *cloud.InstanceInfo { return &cloud.InstanceInfo{Type: typ, State: state} }
	for _, c := range []struct {
		name string
		info cloud.StackInfo
		usd  float64
		ok   bool
	}{
		{"nothing", cloud.StackInfo{}, 0, true},
		// (0.0116 + 0.005) * 730 + 16 * 0.08 = 13.398 → 13.40
		{"running t2.micro", cloud.StackInfo{Instance: inst("t2.micro", "running")}, 13.4, true},
		{"pending t3.micro", cloud.StackInfo{Instance: inst("t3.micro", "pending")}, 12.52, true},
		{"stopped: the volume only", cloud.StackInfo{Instance: inst("t2.micro", "stopped")}, 1.28, true},
		{"terminated", cloud.StackInfo{Instance: inst("t2.micro", "terminated")}, 0, true},
		{"unknown type", cloud.StackInfo{Instance: inst("x9.huge", "running")}, 0, false},
		// 20 * 0.115 + 0.016 * 730 = 13.98
		{"database alone", cloud.StackInfo{DBClass: "db.t4g.micro", DBState: "available"}, 13.98, true},
		{"stopped database: storage", cloud.StackInfo{DBClass: "db.t4g.micro", DBState: "stopped"}, 2.3, true},
		{"database and server", cloud.StackInfo{DBClass: "db.t3.micro", Instance: inst("t2.micro", "running")}, 2.3 + 13.14 + 13.398, true},
		{"unknown database class", cloud.StackInfo{DBClass: "db.r6g.large", Instance: inst("t2.micro", "running")}, 0, false},
	} {
		usd, ok := c.info.CostPerMonth()
		if ok != c.ok || fmt.Sprintf("%.2f", usd) != fmt.Sprintf("%.2f", c.usd) {
			t.Errorf("%s: %.4f %v, want %.2f %v", c.name, usd, ok, c.usd, c.ok)
		}
	}
}

func TestSortResourcesInDeleteOrder(t *testing.T) {
	t.Parallel()
	rs := []cloud.Resource{
		{Kind: cloud.KindUser, ID: "u"}, {Kind: cloud.KindBucket, ID: "b"}, {Kind: cloud.KindParam, ID: "/p2"},
		{Kind: cloud.KindParam, ID: "/p1"}, {Kind: cloud.KindSG, ID: "sg"}, {Kind: cloud.KindInstance, ID: "i-2"},
		{Kind: cloud.KindInstance, ID: "i-1"}, {Kind: cloud.KindRole, ID: "r"}, {Kind: cloud.KindDB, ID: "db"},
	}
	cloud.SortResources(rs)
	var got []string
	for _, r := range rs {
		got = append(got, r.ID)
	}
	if strings.Join(got, " ") != "i-1 i-2 db sg r /p1 /p2 b u" {
		t.Errorf("order %v", got)
	}
}

func TestLegacyInstances(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	in := stackLaunch(t, f)
	// An earlier mlstack's bootstrap, gzipped as EC2 holds it.
	doc := "#cloud-config\nwrite_files:\n- " + string(cloud.LegacyMarker) + "\n"
	var packed bytes.Buffer
	zw := gzip.NewWriter(&packed)
	_, err := zw.Write([]byte(doc))
	must(t, err)
	must(t, zw.Close())
	in.Launch.UserData = packed.Bytes()
	inst, err := cloud.EnsureInstance(ctx, f, in)
	must(t, err)
	got, err := cloud.UserData(ctx, f, inst)
	if err != nil || string(got) != doc {
		t.Fatalf("user-data %q %v", got, err)
	}
	if legacy, err := cloud.IsLegacy(ctx, f, inst); err != nil || !legacy {
		t.Errorf("legacy %v %v", legacy, err)
	}
	// Today's bootstrap (TLS, no basic-auth file) is not.
	f.Instance(*inst.InstanceId).UserData = base64.StdEncoding.EncodeToString([]byte("#cloud-config\npackages: [nginx]\n"))
	if legacy, err := cloud.IsLegacy(ctx, f, inst); err != nil || legacy {
		t.Errorf("today's: legacy %v %v", legacy, err)
	}

	// No user-data at all: nothing to judge by.
	bare := f.AddStackInstance("bare", ec2types.InstanceStateNameRunning)
	if got, err := cloud.UserData(ctx, f, &ec2types.Instance{InstanceId: aws.String(bare)}); err != nil || got != nil {
		t.Errorf("user-data of a bare instance %q %v", got, err)
	}
	// User-data that is not base64, or not a cloud-init document.
	f.Instance(bare).UserData = "%%%"
	if _, err := cloud.UserData(ctx, f, &ec2types.Instance{InstanceId: aws.String(bare)}); err == nil || !strings.Contains(err.Error(), "is not base64") {
		t.Errorf("user-data = %v", err)
	}
	f.FailNext("DescribeInstanceAttribute", cloudfake.AwsErr("UnauthorizedOperation"), 1)
	if _, err := cloud.IsLegacy(ctx, f, inst); err == nil || !strings.Contains(err.Error(), "reading user-data of") || cloud.ErrorCode(err) != "UnauthorizedOperation" {
		t.Errorf("legacy = %v", err)
	}

	if uri := cloud.LegacyURI(inst); uri != "http://"+*inst.PublicDnsName+":5000" || cloud.LegacyURI(&ec2types.Instance{}) != "" {
		t.Errorf("legacy uri %q", uri)
	}
	dir := local.StackDir(t.TempDir(), "demo")
	if cloud.CertPathFor(dir, "https://h:5000") != dir.ServerCertFile() || cloud.CertPathFor(dir, "http://h:5000") != "" {
		t.Error("cert path")
	}
	if w := cloud.LegacyWarning("i-1", "mlstack down", "mlstack up"); !strings.Contains(w, "instance i-1") || !strings.Contains(w, "`mlstack down`, then `mlstack up`") {
		t.Errorf("warning %q", w)
	}
	if cloud.TrackingURI(&ec2types.Instance{}) != "" {
		t.Error("tracking uri without an address")
	}
}

func TestOpenSessionSharesTheDefaultVPC(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	s, err := cloud.OpenSession(ctx, cloud.AWS{})
	must(t, err)
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for range 3 {
		if _, err := cloud.FindSecurityGroup(ctx, s.EC2, n); err != nil {
			t.Fatal(err)
		}
	}
	if c := f.Count("EC2.DescribeVpcs"); c != 1 || f.Connects != 1 {
		t.Errorf("%d DescribeVpcs, %d connects", c, f.Connects)
	}
	// Another question about VPCs goes through every time.
	for range 2 {
		if _, err := s.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-0other"}}); err != nil {
			t.Fatal(err)
		}
	}
	if c := f.Count("EC2.DescribeVpcs"); c != 3 {
		t.Errorf("%d DescribeVpcs", c)
	}

	// A failed answer is not kept: the next asks again.
	f2 := cloudfake.NewFakeAWS()
	s2, err := cloud.OpenSession(f2.Ctx(), cloud.AWS{})
	must(t, err)
	f2.FailNext("DescribeVpcs", cloudfake.AwsErr("RequestLimitExceeded"), 1)
	if _, err := cloud.FindSecurityGroup(f2.Ctx(), s2.EC2, n); cloud.ErrorCode(err) != "RequestLimitExceeded" {
		t.Errorf("find = %v", err)
	}
	must2 := func() { _, err := cloud.FindSecurityGroup(f2.Ctx(), s2.EC2, n); must(t, err) }
	must2()
	must2()
	if c := f2.Count("EC2.DescribeVpcs"); c != 2 {
		t.Errorf("%d DescribeVpcs after a failure", c)
	}

	if s.RDSForRegion(cloudfake.FakeRegion) != s.RDS || s.RDSForRegion("us-east-1") == nil {
		t.Error("RDSForRegion")
	}
}

func TestValidateFlags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, want string
		ok       bool
	}{{"", "table", true}, {"json", "json", true}, {"table", "table", true}, {"yaml", "yaml", false}} {
		o := c.in
		err := cloud.ValidateOutput(&o)
		if (err == nil) != c.ok || o != c.want || (err != nil && !cloud.IsUsage(err)) {
			t.Errorf("output %q: %q %v", c.in, o, err)
		}
	}
	for _, c := range []struct {
		in, want time.Duration
		ok       bool
	}{{0, time.Minute, true}, {time.Second, time.Second, true}, {-time.Second, -time.Second, false}} {
		d := c.in
		err := cloud.ValidateTimeout(&d, time.Minute)
		if (err == nil) != c.ok || d != c.want {
			t.Errorf("timeout %v: %v %v", c.in, d, err)
		}
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{48 * time.Hour, "2d"}, {90 * time.Minute, "1h30m"}, {time.Hour, "1h"}, {30 * time.Minute, "30m"}, {45 * time.Second, "45s"}} {
		got := cloud.FormatDuration(c.d)
		back, err := cloud.ParseDuration("--ttl", got)
		if got != c.want || err != nil || back != c.d {
			t.Errorf("FormatDuration(%v) = %q, parses back to %v %v", c.d, got, back, err)
		}
	}
	if err := (cloud.AWS{Region: "nowhere-1"}).Validate(); !cloud.IsUsage(err) {
		t.Errorf("validate a bad region: %v", err)
	}
	if err := (cloud.AWS{}).Validate(); err != nil {
		t.Errorf("validate no region: %v", err)
	}
}

func TestAsUsageAndOwners(t *testing.T) {
	t.Parallel()
	plain := errors.New("disk on fire")
	if cloud.AsUsage(plain) != plain {
		t.Error("AsUsage changed a plain error")
	}
	if err := cloud.AsUsage(fmt.Errorf("state: %w", &local.NotWritableError{})); !cloud.IsUsage(err) {
		t.Errorf("not writable: %v", err)
	}
	if cloud.DescribeOwner("") != "an unknown principal (the stack predates owner tags)" || cloud.DescribeOwner(cloudfake.FakeOwner) != cloudfake.FakeOwner {
		t.Error("DescribeOwner")
	}
	d := &cloud.DriftError{Kind: "IAM role", Name: "r", What: "has inline policy x", Fix: "delete it"}
	if d.Error() != "IAM role r has inline policy x, which mlstack never sets up: mlstack will not use or change it until it is put right; delete it" {
		t.Errorf("drift %q", d.Error())
	}
}
