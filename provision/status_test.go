package provision

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func statusOpts(stack, output string) (StatusOptions, *bytes.Buffer) {
	out := &bytes.Buffer{}
	return StatusOptions{Stack: Stack{Name: stack, StateDir: "/nonexistent"}, Streams: Streams{Out: out}, Output: output}, out
}

// healthServer answers /health with status, on loopback: status never asks
// the names the fake invents.
func healthServer(t *testing.T, status int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	t.Cleanup(srv.Close)
	return srv.URL + "/health"
}

func TestStatusTable(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	upStack(t, f, "demo")
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	id := f.LiveInstances()[0]
	o, out := statusOpts("demo", "")
	o.hooks.HealthURL = healthServer(t, http.StatusOK)
	if err := Status(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 26 {
		t.Fatalf("status:\n%s", out)
	}
	if lines[0] != "stack demo (account 123456789012, eu-west-3)" {
		t.Errorf("header %q", lines[0])
	}
	for i, want := range []string{"owner: " + cloudfake.FakeOwner, "created: 20", "expires: never", "tracking URI: https://ec2-", "health: healthy",
		"allowed CIDRs: 198.51.100.7/32", "SSH: closed", "artifacts: direct (clients write to S3 with the stack's key)", "database: sqlite on the instance", "backups: none yet", "cost: about $13.40 a month", "env file: none on this machine", "resources:"} {
		if got := strings.Join(strings.Fields(lines[i+1]), " "); !strings.HasPrefix(got, want) {
			t.Errorf("line %d = %q, want %q…", i+1, got, want)
		}
	}
	want := [][]string{
		{"instance", "mlstack-demo", id, "running"},
		{"security", "group", n.SecurityGroup, "sg-", "exists"},
		{"key", "pair", n.KeyPair, "key-", "exists"},
		{"IAM", "role", n.Role, "", "exists"},
		{"instance", "profile", n.Profile, "", "exists"},
		{"SSM", "parameter", "/mlstack/demo/admin-password", "/mlstack/demo/admin-password", "exists"},
		{"SSM", "parameter", "/mlstack/demo/artifacts", "", "exists"},
		{"SSM", "parameter", "/mlstack/demo/flask-secret-key", "", "exists"},
		{"SSM", "parameter", "/mlstack/demo/ssh-host-key", "", "exists"},
		{"SSM", "parameter", "/mlstack/demo/tls-cert", "", "exists"},
		{"S3", "bucket", n.Bucket, n.Bucket, "exists"},
		{"IAM", "user", n.User, "", "exists"},
	}
	for i, w := range want {
		got := strings.Fields(lines[i+14])
		if len(got) < 4 || !strings.HasPrefix(got[0], w[0]) || !strings.Contains(lines[i+14], w[2]) || !strings.HasPrefix(got[len(got)-1], w[len(w)-1]) {
			t.Errorf("row %d = %q, want %q", i, lines[i+14], w)
		}
	}
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("status made mutating calls %v", m)
	}
}

func TestStatusJSON(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	upStack(t, f, "demo")
	o, out := statusOpts("demo", "json")
	o.hooks.HealthURL = healthServer(t, http.StatusServiceUnavailable)
	if err := Status(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	var rep cloud.StackJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if rep.Stack != "demo" || rep.Account != cloudfake.FakeAccount || rep.Region != cloudfake.FakeRegion || len(rep.Resources) != 12 ||
		rep.Resources[0].Kind != cloud.KindInstance || rep.Resources[0].State != "running" || rep.TrackingURI == nil ||
		!strings.HasPrefix(*rep.TrackingURI, "https://ec2-") || rep.Health != cloud.HealthBad || rep.Owner == nil || *rep.Owner != cloudfake.FakeOwner ||
		rep.CreatedAt == nil || rep.ExpiresAt != nil || rep.Instance == nil || rep.Instance.Type != "t2.micro" || rep.SSH ||
		len(rep.AllowedCIDRs) != 1 || rep.CostPerMonthUSD == nil || *rep.CostPerMonthUSD != 13.40 {
		t.Errorf("report %+v", rep)
	}
	for _, r := range rep.Resources {
		if kindLabels[r.Kind] == "" || r.ID == "" && r.Kind != cloud.KindUser && r.Kind != cloud.KindRole && r.Kind != cloud.KindProfile {
			t.Errorf("resource %+v: want a machine kind and its id", r)
		}
	}
	for _, key := range []string{`"expires_at": null`, `"env_file": null`, `"created_at": "20`} {
		if !strings.Contains(out.String(), key) {
			t.Errorf("json lacks %s:\n%s", key, out)
		}
	}
}

func TestStatusStoppedAndEmpty(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	upStack(t, f, "demo")
	f.SetInstanceState(f.LiveInstances()[0], ec2types.InstanceStateNameStopped)
	o, out := statusOpts("demo", "table")
	if err := Status(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stopped", "tracking URI: none (no running instance)", "health: no server", "about $1.28 a month"} {
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	// A stack that does not exist is an error; its JSON has [] for lists.
	o, out = statusOpts("nothing", "")
	if err := Status(f.Ctx(), o); err == nil || cloud.IsUsage(err) || !strings.Contains(err.Error(), "stack nothing does not exist") {
		t.Fatalf("status of nothing = %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("status of nothing printed %q", out)
	}
	o, out = statusOpts("nothing", "json")
	if err := Status(f.Ctx(), o); err == nil {
		t.Fatal("status --output json of nothing succeeded")
	}
	for _, want := range []string{`"resources": []`, `"allowed_cidrs": []`, `"tracking_uri": null`, `"instance": null`, `"health": "no_server"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("json of nothing lacks %s:\n%s", want, out)
		}
	}
}

func TestStatusIgnoresLookAlikes(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	other := cloudfake.StackTagsFor("other", time.Now())
	f.AddUser(n.User, other)
	f.AddRole(n.Role, nil)
	f.AddProfile(n.Profile, other)
	f.AddBucket(n.Bucket, nil)
	f.AddBucket("mlstack-x", other)
	f.AddKeyPair(n.KeyPair, nil)
	f.AddGroup(n.SecurityGroup, nil)
	o, out := statusOpts("demo", "")
	if err := Status(f.Ctx(), o); err == nil || out.Len() != 0 {
		t.Errorf("status lists look-alikes (%v):\n%s", err, out)
	}
	// A bucket tagged for another stack is not ours either.
	f.Mu.Lock()
	f.Buckets[n.Bucket].Tags = other
	f.Mu.Unlock()
	o, out = statusOpts("demo", "")
	if err := Status(f.Ctx(), o); err == nil || out.Len() != 0 {
		t.Errorf("status = %v:\n%s", err, out)
	}
}

func TestStatusErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		op, want string
		match    func(in any) bool // which call of op fails; nil: the first
	}{
		{"DescribeInstances", "listing instances of stack demo", nil},
		// The database's group is read at the same time: aim at the server's.
		{"DescribeSecurityGroups", "listing security groups of stack demo", cloudfake.ForGroup("mlstack-demo")},
		{"DescribeKeyPairs", "reading key pair mlstack-demo", nil},
		{"GetUser", "reading IAM user", nil},
		{"GetRole", "reading IAM role", nil},
		{"GetInstanceProfile", "reading instance profile", nil},
		{"GetBucketTagging", "reading S3 bucket", nil},
	} {
		t.Run(c.op, func(t *testing.T) {
			f := newInstalledFake(t)
			upStack(t, f, "demo")
			f.FailIf(c.op, cloudfake.AwsErr("ServiceUnavailable"), 1, false, c.match)
			o, out := statusOpts("demo", "")
			err := Status(f.Ctx(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) || !cloud.HasCode(err, "ServiceUnavailable") {
				t.Fatalf("status = %v", err)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q on an error", out)
			}
		})
	}
	t.Run("bad input", func(t *testing.T) {
		f := newInstalledFake(t)
		for _, o := range []StatusOptions{
			{Stack: Stack{Name: "demo", StateDir: "/x"}, Output: "yaml"},
			{Stack: Stack{Name: "-demo", StateDir: "/x"}},
			{Stack: Stack{Name: "demo", StateDir: "/x"}, AWS: cloud.AWS{Region: "EU"}},
		} {
			if err := Status(f.Ctx(), o); !cloud.IsUsage(err) {
				t.Errorf("status(%+v) = %v", o, err)
			}
		}
		if f.Connects != 0 {
			t.Error("bad input reached AWS")
		}
	})
}

// pinnedHealthServer serves /health over TLS with a certificate for the
// instance's public name and 127.0.0.1, and returns the URL and the PEM.
func pinnedHealthServer(t *testing.T, dns string) (string, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{dns}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/health", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestStatusHealthOverPinnedTLS: status asks an https server trusting only
// the certificate the server published in SSM, from any machine (nothing
// local needed); another certificate, or none, is not trusted.
func TestStatusHealthOverPinnedTLS(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	upStack(t, f, "demo")
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f.Mu.Lock()
	dns := aws.ToString(f.Instances[0].Inst.PublicDnsName)
	f.Mu.Unlock()
	url, certPEM := pinnedHealthServer(t, dns)
	for _, c := range []struct {
		name, published, want string
	}{
		{"the server's certificate", string(certPEM), "health: healthy"},
		{"another certificate", string(cloudfake.TestCert(dns, "127.0.0.1")), "health: unreachable"},
		{"none published", "", "health: unreachable (no certificate to trust: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.Mu.Lock()
			delete(f.Params, n.Param(cloud.ParamTLSCert))
			f.Mu.Unlock()
			if c.published != "" {
				f.PutPublished(n.Param(cloud.ParamTLSCert), c.published)
			}
			o, out := statusOpts("demo", "")
			o.hooks.HealthURL = url
			if err := Status(f.Ctx(), o); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(strings.Fields(out.String()), " "); !strings.Contains(got, c.want) {
				t.Errorf("status lacks %q:\n%s", c.want, out)
			}
		})
	}
}
