package main

// The documented rules of internal/awsmodel as the proxy in front of moto
// applies them: the characters of security group texts and of tag values,
// read from each service's wire format (moto checks neither).

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

// tagValueRe reads the values of an S3 request's tag set.
var tagValueRe = regexp.MustCompile(`<Tag>\s*<Key>[^<]*</Key>\s*<Value>([^<]*)</Value>\s*</Tag>`)

// documentedRules is the model's refusal of a request, or nil.
func documentedRules(req *http.Request, svc string, form url.Values, body []byte) error {
	switch action := form.Get("Action"); {
	case svc == "ec2" && action == "DescribeInstanceTypes":
		// moto answers every type in every region; AWS only the region's.
		var types []string
		for i := 1; form.Get(fmt.Sprintf("InstanceType.%d", i)) != ""; i++ {
			types = append(types, form.Get(fmt.Sprintf("InstanceType.%d", i)))
		}
		return awsmodel.DescribeInstanceTypes(regionOf(req), types)
	case svc == "ec2" && action == "CreateSecurityGroup":
		for _, field := range []string{"GroupName", "GroupDescription"} {
			if err := awsmodel.SecurityGroupText(field, form.Get(field)); err != nil {
				return err
			}
		}
	case svc == "ec2" && (action == "AuthorizeSecurityGroupIngress" || action == "AuthorizeSecurityGroupEgress"):
		// IpPermissions.N.IpRanges.M.Description, ….Ipv6Ranges…, ….Groups… (UserIdGroupPairs)
		for _, k := range sortedKeys(form) {
			if strings.HasPrefix(k, "IpPermissions.") && strings.HasSuffix(k, ".Description") {
				if err := awsmodel.SecurityGroupText("Description", form.Get(k)); err != nil {
					return err
				}
			}
		}
	case svc == "iam" || svc == "rds":
		return tagValuesIn(svc, formTagValues(form))
	case svc == "ssm":
		return tagValuesIn(svc, jsonTagValues(body))
	case svc == "s3" && req.Method == http.MethodPut && (req.URL.Query().Has("tagging") || req.URL.RawQuery == ""):
		var values []string
		for _, m := range tagValueRe.FindAllSubmatch(body, -1) {
			values = append(values, html.UnescapeString(string(m[1])))
		}
		return tagValuesIn(svc, values)
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

func tagValuesIn(svc string, values []string) error {
	for i, v := range values {
		if err := awsmodel.TagValue(svc, i+1, v); err != nil {
			return err
		}
	}
	return nil
}

// formTagValues are the tag values of a query-protocol request (IAM's
// Tags.member.N.Value, RDS's Tags.Tag.N.Value).
func formTagValues(form url.Values) []string {
	var out []string
	for _, k := range sortedKeys(form) {
		if strings.HasPrefix(k, "Tags.") && strings.HasSuffix(k, ".Value") {
			out = append(out, form.Get(k))
		}
	}
	return out
}

// jsonTagValues are the tag values of a JSON-protocol request (SSM's Tags).
func jsonTagValues(body []byte) []string {
	var in struct{ Tags []struct{ Value string } }
	if json.Unmarshal(body, &in) != nil {
		return nil
	}
	var out []string
	for _, t := range in.Tags {
		out = append(out, t.Value)
	}
	return out
}

func sortedKeys(form url.Values) []string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestDocumentedRulesFromTheWire: the proxy reads each rule's fields from
// each service's wire format (no moto needed).
func TestDocumentedRulesFromTheWire(t *testing.T) {
	t.Parallel()
	put := func(path, query string) *http.Request { return httptest.NewRequest(http.MethodPut, path+query, nil) }
	post := httptest.NewRequest(http.MethodPost, "/", nil)
	for _, c := range []struct {
		name, svc string
		req       *http.Request
		form      url.Values
		body      string
		code      string // "": allowed
	}{
		{"group description with an apostrophe", "ec2", post, url.Values{"Action": {"CreateSecurityGroup"}, "GroupName": {"mlstack-a"},
			"GroupDescription": {"the server's group"}}, "", "InvalidParameterValue"},
		{"group as AWS takes it", "ec2", post, url.Values{"Action": {"CreateSecurityGroup"}, "GroupName": {"mlstack-a.db"},
			"GroupDescription": {"mlstack a: PostgreSQL from the server group only"}}, "", ""},
		{"group pair description", "ec2", post, url.Values{"Action": {"AuthorizeSecurityGroupIngress"},
			"IpPermissions.1.Groups.1.Description": {"server’s"}}, "", "InvalidParameterValue"},
		{"range description", "ec2", post, url.Values{"Action": {"AuthorizeSecurityGroupIngress"},
			"IpPermissions.1.IpRanges.1.Description": {"mlstack a"}}, "", ""},
		{"IAM tag value with a comma", "iam", post, url.Values{"Action": {"CreateUser"},
			"Tags.member.1.Key": {"mlstack:owner"}, "Tags.member.1.Value": {"arn:aws:iam::123456789012:user/a,b"}}, "", "ValidationError"},
		{"RDS tag value", "rds", post, url.Values{"Action": {"CreateDBInstance"}, "Tags.Tag.1.Value": {"a#b"}}, "", "InvalidParameterValue"},
		{"SSM tag value", "ssm", post, url.Values{}, `{"Name":"/mlstack/a/x","Tags":[{"Key":"mlstack:owner","Value":"a,b"}]}`, "ValidationException"},
		{"S3 tagging", "s3", put("/mlstack-a", "?tagging"), url.Values{},
			`<Tagging><TagSet><Tag><Key>mlstack:owner</Key><Value>a,b</Value></Tag></TagSet></Tagging>`, "InvalidTag"},
		{"S3 tags at creation", "s3", put("/mlstack-a", ""), url.Values{},
			`<CreateBucketConfiguration><Tags><Tag><Key>k</Key><Value>arn:aws:iam::1:user/x sha256:00</Value></Tag></Tags></CreateBucketConfiguration>`, ""},
		{"EC2 tag value", "ec2", post, url.Values{"Action": {"CreateTags"}, "Tag.1.Value": {"a,b"}}, "", ""},
	} {
		err := documentedRules(c.req, c.svc, c.form, []byte(c.body))
		e, _ := err.(*awsmodel.Error)
		if c.code == "" && err != nil || c.code != "" && (e == nil || e.Code != c.code) {
			t.Errorf("%s: %v, want %q", c.name, err, c.code)
		}
	}
}
