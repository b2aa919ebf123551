package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// StackInfo is one stack as `ls` shows it.
type StackInfo struct {
	Stack         string    `json:"stack"`
	Region        string    `json:"region"`
	CreatedAt     time.Time `json:"created_at"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	InstanceState string    `json:"instance_state"`
	TrackingURI   string    `json:"tracking_uri,omitempty"`
	Resources     int       `json:"resources"`
}

// Expired reports whether the stack's expiry has passed.
func (i StackInfo) Expired(now time.Time) bool {
	return !i.ExpiresAt.IsZero() && !now.Before(i.ExpiresAt)
}

// stackSet merges resources into stacks by (stack, region).
type stackSet struct {
	mu sync.Mutex
	m  map[[2]string]*StackInfo
}

func (s *stackSet) add(region string, tags map[string]string, f func(*StackInfo)) {
	stack := tags[TagStack]
	if stack == "" || ValidateStack(stack) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{stack, region}
	info := s.m[key]
	if info == nil {
		info = &StackInfo{Stack: stack, Region: region, InstanceState: "none"}
		s.m[key] = info
	}
	info.Resources++
	if t, err := time.Parse(time.RFC3339, tags[TagCreatedAt]); err == nil && (info.CreatedAt.IsZero() || t.Before(info.CreatedAt)) {
		info.CreatedAt = t
	}
	// The earliest expiry wins: a sweep must not miss a stack because one of
	// its resources was retagged later.
	if t, err := time.Parse(time.RFC3339, tags[TagExpiresAt]); err == nil && (info.ExpiresAt.IsZero() || t.Before(info.ExpiresAt)) {
		info.ExpiresAt = t
	}
	if f != nil {
		f(info)
	}
}

// listStacks finds every stack in the given regions from cheap, tag-based
// discovery: EC2 tag filters, IAM path /mlstack/, and bucket names with the
// mlstack prefix. Nothing untagged is listed, and nothing is changed.
func listStacks(ctx context.Context, s *session, regions []string) ([]StackInfo, error) {
	set := &stackSet{m: map[[2]string]*StackInfo{}}
	want := map[string]bool{}
	for _, r := range regions {
		want[r] = true
	}
	fns := []func() error{
		func() error { return listIAMStacks(ctx, s, set, want) },
		func() error { return listBucketStacks(ctx, s, set, want) },
	}
	for _, r := range regions {
		fns = append(fns, func() error { return listEC2Stacks(ctx, s.ec2ForRegion(r), r, set) })
	}
	if err := parallel(fns...); err != nil {
		return nil, err
	}
	out := make([]StackInfo, 0, len(set.m))
	for _, v := range set.m {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Region != out[j].Region {
			return out[i].Region < out[j].Region
		}
		return out[i].Stack < out[j].Stack
	})
	return out, nil
}

func (s *session) ec2ForRegion(region string) *ec2.Client {
	if region == s.region {
		return s.ec2
	}
	return ec2.NewFromConfig(s.cfg, func(o *ec2.Options) { o.Region = region })
}

var tagKeyFilter = []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{TagStack}}}

func listEC2Stacks(ctx context.Context, api *ec2.Client, region string, set *stackSet) error {
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: append(tagKeyFilter,
		ec2types.Filter{Name: aws.String("instance-state-name"), Values: liveStates})})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing instances in %s: %w", region, err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				set.add(region, ec2TagMap(inst.Tags), func(info *StackInfo) {
					info.InstanceState = string(inst.State.Name)
					if h := trackingHost(&inst); h != "" && inst.State.Name == ec2types.InstanceStateNameRunning {
						info.TrackingURI = fmt.Sprintf("http://%s:%d", h, mlflowPort)
					}
				})
			}
		}
	}
	sgs, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: tagKeyFilter})
	if err != nil {
		return fmt.Errorf("listing security groups in %s: %w", region, err)
	}
	for _, g := range sgs.SecurityGroups {
		set.add(region, ec2TagMap(g.Tags), nil)
	}
	kps, err := api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: tagKeyFilter})
	if err != nil {
		return fmt.Errorf("listing key pairs in %s: %w", region, err)
	}
	for _, k := range kps.KeyPairs {
		set.add(region, ec2TagMap(k.Tags), nil)
	}
	return nil
}

// listIAMStacks places IAM users and roles under /mlstack/ by their region tag.
func listIAMStacks(ctx context.Context, s *session, set *stackSet, want map[string]bool) error {
	users, err := s.iam.ListUsers(ctx, &iam.ListUsersInput{PathPrefix: aws.String(iamPath)})
	if err != nil {
		return fmt.Errorf("listing IAM users under %s: %w", iamPath, err)
	}
	for _, u := range users.Users {
		out, err := s.iam.GetUser(ctx, &iam.GetUserInput{UserName: u.UserName})
		if err != nil {
			if hasCode(err, "NoSuchEntity") {
				continue
			}
			return fmt.Errorf("reading IAM user %s: %w", aws.ToString(u.UserName), err)
		}
		tags := iamTagMap(out.User.Tags)
		if want[tags[TagRegion]] {
			set.add(tags[TagRegion], tags, nil)
		}
	}
	roles, err := s.iam.ListRoles(ctx, &iam.ListRolesInput{PathPrefix: aws.String(iamPath)})
	if err != nil {
		return fmt.Errorf("listing IAM roles under %s: %w", iamPath, err)
	}
	for _, r := range roles.Roles {
		out, err := s.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: r.RoleName})
		if err != nil {
			if hasCode(err, "NoSuchEntity") {
				continue
			}
			return fmt.Errorf("reading IAM role %s: %w", aws.ToString(r.RoleName), err)
		}
		tags := iamTagMap(out.Role.Tags)
		if want[tags[TagRegion]] {
			set.add(tags[TagRegion], tags, nil)
		}
	}
	return nil
}

// listBucketStacks reads the tags of buckets named mlstack-*-<account>-<region>.
func listBucketStacks(ctx context.Context, s *session, set *stackSet, want map[string]bool) error {
	out, err := s.s3.ListBuckets(ctx, &s3.ListBucketsInput{Prefix: aws.String("mlstack-")})
	if err != nil {
		return fmt.Errorf("listing S3 buckets: %w", err)
	}
	for _, b := range out.Buckets {
		name := aws.ToString(b.Name)
		region := ""
		for r := range want {
			if strings.HasPrefix(name, "mlstack-") && strings.HasSuffix(name, "-"+s.account+"-"+r) {
				region = r
			}
		}
		if region == "" {
			continue
		}
		tags, err := s.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: b.Name}, func(o *s3.Options) { o.Region = region })
		if hasCode(err, "NoSuchTagSet", "NoSuchBucket") {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading tags of S3 bucket %s: %w", name, err)
		}
		set.add(region, s3TagMap(tags.TagSet), nil)
	}
	return nil
}

// allRegions lists the regions enabled for the account.
func allRegions(ctx context.Context, s *session) ([]string, error) {
	out, err := s.ec2.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		return nil, fmt.Errorf("listing regions: %w", err)
	}
	var regions []string
	for _, r := range out.Regions {
		regions = append(regions, aws.ToString(r.RegionName))
	}
	sort.Strings(regions)
	return regions, nil
}

// Ls prints every stack in the region (or all regions) as a table or JSON.
func Ls(ctx context.Context, c Config, allRegionsFlag bool) error {
	if c.Output == "" {
		c.Output = "table"
	}
	if c.Output != "table" && c.Output != "json" {
		return usagef("--output %q: use table or json", c.Output)
	}
	if c.Region != "" {
		if err := ValidateRegion(c.Region); err != nil {
			return err
		}
	}
	s, err := connect(ctx, &c)
	if err != nil {
		return err
	}
	regions := []string{s.region}
	if allRegionsFlag {
		if regions, err = allRegions(ctx, s); err != nil {
			return err
		}
	}
	stacks, err := listStacks(ctx, s, regions)
	if err != nil {
		return err
	}
	if c.Output == "json" {
		enc := json.NewEncoder(c.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(stacks)
	}
	if len(stacks) == 0 {
		fmt.Fprintf(c.Out, "no stacks in %s\n", strings.Join(regions, ", "))
		return nil
	}
	tw := tabwriter.NewWriter(c.Out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "STACK\tREGION\tCREATED\tEXPIRES\tINSTANCE\tTRACKING URI")
	now := time.Now()
	for _, st := range stacks {
		exp := "-"
		if !st.ExpiresAt.IsZero() {
			exp = st.ExpiresAt.Format(time.RFC3339)
			if st.Expired(now) {
				exp += " (expired)"
			}
		}
		created := "-"
		if !st.CreatedAt.IsZero() {
			created = st.CreatedAt.Format(time.RFC3339)
		}
		uri := st.TrackingURI
		if uri == "" {
			uri = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", st.Stack, st.Region, created, exp, st.InstanceState, uri)
	}
	return tw.Flush()
}
