package main

// The documented rules of internal/awsmodel as the proxy in front of moto
// applies them: the characters of security group texts and of tag values,
// read from each service's wire format (moto checks neither).

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

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
