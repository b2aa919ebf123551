package cloud

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	"github.com/mlstack/mlstack/provision/region"
)

// ec2API, iamAPI and s3API are every call mlstack makes to each service;
// each resource file declares the part it uses next to its use.
type (
	EC2API interface {
		SGAPI
		keyPairAPI
		instanceAPI
		RebootAPI
		StopAPI
		imageAPI
		placementAPI
		ec2TagAPI
		RegionAPI
	}
	IAMAPI interface {
		UserAPI
		roleAPI
	}
	S3API interface {
		bucketAPI
		BackupLister
		CopyAPI
	}
	SSMAPI interface {
		ParamAPI
	}
)

// Session holds the clients and identity one command works with.
type Session struct {
	EC2       EC2API
	IAM       IAMAPI
	S3        S3API
	SSM       SSMAPI
	RDS       RDSAPI
	Region    string
	Account   string
	Partition string // aws, aws-cn, aws-us-gov: part of every ARN
	// Principal is the caller's identity as stacks record their owner: an
	// assumed role counts as its role, whatever the session.
	Principal string
	// S3Endpoint is the S3 endpoint override in use, if any; clients then
	// need MLFLOW_S3_ENDPOINT_URL too.
	S3Endpoint string
	// SSMEndpoint is the SSM endpoint override in use, if any (an
	// emulator's): the server must read its secrets from the same place.
	SSMEndpoint string
	// EC2In and rdsIn are clients of another region (ls --all-regions).
	EC2In func(region string) EC2API
	RDSIn func(region string) RDSAPI
	// S3As is an S3 client that signs with other keys (a new access key's first use).
	S3As func(id, secret string) KeyProbeAPI
}

// S3Endpoint is the S3 endpoint override the configuration names, if any:
// AWS_ENDPOINT_URL(_S3) or a profile's endpoint_url / services section,
// unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is set — as the SDK resolves it
// for its own S3 client.
func S3Endpoint(cfg aws.Config) string {
	return aws.ToString(s3.NewFromConfig(cfg).Options().BaseEndpoint)
}

// loadConfig reads the AWS configuration chain with mlstack's retryer and
// checks that it names a region and yields credentials.
func loadConfig(ctx context.Context, a AWS) (aws.Config, error) {
	// The SDK's own warnings (IMDS fallbacks) would bury our one-line errors.
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{}), config.WithRetryer(newRetryer)}
	if a.Region != "" {
		opts = append(opts, config.WithRegion(a.Region))
	}
	if a.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(a.Profile))
	}
	if a.Calls != nil {
		opts = append(opts, config.WithAPIOptions([]func(*middleware.Stack) error{countCalls(a.Calls)}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, Usagef("loading AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		return cfg, Usagef("no AWS region: pass --region or set AWS_REGION / a profile region")
	}
	if err := ValidateRegion(cfg.Region); err != nil {
		return cfg, err
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return cfg, ctx.Err()
		}
		return cfg, Usagef("no usable AWS credentials (environment, --profile, SSO or instance role): log in, or pass --profile NAME")
	}
	return cfg, regionExists(ctx, cfg)
}

// regionAsk bounds asking EC2 whether a region exists.
const regionAsk = 10 * time.Second

// regionExists refuses a region that does not exist before any call goes
// there (its endpoint does not resolve: the SDK would retry for seconds and
// end in an XML error). The SDK's partition metadata knows the regions of
// its release; a newer one EC2 lists from the partition's home region.
func regionExists(ctx context.Context, cfg aws.Config) error {
	name := cfg.Region
	home := region.Of(name).Home
	if region.Known(name) || home == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, regionAsk)
	defer cancel()
	out, err := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.Region, o.RetryMaxAttempts = home, 1 }).
		DescribeRegions(ctx, &ec2.DescribeRegionsInput{AllRegions: aws.Bool(true)})
	if err != nil {
		return Usagef("region %s is not one this mlstack knows, and EC2 in %s could not confirm it (%v): check the name or pass another --region",
			name, home, err)
	}
	var names []string
	for _, r := range out.Regions {
		if aws.ToString(r.RegionName) == name {
			return nil
		}
		names = append(names, aws.ToString(r.RegionName))
	}
	sort.Strings(names)
	return Usagef("region %s does not exist (%s: %s): pass another --region", name, region.Of(name).Name, strings.Join(names, " "))
}

// ConnectAWS loads AWS configuration and learns who we are. It rejects the
// stack's own scoped keys before any other call, because everything after
// would fail with a confusing AccessDenied.
func ConnectAWS(ctx context.Context, a AWS) (*Session, error) {
	cfg, err := loadConfig(ctx, a)
	if err != nil {
		return nil, err
	}
	s := &Session{Region: cfg.Region, S3Endpoint: S3Endpoint(cfg)}
	pathStyle := func(o *s3.Options) {
		// Local endpoints (emulators, MinIO) cannot serve virtual-host buckets.
		o.UsePathStyle = s.S3Endpoint != ""
	}
	s.EC2, s.IAM, s.S3 = ec2.NewFromConfig(cfg), iam.NewFromConfig(cfg), s3.NewFromConfig(cfg, pathStyle)
	ssmClient := ssm.NewFromConfig(cfg)
	s.SSM, s.SSMEndpoint = ssmClient, aws.ToString(ssmClient.Options().BaseEndpoint)
	s.RDS = rds.NewFromConfig(cfg)
	s.EC2In = func(region string) EC2API {
		return ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.Region = region })
	}
	s.RDSIn = func(region string) RDSAPI {
		return rds.NewFromConfig(cfg, func(o *rds.Options) { o.Region = region })
	}
	s.S3As = func(id, secret string) KeyProbeAPI {
		return s3.NewFromConfig(cfg, pathStyle, func(o *s3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
		})
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, identityError(ctx, cfg, err)
	}
	s.Account = aws.ToString(id.Account)
	s.Partition = "aws"
	if parts := strings.SplitN(aws.ToString(id.Arn), ":", 3); len(parts) == 3 && parts[1] != "" {
		s.Partition = parts[1]
	}
	s.Principal = PrincipalOf(aws.ToString(id.Arn))
	if arn := aws.ToString(id.Arn); strings.Contains(arn, ":user"+IAMPath) {
		return nil, Usagef("mlstack was called with a stack's own scoped keys (%s), probably exported by `mlstack env`: "+
			"run it with an admin identity instead, e.g. `env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY mlstack …` or --profile NAME", arn)
	}
	return s, nil
}

// PrincipalOf turns a caller ARN into the principal a stack records as its
// owner: arn:P:sts::A:assumed-role/ROLE/SESSION is arn:P:iam::A:role/ROLE
// (the role's path is not in the ARN STS gives; mlstack compares this form
// only); any other ARN is itself.
func PrincipalOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[2] == "sts" && strings.HasPrefix(parts[5], "assumed-role/") {
		role := strings.SplitN(strings.TrimPrefix(parts[5], "assumed-role/"), "/", 2)[0]
		return fmt.Sprintf("arn:%s:iam::%s:role/%s", parts[1], parts[4], role)
	}
	return arn
}

// identityError explains a failed GetCallerIdentity. Credentials that work
// in the partition's home region but not here mean the region is an opt-in
// region not enabled for the account, not that the caller must log in.
func identityError(ctx context.Context, cfg aws.Config, err error) error {
	code := ErrorCode(err)
	if code == "" {
		return fmt.Errorf("checking AWS credentials (sts:GetCallerIdentity): %w", err)
	}
	if home := region.Of(cfg.Region).Home; home != "" && home != cfg.Region &&
		HasCode(err, "InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure") {
		id, herr := sts.NewFromConfig(cfg, func(o *sts.Options) { o.Region = home }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if herr == nil {
			return Usagef("region %s is not enabled for account %s (an opt-in region): enable it (console: Account → AWS Regions, "+
				"or `aws account enable-region --region-name %s`) or pass another --region", cfg.Region, aws.ToString(id.Account), cfg.Region)
		}
	}
	return Usagef("checking AWS credentials (sts:GetCallerIdentity): %s: log in or pass --profile", code)
}

// RDSForRegion is the session's RDS client, or one of another region.
func (s *Session) RDSForRegion(region string) RDSAPI {
	if region == s.Region {
		return s.RDS
	}
	return s.RDSIn(region)
}

// EC2ForRegion is the session's EC2 client, or one of another region.
func (s *Session) EC2ForRegion(region string) EC2API {
	if region == s.Region {
		return s.EC2
	}
	return s.EC2In(region)
}

// AWS chooses the account and region to work in (--region, --profile).
type AWS struct {
	Region  string // empty: the AWS default chain decides
	Profile string
	// Calls, when set, records every AWS operation made (tests, benchmarks).
	Calls *CallLog
}

func (a AWS) Validate() error {
	if a.Region != "" {
		return ValidateRegion(a.Region)
	}
	return nil
}
