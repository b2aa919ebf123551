package awsmodel

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestPageSize(t *testing.T) {
	for _, c := range []struct {
		service, op string
		limit, want int
	}{
		{"iam", "ListUsers", 0, 100},
		{"iam", "ListAccessKeys", 0, 100},
		{"iam", "ListUsers", 5000, 1000},
		{"iam", "ListUsers", 7, 7},
		{"s3", "ListObjectsV2", 0, 1000},
		{"s3", "ListObjectVersions", 0, 1000},
		{"s3", "ListBuckets", 0, 0},
		{"s3", "ListBuckets", 3, 3},
		{"ssm", "GetParametersByPath", 0, 10},
		{"ssm", "GetParametersByPath", 50, 10},
		{"ssm", "DescribeParameters", 0, 50},
		{"rds", "DescribeDBInstances", 0, 100},
		{"ec2", "DescribeSecurityGroups", 0, 0},
		{"ec2", "DescribeSecurityGroups", 5, 5},
		{"ec2", "DescribeInstanceTypes", 0, 100},
		{"ec2", "DescribeInstanceTypeOfferings", 0, 1000},
		{"ec2", "DescribeInstances", 0, 0},
		{"s3", "GetObject", 0, 0}, // not paged
	} {
		if got := PageSize(c.service, c.op, c.limit); got != c.want {
			t.Errorf("PageSize(%s, %s, %d) = %d, want %d", c.service, c.op, c.limit, got, c.want)
		}
	}
}

// Every rule names an operation botocore says AWS pages, with its page.
func TestPageRulesArePaginatedOps(t *testing.T) {
	for k := range pageRules {
		service, op, _ := strings.Cut(k, ":")
		if op == "*" {
			continue
		}
		r, ok := PageRuleOf(service, op)
		if !ok {
			t.Errorf("%s: not a paginated operation in paginated.txt", k)
		}
		if !strings.HasPrefix(r.Doc, "https://docs.aws.amazon.com/") || (r.Default > r.Max) {
			t.Errorf("%s: rule %+v", k, r)
		}
	}
}

func TestPageWalk(t *testing.T) {
	var items []string
	for i := range 250 {
		items = append(items, fmt.Sprintf("user-%03d", i))
	}
	p := NewPager()
	for _, c := range []struct {
		name  string
		size  int
		pages []int
	}{
		{"IAM's 100", 100, []int{100, 100, 50}},
		{"one page", 0, []int{250}},
		{"exact", 125, []int{125, 125}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []int
			var all []string
			token := ""
			for {
				page, next, err := Page(p, "iam", "ListUsers", "/mlstack/", items, func(s string) string { return s }, c.size, token)
				if err != nil {
					t.Fatal(err)
				}
				got, all = append(got, len(page)), append(all, page...)
				if token = next; token == "" {
					break
				}
			}
			if !slices.Equal(got, c.pages) || !slices.Equal(all, items) {
				t.Errorf("pages %v (want %v), %d items", got, c.pages, len(all))
			}
		})
	}
}

// A token continues after its last item even when items before it are
// gone (down deletes what it listed before asking the next page).
func TestPageAfterDeletes(t *testing.T) {
	p := NewPager()
	items := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	first, next, _ := Page(p, "s3", "ListObjectsV2", "bucket", items, id, 2, "")
	second, _, err := Page(p, "s3", "ListObjectsV2", "bucket", items[2:], id, 2, next)
	if err != nil || !slices.Equal(first, []string{"a", "b"}) || !slices.Equal(second, []string{"c", "d"}) {
		t.Errorf("pages %v %v, %v", first, second, err)
	}
}

// A token the pager did not hand out, or handed out for another listing,
// is refused with the service's code.
func TestPageRefusesForeignTokens(t *testing.T) {
	p, other := NewPager(), NewPager()
	items := []string{"a", "b", "c"}
	id := func(s string) string { return s }
	_, good, _ := Page(p, "ssm", "GetParametersByPath", "/mlstack/x", items, id, 1, "")
	_, foreign, _ := Page(other, "ssm", "GetParametersByPath", "/mlstack/x", items, id, 1, "")
	for _, c := range []struct {
		name, service, scope, token, code string
	}{
		{"forged", "ssm", "/mlstack/x", "YQ.forged", "InvalidNextToken"},
		{"garbage", "ec2", "/mlstack/x", "not a token", "InvalidPaginationToken"},
		{"another path", "ssm", "/mlstack/y", good, "InvalidNextToken"},
		{"another account", "ssm", "/mlstack/x", foreign, "InvalidNextToken"},
		{"iam", "iam", "/mlstack/x", "x", "ValidationError"},
		{"s3", "s3", "/mlstack/x", "x", "InvalidArgument"},
		{"rds", "rds", "/mlstack/x", "x", "InvalidParameterValue"},
	} {
		_, _, err := Page(p, c.service, "GetParametersByPath", c.scope, items, id, 1, c.token)
		if got := code(err); got != c.code {
			t.Errorf("%s: %s, want %s", c.name, got, c.code)
		}
	}
	if _, _, err := Page(p, "ssm", "GetParametersByPath", "/mlstack/x", items, id, 1, good); err != nil {
		t.Errorf("own token: %v", err)
	}
}

// paginated.txt is what genpaginated makes of the botocore the tests
// install (botocoreDir: moto's venv).
func TestPaginatedIsGenerated(t *testing.T) {
	dir := botocoreDir(t)
	args := []string{"run", "./genpaginated", "-botocore", dir}
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != paginatedText {
		t.Errorf("paginated.txt is stale: go %s > paginated.txt", strings.Join(args, " "))
	}
	if n := len(PaginatedOps()); n < 300 {
		t.Errorf("%d operations parsed", n)
	}
}
