package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Resource is one AWS resource the stack owns.
type Resource struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	State string `json:"state"`
}

// StatusReport is `status --output json`.
type StatusReport struct {
	Stack       string     `json:"stack"`
	Account     string     `json:"account"`
	Region      string     `json:"region"`
	Resources   []Resource `json:"resources"`
	TrackingURI string     `json:"tracking_uri,omitempty"`
}

// UpReport is `up --output json`.
type UpReport struct {
	Stack       string `json:"stack"`
	Account     string `json:"account"`
	Region      string `json:"region"`
	TrackingURI string `json:"tracking_uri"`
	InstanceID  string `json:"instance_id"`
	Bucket      string `json:"bucket"`
	EnvFile     string `json:"env_file"`
	ExpiresAt   string `json:"expires_at,omitempty"`
	Healthy     bool   `json:"healthy"`
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// inventory lists what the stack owns (tagged), read-only. Look-alikes
// without the tag are not listed: they are not the stack's.
// It also returns the live instances it found, oldest first.
func inventory(ctx context.Context, s *session, n Names) ([]Resource, []ec2types.Instance, error) {
	var (
		insts []ec2types.Instance
		sgs   []ec2types.SecurityGroup
		kps   []ec2types.KeyPairInfo
		iamR  []Resource
		bkt   []Resource
	)
	err := parallel(
		func() (err error) { insts, err = findInstances(ctx, s.ec2, n.Stack); return },
		func() error {
			out, err := s.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
				{Name: aws.String("tag:" + TagStack), Values: []string{n.Stack}},
			}})
			if err != nil {
				return fmt.Errorf("listing security groups: %w", err)
			}
			sgs = out.SecurityGroups
			return nil
		},
		func() error {
			out, err := s.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{
				{Name: aws.String("tag:" + TagStack), Values: []string{n.Stack}},
			}})
			if err != nil {
				return fmt.Errorf("listing key pairs: %w", err)
			}
			kps = out.KeyPairs
			return nil
		},
		func() (err error) { iamR, err = iamInventory(ctx, s.iam, n); return },
		func() error {
			tags, err := s.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
			switch {
			case hasCode(err, "NoSuchBucket", "NotFound", "NoSuchTagSet"):
				return nil
			case err != nil:
				return fmt.Errorf("reading S3 bucket %s: %w", n.Bucket, err)
			case owned(s3TagMap(tags.TagSet), n.Stack):
				bkt = append(bkt, Resource{Kind: "S3 bucket", Name: n.Bucket, State: "exists"})
			}
			return nil
		},
	)
	if err != nil {
		return nil, nil, err
	}
	var out []Resource
	for _, i := range insts {
		out = append(out, Resource{Kind: "instance", Name: aws.ToString(i.InstanceId), State: string(i.State.Name)})
	}
	for _, g := range sgs {
		out = append(out, Resource{Kind: "security group", Name: aws.ToString(g.GroupName) + " (" + aws.ToString(g.GroupId) + ")", State: "exists"})
	}
	for _, k := range kps {
		out = append(out, Resource{Kind: "key pair", Name: aws.ToString(k.KeyName), State: "exists"})
	}
	out = append(out, iamR...)
	return append(out, bkt...), insts, nil
}

type iamReadAPI interface {
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
}

func iamInventory(ctx context.Context, api iamReadAPI, n Names) ([]Resource, error) {
	var out []Resource
	u, err := api.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(n.User)})
	switch {
	case hasCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, fmt.Errorf("reading IAM user %s: %w", n.User, err)
	case owned(iamTagMap(u.User.Tags), n.Stack):
		out = append(out, Resource{Kind: "IAM user", Name: n.User, State: "exists"})
	}
	r, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n.Role)})
	switch {
	case hasCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, fmt.Errorf("reading IAM role %s: %w", n.Role, err)
	case owned(iamTagMap(r.Role.Tags), n.Stack):
		out = append(out, Resource{Kind: "IAM role", Name: n.Role, State: "exists"})
	}
	p, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)})
	switch {
	case hasCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, fmt.Errorf("reading instance profile %s: %w", n.Profile, err)
	case owned(iamTagMap(p.InstanceProfile.Tags), n.Stack):
		out = append(out, Resource{Kind: "instance profile", Name: n.Profile, State: "exists"})
	}
	return out, nil
}

// Status prints what the stack owns, its state and the tracking URI.
func Status(ctx context.Context, c Config) error {
	if err := c.Validate(false); err != nil {
		return err
	}
	s, err := connect(ctx, &c)
	if err != nil {
		return err
	}
	n := NamesFor(c.Stack, s.account, s.region)
	found, insts, err := inventory(ctx, s, n)
	if err != nil {
		return err
	}
	uri := ""
	if len(insts) > 0 && trackingHost(&insts[0]) != "" {
		uri = fmt.Sprintf("http://%s:%d", trackingHost(&insts[0]), mlflowPort)
	}
	if c.Output == "json" {
		return writeJSON(c.Out, StatusReport{Stack: c.Stack, Account: s.account, Region: s.region, Resources: found, TrackingURI: uri})
	}
	fmt.Fprintf(c.Out, "stack %s (account %s, %s)\n", c.Stack, s.account, s.region)
	if len(found) == 0 {
		fmt.Fprintln(c.Out, "  nothing exists")
		return nil
	}
	tw := tabwriter.NewWriter(c.Out, 2, 8, 2, ' ', 0)
	for _, r := range found {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Kind, r.Name, r.State)
	}
	tw.Flush()
	if uri != "" {
		fmt.Fprintf(c.Out, "tracking URI: %s\n", uri)
	} else {
		fmt.Fprintln(c.Out, "tracking URI: none (no running instance)")
	}
	return nil
}
