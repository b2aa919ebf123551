package main

// Pagination as AWS does it, where moto does not (internal/awsmodel has the
// sizes). moto 5.2.5 pages at AWS's sizes where it honours the limit:
// IAM ListRoles and ListAttached{User,Role}Policies (MaxItems, default
// 100), S3 ListObjectsV2/ListObjectVersions (max-keys, 1,000), SSM
// GetParametersByPath (MaxResults, 10), RDS DescribeDBInstances and
// DescribeOrderableDBInstanceOptions (MaxRecords, 100); EC2's describes
// answer everything unless MaxResults is set, as AWS does (moto's
// DescribeInstances even pages at 100). It answers these IAM lists whole,
// ignoring MaxItems and Marker (moto/iam/responses.py), so the proxy pages
// moto's answer itself with the model's opaque tokens.
//
// Not paged here: S3 ListMultipartUploads (moto ignores max-uploads; its
// two markers are S3's own), S3 ListBuckets (moto honours max-buckets but
// hands out no continuation token; without it AWS answers every bucket
// too), SSM DescribeParameters (moto pages at 10 and ignores MaxResults),
// EC2 DescribeInstanceTypes (AWS pages at 100; moto answers all, and
// mlstack asks for one type at a time).

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

// motoWholeLists are the IAM lists moto answers whole: the element that
// holds the list's members, and the element of a member that keys it (""
// when a member is just a name).
var motoWholeLists = map[string][2]string{
	"ListUsers":         {"Users", "UserName"},
	"ListAccessKeys":    {"AccessKeyMetadata", "AccessKeyId"},
	"ListUserPolicies":  {"PolicyNames", ""},
	"ListRolePolicies":  {"PolicyNames", ""},
	"ListGroupsForUser": {"Groups", "GroupName"},
}

// pagesIAM: the proxy pages this answer of moto's.
func pagesIAM(svc string, form url.Values) bool {
	_, ok := motoWholeLists[form.Get("Action")]
	return svc == "iam" && ok
}

// listingScope is the request without its marker and page size: what a
// marker is bound to, as on AWS.
func listingScope(form url.Values) string {
	v := url.Values{}
	for k, vals := range form {
		if k != "Marker" && k != "MaxItems" {
			v[k] = vals
		}
	}
	return v.Encode() // sorted by key
}

// badMarker is IAM's refusal of a marker it did not hand out for this
// listing, nil for none or a good one. The caller holds mu.
func (a *awsLike) badMarker(form url.Values) error {
	if form.Get("Marker") == "" {
		return nil
	}
	_, err := a.pager.After("iam", form.Get("Action"), listingScope(form), form.Get("Marker"))
	return err
}

// pageIAM cuts moto's whole answer to the page AWS would answer: after
// the request's marker, at most MaxItems (default 100) members, with
// IsTruncated and the next marker. The caller holds mu.
func (a *awsLike) pageIAM(form url.Values, out []byte) []byte {
	action := form.Get("Action")
	list := motoWholeLists[action]
	s := string(out)
	open, end := "<"+list[0]+">", "</"+list[0]+">"
	i, j := strings.Index(s, open), strings.Index(s, end)
	if i < 0 || j < 0 {
		return out // an empty list: <Users/>
	}
	members := topElements(s[i+len(open):j], "member")
	key := func(m string) string {
		m = strings.TrimSuffix(strings.TrimPrefix(m, "<member>"), "</member>")
		if list[1] == "" {
			return m // the member is the name
		}
		_, k, _ := strings.Cut(m, "<"+list[1]+">")
		k, _, _ = strings.Cut(k, "<")
		return k
	}
	limit, _ := strconv.Atoi(form.Get("MaxItems"))
	page, next, err := awsmodel.Page(a.pager, "iam", action, listingScope(form), members, key,
		awsmodel.PageSize("iam", action, limit), form.Get("Marker"))
	if err != nil { // refused before moto saw it (badMarker)
		return out
	}
	if next != "" {
		a.note("IAM page")
	}
	rest := strings.Replace(s[j:], "<IsTruncated>false</IsTruncated>", "", 1)
	tail := "<IsTruncated>false</IsTruncated>"
	if next != "" {
		tail = "<IsTruncated>true</IsTruncated><Marker>" + next + "</Marker>"
	}
	rest = strings.Replace(rest, end, end+tail, 1)
	return []byte(s[:i+len(open)] + strings.Join(page, "") + rest)
}

// topElements splits a list's content into its top-level <tag> elements
// (a member may hold members of its own, as a user's tags).
func topElements(s, tag string) []string {
	open, end := "<"+tag+">", "</"+tag+">"
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], open):
			if depth == 0 {
				start = i
			}
			depth++
			i += len(open)
		case strings.HasPrefix(s[i:], end):
			depth--
			i += len(end)
			if depth == 0 {
				out = append(out, s[start:i])
			}
		default:
			i++
		}
	}
	return slices.Clip(out)
}
