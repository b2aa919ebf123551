package provision

// connectAWS against a local STS endpoint: the configuration chain, the
// caller identity, and the refusal of a stack's own scoped keys.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
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
			calls := &CallLog{}
			s, err := connectAWS(context.Background(), AWS{Calls: calls})
			if err != nil {
				t.Fatal(err)
			}
			if s.account != "123456789012" || s.region != "eu-west-3" || s.partition != c.partition || s.s3Endpoint != url {
				t.Errorf("session %+v", s)
			}
			if s.ec2 == nil || s.iam == nil || s.s3 == nil || s.ec2ForRegion("us-east-1") == nil || s.ec2ForRegion("eu-west-3") != s.ec2 || s.s3As("id", "secret") == nil {
				t.Error("session lacks clients")
			}
			if got := calls.calls(); len(got) != 1 || got[0] != "STS.GetCallerIdentity" {
				t.Errorf("calls %v", got)
			}
			if sum := calls.Summary(); sum != "1 calls (0 mutating): STS.GetCallerIdentity×1" {
				t.Errorf("summary %q", sum)
			}
		})
	}
}

func TestConnectAWSRefusals(t *testing.T) {
	cases := []struct {
		name  string
		arn   string
		code  string
		env   map[string]string
		a     AWS
		want  string
		usage bool
	}{
		{"scoped keys", "arn:aws:iam::123456789012:user/mlstack/mlstack-demo", "", nil, AWS{}, "called with a stack's own scoped keys", true},
		{"rejected keys", "", "InvalidClientTokenId", nil, AWS{}, "sts:GetCallerIdentity): InvalidClientTokenId", true},
		{"no region", "arn:aws:iam::123456789012:user/admin", "", map[string]string{"AWS_REGION": ""}, AWS{}, "no AWS region", true},
		{"bad region", "arn:aws:iam::123456789012:user/admin", "", map[string]string{"AWS_REGION": "Paris"}, AWS{}, "is not a valid AWS region name", true},
		{"no credentials", "arn:aws:iam::123456789012:user/admin", "", map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, AWS{}, "no usable AWS credentials", true},
		{"unknown profile", "arn:aws:iam::123456789012:user/admin", "", nil, AWS{Profile: "nope"}, "loading AWS configuration", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			isolatedAWSEnv(t, stsServer(t, c.arn, c.code))
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := connectAWS(context.Background(), c.a)
			if err == nil || !strings.Contains(err.Error(), c.want) || IsUsage(err) != c.usage {
				t.Fatalf("connect = %v, want %q (usage %v)", err, c.want, c.usage)
			}
		})
	}
	t.Run("region option wins", func(t *testing.T) {
		isolatedAWSEnv(t, stsServer(t, "arn:aws:iam::123456789012:user/admin", ""))
		t.Setenv("AWS_REGION", "")
		s, err := connectAWS(context.Background(), AWS{Region: "ap-south-1"})
		if err != nil || s.region != "ap-south-1" {
			t.Fatalf("connect = %+v, %v", s, err)
		}
	})
}

func TestS3EndpointOverride(t *testing.T) {
	cases := []struct {
		all, s3, ignore, want string
	}{
		{"", "", "", ""},
		{"http://all:1", "", "", "http://all:1"},
		{"http://all:1", "http://s3:2", "", "http://s3:2"},
		{"http://all:1", "", "true", ""},
		{"", "http://s3:2", "true", "http://s3:2"},
	}
	for _, c := range cases {
		t.Setenv("AWS_ENDPOINT_URL", c.all)
		t.Setenv("AWS_ENDPOINT_URL_S3", c.s3)
		t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", c.ignore)
		if got := s3EndpointOverride(); got != c.want {
			t.Errorf("%+v: got %q", c, got)
		}
	}
}
