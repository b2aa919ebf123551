package awsmodel

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
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
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/mlstack/mlstack/internal/awsmodel/trim"
)

// capture is a server that keeps the last request it was sent and
// answers it nothing useful: the SDK's error on reading the answer is of
// no interest, only what it wrote.
type capture struct {
	srv  *httptest.Server
	mu   sync.Mutex
	req  *http.Request
	body []byte
}

func newCapture(t *testing.T) *capture {
	c := &capture{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		c.mu.Lock()
		c.req, c.body = req, body
		c.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *capture) last() (*http.Request, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	req, body := c.req, c.body
	c.req, c.body = nil, nil
	return req, body
}

// clients are the SDK's clients of every service, sending to c. An S3
// client in virtual-host style sends to s3.decode.test, which its HTTP
// client dials at c.
func (c *capture) clients(virtualHost bool) map[string]any {
	cfg := aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
	url := aws.String(c.srv.URL)
	s3url, s3client := url, c.srv.Client()
	if virtualHost {
		addr := c.srv.Listener.Addr().String()
		_, port, _ := net.SplitHostPort(addr)
		s3url = aws.String("http://s3.decode.test:" + port)
		s3client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	}
	return map[string]any{
		"ec2": ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = url }),
		"iam": iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = url }),
		"rds": rds.NewFromConfig(cfg, func(o *rds.Options) { o.BaseEndpoint = url }),
		"ssm": ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = url }),
		"sts": sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = url }),
		"s3": s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.BaseEndpoint, o.UsePathStyle, o.HTTPClient = s3url, !virtualHost, s3client
		}),
	}
}

// sdkAdds are the members the SDK fills in by itself, by service: EC2's
// idempotency token (RunInstances without one), S3's body length. A decoded
// member of these the input left unset is dropped before comparing.
var sdkAdds = map[string][]string{
	"ec2": {"ClientToken"},
	"s3":  {"ContentLength"},
}

// TestDecodeRoundTrip sends a representative input of every operation
// mlstack calls with the real SDK clients and reads the request back:
// DecodeRequest must give exactly Tree(input), so the proxy checks what
// the SDK wrote. S3 goes both path-style and virtual-hosted.
func TestDecodeRoundTrip(t *testing.T) {
	c := newCapture(t)
	covered := map[string]bool{}
	for _, style := range []string{"path", "virtual host"} {
		clients := c.clients(style == "virtual host")
		for _, in := range roundTripInputs {
			svc := serviceOf(in)
			op := strings.TrimSuffix(reflect.TypeOf(in).Elem().Name(), "Input")
			if style == "virtual host" && svc != "s3" {
				continue
			}
			t.Run(style+"/"+svc+"/"+op, func(t *testing.T) {
				covered[svc+"."+op] = true
				want := Tree(in) // before the call: the SDK fills its additions into in
				if po, ok := in.(*s3.PutObjectInput); ok {
					_, _ = po.Body.(io.Seeker).Seek(0, io.SeekStart) // sent once per style
				}
				method := reflect.ValueOf(clients[svc]).MethodByName(op)
				method.Call([]reflect.Value{reflect.ValueOf(context.Background()), reflect.ValueOf(in)})
				req, body := c.last()
				if req == nil {
					t.Fatal("the SDK sent nothing")
				}
				gotSvc, gotOp, tree, err := DecodeRequest(req, body)
				if err != nil {
					t.Fatalf("%s %s: %v\n%s", req.Method, req.URL, err, body)
				}
				if gotSvc != svc || gotOp != op {
					t.Fatalf("decoded as %s.%s", gotSvc, gotOp)
				}
				if svc == "s3" {
					delete(want, "Body") // the object's bytes are not read (decodeREST)
				}
				for _, m := range sdkAdds[svc] {
					if _, set := want[m]; !set && tree[m] != nil {
						t.Logf("the SDK added %s=%v", m, tree[m])
						delete(tree, m)
					}
				}
				if !reflect.DeepEqual(tree, want) {
					t.Fatalf("%s %s\n%s\ndecoded %s\nwant    %s", req.Method, req.URL, body, show(tree), show(want))
				}
			})
		}
	}
	for _, op := range trim.Ops() {
		if !covered[op] {
			t.Errorf("no representative input for %s", op)
		}
	}
}

func serviceOf(in any) string {
	p := reflect.TypeOf(in).Elem().PkgPath()
	return p[strings.LastIndex(p, "/")+1:]
}

func show(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return buf.String()
}

var (
	strp  = aws.String
	i32p  = aws.Int32
	boolp = aws.Bool
)

var (
	ec2Filters = []ec2types.Filter{{Name: strp("tag:mlstack:stack"), Values: []string{"demo", "other"}}, {Name: strp("instance-state-name"), Values: []string{"running"}}}
	ec2Tags    = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: strp("mlstack:stack"), Value: strp("demo")}, {Key: strp("Name"), Value: strp("mlstack-demo")}}}}
	ipPerms    = []ec2types.IpPermission{
		{IpProtocol: strp("tcp"), FromPort: i32p(22), ToPort: i32p(22), IpRanges: []ec2types.IpRange{{CidrIp: strp("203.0.113.5/32"), Description: strp("mlstack ssh from the operator")}, {CidrIp: strp("198.51.100.0/24")}}},
		{IpProtocol: strp("tcp"), FromPort: i32p(5432), ToPort: i32p(5432), UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: strp("sg-0123456789abcdef0"), Description: strp("server")}}},
		{IpProtocol: strp("tcp"), FromPort: i32p(443), ToPort: i32p(443), Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: strp("2001:db8::/64")}}},
	}
	iamTags         = []iamtypes.Tag{{Key: strp("mlstack:stack"), Value: strp("demo")}, {Key: strp("mlstack:owner"), Value: strp("arn:aws:iam::123456789012:user/ops")}}
	rdsTags         = []rdstypes.Tag{{Key: strp("mlstack:stack"), Value: strp("demo")}, {Key: strp("mlstack:owner"), Value: strp("ops")}}
	s3Tags          = []s3types.Tag{{Key: strp("mlstack:stack"), Value: strp("demo")}, {Key: strp("mlstack:owner"), Value: strp("ops")}}
	artifactsBucket = strp("mlstack-demo-artifacts")
)

// roundTripInputs: one input or more per operation of trim.Services,
// with every list, nested structure and scalar type mlstack sends.
var roundTripInputs = []any{
	&ec2.AuthorizeSecurityGroupIngressInput{GroupId: strp("sg-0123456789abcdef0"), IpPermissions: ipPerms},
	&ec2.CreateSecurityGroupInput{GroupName: strp("mlstack-demo"), Description: strp("mlstack demo: server"), VpcId: strp("vpc-1"), TagSpecifications: ec2Tags},
	&ec2.CreateTagsInput{Resources: []string{"i-1", "sg-1"}, Tags: []ec2types.Tag{{Key: strp("k"), Value: strp("v")}, {Key: strp("empty"), Value: strp("")}}},
	&ec2.DeleteKeyPairInput{KeyName: strp("mlstack-demo")},
	&ec2.DeleteSecurityGroupInput{GroupId: strp("sg-1")},
	&ec2.DescribeImagesInput{Owners: []string{"136693071363"}, Filters: ec2Filters, IncludeDeprecated: boolp(false)},
	&ec2.DescribeInstanceAttributeInput{InstanceId: strp("i-1"), Attribute: ec2types.InstanceAttributeNameUserData},
	&ec2.DescribeInstanceTypeOfferingsInput{LocationType: ec2types.LocationTypeRegion, Filters: ec2Filters, MaxResults: i32p(1000)},
	&ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{"t2.micro", "t3.micro"}},
	&ec2.DescribeInstancesInput{InstanceIds: []string{"i-1", "i-2"}, Filters: ec2Filters, MaxResults: i32p(5), NextToken: strp("tok")},
	&ec2.DescribeKeyPairsInput{KeyNames: []string{"mlstack-demo"}, IncludePublicKey: boolp(true)},
	&ec2.DescribeRegionsInput{AllRegions: boolp(true), RegionNames: []string{"eu-north-1"}},
	&ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-1"}, Filters: ec2Filters},
	&ec2.DescribeSubnetsInput{Filters: ec2Filters},
	&ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: strp("is-default"), Values: []string{"true"}}}},
	&ec2.GetConsoleOutputInput{InstanceId: strp("i-1"), Latest: boolp(true)},
	&ec2.ImportKeyPairInput{KeyName: strp("mlstack-demo"), PublicKeyMaterial: []byte("ssh-ed25519 AAAA mlstack"), TagSpecifications: ec2Tags},
	&ec2.RebootInstancesInput{InstanceIds: []string{"i-1"}},
	&ec2.RevokeSecurityGroupIngressInput{GroupId: strp("sg-1"), IpPermissions: ipPerms[:1]},
	&ec2.RunInstancesInput{
		ImageId: strp("ami-1"), InstanceType: ec2types.InstanceTypeT3Micro, MinCount: i32p(1), MaxCount: i32p(1), KeyName: strp("mlstack-demo"),
		SecurityGroupIds: []string{"sg-1"}, UserData: strp("I2Nsb3VkLWNvbmZpZw=="), ClientToken: strp("mlstack-demo-1"),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: strp("mlstack-demo")},
		TagSpecifications:  append(ec2Tags, ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeVolume, Tags: ec2Tags[0].Tags}),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: strp("/dev/xvda"), Ebs: &ec2types.EbsBlockDevice{
			VolumeSize: i32p(20), VolumeType: ec2types.VolumeTypeGp3, Encrypted: boolp(true), DeleteOnTermination: boolp(true)}}},
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired,
			HttpEndpoint: ec2types.InstanceMetadataEndpointStateEnabled, HttpPutResponseHopLimit: i32p(2)},
		CreditSpecification: &ec2types.CreditSpecificationRequest{CpuCredits: strp("standard")},
	},
	&ec2.RunInstancesInput{ImageId: strp("ami-1"), MinCount: i32p(1), MaxCount: i32p(1), NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{
		{DeviceIndex: i32p(0), AssociatePublicIpAddress: boolp(true), Groups: []string{"sg-1", "sg-2"}, SubnetId: strp("subnet-1")}}},
	&ec2.StartInstancesInput{InstanceIds: []string{"i-1"}},
	&ec2.StopInstancesInput{InstanceIds: []string{"i-1"}, Force: boolp(false)},
	&ec2.TerminateInstancesInput{InstanceIds: []string{"i-1", "i-2"}},

	&iam.AddRoleToInstanceProfileInput{InstanceProfileName: strp("mlstack-demo"), RoleName: strp("mlstack-demo")},
	&iam.CreateAccessKeyInput{UserName: strp("mlstack-demo")},
	&iam.CreateInstanceProfileInput{InstanceProfileName: strp("mlstack-demo"), Path: strp("/mlstack/"), Tags: iamTags},
	&iam.CreateRoleInput{RoleName: strp("mlstack-demo"), AssumeRolePolicyDocument: strp(`{"Version":"2012-10-17","Statement":[]}`),
		Description: strp("mlstack: the server"), MaxSessionDuration: i32p(3600), Path: strp("/"), Tags: iamTags},
	&iam.CreateUserInput{UserName: strp("mlstack-demo"), Path: strp("/mlstack/"), Tags: iamTags},
	&iam.DeleteAccessKeyInput{UserName: strp("mlstack-demo"), AccessKeyId: strp("AKIAEXAMPLEEXAMPLE12")},
	&iam.DeleteInstanceProfileInput{InstanceProfileName: strp("mlstack-demo")},
	&iam.DeleteLoginProfileInput{UserName: strp("mlstack-demo")},
	&iam.DeleteRoleInput{RoleName: strp("mlstack-demo")},
	&iam.DeleteRolePolicyInput{RoleName: strp("mlstack-demo"), PolicyName: strp("artifacts")},
	&iam.DeleteUserInput{UserName: strp("mlstack-demo")},
	&iam.DeleteUserPolicyInput{UserName: strp("mlstack-demo"), PolicyName: strp("artifacts")},
	&iam.DetachRolePolicyInput{RoleName: strp("r"), PolicyArn: strp("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")},
	&iam.DetachUserPolicyInput{UserName: strp("u"), PolicyArn: strp("arn:aws:iam::aws:policy/ReadOnlyAccess")},
	&iam.GetInstanceProfileInput{InstanceProfileName: strp("mlstack-demo")},
	&iam.GetLoginProfileInput{UserName: strp("mlstack-demo")},
	&iam.GetRoleInput{RoleName: strp("mlstack-demo")},
	&iam.GetRolePolicyInput{RoleName: strp("mlstack-demo"), PolicyName: strp("artifacts")},
	&iam.GetUserInput{},
	&iam.GetUserInput{UserName: strp("mlstack-demo")},
	&iam.GetUserPolicyInput{UserName: strp("mlstack-demo"), PolicyName: strp("artifacts")},
	&iam.ListAccessKeysInput{UserName: strp("mlstack-demo"), Marker: strp("m"), MaxItems: i32p(100)},
	&iam.ListAttachedRolePoliciesInput{RoleName: strp("r"), PathPrefix: strp("/")},
	&iam.ListAttachedUserPoliciesInput{UserName: strp("u")},
	&iam.ListGroupsForUserInput{UserName: strp("u")},
	&iam.ListInstanceProfilesForRoleInput{RoleName: strp("r")},
	&iam.ListRolePoliciesInput{RoleName: strp("r")},
	&iam.ListRolesInput{PathPrefix: strp("/"), MaxItems: i32p(100)},
	&iam.ListUserPoliciesInput{UserName: strp("u")},
	&iam.ListUsersInput{PathPrefix: strp("/mlstack/"), Marker: strp("m"), MaxItems: i32p(1000)},
	&iam.PutRolePolicyInput{RoleName: strp("r"), PolicyName: strp("artifacts"), PolicyDocument: strp(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`)},
	&iam.PutUserPolicyInput{UserName: strp("u"), PolicyName: strp("p"), PolicyDocument: strp(`{"Version":"2012-10-17"}`)},
	&iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: strp("p"), RoleName: strp("r")},
	&iam.RemoveUserFromGroupInput{GroupName: strp("g"), UserName: strp("u")},
	&iam.TagInstanceProfileInput{InstanceProfileName: strp("p"), Tags: iamTags},
	&iam.TagRoleInput{RoleName: strp("r"), Tags: iamTags},
	&iam.TagUserInput{UserName: strp("u"), Tags: iamTags},

	&rds.AddTagsToResourceInput{ResourceName: strp("arn:aws:rds:eu-west-1:123456789012:db:mlstack-demo"), Tags: rdsTags},
	&rds.CreateDBInstanceInput{DBInstanceIdentifier: strp("mlstack-demo"), DBInstanceClass: strp("db.t4g.micro"), Engine: strp("postgres"),
		EngineVersion: strp("16.4"), AllocatedStorage: i32p(20), MasterUsername: strp("mlflow"), MasterUserPassword: strp("secret-password"),
		DBName: strp("mlflow"), VpcSecurityGroupIds: []string{"sg-1", "sg-2"}, DBSubnetGroupName: strp("mlstack-demo"),
		PubliclyAccessible: boolp(false), StorageEncrypted: boolp(true), BackupRetentionPeriod: i32p(7), StorageType: strp("gp3"), Tags: rdsTags},
	&rds.CreateDBSubnetGroupInput{DBSubnetGroupName: strp("mlstack-demo"), DBSubnetGroupDescription: strp("mlstack demo"), SubnetIds: []string{"subnet-1", "subnet-2"}, Tags: rdsTags},
	&rds.DeleteDBInstanceInput{DBInstanceIdentifier: strp("mlstack-demo"), SkipFinalSnapshot: boolp(false), FinalDBSnapshotIdentifier: strp("mlstack-demo-final"), DeleteAutomatedBackups: boolp(true)},
	&rds.DeleteDBSnapshotInput{DBSnapshotIdentifier: strp("mlstack-demo-final")},
	&rds.DeleteDBSubnetGroupInput{DBSubnetGroupName: strp("mlstack-demo")},
	&rds.DescribeDBInstancesInput{DBInstanceIdentifier: strp("mlstack-demo"), Filters: []rdstypes.Filter{{Name: strp("engine"), Values: []string{"postgres"}}}, MaxRecords: i32p(100)},
	&rds.DescribeDBSnapshotsInput{DBInstanceIdentifier: strp("mlstack-demo"), SnapshotType: strp("manual"), Marker: strp("m")},
	&rds.DescribeDBSubnetGroupsInput{DBSubnetGroupName: strp("mlstack-demo")},
	&rds.DescribeOrderableDBInstanceOptionsInput{Engine: strp("postgres"), EngineVersion: strp("16.4"), DBInstanceClass: strp("db.t4g.micro"), MaxRecords: i32p(100)},
	&rds.DescribeDBEngineVersionsInput{Engine: strp("postgres"), EngineVersion: strp("17"), DefaultOnly: aws.Bool(true)},
	&rds.ModifyDBInstanceInput{DBInstanceIdentifier: strp("mlstack-demo"), MasterUserPassword: strp("another-secret"), ApplyImmediately: boolp(true)},
	&rds.RestoreDBInstanceFromDBSnapshotInput{DBInstanceIdentifier: strp("mlstack-demo"), DBSnapshotIdentifier: strp("mlstack-demo-final"),
		DBInstanceClass: strp("db.t4g.micro"), VpcSecurityGroupIds: []string{"sg-1"}, DBSubnetGroupName: strp("mlstack-demo"), Tags: rdsTags},

	&s3.AbortMultipartUploadInput{Bucket: artifactsBucket, Key: strp("runs/1/model.pkl"), UploadId: strp("upload-1")},
	&s3.CopyObjectInput{Bucket: artifactsBucket, Key: strp("backup/db.sqlite"), CopySource: strp("mlstack-demo-artifacts/db.sqlite"), MetadataDirective: s3types.MetadataDirectiveCopy},
	&s3.CreateBucketInput{Bucket: artifactsBucket, CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraintEuWest1, Tags: s3Tags}, ObjectOwnership: s3types.ObjectOwnershipBucketOwnerEnforced},
	&s3.CreateBucketInput{Bucket: artifactsBucket},
	&s3.DeleteBucketInput{Bucket: artifactsBucket},
	&s3.DeleteObjectInput{Bucket: artifactsBucket, Key: strp("runs/1/a b.txt"), VersionId: strp("v1")},
	&s3.DeleteObjectsInput{Bucket: artifactsBucket, Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{{Key: strp("a")}, {Key: strp("b/c"), VersionId: strp("v2")}}, Quiet: boolp(true)}},
	&s3.GetBucketEncryptionInput{Bucket: artifactsBucket},
	&s3.GetBucketLocationInput{Bucket: artifactsBucket},
	&s3.GetBucketTaggingInput{Bucket: artifactsBucket},
	&s3.GetObjectInput{Bucket: artifactsBucket, Key: strp("mlstack/state.json"), Range: strp("bytes=0-99")},
	&s3.GetPublicAccessBlockInput{Bucket: artifactsBucket},
	&s3.HeadBucketInput{Bucket: artifactsBucket, ExpectedBucketOwner: strp("123456789012")},
	&s3.HeadObjectInput{Bucket: artifactsBucket, Key: strp("mlstack/state.json")},
	&s3.ListBucketsInput{Prefix: strp("mlstack-"), MaxBuckets: i32p(1000), ContinuationToken: strp("tok")},
	&s3.ListMultipartUploadsInput{Bucket: artifactsBucket, Prefix: strp("runs/")},
	&s3.ListObjectVersionsInput{Bucket: artifactsBucket, Prefix: strp("runs/"), KeyMarker: strp("k"), VersionIdMarker: strp("v"), MaxKeys: i32p(1000)},
	&s3.ListObjectsV2Input{Bucket: artifactsBucket, Prefix: strp("runs/"), ContinuationToken: strp("tok"), MaxKeys: i32p(1000)},
	&s3.PutBucketEncryptionInput{Bucket: artifactsBucket, ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{
		{ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256}, BucketKeyEnabled: boolp(true)}}}},
	&s3.PutBucketTaggingInput{Bucket: artifactsBucket, Tagging: &s3types.Tagging{TagSet: s3Tags}},
	&s3.PutObjectInput{Bucket: artifactsBucket, Key: strp("mlstack/state.json"), Body: strings.NewReader(`{"v":1}`), ContentType: strp("application/json"), Metadata: map[string]string{"stack": "demo"}},
	&s3.PutPublicAccessBlockInput{Bucket: artifactsBucket, PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
		BlockPublicAcls: boolp(true), BlockPublicPolicy: boolp(true), IgnorePublicAcls: boolp(true), RestrictPublicBuckets: boolp(true)}},

	&ssm.AddTagsToResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: strp("/mlstack/demo/db"), Tags: []ssmtypes.Tag{{Key: strp("mlstack:stack"), Value: strp("demo")}}},
	&ssm.DeleteParameterInput{Name: strp("/mlstack/demo/db")},
	&ssm.DeleteParametersInput{Names: []string{"/mlstack/demo/db", "/mlstack/demo/admin"}},
	&ssm.DescribeParametersInput{ParameterFilters: []ssmtypes.ParameterStringFilter{{Key: strp("Name"), Option: strp("BeginsWith"), Values: []string{"/mlstack/"}}}, MaxResults: i32p(50), NextToken: strp("tok")},
	&ssm.GetParameterInput{Name: strp("/mlstack/demo/db"), WithDecryption: boolp(true)},
	&ssm.GetParametersInput{Names: []string{"/mlstack/demo/db"}, WithDecryption: boolp(true)},
	&ssm.GetParametersByPathInput{Path: strp("/mlstack/demo"), Recursive: boolp(true), WithDecryption: boolp(true), MaxResults: i32p(10)},
	&ssm.PutParameterInput{Name: strp("/mlstack/demo/db"), Value: strp("postgres://…"), Type: ssmtypes.ParameterTypeSecureString, Overwrite: boolp(false),
		Description: strp("mlstack demo"), Tags: []ssmtypes.Tag{{Key: strp("mlstack:stack"), Value: strp("demo")}}},

	&sts.GetCallerIdentityInput{},
}

// TestDecodeRequest: what the round trip cannot send — a request the
// models cannot account for is an error, and S3's operations are told
// apart without the SDK's x-id.
func TestDecodeRequest(t *testing.T) {
	for _, tc := range []struct {
		name, svc, method, target, body string
		header                          map[string]string
		op, errIn                       string
	}{
		{"ec2 unknown parameter", "ec2", "POST", "/", "Action=DescribeVpcs&Version=2016-11-15&VpcId.1=vpc-1&Bogus=1", nil, "", "parameters not in the model: Bogus"},
		{"ec2 presigned query", "ec2", "GET", "/?Action=DescribeRegions&AllRegions=true", "", nil, "DescribeRegions", ""},
		{"iam operation outside the model", "iam", "POST", "/", "Action=CreateGroup&GroupName=g", nil, "", ErrUnknownOperation.Error()},
		{"iam not a number", "iam", "POST", "/", "Action=ListUsers&MaxItems=many", nil, "", "MaxItems"},
		{"no credential scope", "", "POST", "/", "Action=ListUsers", nil, "", "has no model"},
		{"ssm target of another service", "ssm", "POST", "/", "{}", map[string]string{"X-Amz-Target": "AWSKMS.Encrypt"}, "", "X-Amz-Target"},
		{"ssm unknown member", "ssm", "POST", "/", `{"Name":"/x","Bogus":1}`, map[string]string{"X-Amz-Target": "AmazonSSM.GetParameter"}, "", "Bogus"},
		{"s3 copy by its header", "s3", "PUT", "/b/k", "", map[string]string{"X-Amz-Copy-Source": "b/j"}, "CopyObject", ""},
		{"s3 put without it", "s3", "PUT", "/b/k", "data", nil, "PutObject", ""},
		{"s3 abort by its uploadId", "s3", "DELETE", "/b/k?uploadId=u", "", nil, "AbortMultipartUpload", ""},
		{"s3 v1 listing", "s3", "GET", "/b?prefix=x", "", nil, "", ErrUnknownOperation.Error()},
		{"s3 upload part", "s3", "PUT", "/b/k?partNumber=1&uploadId=u", "", nil, "", "partNumber"},
		{"s3 unknown element", "s3", "PUT", "/b?tagging", "<Tagging><TagSet/><Bogus/></Tagging>", nil, "", "<Bogus>"},
		{"s3 payload of another name", "s3", "PUT", "/b?tagging", "<Tags></Tags>", nil, "", "not <Tagging>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.svc != "" {
				req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/eu-west-1/"+tc.svc+"/aws4_request, SignedHeaders=host, Signature=0")
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			_, op, _, err := DecodeRequest(req, []byte(tc.body))
			switch {
			case tc.errIn == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.errIn == "" && op != tc.op:
				t.Fatalf("decoded as %s, want %s", op, tc.op)
			case tc.errIn != "" && (err == nil || !strings.Contains(err.Error(), tc.errIn)):
				t.Fatalf("got %v, want an error containing %q", err, tc.errIn)
			}
		})
	}
}

// TestWriteError: each service's error format parses, with a refused
// value that holds XML's special characters.
func TestWriteError(t *testing.T) {
	msg := `Value 'a<b&c' at 'tags.1.value' failed`
	for _, svc := range []string{"s3", "ec2", "iam", "ssm"} {
		rec := httptest.NewRecorder()
		WriteError(rec, svc, http.StatusBadRequest, "ValidationError", msg)
		var got struct {
			Code    string `xml:"Error>Code" json:"__type"`
			Message string `xml:"Error>Message" json:"message"`
		}
		var err error
		switch svc {
		case "ssm":
			err = json.Unmarshal(rec.Body.Bytes(), &got)
		case "s3":
			var e struct{ Code, Message string }
			err = xml.Unmarshal(rec.Body.Bytes(), &e)
			got.Code, got.Message = e.Code, e.Message
		case "ec2":
			var e struct {
				Code    string `xml:"Errors>Error>Code"`
				Message string `xml:"Errors>Error>Message"`
			}
			err = xml.Unmarshal(rec.Body.Bytes(), &e)
			got.Code, got.Message = e.Code, e.Message
		default:
			err = xml.Unmarshal(rec.Body.Bytes(), &got)
		}
		if err != nil || got.Code != "ValidationError" || got.Message != msg || rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s: %+v %v", svc, rec.Code, rec.Body, got, err)
		}
	}
}

// TestDecodePresigned: a presigned URL (the service in its
// X-Amz-Credential) reads as the operation it was signed for.
func TestDecodePresigned(t *testing.T) {
	c := newCapture(t)
	client := s3.NewPresignClient(c.clients(false)["s3"].(*s3.Client))
	ctx := context.Background()
	for _, tc := range []struct {
		op      string
		presign func() (string, string, error)
		want    map[string]any
	}{
		{"GetObject", func() (string, string, error) {
			r, err := client.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: artifactsBucket, Key: strp("runs/1/model.pkl")})
			return r.Method, r.URL, err
		}, map[string]any{"Bucket": *artifactsBucket, "Key": "runs/1/model.pkl"}},
		{"PutObject", func() (string, string, error) {
			r, err := client.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: artifactsBucket, Key: strp("upload/a b")})
			return r.Method, r.URL, err
		}, map[string]any{"Bucket": *artifactsBucket, "Key": "upload/a b"}},
	} {
		t.Run(tc.op, func(t *testing.T) {
			method, u, err := tc.presign()
			if err != nil {
				t.Fatal(err)
			}
			svc, op, tree, err := DecodeRequest(httptest.NewRequest(method, u, nil), nil)
			if err != nil || svc != "s3" || op != tc.op || !reflect.DeepEqual(tree, tc.want) {
				t.Fatalf("%s %s: %s.%s %s %v", method, u, svc, op, show(tree), err)
			}
		})
	}
}
