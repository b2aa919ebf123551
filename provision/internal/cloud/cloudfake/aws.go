// Package cloudfake is an in-memory AWS account for unit tests: it implements cloud.EC2API, IAMAPI,
// S3API and KeyProbeAPI with the behaviour mlstack relies on (tags and tag
// filters, a default VPC, instance states, IAM entities with their AWS error
// codes, S3 buckets with versions and uploads) and records every call. The
// AWS behaviours a stand-in would be kinder about (client tokens, the free
// plan, busy bucket names, eventual consistency, RDS's slow states) and the
// fault injector are internal/awsmodel's, shared with the proxy in front of
// moto: the fake asks the model with the SDK inputs.
//
// Both tiers of unit tests use it: the resources' in package cloud and the
// lifecycles' in package provision, each test with a fake of its own (Ctx).
package cloudfake

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/region"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"golang.org/x/crypto/ssh"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/internal/awsmodel"
)

const (
	FakeAccount = "123456789012"
	FakeRegion  = "eu-west-3"
	// FakeOtherAccount owns the buckets the fake calls foreign.
	FakeOtherAccount = "210987654321"
	// FakeOwner is the caller's principal (f.caller changes it).
	FakeOwner = "arn:aws:iam::123456789012:user/admin"
)

// AwsErr is an AWS error answer with the given code, as the SDK returns it.
func AwsErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "fake: " + code}
}

// AwsErrMsg is awsErr with a message of its own.
func AwsErrMsg(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg}
}

type fakeInstance struct {
	Inst     ec2types.Instance
	UserData string // base64, as RunInstances received it
	Token    string
	Credits  string // CreditSpecification.CpuCredits asked at launch
}

type fakeGroup struct {
	SG ec2types.SecurityGroup
}

type fakeKeyPair struct {
	Kp       ec2types.KeyPairInfo
	Material []byte
}

type fakeAccessKey struct {
	ID, Secret string
	created    time.Time
}

type fakeUser struct {
	User     iamtypes.User
	Policies map[string]string
	Keys     []fakeAccessKey
	Attached []string // managed policy ARNs an admin attached
	Groups   []string
	Login    bool // a console password
}

type fakeRole struct {
	Role     iamtypes.Role
	Policies map[string]string
	Attached []string // managed policy ARNs
}

type fakeProfile struct {
	Prof  iamtypes.InstanceProfile
	Roles []string
}

type FakeVersion struct {
	Key, ID string
	Marker  bool // a delete marker
	Size    int64
}

type FakeUpload struct{ Key, ID string }

type FakeBucket struct {
	Region     string
	Namespace  s3types.BucketNamespace // as CreateBucket asked
	Foreign    bool                    // owned by another account: Forbidden to us
	Tags       map[string]string       // nil: no tag set
	Pab        *s3types.PublicAccessBlockConfiguration
	Encrypted  bool
	Versions   []FakeVersion
	Uploads    []FakeUpload
	DeleteErrs map[string]string // key -> error code DeleteObjects answers for it
	Data       map[string][]byte // key -> the body PutObject stored last
}

// FakeAWS is one AWS account in one region (EC2 is regional: other regions
// are fakes of their own, see inRegion).
type FakeAWS struct {
	Mu       sync.Mutex
	Account  string
	Region   string
	log      *cloud.CallLog
	mirror   *cloud.CallLog // the AWS.Calls of the running command, if any
	faults   *awsmodel.Faults
	seq      int
	base     time.Time
	Connects int // connect calls
	// S3Endpoint is the S3 endpoint override the session reports (an emulator's).
	S3Endpoint string
	// SSM parameters by full name.
	Params map[string]*fakeParam
	// SilentServer: launched instances publish no certificate or host key
	// (by default each does at once, as its bootstrap would).
	SilentServer bool
	Reboots      int // RebootInstances calls that restarted a server
	// hostKeys are the private host keys the instances made, by instance id.
	hostKeys map[string][]byte

	// EC2
	Vpcs          []ec2types.Vpc
	Groups        []*fakeGroup
	KeyPairs      []*fakeKeyPair
	Instances     []*fakeInstance
	Images        []ec2types.Image
	instanceTypes map[string][]ec2types.ArchitectureType
	// Offered lists, per instance type, the zones that offer it.
	Offered map[string][]string
	// Subnets are the default VPC's default subnets.
	Subnets []ec2types.Subnet
	// The AWS rules (internal/awsmodel): a client token's launch, the
	// account's plan, new ids read back late, deleted bucket names busy.
	tokens      awsmodel.ClientTokens
	Plan        awsmodel.Plan
	Consistency awsmodel.Consistency
	BusyNames   awsmodel.BusyNames
	Terms       awsmodel.Terminations
	// KeepCreateTags keeps CreateBucketConfiguration.Tags, as S3 does (moto drops them).
	KeepCreateTags bool
	// NoTagResource: the caller is allowed s3:CreateBucket but not
	// s3:TagResource, so a CreateBucket with tags is refused.
	NoTagResource bool
	// NoRegionalNamespace: S3 here lacks the account-regional bucket
	// namespace (as in me-south-1 and me-central-1, which it always lacks).
	NoRegionalNamespace bool
	// caller is the principal the session reports ("": fakeOwner).
	caller   string
	regions  []string
	Console  map[string]string // instance id -> console text
	PageSize int               // when set, every list pages at most this many items (else AWS's sizes)
	pager    *awsmodel.Pager   // hands out and checks the next tokens
	others   map[string]*FakeAWS

	// IAM
	Users    map[string]*fakeUser
	Roles    map[string]*fakeRole
	Profiles map[string]*fakeProfile

	// S3
	Buckets map[string]*FakeBucket

	// RDS
	RDSState fakeRDS
}

// NewFakeAWS is an account with a default VPC, an official Ubuntu image per
// architecture and a few instance types.
func NewFakeAWS() *FakeAWS {
	f := &FakeAWS{
		Account: FakeAccount, Region: FakeRegion, log: &cloud.CallLog{},
		faults: awsmodel.NewFaults(1), base: time.Now().UTC().Add(-time.Hour), pager: awsmodel.NewPager(),
		instanceTypes: map[string][]ec2types.ArchitectureType{
			"t2.micro":  {ec2types.ArchitectureTypeI386, ec2types.ArchitectureTypeX8664},
			"t3.micro":  {ec2types.ArchitectureTypeX8664},
			"t4g.small": {ec2types.ArchitectureTypeArm64},
			"mac1.metal": {
				ec2types.ArchitectureTypeX8664Mac,
			},
		},
		regions:  []string{"eu-west-3", "us-east-1"},
		Console:  map[string]string{},
		others:   map[string]*FakeAWS{},
		Users:    map[string]*fakeUser{},
		Roles:    map[string]*fakeRole{},
		Profiles: map[string]*fakeProfile{},
		Buckets:  map[string]*FakeBucket{},
		Params:   map[string]*fakeParam{},
		hostKeys: map[string][]byte{},
	}
	f.Offered = map[string][]string{}
	for _, t := range []string{"t2.micro", "t3.micro", "t4g.small", "mac1.metal"} {
		f.Offered[t] = []string{"eu-west-3a", "eu-west-3b", "eu-west-3c"}
	}
	for _, z := range []string{"c", "a", "b"} {
		f.Subnets = append(f.Subnets, ec2types.Subnet{SubnetId: aws.String("subnet-0" + z), AvailabilityZone: aws.String("eu-west-3" + z),
			VpcId: aws.String("vpc-0default"), DefaultForAz: aws.Bool(true), MapPublicIpOnLaunch: aws.Bool(true)})
	}
	f.Vpcs = []ec2types.Vpc{
		{VpcId: aws.String("vpc-0other"), IsDefault: aws.Bool(false)},
		{VpcId: aws.String("vpc-0default"), IsDefault: aws.Bool(true)},
	}
	for _, a := range []struct{ ubuntu, arch string }{{"amd64", "x86_64"}, {"arm64", "arm64"}} {
		f.Images = append(f.Images,
			ec2types.Image{ImageId: aws.String("ami-old" + a.ubuntu), OwnerId: aws.String(cloud.CanonicalOwner),
				Name:         aws.String("ubuntu/images/hvm-ssd/ubuntu-noble-24.04-" + a.ubuntu + "-server-20240601"),
				Architecture: ec2types.ArchitectureValues(a.arch), State: ec2types.ImageStateAvailable,
				CreationDate: aws.String("2024-06-01T00:00:00.000Z")},
			ec2types.Image{ImageId: aws.String("ami-new" + a.ubuntu), OwnerId: aws.String(cloud.CanonicalOwner),
				Name:         aws.String("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-" + a.ubuntu + "-server-20250101"),
				Architecture: ec2types.ArchitectureValues(a.arch), State: ec2types.ImageStateAvailable,
				CreationDate: aws.String("2025-01-01T00:00:00.000Z"), RootDeviceName: aws.String("/dev/sda1")},
			// Same name, another owner: never to be chosen.
			ec2types.Image{ImageId: aws.String("ami-evil" + a.ubuntu), OwnerId: aws.String("666666666666"),
				Name:         aws.String("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-" + a.ubuntu + "-server-20991231"),
				Architecture: ec2types.ArchitectureValues(a.arch), State: ec2types.ImageStateAvailable,
				CreationDate: aws.String("2099-12-31T00:00:00.000Z")},
		)
	}
	return f
}

// InRegion is the EC2 of another region of the same account: a fake of its
// own that shares the call log.
func (f *FakeAWS) InRegion(region string) *FakeAWS {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if region == f.Region {
		return f
	}
	o := f.others[region]
	if o == nil {
		o = NewFakeAWS()
		o.Region, o.log = region, f.log
		f.others[region] = o
	}
	return o
}

// SetCaller makes the session's caller the principal of arn (an
// sts:GetCallerIdentity answer), as connect derives it.
func (f *FakeAWS) SetCaller(arn string) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.caller = cloud.PrincipalOf(arn)
}

// Session is a session over the fake, as connect would return it.
func (f *FakeAWS) Session() *cloud.Session {
	return &cloud.Session{
		EC2: f, IAM: f, S3: f, SSM: f, RDS: fakeRDSAPI{f}, Region: f.Region, Account: f.Account, Partition: f.partition(), S3Endpoint: f.S3Endpoint,
		Principal: cmp.Or(f.caller, FakeOwner),
		EC2In:     func(region string) cloud.EC2API { return f.InRegion(region) },
		RDSIn:     func(region string) cloud.RDSAPI { return fakeRDSAPI{f.InRegion(region)} },
		S3As:      func(id, secret string) cloud.KeyProbeAPI { return &fakeProbe{f: f, id: id, secret: secret} },
	}
}

// FailNext makes the next n calls of op (an operation name such as
// "RunInstances") answer err without doing anything; n < 0: every call.
func (f *FakeAWS) FailNext(op string, err error, n int) { f.FailIf(op, err, n, false, nil) }

// FailAfter makes the next n calls of op do their work and then answer err,
// as when the response is lost.
func (f *FakeAWS) FailAfter(op string, err error, n int) { f.FailIf(op, err, n, true, nil) }

// FailIf is failNext (or failAfter, with after) for the calls whose input
// match accepts; its argument is the operation's *Input.
func (f *FakeAWS) FailIf(op string, err error, n int, after bool, match func(in any) bool) {
	f.faults.Add(awsmodel.Rule{Op: op, N: n, Err: err, After: after, Match: match})
}

// faultErr is the error the fake answers for an injected fault (nil: none).
func faultErr(d *awsmodel.Fault) error {
	switch {
	case d == nil:
		return nil
	case d.Drop: // no connection to close: the SDK would see a transport error
		return fmt.Errorf("fake: connection closed without an answer")
	}
	return modelErr(d.Err)
}

// modelErr is an error of the model as the SDK returns it.
func modelErr(err error) error {
	if e, ok := err.(*awsmodel.Error); ok {
		return AwsErrMsg(e.Code, e.Message)
	}
	return err
}

// ForBucket matches the S3 calls on one bucket (for failIf).
func ForBucket(name string) func(in any) bool {
	return func(in any) bool {
		switch in := in.(type) {
		case *s3.DeleteBucketInput:
			return aws.ToString(in.Bucket) == name
		case *s3.GetBucketTaggingInput:
			return aws.ToString(in.Bucket) == name
		case *s3.DeleteObjectsInput:
			return aws.ToString(in.Bucket) == name
		case *s3.ListObjectVersionsInput:
			return aws.ToString(in.Bucket) == name
		case *s3.ListMultipartUploadsInput:
			return aws.ToString(in.Bucket) == name
		}
		return false
	}
}

// ForGroup matches the DescribeSecurityGroups calls that ask for one group
// by name (for failIf): the server's and the database's groups are read
// concurrently, and a fault meant for one must not land on the other.
func ForGroup(name string) func(in any) bool {
	return func(in any) bool {
		g, ok := in.(*ec2.DescribeSecurityGroupsInput)
		return ok && (slices.Contains(filterValues(g.Filters, "group-name"), name) || slices.Contains(g.GroupNames, name))
	}
}

// Calls are the operations made so far, as "Service.Operation".
func (f *FakeAWS) Calls() []string { return f.log.Calls() }

// Mutating are the calls made so far that can change something.
func (f *FakeAWS) Mutating() []string { return f.log.Mutating() }

// ResetCalls forgets the calls made so far.
func (f *FakeAWS) ResetCalls() { f.log.Reset() }

// Count is how often op ("Service.Operation") was called.
func (f *FakeAWS) Count(op string) int {
	n := 0
	for _, c := range f.Calls() {
		if c == op {
			n++
		}
	}
	return n
}

// fakeCall runs one operation under the fake's lock: it records the call,
// answers an injected error, or runs fn.
func fakeCall[T any](f *FakeAWS, in any, svc, op string, fn func() (*T, error)) (*T, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.log.Add(svc + "." + op)
	if f.mirror != nil {
		f.mirror.Add(svc + "." + op)
	}
	// The matchers of fault rules run under the fake's lock (tests rely on it).
	if err := faultErr(f.faults.Before(strings.ToLower(svc), op, in)); err != nil {
		return nil, err
	}
	// What AWS's own rules refuse, before the fake looks at the request.
	if e := awsmodel.CheckInput(strings.ToLower(svc), op, in); e != nil {
		return nil, modelErr(e)
	}
	if err := f.unseenIn(in); err != nil {
		return nil, err
	}
	out, err := fn()
	if err == nil {
		if ferr := faultErr(f.faults.After(op, in)); ferr != nil {
			return nil, ferr
		}
	}
	return out, err
}

// unseenIn is the model's NotFound for a new EC2 id the call names while
// it does not read back yet (S3 asks in ourBucket, RunInstances itself).
// Called with f.mu held.
func (f *FakeAWS) unseenIn(in any) error {
	use := func(kind awsmodel.Kind, ids ...string) error {
		for _, id := range ids {
			if err := f.Consistency.Use(kind, id); err != nil {
				return modelErr(err)
			}
		}
		return nil
	}
	switch in := in.(type) {
	case *ec2.DescribeSecurityGroupsInput:
		return use(awsmodel.Group, in.GroupIds...)
	case *ec2.DeleteSecurityGroupInput:
		return use(awsmodel.Group, aws.ToString(in.GroupId))
	case *ec2.AuthorizeSecurityGroupIngressInput:
		return use(awsmodel.Group, aws.ToString(in.GroupId))
	case *ec2.RevokeSecurityGroupIngressInput:
		return use(awsmodel.Group, aws.ToString(in.GroupId))
	case *ec2.DescribeKeyPairsInput:
		return use(awsmodel.KeyPair, in.KeyNames...)
	case *ec2.DescribeInstancesInput: // by filter: left out of the listing
		return use(awsmodel.Instance, in.InstanceIds...)
	case *ec2.TerminateInstancesInput:
		return use(awsmodel.Instance, in.InstanceIds...)
	case *ec2.StartInstancesInput:
		return use(awsmodel.Instance, in.InstanceIds...)
	case *ec2.StopInstancesInput:
		return use(awsmodel.Instance, in.InstanceIds...)
	case *ec2.RebootInstancesInput:
		return use(awsmodel.Instance, in.InstanceIds...)
	case *ec2.GetConsoleOutputInput:
		return use(awsmodel.Instance, aws.ToString(in.InstanceId))
	case *ec2.DescribeInstanceAttributeInput:
		return use(awsmodel.Instance, aws.ToString(in.InstanceId))
	case *ec2.CreateTagsInput:
		if err := use(awsmodel.Instance, in.Resources...); err != nil {
			return err
		}
		return use(awsmodel.Group, in.Resources...)
	}
	return nil
}

// tick is a new, later moment: launches and creations are ordered.
func (f *FakeAWS) tick() time.Time {
	f.seq++
	return f.base.Add(time.Duration(f.seq) * time.Second)
}

func (f *FakeAWS) newID(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s-%017x", prefix, f.seq)
}

// ---- filters ----

// globRe turns an EC2 filter value ("ubuntu/*-server-*") into a regexp.
func globRe(glob string) *regexp.Regexp {
	return regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(glob), `\*`, ".*") + "$")
}

// matchFilters applies EC2 filters; attr returns a resource's values for a
// filter name other than tag:K and tag-key, and false for a name the fake
// does not know (answered as an error, so a test notices).
// filterValues are the values of the named filter, if any.
func filterValues(filters []ec2types.Filter, name string) []string {
	for _, f := range filters {
		if aws.ToString(f.Name) == name {
			return f.Values
		}
	}
	return nil
}

func matchFilters(filters []ec2types.Filter, tags []ec2types.Tag, attr func(name string) ([]string, bool)) (bool, error) {
	m := cloud.EC2TagMap(tags)
	for _, flt := range filters {
		name := aws.ToString(flt.Name)
		var have []string
		switch {
		case strings.HasPrefix(name, "tag:"):
			if v, ok := m[strings.TrimPrefix(name, "tag:")]; ok {
				have = []string{v}
			}
		case name == "tag-key":
			for k := range m {
				have = append(have, k)
			}
		default:
			v, ok := attr(name)
			if !ok {
				return false, AwsErrMsg("InvalidParameterValue", "fake: unknown filter "+name)
			}
			have = v
		}
		hit := false
		for _, want := range flt.Values {
			for _, h := range have {
				if globRe(want).MatchString(h) {
					hit = true
				}
			}
		}
		if !hit {
			return false, nil
		}
	}
	return true, nil
}

// mergeEC2Tags sets tags on a tag list, replacing same keys.
func mergeEC2Tags(have, set []ec2types.Tag) []ec2types.Tag {
	m := cloud.EC2TagMap(have)
	for _, t := range set {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	var out []ec2types.Tag
	for _, k := range cloud.SortedKeys(m) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func tagsFor(specs []ec2types.TagSpecification, rt ec2types.ResourceType) []ec2types.Tag {
	for _, s := range specs {
		if s.ResourceType == rt {
			return s.Tags
		}
	}
	return nil
}

// ---- EC2: VPCs, security groups ----

func (f *FakeAWS) DescribeVpcs(_ context.Context, in *ec2.DescribeVpcsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return fakeCall(f, in, "EC2", "DescribeVpcs", func() (*ec2.DescribeVpcsOutput, error) {
		out := &ec2.DescribeVpcsOutput{}
		for _, v := range f.Vpcs {
			ok, err := matchFilters(in.Filters, v.Tags, func(name string) ([]string, bool) {
				if name == "is-default" {
					return []string{fmt.Sprint(aws.ToBool(v.IsDefault))}, true
				}
				return nil, false
			})
			if err != nil {
				return nil, err
			}
			if ok {
				out.Vpcs = append(out.Vpcs, v)
			}
		}
		var err error
		out.Vpcs, out.NextToken, err = page(f, "ec2", "DescribeVpcs", in, out.Vpcs, func(v ec2types.Vpc) string { return aws.ToString(v.VpcId) })
		return out, err
	})
}

func (f *FakeAWS) group(id string) *fakeGroup {
	for _, g := range f.Groups {
		if aws.ToString(g.SG.GroupId) == id {
			return g
		}
	}
	return nil
}

func (f *FakeAWS) DescribeSecurityGroups(_ context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return fakeCall(f, in, "EC2", "DescribeSecurityGroups", func() (*ec2.DescribeSecurityGroupsOutput, error) {
		out := &ec2.DescribeSecurityGroupsOutput{}
		for _, id := range in.GroupIds {
			if f.group(id) == nil {
				return nil, AwsErr("InvalidGroup.NotFound")
			}
		}
		for _, g := range f.Groups {
			if len(in.GroupIds) > 0 && !slices.Contains(in.GroupIds, aws.ToString(g.SG.GroupId)) {
				continue
			}
			ok, err := matchFilters(in.Filters, g.SG.Tags, func(name string) ([]string, bool) {
				switch name {
				case "vpc-id":
					return []string{aws.ToString(g.SG.VpcId)}, true
				case "group-name":
					return []string{aws.ToString(g.SG.GroupName)}, true
				case "group-id":
					return []string{aws.ToString(g.SG.GroupId)}, true
				}
				return nil, false
			})
			if err != nil {
				return nil, err
			}
			if ok {
				out.SecurityGroups = append(out.SecurityGroups, g.SG)
			}
		}
		var err error
		out.SecurityGroups, out.NextToken, err = page(f, "ec2", "DescribeSecurityGroups", in, out.SecurityGroups,
			func(g ec2types.SecurityGroup) string { return aws.ToString(g.GroupId) })
		return out, err
	})
}

func (f *FakeAWS) CreateSecurityGroup(_ context.Context, in *ec2.CreateSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	return fakeCall(f, in, "EC2", "CreateSecurityGroup", func() (*ec2.CreateSecurityGroupOutput, error) {
		vpc := aws.ToString(in.VpcId)
		for _, g := range f.Groups {
			if aws.ToString(g.SG.VpcId) == vpc && aws.ToString(g.SG.GroupName) == aws.ToString(in.GroupName) {
				return nil, AwsErr("InvalidGroup.Duplicate")
			}
		}
		id := f.newID("sg")
		f.Consistency.Created(awsmodel.Group, id)
		f.Groups = append(f.Groups, &fakeGroup{SG: ec2types.SecurityGroup{
			GroupId: aws.String(id), GroupName: in.GroupName, Description: in.Description, VpcId: in.VpcId,
			OwnerId: aws.String(f.Account), Tags: tagsFor(in.TagSpecifications, ec2types.ResourceTypeSecurityGroup),
		}})
		return &ec2.CreateSecurityGroupOutput{GroupId: aws.String(id)}, nil
	})
}

func (f *FakeAWS) DeleteSecurityGroup(_ context.Context, in *ec2.DeleteSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error) {
	return fakeCall(f, in, "EC2", "DeleteSecurityGroup", func() (*ec2.DeleteSecurityGroupOutput, error) {
		id := aws.ToString(in.GroupId)
		if f.group(id) == nil {
			return nil, AwsErr("InvalidGroup.NotFound")
		}
		for _, i := range f.Instances {
			if cloud.StateOf(&i.Inst) == ec2types.InstanceStateNameTerminated {
				continue
			}
			for _, g := range i.Inst.SecurityGroups {
				if aws.ToString(g.GroupId) == id {
					return nil, AwsErrMsg("DependencyViolation", "resource "+id+" has a dependent object")
				}
			}
		}
		f.Groups = slices.DeleteFunc(f.Groups, func(g *fakeGroup) bool { return aws.ToString(g.SG.GroupId) == id })
		return &ec2.DeleteSecurityGroupOutput{}, nil
	})
}

func sameRange(a, b ec2types.IpPermission) bool {
	return aws.ToString(a.IpProtocol) == aws.ToString(b.IpProtocol) &&
		aws.ToInt32(a.FromPort) == aws.ToInt32(b.FromPort) && aws.ToInt32(a.ToPort) == aws.ToInt32(b.ToPort)
}

func (f *FakeAWS) AuthorizeSecurityGroupIngress(_ context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	return fakeCall(f, in, "EC2", "AuthorizeSecurityGroupIngress", func() (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
		g := f.group(aws.ToString(in.GroupId))
		if g == nil {
			return nil, AwsErr("InvalidGroup.NotFound")
		}
		perms := slices.Clone(g.SG.IpPermissions)
		for _, p := range in.IpPermissions {
			i := slices.IndexFunc(perms, func(h ec2types.IpPermission) bool { return sameRange(h, p) })
			if i < 0 {
				perms = append(perms, ec2types.IpPermission{IpProtocol: p.IpProtocol, FromPort: p.FromPort, ToPort: p.ToPort})
				i = len(perms) - 1
			}
			for _, r := range p.IpRanges {
				if slices.ContainsFunc(perms[i].IpRanges, func(h ec2types.IpRange) bool { return aws.ToString(h.CidrIp) == aws.ToString(r.CidrIp) }) {
					return nil, AwsErr("InvalidPermission.Duplicate")
				}
				perms[i].IpRanges = append(slices.Clone(perms[i].IpRanges), r)
			}
			perms[i].Ipv6Ranges = append(slices.Clone(perms[i].Ipv6Ranges), p.Ipv6Ranges...)
			perms[i].UserIdGroupPairs = append(slices.Clone(perms[i].UserIdGroupPairs), p.UserIdGroupPairs...)
			perms[i].PrefixListIds = append(slices.Clone(perms[i].PrefixListIds), p.PrefixListIds...)
		}
		g.SG.IpPermissions = perms
		return &ec2.AuthorizeSecurityGroupIngressOutput{Return: aws.Bool(true)}, nil
	})
}

func (f *FakeAWS) RevokeSecurityGroupIngress(_ context.Context, in *ec2.RevokeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	return fakeCall(f, in, "EC2", "RevokeSecurityGroupIngress", func() (*ec2.RevokeSecurityGroupIngressOutput, error) {
		g := f.group(aws.ToString(in.GroupId))
		if g == nil {
			return nil, AwsErr("InvalidGroup.NotFound")
		}
		out := &ec2.RevokeSecurityGroupIngressOutput{Return: aws.Bool(true)}
		perms := slices.Clone(g.SG.IpPermissions)
		for _, p := range in.IpPermissions {
			i := slices.IndexFunc(perms, func(h ec2types.IpPermission) bool { return sameRange(h, p) })
			if i < 0 {
				out.UnknownIpPermissions = append(out.UnknownIpPermissions, p)
				continue
			}
			h := perms[i]
			matched := false
			for _, r := range p.IpRanges {
				n := len(h.IpRanges)
				h.IpRanges = slices.DeleteFunc(slices.Clone(h.IpRanges), func(x ec2types.IpRange) bool { return aws.ToString(x.CidrIp) == aws.ToString(r.CidrIp) })
				matched = matched || len(h.IpRanges) < n
			}
			for _, r := range p.Ipv6Ranges {
				n := len(h.Ipv6Ranges)
				h.Ipv6Ranges = slices.DeleteFunc(slices.Clone(h.Ipv6Ranges), func(x ec2types.Ipv6Range) bool { return aws.ToString(x.CidrIpv6) == aws.ToString(r.CidrIpv6) })
				matched = matched || len(h.Ipv6Ranges) < n
			}
			for _, r := range p.UserIdGroupPairs {
				n := len(h.UserIdGroupPairs)
				h.UserIdGroupPairs = slices.DeleteFunc(slices.Clone(h.UserIdGroupPairs), func(x ec2types.UserIdGroupPair) bool { return aws.ToString(x.GroupId) == aws.ToString(r.GroupId) })
				matched = matched || len(h.UserIdGroupPairs) < n
			}
			for _, r := range p.PrefixListIds {
				n := len(h.PrefixListIds)
				h.PrefixListIds = slices.DeleteFunc(slices.Clone(h.PrefixListIds), func(x ec2types.PrefixListId) bool {
					return aws.ToString(x.PrefixListId) == aws.ToString(r.PrefixListId)
				})
				matched = matched || len(h.PrefixListIds) < n
			}
			if !matched {
				out.UnknownIpPermissions = append(out.UnknownIpPermissions, p)
			}
			perms[i] = h
			if len(h.IpRanges)+len(h.Ipv6Ranges)+len(h.UserIdGroupPairs)+len(h.PrefixListIds) == 0 {
				perms = slices.Delete(perms, i, i+1)
			}
		}
		g.SG.IpPermissions = perms
		return out, nil
	})
}

// ---- EC2: key pairs ----

func (f *FakeAWS) KeyPair(name string) *fakeKeyPair {
	for _, k := range f.KeyPairs {
		if aws.ToString(k.Kp.KeyName) == name {
			return k
		}
	}
	return nil
}

func (f *FakeAWS) DescribeKeyPairs(_ context.Context, in *ec2.DescribeKeyPairsInput, _ ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error) {
	return fakeCall(f, in, "EC2", "DescribeKeyPairs", func() (*ec2.DescribeKeyPairsOutput, error) {
		for _, n := range in.KeyNames {
			if f.KeyPair(n) == nil {
				return nil, AwsErrMsg("InvalidKeyPair.NotFound", "The key pair '"+n+"' does not exist")
			}
		}
		out := &ec2.DescribeKeyPairsOutput{}
		for _, k := range f.KeyPairs {
			if len(in.KeyNames) > 0 && !slices.Contains(in.KeyNames, aws.ToString(k.Kp.KeyName)) {
				continue
			}
			ok, err := matchFilters(in.Filters, k.Kp.Tags, func(name string) ([]string, bool) {
				if name == "key-name" {
					return []string{aws.ToString(k.Kp.KeyName)}, true
				}
				return nil, false
			})
			if err != nil {
				return nil, err
			}
			if ok {
				out.KeyPairs = append(out.KeyPairs, k.Kp)
			}
		}
		return out, nil
	})
}

func (f *FakeAWS) ImportKeyPair(_ context.Context, in *ec2.ImportKeyPairInput, _ ...func(*ec2.Options)) (*ec2.ImportKeyPairOutput, error) {
	return fakeCall(f, in, "EC2", "ImportKeyPair", func() (*ec2.ImportKeyPairOutput, error) {
		name := aws.ToString(in.KeyName)
		if f.KeyPair(name) != nil {
			return nil, AwsErr("InvalidKeyPair.Duplicate")
		}
		if !strings.HasPrefix(string(in.PublicKeyMaterial), "ssh-ed25519 ") {
			return nil, AwsErrMsg("InvalidKey.Format", "fake: not an ssh-ed25519 public key")
		}
		id := f.newID("key")
		f.Consistency.Created(awsmodel.KeyPair, name)
		f.KeyPairs = append(f.KeyPairs, &fakeKeyPair{Material: in.PublicKeyMaterial, Kp: ec2types.KeyPairInfo{
			KeyName: in.KeyName, KeyPairId: aws.String(id), KeyType: ec2types.KeyTypeEd25519,
			KeyFingerprint: aws.String(AwsFingerprint(in.PublicKeyMaterial)),
			Tags:           tagsFor(in.TagSpecifications, ec2types.ResourceTypeKeyPair),
		}})
		return &ec2.ImportKeyPairOutput{KeyName: in.KeyName, KeyPairId: aws.String(id)}, nil
	})
}

func (f *FakeAWS) DeleteKeyPair(_ context.Context, in *ec2.DeleteKeyPairInput, _ ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error) {
	return fakeCall(f, in, "EC2", "DeleteKeyPair", func() (*ec2.DeleteKeyPairOutput, error) {
		// Like EC2: deleting a missing key pair succeeds.
		f.KeyPairs = slices.DeleteFunc(f.KeyPairs, func(k *fakeKeyPair) bool { return aws.ToString(k.Kp.KeyName) == aws.ToString(in.KeyName) })
		return &ec2.DeleteKeyPairOutput{Return: aws.Bool(true)}, nil
	})
}

// ---- EC2: instances ----

func (f *FakeAWS) Instance(id string) *fakeInstance {
	for _, i := range f.Instances {
		if aws.ToString(i.Inst.InstanceId) == id {
			return i
		}
	}
	return nil
}

func SetState(i *ec2types.Instance, s ec2types.InstanceStateName) {
	codes := map[ec2types.InstanceStateName]int32{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
	i.State = &ec2types.InstanceState{Name: s, Code: aws.Int32(codes[s])}
	if s == ec2types.InstanceStateNameTerminated || s == ec2types.InstanceStateNameStopped {
		i.PublicDnsName, i.PublicIpAddress = aws.String(""), nil
	}
}

// Launch makes a running instance. Called with f.mu held.
func (f *FakeAWS) Launch(tags []ec2types.Tag, sgIDs []string) *fakeInstance {
	id := f.newID("i")
	n := f.seq
	vol := fmt.Sprintf("vol-%017x", n)
	i := &fakeInstance{Inst: ec2types.Instance{
		InstanceId: aws.String(id), LaunchTime: aws.Time(f.tick()), Tags: tags,
		InstanceType:    ec2types.InstanceTypeT2Micro,
		PublicDnsName:   aws.String(fmt.Sprintf("ec2-203-0-113-%d.%s.compute.amazonaws.com", n%250, f.Region)),
		PublicIpAddress: aws.String(fmt.Sprintf("203.0.113.%d", n%250)),
		BlockDeviceMappings: []ec2types.InstanceBlockDeviceMapping{{
			DeviceName: aws.String("/dev/sda1"), Ebs: &ec2types.EbsInstanceBlockDevice{VolumeId: aws.String(vol)},
		}},
	}}
	for _, g := range sgIDs {
		i.Inst.SecurityGroups = append(i.Inst.SecurityGroups, ec2types.GroupIdentifier{GroupId: aws.String(g)})
	}
	SetState(&i.Inst, ec2types.InstanceStateNameRunning)
	f.Instances = append(f.Instances, i)
	return i
}

// transitions moves the instances a describe shows: first the model's
// wind-downs (EC2's slow terminations, when a test asks for them); then,
// asked by id (as waiters ask), an instance in transition has finished it:
// the fake has no boot or shutdown time. Called with f.mu held.
func (f *FakeAWS) transitions(in *ec2.DescribeInstancesInput) {
	for _, id := range f.Terms.Due() {
		SetState(&f.Instance(id).Inst, ec2types.InstanceStateNameTerminated)
	}
	winding := map[string]bool{}
	for _, i := range f.Instances {
		id := aws.ToString(i.Inst.InstanceId)
		if len(in.InstanceIds) > 0 && !slices.Contains(in.InstanceIds, id) {
			continue
		}
		if state := f.Terms.Show(id); state != "" {
			SetState(&i.Inst, ec2types.InstanceStateName(state))
			winding[id] = true
		}
	}
	polled := slices.Clone(in.InstanceIds)
	if len(filterValues(in.Filters, "instance-state-name")) == 0 {
		// A poll by id moves an instance on; a state-scoped read (up's
		// look for its recorded instance) is one look, not a wait.
		polled = append(polled, filterValues(in.Filters, "instance-id")...)
	}
	for _, id := range polled {
		i := f.Instance(id)
		if i == nil || winding[id] {
			continue
		}
		switch cloud.StateOf(&i.Inst) {
		case ec2types.InstanceStateNamePending:
			SetState(&i.Inst, ec2types.InstanceStateNameRunning)
			if aws.ToString(i.Inst.PublicDnsName) == "" {
				i.Inst.PublicDnsName = aws.String(fmt.Sprintf("ec2-192-0-2-%d.%s.compute.amazonaws.com", f.seq%250, f.Region))
				i.Inst.PublicIpAddress = aws.String(fmt.Sprintf("192.0.2.%d", f.seq%250))
			}
		case ec2types.InstanceStateNameShuttingDown:
			SetState(&i.Inst, ec2types.InstanceStateNameTerminated)
		case ec2types.InstanceStateNameStopping:
			SetState(&i.Inst, ec2types.InstanceStateNameStopped)
		}
	}
}

func (f *FakeAWS) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return fakeCall(f, in, "EC2", "DescribeInstances", func() (*ec2.DescribeInstancesOutput, error) {
		for _, id := range in.InstanceIds {
			if f.Instance(id) == nil {
				return nil, AwsErr("InvalidInstanceID.NotFound")
			}
		}
		f.transitions(in)
		var hits []ec2types.Instance
		for _, i := range f.Instances {
			if len(in.InstanceIds) > 0 && !slices.Contains(in.InstanceIds, aws.ToString(i.Inst.InstanceId)) {
				continue
			}
			if len(in.InstanceIds) == 0 && !f.Consistency.Listed(aws.ToString(i.Inst.InstanceId)) {
				continue
			}
			ok, err := matchFilters(in.Filters, i.Inst.Tags, func(name string) ([]string, bool) {
				switch name {
				case "instance-state-name":
					return []string{string(cloud.StateOf(&i.Inst))}, true
				case "instance-id":
					return []string{aws.ToString(i.Inst.InstanceId)}, true
				}
				return nil, false
			})
			if err != nil {
				return nil, err
			}
			if ok {
				hits = append(hits, i.Inst)
			}
		}
		out := &ec2.DescribeInstancesOutput{}
		hits, next, err := page(f, "ec2", "DescribeInstances", in, hits, func(i ec2types.Instance) string { return aws.ToString(i.InstanceId) })
		if err != nil {
			return nil, err
		}
		for _, h := range hits {
			out.Reservations = append(out.Reservations, ec2types.Reservation{Instances: []ec2types.Instance{h}})
		}
		out.NextToken = next
		return out, nil
	})
}

func (f *FakeAWS) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	return fakeCall(f, in, "EC2", "RunInstances", func() (*ec2.RunInstancesOutput, error) {
		token := aws.ToString(in.ClientToken)
		if id, ok := f.tokens.Seen(token); ok {
			return &ec2.RunInstancesOutput{Instances: []ec2types.Instance{f.Instance(id).Inst}}, nil
		}
		if !slices.ContainsFunc(f.Images, func(img ec2types.Image) bool { return aws.ToString(img.ImageId) == aws.ToString(in.ImageId) }) {
			return nil, AwsErrMsg("InvalidAMIID.NotFound", "fake: no image "+aws.ToString(in.ImageId))
		}
		if in.KeyName != nil && f.KeyPair(aws.ToString(in.KeyName)) == nil {
			return nil, AwsErr("InvalidKeyPair.NotFound")
		}
		groups := in.SecurityGroupIds
		var subnet string
		publicIP := true
		for _, ni := range in.NetworkInterfaces {
			groups = append(groups, ni.Groups...)
			subnet = aws.ToString(ni.SubnetId)
			publicIP = aws.ToBool(ni.AssociatePublicIpAddress)
		}
		for _, g := range groups {
			if f.group(g) == nil {
				return nil, AwsErr("InvalidGroup.NotFound")
			}
		}
		if err := f.Plan.RunInstances(string(in.InstanceType)); err != nil {
			return nil, modelErr(err)
		}
		if err := f.runUnseen(in, groups); err != nil {
			return nil, err
		}
		if subnet != "" && !slices.ContainsFunc(f.Subnets, func(s ec2types.Subnet) bool { return aws.ToString(s.SubnetId) == subnet }) {
			return nil, AwsErr("InvalidSubnetID.NotFound")
		}
		if in.IamInstanceProfile != nil {
			if f.Profiles[aws.ToString(in.IamInstanceProfile.Name)] == nil {
				return nil, AwsErrMsg("InvalidParameterValue", "Value ("+aws.ToString(in.IamInstanceProfile.Name)+") for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name")
			}
		}
		i := f.Launch(tagsFor(in.TagSpecifications, ec2types.ResourceTypeInstance), groups)
		i.Token, i.UserData = token, aws.ToString(in.UserData)
		f.tokens.Launched(token, aws.ToString(i.Inst.InstanceId))
		f.Consistency.Created(awsmodel.Instance, aws.ToString(i.Inst.InstanceId))
		i.Inst.SubnetId = aws.String(subnet)
		if in.CreditSpecification != nil {
			i.Credits = aws.ToString(in.CreditSpecification.CpuCredits)
		}
		if !publicIP {
			i.Inst.PublicDnsName, i.Inst.PublicIpAddress = nil, nil
		}
		i.Inst.ImageId, i.Inst.InstanceType, i.Inst.KeyName = in.ImageId, in.InstanceType, in.KeyName
		if in.IamInstanceProfile != nil {
			i.Inst.IamInstanceProfile = &ec2types.IamInstanceProfile{Arn: f.arn("instance-profile", cloud.IAMPath, aws.ToString(in.IamInstanceProfile.Name))}
		}
		if in.MetadataOptions != nil {
			i.Inst.MetadataOptions = &ec2types.InstanceMetadataOptionsResponse{HttpTokens: in.MetadataOptions.HttpTokens}
		}
		if !f.SilentServer && i.Inst.PublicDnsName != nil {
			f.publishKeys(i)
		}
		return &ec2.RunInstancesOutput{Instances: []ec2types.Instance{i.Inst}}, nil
	})
}

func (f *FakeAWS) StartInstances(_ context.Context, in *ec2.StartInstancesInput, _ ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error) {
	return fakeCall(f, in, "EC2", "StartInstances", func() (*ec2.StartInstancesOutput, error) {
		for _, id := range in.InstanceIds {
			i := f.Instance(id)
			if i == nil {
				return nil, AwsErr("InvalidInstanceID.NotFound")
			}
			if cloud.StateOf(&i.Inst) != ec2types.InstanceStateNameStopped {
				return nil, AwsErr("IncorrectInstanceState")
			}
			SetState(&i.Inst, ec2types.InstanceStateNameRunning)
			n := f.seq
			i.Inst.PublicDnsName = aws.String(fmt.Sprintf("ec2-198-51-100-%d.%s.compute.amazonaws.com", n%250, f.Region))
			i.Inst.PublicIpAddress = aws.String(fmt.Sprintf("198.51.100.%d", n%250))
			// EC2 sets LaunchTime at every start; the bootstrap publishes
			// again at every start, for the new address.
			i.Inst.LaunchTime = aws.Time(f.tick())
			if !f.SilentServer {
				f.publishKeys(i)
			}
		}
		return &ec2.StartInstancesOutput{}, nil
	})
}

// runUnseen is the model's answer to a launch with a key pair, groups or
// an instance profile that do not read back yet. Called with f.mu held.
func (f *FakeAWS) runUnseen(in *ec2.RunInstancesInput, groups []string) error {
	if err := f.Consistency.Use(awsmodel.KeyPair, aws.ToString(in.KeyName)); err != nil {
		return modelErr(err)
	}
	for _, g := range groups {
		if err := f.Consistency.Use(awsmodel.Group, g); err != nil {
			return modelErr(err)
		}
	}
	if in.IamInstanceProfile != nil {
		return modelErr(f.Consistency.Use(awsmodel.Profile, aws.ToString(in.IamInstanceProfile.Name)))
	}
	return nil
}

// StopInstances stops running instances at once (the fake has no stopping).
func (f *FakeAWS) StopInstances(_ context.Context, in *ec2.StopInstancesInput, _ ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
	return fakeCall(f, in, "EC2", "StopInstances", func() (*ec2.StopInstancesOutput, error) {
		for _, id := range in.InstanceIds {
			i := f.Instance(id)
			if i == nil {
				return nil, AwsErr("InvalidInstanceID.NotFound")
			}
			SetState(&i.Inst, ec2types.InstanceStateNameStopped)
		}
		return &ec2.StopInstancesOutput{}, nil
	})
}

// RebootInstances restarts the server in place: same address and launch
// time; the bootstrap publishes its keys again when it starts.
func (f *FakeAWS) RebootInstances(_ context.Context, in *ec2.RebootInstancesInput, _ ...func(*ec2.Options)) (*ec2.RebootInstancesOutput, error) {
	return fakeCall(f, in, "EC2", "RebootInstances", func() (*ec2.RebootInstancesOutput, error) {
		for _, id := range in.InstanceIds {
			i := f.Instance(id)
			if i == nil {
				return nil, AwsErr("InvalidInstanceID.NotFound")
			}
			if cloud.StateOf(&i.Inst) != ec2types.InstanceStateNameRunning {
				return nil, AwsErr("IncorrectInstanceState")
			}
			f.Reboots++
			if !f.SilentServer {
				f.publishKeys(i)
			}
		}
		return &ec2.RebootInstancesOutput{}, nil
	})
}

func (f *FakeAWS) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	return fakeCall(f, in, "EC2", "TerminateInstances", func() (*ec2.TerminateInstancesOutput, error) {
		for _, id := range in.InstanceIds {
			if f.Instance(id) == nil {
				return nil, AwsErr("InvalidInstanceID.NotFound")
			}
		}
		for _, id := range in.InstanceIds {
			i := f.Instance(id)
			if winds, _ := f.Terms.Terminate(id); !winds {
				SetState(&i.Inst, ec2types.InstanceStateNameTerminated)
			} else if cloud.StateOf(&i.Inst) != ec2types.InstanceStateNameTerminated {
				SetState(&i.Inst, ec2types.InstanceStateNameShuttingDown)
			}
		}
		return &ec2.TerminateInstancesOutput{}, nil
	})
}

func (f *FakeAWS) GetConsoleOutput(_ context.Context, in *ec2.GetConsoleOutputInput, _ ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error) {
	return fakeCall(f, in, "EC2", "GetConsoleOutput", func() (*ec2.GetConsoleOutputOutput, error) {
		id := aws.ToString(in.InstanceId)
		i := f.Instance(id)
		if i == nil {
			return nil, AwsErr("InvalidInstanceID.NotFound")
		}
		// Only Nitro types keep the latest output; t2 is Xen.
		if aws.ToBool(in.Latest) && i.Inst.InstanceType == ec2types.InstanceTypeT2Micro {
			return nil, AwsErrMsg("UnsupportedOperation", "fake: the latest console output is not supported on Xen types")
		}
		out := &ec2.GetConsoleOutputOutput{InstanceId: in.InstanceId}
		if text, ok := f.Console[id]; ok {
			out.Output = aws.String(base64.StdEncoding.EncodeToString([]byte(text)))
		}
		return out, nil
	})
}

func (f *FakeAWS) DescribeInstanceAttribute(_ context.Context, in *ec2.DescribeInstanceAttributeInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error) {
	return fakeCall(f, in, "EC2", "DescribeInstanceAttribute", func() (*ec2.DescribeInstanceAttributeOutput, error) {
		i := f.Instance(aws.ToString(in.InstanceId))
		if i == nil {
			return nil, AwsErr("InvalidInstanceID.NotFound")
		}
		if in.Attribute != ec2types.InstanceAttributeNameUserData {
			return nil, AwsErrMsg("InvalidParameterValue", "fake: only userData")
		}
		out := &ec2.DescribeInstanceAttributeOutput{InstanceId: in.InstanceId}
		if i.UserData != "" {
			out.UserData = &ec2types.AttributeValue{Value: aws.String(i.UserData)}
		}
		return out, nil
	})
}

// ---- EC2: images, instance types, tags, regions ----

func (f *FakeAWS) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return fakeCall(f, in, "EC2", "DescribeImages", func() (*ec2.DescribeImagesOutput, error) {
		out := &ec2.DescribeImagesOutput{}
		for _, img := range f.Images {
			if len(in.Owners) > 0 && !slices.Contains(in.Owners, aws.ToString(img.OwnerId)) {
				continue
			}
			ok, err := matchFilters(in.Filters, img.Tags, func(name string) ([]string, bool) {
				switch name {
				case "name":
					return []string{aws.ToString(img.Name)}, true
				case "architecture":
					return []string{string(img.Architecture)}, true
				case "state":
					return []string{string(img.State)}, true
				case "image-id":
					return []string{aws.ToString(img.ImageId)}, true
				}
				return nil, false
			})
			if err != nil {
				return nil, err
			}
			if ok {
				out.Images = append(out.Images, img)
			}
		}
		var err error
		out.Images, out.NextToken, err = page(f, "ec2", "DescribeImages", in, out.Images, func(i ec2types.Image) string { return aws.ToString(i.ImageId) })
		return out, err
	})
}

func (f *FakeAWS) DescribeInstanceTypes(_ context.Context, in *ec2.DescribeInstanceTypesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	return fakeCall(f, in, "EC2", "DescribeInstanceTypes", func() (*ec2.DescribeInstanceTypesOutput, error) {
		var names []string
		for _, t := range in.InstanceTypes {
			names = append(names, string(t))
		}
		// The region's own types first: moto's DescribeInstanceTypes ignores it.
		if err := awsmodel.DescribeInstanceTypes(f.Region, names); err != nil {
			return nil, modelErr(err)
		}
		out := &ec2.DescribeInstanceTypesOutput{}
		for _, t := range in.InstanceTypes {
			archs, ok := f.instanceTypes[string(t)]
			if !ok {
				return nil, AwsErrMsg("InvalidInstanceType", "fake: no instance type "+string(t))
			}
			out.InstanceTypes = append(out.InstanceTypes, ec2types.InstanceTypeInfo{
				InstanceType: t, ProcessorInfo: &ec2types.ProcessorInfo{SupportedArchitectures: archs},
			})
		}
		var err error
		out.InstanceTypes, out.NextToken, err = page(f, "ec2", "DescribeInstanceTypes", in, out.InstanceTypes,
			func(i ec2types.InstanceTypeInfo) string { return string(i.InstanceType) })
		return out, err
	})
}

func (f *FakeAWS) DescribeInstanceTypeOfferings(_ context.Context, in *ec2.DescribeInstanceTypeOfferingsInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
	return fakeCall(f, in, "EC2", "DescribeInstanceTypeOfferings", func() (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
		if in.LocationType != ec2types.LocationTypeAvailabilityZone {
			return nil, AwsErrMsg("InvalidParameterValue", "fake: only availability-zone offerings")
		}
		want := filterValues(in.Filters, "instance-type")
		out := &ec2.DescribeInstanceTypeOfferingsOutput{}
		for _, t := range slices.Sorted(maps.Keys(f.Offered)) {
			if len(want) > 0 && !slices.Contains(want, t) || !f.Plan.Offered(t) || !awsmodel.RegionOffers(f.Region, t) {
				continue
			}
			for _, z := range f.Offered[t] {
				out.InstanceTypeOfferings = append(out.InstanceTypeOfferings, ec2types.InstanceTypeOffering{
					InstanceType: ec2types.InstanceType(t), Location: aws.String(z), LocationType: ec2types.LocationTypeAvailabilityZone,
				})
			}
		}
		var err error
		out.InstanceTypeOfferings, out.NextToken, err = page(f, "ec2", "DescribeInstanceTypeOfferings", in, out.InstanceTypeOfferings,
			func(o ec2types.InstanceTypeOffering) string {
				return string(o.InstanceType) + " " + aws.ToString(o.Location)
			})
		return out, err
	})
}

func (f *FakeAWS) DescribeSubnets(_ context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return fakeCall(f, in, "EC2", "DescribeSubnets", func() (*ec2.DescribeSubnetsOutput, error) {
		if v := filterValues(in.Filters, "default-for-az"); len(v) != 1 || v[0] != "true" {
			return nil, AwsErrMsg("InvalidParameterValue", "fake: only default-for-az=true")
		}
		out := &ec2.DescribeSubnetsOutput{}
		var err error
		out.Subnets, out.NextToken, err = page(f, "ec2", "DescribeSubnets", in, slices.Clone(f.Subnets), func(s ec2types.Subnet) string { return aws.ToString(s.SubnetId) })
		return out, err
	})
}

func (f *FakeAWS) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	return fakeCall(f, in, "EC2", "CreateTags", func() (*ec2.CreateTagsOutput, error) {
		var sets []func()
		for _, id := range in.Resources {
			switch {
			case f.Instance(id) != nil:
				i := f.Instance(id)
				sets = append(sets, func() { i.Inst.Tags = mergeEC2Tags(i.Inst.Tags, in.Tags) })
			case f.group(id) != nil:
				g := f.group(id)
				sets = append(sets, func() { g.SG.Tags = mergeEC2Tags(g.SG.Tags, in.Tags) })
			case strings.HasPrefix(id, "vol-"):
				// Volumes carry no state in the fake beyond existing.
			default:
				k := slices.IndexFunc(f.KeyPairs, func(k *fakeKeyPair) bool { return aws.ToString(k.Kp.KeyPairId) == id })
				if k < 0 {
					return nil, AwsErrMsg("InvalidID", "fake: no resource "+id)
				}
				kp := f.KeyPairs[k]
				sets = append(sets, func() { kp.Kp.Tags = mergeEC2Tags(kp.Kp.Tags, in.Tags) })
			}
		}
		for _, s := range sets {
			s()
		}
		return &ec2.CreateTagsOutput{}, nil
	})
}

func (f *FakeAWS) DescribeRegions(_ context.Context, in *ec2.DescribeRegionsInput, _ ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error) {
	return fakeCall(f, in, "EC2", "DescribeRegions", func() (*ec2.DescribeRegionsOutput, error) {
		out := &ec2.DescribeRegionsOutput{}
		for _, r := range f.regions {
			out.Regions = append(out.Regions, ec2types.Region{RegionName: aws.String(r)})
		}
		return out, nil
	})
}

// ---- IAM: users ----

// partition is the ARN partition of the fake's region (aws-cn in China).
func (f *FakeAWS) partition() string { return region.Of(f.Region).Name }

func (f *FakeAWS) arn(kind, path, name string) *string {
	return aws.String("arn:" + f.partition() + ":iam::" + f.Account + ":" + kind + path + name)
}

func mergeIAMTags(have, set []iamtypes.Tag) []iamtypes.Tag {
	m := cloud.IAMTagMap(have)
	for _, t := range set {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return cloud.IAMTags(m)
}

func (f *FakeAWS) GetUser(_ context.Context, in *iam.GetUserInput, _ ...func(*iam.Options)) (*iam.GetUserOutput, error) {
	return fakeCall(f, in, "IAM", "GetUser", func() (*iam.GetUserOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		cp := u.User
		return &iam.GetUserOutput{User: &cp}, nil
	})
}

func (f *FakeAWS) ListUsers(_ context.Context, in *iam.ListUsersInput, _ ...func(*iam.Options)) (*iam.ListUsersOutput, error) {
	return fakeCall(f, in, "IAM", "ListUsers", func() (*iam.ListUsersOutput, error) {
		out := &iam.ListUsersOutput{}
		for _, name := range sortedKeysOf(f.Users) {
			u := f.Users[name].User
			if strings.HasPrefix(aws.ToString(u.Path), aws.ToString(in.PathPrefix)) {
				u.Tags = nil // like IAM: ListUsers leaves tags out
				out.Users = append(out.Users, u)
			}
		}
		var err error
		out.Users, out.Marker, err = page(f, "iam", "ListUsers", in, out.Users, func(u iamtypes.User) string { return aws.ToString(u.UserName) })
		out.IsTruncated = out.Marker != nil
		return out, err
	})
}

func sortedKeysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (f *FakeAWS) CreateUser(_ context.Context, in *iam.CreateUserInput, _ ...func(*iam.Options)) (*iam.CreateUserOutput, error) {
	return fakeCall(f, in, "IAM", "CreateUser", func() (*iam.CreateUserOutput, error) {
		name := aws.ToString(in.UserName)
		if f.Users[name] != nil {
			return nil, AwsErr("EntityAlreadyExists")
		}
		path := aws.ToString(in.Path)
		if path == "" {
			path = "/"
		}
		u := &fakeUser{Policies: map[string]string{}, User: iamtypes.User{
			UserName: in.UserName, Path: aws.String(path), Arn: f.arn("user", path, name),
			UserId: aws.String(f.newID("AIDA")), CreateDate: aws.Time(f.tick()), Tags: in.Tags,
		}}
		f.Users[name] = u
		cp := u.User
		return &iam.CreateUserOutput{User: &cp}, nil
	})
}

func (f *FakeAWS) TagUser(_ context.Context, in *iam.TagUserInput, _ ...func(*iam.Options)) (*iam.TagUserOutput, error) {
	return fakeCall(f, in, "IAM", "TagUser", func() (*iam.TagUserOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		u.User.Tags = mergeIAMTags(u.User.Tags, in.Tags)
		return &iam.TagUserOutput{}, nil
	})
}

func (f *FakeAWS) DeleteUser(_ context.Context, in *iam.DeleteUserInput, _ ...func(*iam.Options)) (*iam.DeleteUserOutput, error) {
	return fakeCall(f, in, "IAM", "DeleteUser", func() (*iam.DeleteUserOutput, error) {
		name := aws.ToString(in.UserName)
		u := f.Users[name]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		if len(u.Keys) > 0 || len(u.Policies) > 0 || len(u.Attached) > 0 || len(u.Groups) > 0 || u.Login {
			return nil, AwsErrMsg("DeleteConflict", "fake: user "+name+" still has keys, policies, groups or a login profile")
		}
		delete(f.Users, name)
		return &iam.DeleteUserOutput{}, nil
	})
}

func (f *FakeAWS) ListAttachedUserPolicies(_ context.Context, in *iam.ListAttachedUserPoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error) {
	return fakeCall(f, in, "IAM", "ListAttachedUserPolicies", func() (*iam.ListAttachedUserPoliciesOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		out := &iam.ListAttachedUserPoliciesOutput{}
		for _, arn := range u.Attached {
			out.AttachedPolicies = append(out.AttachedPolicies, iamtypes.AttachedPolicy{PolicyArn: aws.String(arn)})
		}
		var err error
		out.AttachedPolicies, out.Marker, err = page(f, "iam", "ListAttachedUserPolicies", in, out.AttachedPolicies, policyARN)
		out.IsTruncated = out.Marker != nil
		return out, err
	})
}

func (f *FakeAWS) DetachUserPolicy(_ context.Context, in *iam.DetachUserPolicyInput, _ ...func(*iam.Options)) (*iam.DetachUserPolicyOutput, error) {
	return fakeCall(f, in, "IAM", "DetachUserPolicy", func() (*iam.DetachUserPolicyOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil || !slices.Contains(u.Attached, aws.ToString(in.PolicyArn)) {
			return nil, AwsErr("NoSuchEntity")
		}
		u.Attached = slices.DeleteFunc(u.Attached, func(a string) bool { return a == aws.ToString(in.PolicyArn) })
		return &iam.DetachUserPolicyOutput{}, nil
	})
}

func (f *FakeAWS) ListGroupsForUser(_ context.Context, in *iam.ListGroupsForUserInput, _ ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error) {
	return fakeCall(f, in, "IAM", "ListGroupsForUser", func() (*iam.ListGroupsForUserOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		out := &iam.ListGroupsForUserOutput{}
		for _, g := range u.Groups {
			out.Groups = append(out.Groups, iamtypes.Group{GroupName: aws.String(g)})
		}
		var err error
		out.Groups, out.Marker, err = page(f, "iam", "ListGroupsForUser", in, out.Groups, func(g iamtypes.Group) string { return aws.ToString(g.GroupName) })
		out.IsTruncated = out.Marker != nil
		return out, err
	})
}

func (f *FakeAWS) RemoveUserFromGroup(_ context.Context, in *iam.RemoveUserFromGroupInput, _ ...func(*iam.Options)) (*iam.RemoveUserFromGroupOutput, error) {
	return fakeCall(f, in, "IAM", "RemoveUserFromGroup", func() (*iam.RemoveUserFromGroupOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil || !slices.Contains(u.Groups, aws.ToString(in.GroupName)) {
			return nil, AwsErr("NoSuchEntity")
		}
		u.Groups = slices.DeleteFunc(u.Groups, func(g string) bool { return g == aws.ToString(in.GroupName) })
		return &iam.RemoveUserFromGroupOutput{}, nil
	})
}

func (f *FakeAWS) GetLoginProfile(_ context.Context, in *iam.GetLoginProfileInput, _ ...func(*iam.Options)) (*iam.GetLoginProfileOutput, error) {
	return fakeCall(f, in, "IAM", "GetLoginProfile", func() (*iam.GetLoginProfileOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil || !u.Login {
			return nil, AwsErr("NoSuchEntity")
		}
		return &iam.GetLoginProfileOutput{LoginProfile: &iamtypes.LoginProfile{UserName: in.UserName}}, nil
	})
}

func (f *FakeAWS) DeleteLoginProfile(_ context.Context, in *iam.DeleteLoginProfileInput, _ ...func(*iam.Options)) (*iam.DeleteLoginProfileOutput, error) {
	return fakeCall(f, in, "IAM", "DeleteLoginProfile", func() (*iam.DeleteLoginProfileOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil || !u.Login {
			return nil, AwsErr("NoSuchEntity")
		}
		u.Login = false
		return &iam.DeleteLoginProfileOutput{}, nil
	})
}

func (f *FakeAWS) GetUserPolicy(_ context.Context, in *iam.GetUserPolicyInput, _ ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error) {
	return fakeCall(f, in, "IAM", "GetUserPolicy", func() (*iam.GetUserPolicyOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		doc, ok := u.Policies[aws.ToString(in.PolicyName)]
		if !ok {
			return nil, AwsErr("NoSuchEntity")
		}
		// IAM answers the document URL-encoded.
		return &iam.GetUserPolicyOutput{UserName: in.UserName, PolicyName: in.PolicyName, PolicyDocument: aws.String(url.QueryEscape(doc))}, nil
	})
}

func (f *FakeAWS) PutUserPolicy(_ context.Context, in *iam.PutUserPolicyInput, _ ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error) {
	return fakeCall(f, in, "IAM", "PutUserPolicy", func() (*iam.PutUserPolicyOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		u.Policies[aws.ToString(in.PolicyName)] = aws.ToString(in.PolicyDocument)
		return &iam.PutUserPolicyOutput{}, nil
	})
}

func (f *FakeAWS) ListUserPolicies(_ context.Context, in *iam.ListUserPoliciesInput, _ ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error) {
	return fakeCall(f, in, "IAM", "ListUserPolicies", func() (*iam.ListUserPoliciesOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		out := &iam.ListUserPoliciesOutput{PolicyNames: cloud.SortedKeys(u.Policies)}
		var err error
		out.PolicyNames, out.Marker, err = page(f, "iam", "ListUserPolicies", in, out.PolicyNames, itself)
		out.IsTruncated = out.Marker != nil
		return out, err
	})
}

func (f *FakeAWS) DeleteUserPolicy(_ context.Context, in *iam.DeleteUserPolicyInput, _ ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error) {
	return fakeCall(f, in, "IAM", "DeleteUserPolicy", func() (*iam.DeleteUserPolicyOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		if _, ok := u.Policies[aws.ToString(in.PolicyName)]; !ok {
			return nil, AwsErr("NoSuchEntity")
		}
		delete(u.Policies, aws.ToString(in.PolicyName))
		return &iam.DeleteUserPolicyOutput{}, nil
	})
}

func (f *FakeAWS) ListAccessKeys(_ context.Context, in *iam.ListAccessKeysInput, _ ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error) {
	return fakeCall(f, in, "IAM", "ListAccessKeys", func() (*iam.ListAccessKeysOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		out := &iam.ListAccessKeysOutput{}
		for _, k := range u.Keys {
			out.AccessKeyMetadata = append(out.AccessKeyMetadata, iamtypes.AccessKeyMetadata{
				UserName: in.UserName, AccessKeyId: aws.String(k.ID), Status: iamtypes.StatusTypeActive, CreateDate: aws.Time(k.created),
			})
		}
		var err error
		out.AccessKeyMetadata, out.Marker, err = page(f, "iam", "ListAccessKeys", in, out.AccessKeyMetadata, func(k iamtypes.AccessKeyMetadata) string { return aws.ToString(k.AccessKeyId) })
		out.IsTruncated = out.Marker != nil
		return out, err
	})
}

// AddKey gives a user an access key created at t. Called with f.mu held.
func (f *FakeAWS) AddKey(u *fakeUser, t time.Time) fakeAccessKey {
	f.seq++
	k := fakeAccessKey{ID: fmt.Sprintf("AKIAFAKE%012d", f.seq), Secret: fmt.Sprintf("secret-%d-%s", f.seq, strings.Repeat("x", 24)), created: t}
	u.Keys = append(u.Keys, k)
	return k
}

func (f *FakeAWS) CreateAccessKey(_ context.Context, in *iam.CreateAccessKeyInput, _ ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error) {
	return fakeCall(f, in, "IAM", "CreateAccessKey", func() (*iam.CreateAccessKeyOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		if len(u.Keys) >= 2 {
			return nil, AwsErrMsg("LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")
		}
		k := f.AddKey(u, time.Now().UTC())
		return &iam.CreateAccessKeyOutput{AccessKey: &iamtypes.AccessKey{
			UserName: in.UserName, AccessKeyId: aws.String(k.ID), SecretAccessKey: aws.String(k.Secret),
			Status: iamtypes.StatusTypeActive, CreateDate: aws.Time(k.created),
		}}, nil
	})
}

func (f *FakeAWS) DeleteAccessKey(_ context.Context, in *iam.DeleteAccessKeyInput, _ ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error) {
	return fakeCall(f, in, "IAM", "DeleteAccessKey", func() (*iam.DeleteAccessKeyOutput, error) {
		u := f.Users[aws.ToString(in.UserName)]
		if u == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		n := len(u.Keys)
		u.Keys = slices.DeleteFunc(u.Keys, func(k fakeAccessKey) bool { return k.ID == aws.ToString(in.AccessKeyId) })
		if len(u.Keys) == n {
			return nil, AwsErr("NoSuchEntity")
		}
		return &iam.DeleteAccessKeyOutput{}, nil
	})
}

// ---- IAM: roles and instance profiles ----

func (f *FakeAWS) GetRole(_ context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	return fakeCall(f, in, "IAM", "GetRole", func() (*iam.GetRoleOutput, error) {
		r := f.Roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		cp := r.Role
		return &iam.GetRoleOutput{Role: &cp}, nil
	})
}

func (f *FakeAWS) ListRoles(_ context.Context, in *iam.ListRolesInput, _ ...func(*iam.Options)) (*iam.ListRolesOutput, error) {
	return fakeCall(f, in, "IAM", "ListRoles", func() (*iam.ListRolesOutput, error) {
		out := &iam.ListRolesOutput{}
		for _, name := range sortedKeysOf(f.Roles) {
			r := f.Roles[name].Role
			if strings.HasPrefix(aws.ToString(r.Path), aws.ToString(in.PathPrefix)) {
				r.Tags = nil // like IAM: ListRoles leaves tags out
				out.Roles = append(out.Roles, r)
			}
		}
		var err error
		out.Roles, out.Marker, err = page(f, "iam", "ListRoles", in, out.Roles, func(r iamtypes.Role) string { return aws.ToString(r.RoleName) })
		out.IsTruncated = out.Marker != nil
		return out, err
	})
}

func (f *FakeAWS) CreateRole(_ context.Context, in *iam.CreateRoleInput, _ ...func(*iam.Options)) (*iam.CreateRoleOutput, error) {
	return fakeCall(f, in, "IAM", "CreateRole", func() (*iam.CreateRoleOutput, error) {
		name := aws.ToString(in.RoleName)
		if f.Roles[name] != nil {
			return nil, AwsErr("EntityAlreadyExists")
		}
		path := aws.ToString(in.Path)
		r := &fakeRole{Policies: map[string]string{}, Role: iamtypes.Role{
			RoleName: in.RoleName, Path: aws.String(path), Arn: f.arn("role", path, name), RoleId: aws.String(f.newID("AROA")),
			CreateDate: aws.Time(f.tick()), Tags: in.Tags, AssumeRolePolicyDocument: in.AssumeRolePolicyDocument, Description: in.Description,
		}}
		f.Roles[name] = r
		cp := r.Role
		return &iam.CreateRoleOutput{Role: &cp}, nil
	})
}

func (f *FakeAWS) TagRole(_ context.Context, in *iam.TagRoleInput, _ ...func(*iam.Options)) (*iam.TagRoleOutput, error) {
	return fakeCall(f, in, "IAM", "TagRole", func() (*iam.TagRoleOutput, error) {
		r := f.Roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		r.Role.Tags = mergeIAMTags(r.Role.Tags, in.Tags)
		return &iam.TagRoleOutput{}, nil
	})
}

func (f *FakeAWS) DeleteRole(_ context.Context, in *iam.DeleteRoleInput, _ ...func(*iam.Options)) (*iam.DeleteRoleOutput, error) {
	return fakeCall(f, in, "IAM", "DeleteRole", func() (*iam.DeleteRoleOutput, error) {
		name := aws.ToString(in.RoleName)
		r := f.Roles[name]
		if r == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		if len(r.Policies)+len(r.Attached) > 0 {
			return nil, AwsErrMsg("DeleteConflict", "fake: role "+name+" still has policies")
		}
		for _, p := range f.Profiles {
			if slices.Contains(p.Roles, name) {
				return nil, AwsErrMsg("DeleteConflict", "fake: role "+name+" is in an instance profile")
			}
		}
		delete(f.Roles, name)
		return &iam.DeleteRoleOutput{}, nil
	})
}

func (f *FakeAWS) GetRolePolicy(_ context.Context, in *iam.GetRolePolicyInput, _ ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	return fakeCall(f, in, "IAM", "GetRolePolicy", func() (*iam.GetRolePolicyOutput, error) {
		r := f.Roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		doc, ok := r.Policies[aws.ToString(in.PolicyName)]
		if !ok {
			return nil, AwsErr("NoSuchEntity")
		}
		return &iam.GetRolePolicyOutput{RoleName: in.RoleName, PolicyName: in.PolicyName, PolicyDocument: aws.String(url.QueryEscape(doc))}, nil
	})
}

func (f *FakeAWS) PutRolePolicy(_ context.Context, in *iam.PutRolePolicyInput, _ ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error) {
	return fakeCall(f, in, "IAM", "PutRolePolicy", func() (*iam.PutRolePolicyOutput, error) {
		r := f.Roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		r.Policies[aws.ToString(in.PolicyName)] = aws.ToString(in.PolicyDocument)
		return &iam.PutRolePolicyOutput{}, nil
	})
}

func (f *FakeAWS) ListRolePolicies(_ context.Context, in *iam.ListRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error) {
	return fakeCall(f, in, "IAM", "ListRolePolicies", func() (*iam.ListRolePoliciesOutput, error) {
		r := f.Roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		out := &iam.ListRolePoliciesOutput{PolicyNames: cloud.SortedKeys(r.Policies)}
		var err error
		out.PolicyNames, out.Marker, err = page(f, "iam", "ListRolePolicies", in, out.PolicyNames, itself)
		out.IsTruncated = out.Marker != nil
		return out, err
	})
}

func (f *FakeAWS) DeleteRolePolicy(_ context.Context, in *iam.DeleteRolePolicyInput, _ ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error) {
	return fakeCall(f, in, "IAM", "DeleteRolePolicy", func() (*iam.DeleteRolePolicyOutput, error) {
		r := f.Roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		if _, ok := r.Policies[aws.ToString(in.PolicyName)]; !ok {
			return nil, AwsErr("NoSuchEntity")
		}
		delete(r.Policies, aws.ToString(in.PolicyName))
		return &iam.DeleteRolePolicyOutput{}, nil
	})
}

func (f *FakeAWS) ListAttachedRolePolicies(_ context.Context, in *iam.ListAttachedRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error) {
	return fakeCall(f, in, "IAM", "ListAttachedRolePolicies", func() (*iam.ListAttachedRolePoliciesOutput, error) {
		r := f.Roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		out := &iam.ListAttachedRolePoliciesOutput{}
		for _, a := range r.Attached {
			out.AttachedPolicies = append(out.AttachedPolicies, iamtypes.AttachedPolicy{PolicyArn: aws.String(a), PolicyName: aws.String(a[strings.LastIndex(a, "/")+1:])})
		}
		var err error
		out.AttachedPolicies, out.Marker, err = page(f, "iam", "ListAttachedRolePolicies", in, out.AttachedPolicies, policyARN)
		out.IsTruncated = out.Marker != nil
		return out, err
	})
}

func (f *FakeAWS) DetachRolePolicy(_ context.Context, in *iam.DetachRolePolicyInput, _ ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error) {
	return fakeCall(f, in, "IAM", "DetachRolePolicy", func() (*iam.DetachRolePolicyOutput, error) {
		r := f.Roles[aws.ToString(in.RoleName)]
		if r == nil || !slices.Contains(r.Attached, aws.ToString(in.PolicyArn)) {
			return nil, AwsErr("NoSuchEntity")
		}
		r.Attached = slices.DeleteFunc(r.Attached, func(a string) bool { return a == aws.ToString(in.PolicyArn) })
		return &iam.DetachRolePolicyOutput{}, nil
	})
}

// profileOut is the profile as IAM answers it, with its roles. Called with f.mu held.
func (f *FakeAWS) profileOut(p *fakeProfile) *iamtypes.InstanceProfile {
	cp := p.Prof
	cp.Roles = nil
	for _, name := range p.Roles {
		role := iamtypes.Role{RoleName: aws.String(name)}
		if r := f.Roles[name]; r != nil {
			role = r.Role
		}
		cp.Roles = append(cp.Roles, role)
	}
	return &cp
}

func (f *FakeAWS) GetInstanceProfile(_ context.Context, in *iam.GetInstanceProfileInput, _ ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error) {
	return fakeCall(f, in, "IAM", "GetInstanceProfile", func() (*iam.GetInstanceProfileOutput, error) {
		p := f.Profiles[aws.ToString(in.InstanceProfileName)]
		if p == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		return &iam.GetInstanceProfileOutput{InstanceProfile: f.profileOut(p)}, nil
	})
}

func (f *FakeAWS) CreateInstanceProfile(_ context.Context, in *iam.CreateInstanceProfileInput, _ ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error) {
	return fakeCall(f, in, "IAM", "CreateInstanceProfile", func() (*iam.CreateInstanceProfileOutput, error) {
		name := aws.ToString(in.InstanceProfileName)
		if f.Profiles[name] != nil {
			return nil, AwsErr("EntityAlreadyExists")
		}
		path := aws.ToString(in.Path)
		p := &fakeProfile{Prof: iamtypes.InstanceProfile{
			InstanceProfileName: in.InstanceProfileName, Path: aws.String(path), Arn: f.arn("instance-profile", path, name),
			InstanceProfileId: aws.String(f.newID("AIPA")), CreateDate: aws.Time(f.tick()), Tags: in.Tags,
		}}
		f.Profiles[name] = p
		f.Consistency.Created(awsmodel.Profile, name)
		return &iam.CreateInstanceProfileOutput{InstanceProfile: f.profileOut(p)}, nil
	})
}

func (f *FakeAWS) TagInstanceProfile(_ context.Context, in *iam.TagInstanceProfileInput, _ ...func(*iam.Options)) (*iam.TagInstanceProfileOutput, error) {
	return fakeCall(f, in, "IAM", "TagInstanceProfile", func() (*iam.TagInstanceProfileOutput, error) {
		p := f.Profiles[aws.ToString(in.InstanceProfileName)]
		if p == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		p.Prof.Tags = mergeIAMTags(p.Prof.Tags, in.Tags)
		return &iam.TagInstanceProfileOutput{}, nil
	})
}

func (f *FakeAWS) DeleteInstanceProfile(_ context.Context, in *iam.DeleteInstanceProfileInput, _ ...func(*iam.Options)) (*iam.DeleteInstanceProfileOutput, error) {
	return fakeCall(f, in, "IAM", "DeleteInstanceProfile", func() (*iam.DeleteInstanceProfileOutput, error) {
		name := aws.ToString(in.InstanceProfileName)
		p := f.Profiles[name]
		if p == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		if len(p.Roles) > 0 {
			return nil, AwsErrMsg("DeleteConflict", "fake: profile "+name+" still holds a role")
		}
		delete(f.Profiles, name)
		return &iam.DeleteInstanceProfileOutput{}, nil
	})
}

func (f *FakeAWS) AddRoleToInstanceProfile(_ context.Context, in *iam.AddRoleToInstanceProfileInput, _ ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error) {
	return fakeCall(f, in, "IAM", "AddRoleToInstanceProfile", func() (*iam.AddRoleToInstanceProfileOutput, error) {
		p := f.Profiles[aws.ToString(in.InstanceProfileName)]
		if p == nil || f.Roles[aws.ToString(in.RoleName)] == nil {
			return nil, AwsErr("NoSuchEntity")
		}
		if len(p.Roles) > 0 {
			return nil, AwsErrMsg("LimitExceeded", "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
		}
		p.Roles = append(p.Roles, aws.ToString(in.RoleName))
		return &iam.AddRoleToInstanceProfileOutput{}, nil
	})
}

func (f *FakeAWS) RemoveRoleFromInstanceProfile(_ context.Context, in *iam.RemoveRoleFromInstanceProfileInput, _ ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error) {
	return fakeCall(f, in, "IAM", "RemoveRoleFromInstanceProfile", func() (*iam.RemoveRoleFromInstanceProfileOutput, error) {
		p := f.Profiles[aws.ToString(in.InstanceProfileName)]
		if p == nil || !slices.Contains(p.Roles, aws.ToString(in.RoleName)) {
			return nil, AwsErr("NoSuchEntity")
		}
		p.Roles = slices.DeleteFunc(p.Roles, func(r string) bool { return r == aws.ToString(in.RoleName) })
		return &iam.RemoveRoleFromInstanceProfileOutput{}, nil
	})
}

// ---- S3 ----

// ourBucket is the bucket when this account may use it; the error is S3's
// answer otherwise. Called with f.mu held.
func (f *FakeAWS) ourBucket(name string) (*FakeBucket, error) {
	b := f.Buckets[name]
	if err := f.Consistency.Use(awsmodel.Bucket, name); err != nil {
		return nil, modelErr(err)
	}
	switch {
	case b == nil:
		return nil, AwsErr("NoSuchBucket")
	case b.Foreign:
		return nil, AwsErr("AccessDenied")
	}
	return b, nil
}

func (f *FakeAWS) HeadBucket(_ context.Context, in *s3.HeadBucketInput, _ ...func(*s3.Options)) (*s3.HeadBucketOutput, error) {
	return fakeCall(f, in, "S3", "HeadBucket", func() (*s3.HeadBucketOutput, error) {
		b := f.Buckets[aws.ToString(in.Bucket)]
		switch {
		case b == nil, f.Consistency.Use(awsmodel.Bucket, aws.ToString(in.Bucket)) != nil:
			return nil, AwsErr("NotFound") // HEAD answers carry no body: the SDK makes the code from the status
		case b.Foreign:
			return nil, AwsErr("Forbidden")
		}
		return &s3.HeadBucketOutput{BucketRegion: aws.String(b.Region)}, nil
	})
}

func (f *FakeAWS) CreateBucket(_ context.Context, in *s3.CreateBucketInput, _ ...func(*s3.Options)) (*s3.CreateBucketOutput, error) {
	return fakeCall(f, in, "S3", "CreateBucket", func() (*s3.CreateBucketOutput, error) {
		name := aws.ToString(in.Bucket)
		if b := f.Buckets[name]; b != nil {
			if b.Foreign {
				return nil, AwsErr("BucketAlreadyExists")
			}
			return nil, AwsErr("BucketAlreadyOwnedByYou")
		}
		if err := f.BusyNames.Create(name); err != nil {
			return nil, modelErr(err)
		}
		if in.CreateBucketConfiguration != nil {
			if err := awsmodel.CreateBucketTags(!f.NoTagResource, len(in.CreateBucketConfiguration.Tags)); err != nil {
				return nil, modelErr(err)
			}
		}
		region := "us-east-1" // no constraint (with or without a configuration) is us-east-1
		if in.CreateBucketConfiguration != nil && in.CreateBucketConfiguration.LocationConstraint != "" {
			region = string(in.CreateBucketConfiguration.LocationConstraint)
			if region == "us-east-1" {
				return nil, AwsErr("InvalidLocationConstraint")
			}
		}
		if region != f.Region {
			return nil, AwsErrMsg("IllegalLocationConstraintException", "fake: bucket region "+region+" in "+f.Region)
		}
		if err := awsmodel.BucketNamespace(region, string(in.BucketNamespace), f.NoRegionalNamespace); err != nil {
			return nil, modelErr(err)
		}
		if (in.BucketNamespace == s3types.BucketNamespaceAccountRegional) != strings.HasSuffix(name, "-"+f.Account+"-"+region+"-an") {
			return nil, AwsErr("InvalidNamespaceHeader")
		}
		b := &FakeBucket{Region: region, Namespace: in.BucketNamespace}
		if f.KeepCreateTags && in.CreateBucketConfiguration != nil && len(in.CreateBucketConfiguration.Tags) > 0 {
			b.Tags = cloud.S3TagMap(in.CreateBucketConfiguration.Tags)
		}
		f.Buckets[name] = b
		f.Consistency.Created(awsmodel.Bucket, name)
		return &s3.CreateBucketOutput{Location: aws.String("/" + name)}, nil
	})
}

func (f *FakeAWS) DeleteBucket(_ context.Context, in *s3.DeleteBucketInput, _ ...func(*s3.Options)) (*s3.DeleteBucketOutput, error) {
	return fakeCall(f, in, "S3", "DeleteBucket", func() (*s3.DeleteBucketOutput, error) {
		name := aws.ToString(in.Bucket)
		b, err := f.ourBucket(name)
		if err != nil {
			return nil, err
		}
		if len(b.Versions) > 0 {
			return nil, AwsErr("BucketNotEmpty")
		}
		delete(f.Buckets, name)
		f.BusyNames.Deleted(name)
		return &s3.DeleteBucketOutput{}, nil
	})
}

func (f *FakeAWS) ListBuckets(_ context.Context, in *s3.ListBucketsInput, _ ...func(*s3.Options)) (*s3.ListBucketsOutput, error) {
	return fakeCall(f, in, "S3", "ListBuckets", func() (*s3.ListBucketsOutput, error) {
		out := &s3.ListBucketsOutput{Prefix: in.Prefix}
		for _, name := range sortedKeysOf(f.Buckets) {
			b := f.Buckets[name]
			if !b.Foreign && strings.HasPrefix(name, aws.ToString(in.Prefix)) {
				out.Buckets = append(out.Buckets, s3types.Bucket{Name: aws.String(name), BucketRegion: aws.String(b.Region)})
			}
		}
		var err error
		out.Buckets, out.ContinuationToken, err = page(f, "s3", "ListBuckets", in, out.Buckets, func(b s3types.Bucket) string { return aws.ToString(b.Name) })
		return out, err
	})
}

func (f *FakeAWS) GetBucketTagging(_ context.Context, in *s3.GetBucketTaggingInput, _ ...func(*s3.Options)) (*s3.GetBucketTaggingOutput, error) {
	return fakeCall(f, in, "S3", "GetBucketTagging", func() (*s3.GetBucketTaggingOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		if b.Tags == nil {
			return nil, AwsErr("NoSuchTagSet")
		}
		return &s3.GetBucketTaggingOutput{TagSet: cloud.S3Tags(b.Tags)}, nil
	})
}

func (f *FakeAWS) PutBucketTagging(_ context.Context, in *s3.PutBucketTaggingInput, _ ...func(*s3.Options)) (*s3.PutBucketTaggingOutput, error) {
	return fakeCall(f, in, "S3", "PutBucketTagging", func() (*s3.PutBucketTaggingOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		b.Tags = cloud.S3TagMap(in.Tagging.TagSet)
		return &s3.PutBucketTaggingOutput{}, nil
	})
}

func (f *FakeAWS) GetPublicAccessBlock(_ context.Context, in *s3.GetPublicAccessBlockInput, _ ...func(*s3.Options)) (*s3.GetPublicAccessBlockOutput, error) {
	return fakeCall(f, in, "S3", "GetPublicAccessBlock", func() (*s3.GetPublicAccessBlockOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		if b.Pab == nil {
			return nil, AwsErr("NoSuchPublicAccessBlockConfiguration")
		}
		cp := *b.Pab
		return &s3.GetPublicAccessBlockOutput{PublicAccessBlockConfiguration: &cp}, nil
	})
}

func (f *FakeAWS) PutPublicAccessBlock(_ context.Context, in *s3.PutPublicAccessBlockInput, _ ...func(*s3.Options)) (*s3.PutPublicAccessBlockOutput, error) {
	return fakeCall(f, in, "S3", "PutPublicAccessBlock", func() (*s3.PutPublicAccessBlockOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		cp := *in.PublicAccessBlockConfiguration
		b.Pab = &cp
		return &s3.PutPublicAccessBlockOutput{}, nil
	})
}

func (f *FakeAWS) GetBucketEncryption(_ context.Context, in *s3.GetBucketEncryptionInput, _ ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error) {
	return fakeCall(f, in, "S3", "GetBucketEncryption", func() (*s3.GetBucketEncryptionOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		if !b.Encrypted {
			return nil, AwsErr("ServerSideEncryptionConfigurationNotFoundError")
		}
		return &s3.GetBucketEncryptionOutput{ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
			Rules: []s3types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256}}},
		}}, nil
	})
}

func (f *FakeAWS) PutBucketEncryption(_ context.Context, in *s3.PutBucketEncryptionInput, _ ...func(*s3.Options)) (*s3.PutBucketEncryptionOutput, error) {
	return fakeCall(f, in, "S3", "PutBucketEncryption", func() (*s3.PutBucketEncryptionOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		c := in.ServerSideEncryptionConfiguration
		b.Encrypted = c != nil && len(c.Rules) > 0
		return &s3.PutBucketEncryptionOutput{}, nil
	})
}

func (f *FakeAWS) ListObjectVersions(_ context.Context, in *s3.ListObjectVersionsInput, _ ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error) {
	return fakeCall(f, in, "S3", "ListObjectVersions", func() (*s3.ListObjectVersionsOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		// Listed in (key, version id) order; markers are positions in that
		// order, so a listing resumes right even when the marker object
		// was deleted meanwhile (as emptying a bucket page by page does).
		vs := slices.DeleteFunc(slices.Clone(b.Versions), func(v FakeVersion) bool {
			return !strings.HasPrefix(v.Key, aws.ToString(in.Prefix))
		})
		sort.SliceStable(vs, func(i, j int) bool {
			if vs[i].Key != vs[j].Key {
				return vs[i].Key < vs[j].Key
			}
			return vs[i].ID < vs[j].ID
		})
		start := 0
		if in.KeyMarker != nil {
			mk, mid := aws.ToString(in.KeyMarker), aws.ToString(in.VersionIdMarker)
			start = len(vs)
			for i, v := range vs {
				if v.Key > mk || v.Key == mk && v.ID > mid {
					start = i
					break
				}
			}
		}
		end := len(vs)
		out := &s3.ListObjectVersionsOutput{Name: in.Bucket, IsTruncated: aws.Bool(false)}
		if size := f.pageSize("s3", "ListObjectVersions", int(aws.ToInt32(in.MaxKeys))); size > 0 && start+size < len(vs) {
			end = start + size
			last := vs[end-1]
			out.IsTruncated, out.NextKeyMarker, out.NextVersionIdMarker = aws.Bool(true), aws.String(last.Key), aws.String(last.ID)
		}
		latest := map[string]string{} // key -> the newest version's id: the last added
		for _, v := range b.Versions {
			latest[v.Key] = v.ID
		}
		for _, v := range vs[start:end] {
			isLatest := aws.Bool(latest[v.Key] == v.ID)
			if v.Marker {
				out.DeleteMarkers = append(out.DeleteMarkers, s3types.DeleteMarkerEntry{Key: aws.String(v.Key), VersionId: aws.String(v.ID), IsLatest: isLatest})
			} else {
				out.Versions = append(out.Versions, s3types.ObjectVersion{Key: aws.String(v.Key), VersionId: aws.String(v.ID),
					IsLatest: isLatest, Size: aws.Int64(v.Size)})
			}
		}
		return out, nil
	})
}

func (f *FakeAWS) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	var body []byte
	if in.Body != nil {
		body, _ = io.ReadAll(in.Body)
	}
	return fakeCall(f, in, "S3", "PutObject", func() (*s3.PutObjectOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		key := aws.ToString(in.Key)
		b.Versions = append(b.Versions, FakeVersion{Key: key, ID: f.newID("v"), Size: int64(len(body))})
		if b.Data == nil {
			b.Data = map[string][]byte{}
		}
		b.Data[key] = body
		return &s3.PutObjectOutput{}, nil
	})
}

func (f *FakeAWS) CopyObject(_ context.Context, in *s3.CopyObjectInput, _ ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	return fakeCall(f, in, "S3", "CopyObject", func() (*s3.CopyObjectOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		src := strings.TrimPrefix(aws.ToString(in.CopySource), aws.ToString(in.Bucket)+"/")
		body, ok := b.Data[src]
		if !ok {
			return nil, AwsErr("NoSuchKey")
		}
		key := aws.ToString(in.Key)
		b.Versions = append(b.Versions, FakeVersion{Key: key, ID: f.newID("v"), Size: int64(len(body))})
		b.Data[key] = body
		return &s3.CopyObjectOutput{}, nil
	})
}

func (f *FakeAWS) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return fakeCall(f, in, "S3", "HeadObject", func() (*s3.HeadObjectOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		body, ok := b.Data[aws.ToString(in.Key)]
		if !ok {
			return nil, AwsErr("NotFound")
		}
		return &s3.HeadObjectOutput{ContentLength: aws.Int64(int64(len(body)))}, nil
	})
}

func (f *FakeAWS) DeleteObjects(_ context.Context, in *s3.DeleteObjectsInput, _ ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	return fakeCall(f, in, "S3", "DeleteObjects", func() (*s3.DeleteObjectsOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		if len(in.Delete.Objects) > 1000 {
			return nil, AwsErr("MalformedXML")
		}
		out := &s3.DeleteObjectsOutput{}
		for _, o := range in.Delete.Objects {
			key, id := aws.ToString(o.Key), aws.ToString(o.VersionId)
			if code, ok := b.DeleteErrs[key]; ok {
				out.Errors = append(out.Errors, s3types.Error{Key: o.Key, VersionId: o.VersionId, Code: aws.String(code), Message: aws.String("fake")})
				continue
			}
			b.Versions = slices.DeleteFunc(b.Versions, func(v FakeVersion) bool { return v.Key == key && v.ID == id })
			if !aws.ToBool(in.Delete.Quiet) {
				out.Deleted = append(out.Deleted, s3types.DeletedObject{Key: o.Key, VersionId: o.VersionId})
			}
		}
		return out, nil
	})
}

func (f *FakeAWS) ListMultipartUploads(_ context.Context, in *s3.ListMultipartUploadsInput, _ ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error) {
	return fakeCall(f, in, "S3", "ListMultipartUploads", func() (*s3.ListMultipartUploadsOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		return f.listUploads(in, b.Uploads), nil
	})
}

func (f *FakeAWS) AbortMultipartUpload(_ context.Context, in *s3.AbortMultipartUploadInput, _ ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return fakeCall(f, in, "S3", "AbortMultipartUpload", func() (*s3.AbortMultipartUploadOutput, error) {
		b, err := f.ourBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		n := len(b.Uploads)
		b.Uploads = slices.DeleteFunc(b.Uploads, func(u FakeUpload) bool {
			return u.Key == aws.ToString(in.Key) && u.ID == aws.ToString(in.UploadId)
		})
		if len(b.Uploads) == n {
			return nil, AwsErr("NoSuchUpload")
		}
		return &s3.AbortMultipartUploadOutput{}, nil
	})
}

// ListObjectsV2 as the account's own identity (keyProbeAPI).
func (f *FakeAWS) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return fakeCall(f, in, "S3", "ListObjectsV2", func() (*s3.ListObjectsV2Output, error) { return f.listObjects(in) })
}

// listObjects lists the latest versions. Called with f.mu held.
func (f *FakeAWS) listObjects(in *s3.ListObjectsV2Input) (*s3.ListObjectsV2Output, error) {
	b, err := f.ourBucket(aws.ToString(in.Bucket))
	if err != nil {
		return nil, err
	}
	// As S3: each key's latest version, unless it is a delete marker,
	// under the prefix, in key order.
	latest := map[string]FakeVersion{}
	for _, v := range b.Versions {
		latest[v.Key] = v
	}
	out := &s3.ListObjectsV2Output{Name: in.Bucket, Prefix: in.Prefix}
	for _, key := range slices.Sorted(maps.Keys(latest)) {
		if !latest[key].Marker && strings.HasPrefix(key, aws.ToString(in.Prefix)) {
			out.Contents = append(out.Contents, s3types.Object{Key: aws.String(key), Size: aws.Int64(latest[key].Size)})
		}
	}
	out.Contents, out.NextContinuationToken, err = page(f, "s3", "ListObjectsV2", in, out.Contents, func(o s3types.Object) string { return aws.ToString(o.Key) })
	out.IsTruncated = aws.Bool(out.NextContinuationToken != nil)
	out.KeyCount = aws.Int32(int32(len(out.Contents)))
	return out, err
}

// fakeProbe is S3 signed with one access key (session.s3As): it works only
// while that key exists with that secret.
type fakeProbe struct {
	f          *FakeAWS
	id, secret string
}

func (p *fakeProbe) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	f := p.f
	return fakeCall(f, in, "S3", "ListObjectsV2", func() (*s3.ListObjectsV2Output, error) {
		for _, u := range f.Users {
			for _, k := range u.Keys {
				if k.ID == p.id {
					if k.Secret != p.secret {
						return nil, AwsErr("SignatureDoesNotMatch")
					}
					return f.listObjects(in)
				}
			}
		}
		return nil, AwsErr("InvalidAccessKeyId")
	})
}

// ---- test-side helpers (no call is recorded) ----

// StackTagsFor are the tags up gives a stack's resources, created at t.
func StackTagsFor(stack string, t time.Time) map[string]string {
	return cloud.StackTags(stack, FakeRegion, FakeOwner, t, 0)
}

// AddUser makes an IAM user with tags (nil: untagged) and keys created at the given times.
func (f *FakeAWS) AddUser(name string, tags map[string]string, keyTimes ...time.Time) *fakeUser {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	u := &fakeUser{Policies: map[string]string{}, User: iamtypes.User{
		UserName: aws.String(name), Path: aws.String(cloud.IAMPath), Arn: f.arn("user", cloud.IAMPath, name),
		CreateDate: aws.Time(f.tick()), Tags: cloud.IAMTags(tags),
	}}
	for _, t := range keyTimes {
		f.AddKey(u, t)
	}
	f.Users[name] = u
	return u
}

// AddRole makes an IAM role with tags (nil: untagged).
func (f *FakeAWS) AddRole(name string, tags map[string]string) *fakeRole {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	r := &fakeRole{Policies: map[string]string{}, Role: iamtypes.Role{
		RoleName: aws.String(name), Path: aws.String(cloud.IAMPath), Arn: f.arn("role", cloud.IAMPath, name),
		CreateDate: aws.Time(f.tick()), Tags: cloud.IAMTags(tags),
		// As IAM returns it: URL-encoded.
		AssumeRolePolicyDocument: aws.String(url.QueryEscape(cloud.EC2TrustPolicy(f.Region))),
	}}
	f.Roles[name] = r
	return r
}

// AddProfile makes an instance profile holding roles.
func (f *FakeAWS) AddProfile(name string, tags map[string]string, roles ...string) *fakeProfile {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	p := &fakeProfile{Roles: roles, Prof: iamtypes.InstanceProfile{
		InstanceProfileName: aws.String(name), Path: aws.String(cloud.IAMPath), Arn: f.arn("instance-profile", cloud.IAMPath, name),
		CreateDate: aws.Time(f.tick()), Tags: cloud.IAMTags(tags),
	}}
	f.Profiles[name] = p
	return p
}

// AddBucket makes a bucket of this account with tags (nil: no tag set).
func (f *FakeAWS) AddBucket(name string, tags map[string]string) *FakeBucket {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	b := &FakeBucket{Region: f.Region, Tags: tags}
	f.Buckets[name] = b
	return b
}

// AddInstance launches an instance outside mlstack with tags (nil: untagged).
func (f *FakeAWS) AddInstance(tags map[string]string, state ec2types.InstanceStateName) string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var t []ec2types.Tag
	if tags != nil {
		t = cloud.EC2Tags(tags, "")
	}
	i := f.Launch(t, nil)
	SetState(&i.Inst, state)
	return aws.ToString(i.Inst.InstanceId)
}

// AddStackInstance launches an instance as mlstack would for stack: with
// its instance profile, its security group (made when missing), its key
// pair and Canonical's image.
func (f *FakeAWS) AddStackInstance(stack string, state ec2types.InstanceStateName) string {
	n := cloud.NamesFor(stack, f.Account, f.Region)
	sg := ""
	f.Mu.Lock()
	for _, g := range f.Groups {
		if aws.ToString(g.SG.GroupName) == n.SecurityGroup && aws.ToString(g.SG.VpcId) == "vpc-0default" {
			sg = aws.ToString(g.SG.GroupId)
		}
	}
	f.Mu.Unlock()
	if sg == "" {
		sg = f.AddGroup(n.SecurityGroup, StackTagsFor(stack, time.Now()))
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	i := f.Launch(cloud.EC2Tags(StackTagsFor(stack, time.Now()), n.Instance), []string{sg})
	i.Inst.IamInstanceProfile = &ec2types.IamInstanceProfile{Arn: f.arn("instance-profile", cloud.IAMPath, n.Profile)}
	i.Inst.KeyName, i.Inst.ImageId = aws.String(n.KeyPair), f.Images[0].ImageId
	f.publishKeys(i)
	SetState(&i.Inst, state)
	return aws.ToString(i.Inst.InstanceId)
}

// AddGroup makes a security group in the default VPC.
func (f *FakeAWS) AddGroup(name string, tags map[string]string, perms ...ec2types.IpPermission) string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	id := f.newID("sg")
	var t []ec2types.Tag
	if tags != nil {
		t = cloud.EC2Tags(tags, name)
	}
	f.Groups = append(f.Groups, &fakeGroup{SG: ec2types.SecurityGroup{
		GroupId: aws.String(id), GroupName: aws.String(name), VpcId: aws.String("vpc-0default"), Tags: t, IpPermissions: perms,
	}})
	return id
}

// AddKeyPair imports a key pair outside mlstack.
func (f *FakeAWS) AddKeyPair(name string, tags map[string]string) string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	id := f.newID("key")
	var t []ec2types.Tag
	if tags != nil {
		t = cloud.EC2Tags(tags, name)
	}
	f.KeyPairs = append(f.KeyPairs, &fakeKeyPair{Kp: ec2types.KeyPairInfo{KeyName: aws.String(name), KeyPairId: aws.String(id), Tags: t}})
	return id
}

// SetInstanceState moves an instance to a state behind mlstack's back.
func (f *FakeAWS) SetInstanceState(id string, s ec2types.InstanceStateName) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	SetState(&f.Instance(id).Inst, s)
}

// LiveInstances are the ids of the instances that are not terminated, in launch order.
func (f *FakeAWS) LiveInstances() []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var ids []string
	for _, i := range f.Instances {
		if cloud.StateOf(&i.Inst) != ec2types.InstanceStateNameTerminated {
			ids = append(ids, aws.ToString(i.Inst.InstanceId))
		}
	}
	return ids
}

// RetagAll sets one tag on every resource of the stack, as an older mlstack
// (or a clock in the past) would have left it.
func (f *FakeAWS) RetagAll(stack, key, value string) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	set := []ec2types.Tag{{Key: aws.String(key), Value: aws.String(value)}}
	for _, i := range f.Instances {
		if cloud.EC2TagMap(i.Inst.Tags)[cloud.TagStack] == stack {
			i.Inst.Tags = mergeEC2Tags(i.Inst.Tags, set)
		}
	}
	for _, g := range f.Groups {
		if cloud.EC2TagMap(g.SG.Tags)[cloud.TagStack] == stack {
			g.SG.Tags = mergeEC2Tags(g.SG.Tags, set)
		}
	}
	for _, k := range f.KeyPairs {
		if cloud.EC2TagMap(k.Kp.Tags)[cloud.TagStack] == stack {
			k.Kp.Tags = mergeEC2Tags(k.Kp.Tags, set)
		}
	}
	iset := []iamtypes.Tag{{Key: aws.String(key), Value: aws.String(value)}}
	for _, u := range f.Users {
		if cloud.IAMTagMap(u.User.Tags)[cloud.TagStack] == stack {
			u.User.Tags = mergeIAMTags(u.User.Tags, iset)
		}
	}
	for _, r := range f.Roles {
		if cloud.IAMTagMap(r.Role.Tags)[cloud.TagStack] == stack {
			r.Role.Tags = mergeIAMTags(r.Role.Tags, iset)
		}
	}
	for _, p := range f.Profiles {
		if cloud.IAMTagMap(p.Prof.Tags)[cloud.TagStack] == stack {
			p.Prof.Tags = mergeIAMTags(p.Prof.Tags, iset)
		}
	}
	for _, b := range f.Buckets {
		if b.Tags[cloud.TagStack] == stack {
			b.Tags[key] = value
		}
	}
}

// Owns lists what the fake holds for a stack by kind, tagged or named like it.
func (f *FakeAWS) Owns(stack string) []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	n := cloud.NamesFor(stack, f.Account, f.Region)
	var out []string
	for _, i := range f.Instances {
		if cloud.EC2TagMap(i.Inst.Tags)[cloud.TagStack] == stack && cloud.StateOf(&i.Inst) != ec2types.InstanceStateNameTerminated {
			out = append(out, "instance "+aws.ToString(i.Inst.InstanceId))
		}
	}
	for _, g := range f.Groups {
		if aws.ToString(g.SG.GroupName) == n.SecurityGroup {
			out = append(out, "security group "+n.SecurityGroup)
		}
	}
	if f.KeyPair(n.KeyPair) != nil {
		out = append(out, "key pair "+n.KeyPair)
	}
	if f.Users[n.User] != nil {
		out = append(out, "IAM user "+n.User)
	}
	if f.Roles[n.Role] != nil {
		out = append(out, "IAM role "+n.Role)
	}
	if f.Profiles[n.Profile] != nil {
		out = append(out, "instance profile "+n.Profile)
	}
	if f.Buckets[n.Bucket] != nil {
		out = append(out, "S3 bucket "+n.Bucket)
	}
	for name := range f.Params {
		if strings.HasPrefix(name, n.ParamPath()) {
			out = append(out, "SSM parameter "+name)
		}
	}
	return out
}

// The fake answers every call mlstack makes.
var (
	_ cloud.EC2API      = (*FakeAWS)(nil)
	_ cloud.IAMAPI      = (*FakeAWS)(nil)
	_ cloud.S3API       = (*FakeAWS)(nil)
	_ cloud.SSMAPI      = (*FakeAWS)(nil)
	_ cloud.KeyProbeAPI = (*FakeAWS)(nil)
	_ cloud.KeyProbeAPI = (*fakeProbe)(nil)
)

// AwsFingerprint is what EC2 reports for an imported ED25519 key: the
// SHA-256 of the OpenSSH wire key, base64 with padding.
func AwsFingerprint(authorized []byte) string {
	pk, _, _, _, err := ssh.ParseAuthorizedKey(authorized)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(pk.Marshal())
	return base64.StdEncoding.EncodeToString(sum[:])
}

// UserDataText is the cloud-config document in user-data as RunInstances got it.
func UserDataText(t *testing.T, userData []byte) string {
	t.Helper()
	doc, err := cloudinit.Decode(userData)
	if err != nil {
		t.Fatalf("user-data: %v", err)
	}
	return string(doc)
}

// UserDataB64Text is userDataText of the base64 text the fake keeps.
func UserDataB64Text(t *testing.T, b64 string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("user-data is not base64: %v", err)
	}
	return UserDataText(t, raw)
}

// fakeWaits make retried errors and polls cost milliseconds; how long S3
// may hold a bucket name stays production's (tests shorten it with ctxWaits).
func fakeWaits() cloud.Waits {
	w := cloud.ProductionWaits()
	w.RetryFirst, w.RetryMax = time.Millisecond, 2*time.Millisecond
	w.PollFirst, w.PollMax = time.Millisecond, 2*time.Millisecond
	w.DBPollFirst, w.DBPollMax = time.Millisecond, time.Millisecond
	return w
}

// Ctx is a context whose commands work on f, with fakeWaits: each test
// passes its own fake in, so tests over fakes run in parallel.
func (f *FakeAWS) Ctx() context.Context { return f.CtxWaits(nil) }

// CtxWaits is ctx with the waits edit changes.
func (f *FakeAWS) CtxWaits(edit func(w *cloud.Waits)) context.Context {
	w := fakeWaits()
	if edit != nil {
		edit(&w)
	}
	return cloud.WithDeps(context.Background(), cloud.Deps{Connect: f.connect, Waits: &w})
}

// connect is connectAWS for the fake: it counts, and mirrors the calls
// into the command's AWS.Calls.
func (f *FakeAWS) connect(_ context.Context, a cloud.AWS) (*cloud.Session, error) {
	f.Mu.Lock()
	f.Connects++
	f.mirror = a.Calls
	f.Mu.Unlock()
	return f.Session(), nil
}

// KeyIDs are the access key ids of an IAM user.
func (f *FakeAWS) KeyIDs(user string) []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var ids []string
	for _, k := range f.Users[user].Keys {
		ids = append(ids, k.ID)
	}
	return ids
}
