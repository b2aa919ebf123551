package cloud_test

// connectAWS against a local STS endpoint: the configuration chain, the
// caller identity, and the refusal of a stack's own scoped keys.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/config"
)

// stsServer answers GetCallerIdentity with arn, or with an error code.
func stsServer(t *testing.T, arn, errCode string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "GetCallerIdentity" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		if errCode != "" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>no</Message></Error><RequestId>r1</RequestId></ErrorResponse>`, errCode)
			return
		}
		account := strings.Split(arn, ":")[4]
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>%s</Arn><UserId>AIDAEXAMPLE</UserId><Account>%s</Account></GetCallerIdentityResult>
  <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`, arn, account)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// isolatedAWSEnv points the SDK's configuration chain at nothing but the
// given environment: no shared files, no instance metadata.
func isolatedAWSEnv(t *testing.T, endpoint string) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "", "AWS_SESSION_TOKEN": "", "AWS_ROLE_ARN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "",
		"AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL_STS": "", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "",
	} {
		t.Setenv(k, v)
	}
}

func TestConnectAWS(t *testing.T) {
	// Not parallel: isolatedAWSEnv sets the process environment.
	cases := []struct {
		arn, partition string
	}{
		{"arn:aws:iam::123456789012:user/admin", "aws"},
		{"arn:aws-cn:sts::123456789012:assumed-role/Admin/me", "aws-cn"},
		{"arn:aws-us-gov:iam::123456789012:root", "aws-us-gov"},
	}
	for _, c := range cases {
		t.Run(c.partition, func(t *testing.T) {
			url := stsServer(t, c.arn, "")
			isolatedAWSEnv(t, url)
			calls := &cloud.CallLog{}
			s, err := cloud.ConnectAWS(context.Background(), cloud.AWS{Calls: calls})
			if err != nil {
				t.Fatal(err)
			}
			if s.Account != "123456789012" || s.Region != "eu-west-3" || s.Partition != c.partition || s.S3Endpoint != url {
				t.Errorf("session %+v", s)
			}
			if s.EC2 == nil || s.IAM == nil || s.S3 == nil || s.EC2ForRegion("us-east-1") == nil || s.EC2ForRegion("eu-west-3") != s.EC2 || s.S3As("id", "secret") == nil {
				t.Error("session lacks clients")
			}
			if got := calls.Calls(); len(got) != 1 || got[0] != "STS.GetCallerIdentity" {
				t.Errorf("calls %v", got)
			}
			if sum := calls.Summary(); sum != "1 calls (0 mutating): STS.GetCallerIdentity×1" {
				t.Errorf("summary %q", sum)
			}
		})
	}
}

func TestConnectAWSRefusals(t *testing.T) {
	// Not parallel: it sets the process environment (t.Setenv).
	cases := []struct {
		name  string
		arn   string
		code  string
		env   map[string]string
		a     cloud.AWS
		want  string
		usage bool
	}{
		{"scoped keys", "arn:aws:iam::123456789012:user/mlstack/mlstack-demo", "", nil, cloud.AWS{}, "called with a stack's own scoped keys", true},
		{"rejected keys", "", "InvalidClientTokenId", nil, cloud.AWS{}, "sts:GetCallerIdentity): InvalidClientTokenId", true},
		{"no region", "arn:aws:iam::123456789012:user/admin", "", map[string]string{"AWS_REGION": ""}, cloud.AWS{}, "no AWS region", true},
		{"bad region", "arn:aws:iam::123456789012:user/admin", "", map[string]string{"AWS_REGION": "Paris"}, cloud.AWS{}, "is not a valid AWS region name", true},
		{"no credentials", "arn:aws:iam::123456789012:user/admin", "", map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, cloud.AWS{}, "no usable AWS credentials", true},
		{"unknown profile", "arn:aws:iam::123456789012:user/admin", "", nil, cloud.AWS{Profile: "nope"}, "loading AWS configuration", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			isolatedAWSEnv(t, stsServer(t, c.arn, c.code))
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := cloud.ConnectAWS(context.Background(), c.a)
			if err == nil || !strings.Contains(err.Error(), c.want) || cloud.IsUsage(err) != c.usage {
				t.Fatalf("connect = %v, want %q (usage %v)", err, c.want, c.usage)
			}
		})
	}
	t.Run("region option wins", func(t *testing.T) {
		isolatedAWSEnv(t, stsServer(t, "arn:aws:iam::123456789012:user/admin", ""))
		t.Setenv("AWS_REGION", "")
		s, err := cloud.ConnectAWS(context.Background(), cloud.AWS{Region: "ap-south-1"})
		if err != nil || s.Region != "ap-south-1" {
			t.Fatalf("connect = %+v, %v", s, err)
		}
	})
}

// TestS3Endpoint: the S3 endpoint override is what the SDK's own S3 client
// resolves: environment, a profile's endpoint_url or services section, and
// none at all under AWS_IGNORE_CONFIGURED_ENDPOINT_URLS.
func TestS3Endpoint(t *testing.T) {
	// Not parallel: it sets the process environment (t.Setenv).
	cfgFile := filepath.Join(t.TempDir(), "config")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(cfgFile, []byte("[profile global]\nendpoint_url = http://profile:3\n"+
		"[profile svc]\nservices = local\n[services local]\ns3 =\n  endpoint_url = http://profile-s3:4\n"), 0o600))
	cases := []struct {
		all, s3, ignore, profile, want string
	}{
		{"", "", "", "", ""},
		{"http://all:1", "", "", "", "http://all:1"},
		{"http://all:1", "http://s3:2", "", "", "http://s3:2"},
		{"http://all:1", "", "true", "", ""},
		{"", "http://s3:2", "true", "", ""},
		{"", "", "", "global", "http://profile:3"},
		{"", "", "", "svc", "http://profile-s3:4"},
		{"", "", "true", "global", ""},
	}
	for _, c := range cases {
		for k, v := range map[string]string{"AWS_ENDPOINT_URL": c.all, "AWS_ENDPOINT_URL_S3": c.s3, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": c.ignore} {
			t.Setenv(k, v)
			if v == "" {
				os.Unsetenv(k)
			}
		}
		t.Setenv("AWS_CONFIG_FILE", cfgFile)
		opts := []func(*config.LoadOptions) error{config.WithRegion("eu-west-3")}
		if c.profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(c.profile))
		}
		cfg, err := config.LoadDefaultConfig(context.Background(), opts...)
		must(err)
		if got := cloud.S3Endpoint(cfg); got != c.want {
			t.Errorf("%+v: got %q", c, got)
		}
	}
}

// TestOptInRegionNotEnabled: credentials refused in one region and accepted
// in the partition's home region mean the region is not enabled, and that
// is what the user is told (not to log in).
func TestOptInRegionNotEnabled(t *testing.T) {
	// Not parallel: isolatedAWSEnv sets the process environment.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		if !strings.Contains(r.Header.Get("Authorization"), "/us-east-1/sts/") {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>r1</RequestId></ErrorResponse>`)
			return
		}
		fmt.Fprint(w, `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/admin</Arn><UserId>AIDA</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`)
	}))
	t.Cleanup(srv.Close)
	isolatedAWSEnv(t, srv.URL)
	_, err := cloud.ConnectAWS(context.Background(), cloud.AWS{Region: "ap-east-2"})
	if !cloud.IsUsage(err) || !strings.Contains(err.Error(), "region ap-east-2 is not enabled for account 123456789012") {
		t.Fatalf("opt-in region: %v", err)
	}
	// Refused in the home region too: the credentials are bad.
	_, err = cloud.ConnectAWS(context.Background(), cloud.AWS{Region: "us-east-1"})
	if err != nil {
		t.Fatalf("home region: %v", err)
	}
	isolatedAWSEnv(t, stsServer(t, "", "InvalidClientTokenId"))
	_, err = cloud.ConnectAWS(context.Background(), cloud.AWS{Region: "ap-east-2"})
	if !cloud.IsUsage(err) || !strings.Contains(err.Error(), "log in or pass --profile") {
		t.Fatalf("bad credentials everywhere: %v", err)
	}
}
