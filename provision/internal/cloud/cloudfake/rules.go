package cloudfake

// The documented rules of internal/awsmodel that the fake applies to every
// request before answering it: the characters of security group texts and
// of tag values. moto checks neither; AWS refuses both.

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

// documentedRules is the model's refusal of the request, or nil.
func documentedRules(in any) error {
	switch in := in.(type) {
	case *ec2.CreateSecurityGroupInput:
		return sgTexts([2]string{"GroupName", "GroupDescription"}, [2]*string{in.GroupName, in.Description})
	case *ec2.AuthorizeSecurityGroupIngressInput:
		return ruleTexts(in.IpPermissions)
	case *iam.CreateUserInput:
		return tagValues("iam", iamValues(in.Tags))
	case *iam.TagUserInput:
		return tagValues("iam", iamValues(in.Tags))
	case *iam.CreateRoleInput:
		return tagValues("iam", iamValues(in.Tags))
	case *iam.TagRoleInput:
		return tagValues("iam", iamValues(in.Tags))
	case *iam.CreateInstanceProfileInput:
		return tagValues("iam", iamValues(in.Tags))
	case *iam.TagInstanceProfileInput:
		return tagValues("iam", iamValues(in.Tags))
	case *s3.CreateBucketInput:
		if in.CreateBucketConfiguration != nil {
			return tagValues("s3", s3Values(in.CreateBucketConfiguration.Tags))
		}
	case *s3.PutBucketTaggingInput:
		if in.Tagging != nil {
			return tagValues("s3", s3Values(in.Tagging.TagSet))
		}
	case *ssm.PutParameterInput:
		return tagValues("ssm", ssmValues(in.Tags))
	case *ssm.AddTagsToResourceInput:
		return tagValues("ssm", ssmValues(in.Tags))
	case *rds.CreateDBInstanceInput:
		return tagValues("rds", rdsValues(in.Tags))
	case *rds.CreateDBSubnetGroupInput:
		return tagValues("rds", rdsValues(in.Tags))
	case *rds.AddTagsToResourceInput:
		return tagValues("rds", rdsValues(in.Tags))
	}
	return nil
}

func sgTexts(fields [2]string, values [2]*string) error {
	for i, field := range fields {
		if err := awsmodel.SecurityGroupText(field, aws.ToString(values[i])); err != nil {
			return modelErr(err)
		}
	}
	return nil
}

// ruleTexts checks every rule description of the permissions.
func ruleTexts(perms []ec2types.IpPermission) error {
	for _, p := range perms {
		var descs []*string
		for _, r := range p.IpRanges {
			descs = append(descs, r.Description)
		}
		for _, r := range p.Ipv6Ranges {
			descs = append(descs, r.Description)
		}
		for _, g := range p.UserIdGroupPairs {
			descs = append(descs, g.Description)
		}
		for _, d := range descs {
			if err := awsmodel.SecurityGroupText("Description", aws.ToString(d)); err != nil {
				return modelErr(err)
			}
		}
	}
	return nil
}

func tagValues(service string, values []*string) error {
	for i, v := range values {
		if err := awsmodel.TagValue(service, i+1, aws.ToString(v)); err != nil {
			return modelErr(err)
		}
	}
	return nil
}

func iamValues(tags []iamtypes.Tag) (out []*string) {
	for _, t := range tags {
		out = append(out, t.Value)
	}
	return out
}

func s3Values(tags []s3types.Tag) (out []*string) {
	for _, t := range tags {
		out = append(out, t.Value)
	}
	return out
}

func ssmValues(tags []ssmtypes.Tag) (out []*string) {
	for _, t := range tags {
		out = append(out, t.Value)
	}
	return out
}

func rdsValues(tags []rdstypes.Tag) (out []*string) {
	for _, t := range tags {
		out = append(out, t.Value)
	}
	return out
}
