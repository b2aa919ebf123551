package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/crypto/ssh"

	"github.com/mlstack/mlstack/cloudinit"
)

const (
	stack      = "e2e"
	account    = "123456789012" // moto's default account
	wantAMI    = "ami-0b0e1c1a1c0ffee01"
	allowCIDR  = "198.51.100.7/32"
	wantBucket = "mlstack-e2e-123456789012-eu-west-3-an"
)

// TestUpEnvDown is the whole life of a stack against the emulator: every
// resource has the promised properties, the printed env gives keys that can
// use the bucket and nothing else, re-running up changes nothing, and down
// leaves nothing behind.
func TestUpEnvDown(t *testing.T) {
	e := newEnv(t)

	res := e.ok(append([]string{"up"}, append(e.stackFlags(stack), "--allow-cidr", allowCIDR, "--no-wait")...)...)
	uri := strings.TrimSpace(res.stdout)
	if !strings.HasPrefix(uri, "https://") || !strings.HasSuffix(uri, ":5000") {
		t.Fatalf("up printed %q, want the tracking URI", uri)
	}

	state := readState(t, filepath.Join(e.stateDir, stack))
	t.Run("iam user", func(t *testing.T) { checkUser(t, e, state) })
	t.Run("iam role", func(t *testing.T) { checkRole(t, e) })
	t.Run("bucket", func(t *testing.T) { checkBucket(t, e) })
	t.Run("security group", func(t *testing.T) { checkSecurityGroup(t, e) })
	t.Run("key pair", func(t *testing.T) { checkKeyPair(t, e) })
	t.Run("instance", func(t *testing.T) { checkInstance(t, e, state, uri) })
	t.Run("local files", func(t *testing.T) { checkLocalFiles(t, filepath.Join(e.stateDir, stack)) })

	// The env output, sourced by bash, gives exactly the stack's values.
	envRes := e.ok(append([]string{"env"}, e.stackFlags(stack)...)...)
	got := sourceEnv(t, envRes.stdout)
	want := map[string]string{
		"MLFLOW_TRACKING_URI":      uri,
		"MLFLOW_TRACKING_USERNAME": state.EnvUser,
		"MLFLOW_TRACKING_PASSWORD": state.Users[state.EnvUser],
		"AWS_ACCESS_KEY_ID":        state.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":    state.SecretAccessKey,
		"AWS_DEFAULT_REGION":       testRegion,
		"MLFLOW_S3_ENDPOINT_URL":   e.rec.srv.URL,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("sourced %s differs from the stack's value (lengths %d vs %d)", k, len(got[k]), len(v))
		}
	}

	// The env file signs in as the creator's own user, never as the admin.
	if state.EnvUser == "" || state.EnvUser == state.MLflowUser || state.Users[state.EnvUser] == "" || strings.Contains(envRes.stdout, state.MLflowPassword) {
		t.Errorf("the env file must sign in as the creator's user (%q), not the admin %q", state.EnvUser, state.MLflowUser)
	}
	if u, err := user.Current(); err == nil && state.EnvUser != u.Username {
		t.Errorf("up made user %q for the env file, want the login name %q", state.EnvUser, u.Username)
	}
	t.Run("scoped keys", func(t *testing.T) { checkScopedKeys(t, e, got) })

	// Re-running up on a complete stack makes no mutating call.
	e.rec.reset()
	e.ok(append([]string{"up"}, append(e.stackFlags(stack), "--allow-cidr", allowCIDR, "--no-wait")...)...)
	if len(e.rec.calls()) == 0 {
		t.Fatal("second up made no AWS call at all: the recorder is not in the path")
	}
	if m := e.rec.mutating(); len(m) > 0 {
		t.Fatalf("second up on a complete stack made mutating calls: %+v", m)
	}

	res = e.mlstack(append([]string{"status"}, e.stackFlags(stack)...)...)
	if res.code != 0 || !strings.Contains(strings.Join(strings.Fields(res.stdout), " "), "tracking URI: "+uri) || !strings.Contains(res.stdout, wantBucket) {
		t.Fatalf("status: exit %d, stdout:\n%s", res.code, res.stdout)
	}

	e.ok(append([]string{"down", "--yes"}, e.stackFlags(stack)...)...)
	e.assertNothingLeft()
	if _, err := os.Stat(filepath.Join(e.stateDir, stack)); !os.IsNotExist(err) {
		t.Errorf("local state of the stack still exists after down (err=%v)", err)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags(stack)...)...)
}

type localState struct {
	AccessKeyID     string            `json:"access_key_id"`
	SecretAccessKey string            `json:"secret_access_key"`
	MLflowUser      string            `json:"mlflow_username"`
	MLflowPassword  string            `json:"mlflow_password"`
	Users           map[string]string `json:"mlflow_users"`
	EnvUser         string            `json:"env_user"`
	FlaskSecretKey  string            `json:"flask_secret_key"`
	SSHPublicKey    string            `json:"ssh_public_key"`
	InstanceID      string            `json:"instance_id"`
}

func readState(t *testing.T, dir string) localState {
	t.Helper()
	s := stateFile(t, dir)
	if s.AccessKeyID == "" || s.SecretAccessKey == "" || s.MLflowPassword == "" {
		t.Fatal("local state lacks a secret")
	}
	return s
}

func checkUser(t *testing.T, e *env, st localState) {
	ctx := context.Background()
	u, err := e.iam.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("mlstack-e2e")})
	must(t, err)
	if aws.ToString(u.User.Path) != "/mlstack/" {
		t.Errorf("user path %q", aws.ToString(u.User.Path))
	}
	tags, err := e.iam.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("mlstack-e2e")})
	must(t, err)
	if !hasIAMTag(tags.Tags, "mlstack:stack", stack) || !hasIAMTagKey(tags.Tags, "mlstack:created-at") {
		t.Errorf("user tags %v", tags.Tags)
	}
	keys, err := e.iam.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("mlstack-e2e")})
	must(t, err)
	if len(keys.AccessKeyMetadata) != 1 || aws.ToString(keys.AccessKeyMetadata[0].AccessKeyId) != st.AccessKeyID {
		t.Errorf("want exactly the one saved access key, got %d", len(keys.AccessKeyMetadata))
	}
	pols, err := e.iam.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("mlstack-e2e")})
	must(t, err)
	if len(pols.PolicyNames) != 1 {
		t.Fatalf("want one inline policy, got %v", pols.PolicyNames)
	}
	att, err := e.iam.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String("mlstack-e2e")})
	must(t, err)
	if len(att.AttachedPolicies) != 0 {
		t.Errorf("user has attached managed policies: %v", att.AttachedPolicies)
	}
	p, err := e.iam.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("mlstack-e2e"), PolicyName: aws.String(pols.PolicyNames[0])})
	must(t, err)
	checkBucketOnlyPolicy(t, aws.ToString(p.PolicyDocument))
}

// checkBucketOnlyPolicy: every statement allows only s3: actions on the stack bucket.
func checkBucketOnlyPolicy(t *testing.T, doc string) {
	t.Helper()
	if dec, err := url.QueryUnescape(doc); err == nil {
		doc = dec
	}
	var pol struct {
		Statement []struct {
			Effect   string
			Action   any
			Resource any
		}
	}
	must(t, json.Unmarshal([]byte(doc), &pol))
	if len(pol.Statement) == 0 {
		t.Fatal("empty policy")
	}
	for _, s := range pol.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range strs(s.Action) {
			if !strings.HasPrefix(a, "s3:") || strings.Contains(a, "*") {
				t.Errorf("policy allows %q", a)
			}
		}
		for _, r := range strs(s.Resource) {
			if r != "arn:aws:s3:::"+wantBucket && r != "arn:aws:s3:::"+wantBucket+"/*" && r != "arn:aws:s3:::"+wantBucket+"/artifacts/*" {
				t.Errorf("policy covers resource %q", r)
			}
		}
	}
}

func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, s := range x {
			out = append(out, s.(string))
		}
		return out
	}
	return nil
}

func checkRole(t *testing.T, e *env) {
	ctx := context.Background()
	r, err := e.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("mlstack-e2e-server")})
	must(t, err)
	trust, _ := url.QueryUnescape(aws.ToString(r.Role.AssumeRolePolicyDocument))
	if !strings.Contains(trust, "ec2.amazonaws.com") {
		t.Errorf("trust policy %s", trust)
	}
	tags, err := e.iam.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: aws.String("mlstack-e2e-server")})
	must(t, err)
	if !hasIAMTag(tags.Tags, "mlstack:stack", stack) {
		t.Errorf("role tags %v", tags.Tags)
	}
	checkRoleScope(t, e)
	prof, err := e.iam.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("mlstack-e2e-server")})
	must(t, err)
	if len(prof.InstanceProfile.Roles) != 1 || aws.ToString(prof.InstanceProfile.Roles[0].RoleName) != "mlstack-e2e-server" {
		t.Errorf("instance profile roles %v", prof.InstanceProfile.Roles)
	}
}

func checkBucket(t *testing.T, e *env) {
	ctx := context.Background()
	pab, err := e.s3.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(wantBucket)})
	must(t, err)
	c := pab.PublicAccessBlockConfiguration
	if !aws.ToBool(c.BlockPublicAcls) || !aws.ToBool(c.BlockPublicPolicy) || !aws.ToBool(c.IgnorePublicAcls) || !aws.ToBool(c.RestrictPublicBuckets) {
		t.Errorf("public access not fully blocked: %+v", c)
	}
	enc, err := e.s3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(wantBucket)})
	must(t, err)
	if len(enc.ServerSideEncryptionConfiguration.Rules) == 0 || enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault == nil {
		t.Errorf("no default encryption")
	}
	tags, err := e.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(wantBucket)})
	must(t, err)
	found := false
	for _, tg := range tags.TagSet {
		found = found || (aws.ToString(tg.Key) == "mlstack:stack" && aws.ToString(tg.Value) == stack)
	}
	if !found {
		t.Errorf("bucket tags %v", tags.TagSet)
	}
	loc, err := e.s3.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(wantBucket)})
	must(t, err)
	if string(loc.LocationConstraint) != testRegion {
		t.Errorf("bucket in %q", loc.LocationConstraint)
	}
}

func stackSG(t *testing.T, e *env) ec2types.SecurityGroup {
	t.Helper()
	out, err := e.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("group-name"), Values: []string{"mlstack-e2e"}},
	}})
	must(t, err)
	if len(out.SecurityGroups) != 1 {
		t.Fatalf("want one security group, got %d", len(out.SecurityGroups))
	}
	return out.SecurityGroups[0]
}

func checkSecurityGroup(t *testing.T, e *env) {
	g := stackSG(t, e)
	vpcs, err := e.ec2.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	must(t, err)
	if aws.ToString(g.VpcId) != aws.ToString(vpcs.Vpcs[0].VpcId) {
		t.Errorf("security group in VPC %s, want the default", aws.ToString(g.VpcId))
	}
	if len(g.IpPermissions) != 1 {
		t.Fatalf("want exactly one ingress permission, got %+v", g.IpPermissions)
	}
	p := g.IpPermissions[0]
	if aws.ToString(p.IpProtocol) != "tcp" || aws.ToInt32(p.FromPort) != 5000 || aws.ToInt32(p.ToPort) != 5000 ||
		len(p.IpRanges) != 1 || aws.ToString(p.IpRanges[0].CidrIp) != allowCIDR || len(p.Ipv6Ranges) != 0 {
		t.Errorf("ingress %+v, want tcp 5000 from %s only", p, allowCIDR)
	}
	if !hasEC2Tag(g.Tags, "mlstack:stack", stack) {
		t.Errorf("security group tags %v", g.Tags)
	}
}

func checkKeyPair(t *testing.T, e *env) {
	out, err := e.ec2.DescribeKeyPairs(context.Background(), &ec2.DescribeKeyPairsInput{KeyNames: []string{"mlstack-e2e"}, IncludePublicKey: aws.Bool(true)})
	must(t, err)
	kp := out.KeyPairs[0]
	if kp.KeyType != ec2types.KeyTypeEd25519 {
		t.Errorf("key type %q", kp.KeyType)
	}
	if !hasEC2Tag(kp.Tags, "mlstack:stack", stack) {
		t.Errorf("key pair tags %v", kp.Tags)
	}
	priv, err := os.ReadFile(filepath.Join(e.stateDir, stack, "id_ed25519"))
	must(t, err)
	signer, err := ssh.ParsePrivateKey(priv)
	must(t, err)
	remote, _, _, _, err := ssh.ParseAuthorizedKey([]byte(aws.ToString(kp.PublicKey)))
	must(t, err)
	if string(remote.Marshal()) != string(signer.PublicKey().Marshal()) {
		t.Error("the imported public key is not the local private key's")
	}
}

func checkInstance(t *testing.T, e *env, st localState, uri string) {
	ctx := context.Background()
	out, err := e.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:mlstack:stack"), Values: []string{stack}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
	}})
	must(t, err)
	var insts []ec2types.Instance
	for _, r := range out.Reservations {
		insts = append(insts, r.Instances...)
	}
	if len(insts) != 1 {
		t.Fatalf("want one instance, got %d", len(insts))
	}
	in := insts[0]
	id := aws.ToString(in.InstanceId)
	if in.InstanceType != "t2.micro" {
		t.Errorf("instance type %s", in.InstanceType)
	}
	if aws.ToString(in.ImageId) != wantAMI {
		t.Errorf("image %s, want the newest official Ubuntu 24.04 amd64 %s", aws.ToString(in.ImageId), wantAMI)
	}
	if in.MetadataOptions == nil || in.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired {
		t.Errorf("IMDSv2 not required: %+v", in.MetadataOptions)
	}
	if in.IamInstanceProfile == nil || !strings.HasSuffix(aws.ToString(in.IamInstanceProfile.Arn), "/mlstack-e2e-server") {
		t.Errorf("instance profile %+v", in.IamInstanceProfile)
	}
	if aws.ToString(in.KeyName) != "mlstack-e2e" {
		t.Errorf("key %s", aws.ToString(in.KeyName))
	}
	// The group sits on the primary interface, which also asks for a public
	// address (moto, unlike EC2, does not copy it into SecurityGroups).
	if len(in.NetworkInterfaces) != 1 || len(in.NetworkInterfaces[0].Groups) != 1 ||
		aws.ToString(in.NetworkInterfaces[0].Groups[0].GroupName) != "mlstack-e2e" || in.NetworkInterfaces[0].Association == nil {
		t.Errorf("network interfaces %+v", in.NetworkInterfaces)
	}
	if !hasEC2Tag(in.Tags, "mlstack:stack", stack) || !hasEC2Tag(in.Tags, "Name", "mlstack-e2e") {
		t.Errorf("instance tags %v", in.Tags)
	}
	if want := "https://" + aws.ToString(in.PublicDnsName) + ":5000"; uri != want {
		t.Errorf("tracking URI %s, want %s", uri, want)
	}
	vols, err := e.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{id}},
	}})
	must(t, err)
	if len(vols.Volumes) == 0 {
		t.Fatal("instance has no volume")
	}
	for _, v := range vols.Volumes {
		if !aws.ToBool(v.Encrypted) {
			t.Errorf("volume %s is not encrypted", aws.ToString(v.VolumeId))
		}
	}
	ud, err := e.ec2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameUserData})
	must(t, err)
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(ud.UserData.Value))
	must(t, err)
	if len(raw) > cloudinit.MaxUserDataSize || !bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		t.Errorf("user-data is %d bytes, not gzip within EC2's %d", len(raw), cloudinit.MaxUserDataSize)
	}
	doc, err := cloudinit.Decode(raw)
	must(t, err)
	data := string(doc)
	if !strings.HasPrefix(data, "#cloud-config") || !strings.Contains(data, wantBucket) || !strings.Contains(data, cloudinit.DefaultMLflowVersion) {
		t.Errorf("user-data is not the rendered cloud-config for this stack (%d bytes)", len(raw))
	}
	if strings.Contains(data, st.SecretAccessKey) || strings.Contains(data, st.AccessKeyID) {
		t.Error("user-data carries the stack user's AWS keys; the server must use its role")
	}
}

func checkLocalFiles(t *testing.T, dir string) {
	fi, err := os.Stat(dir)
	must(t, err)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %o", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	must(t, err)
	for _, en := range entries {
		info, err := en.Info()
		must(t, err)
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %o, want 600", en.Name(), info.Mode().Perm())
		}
	}
}

// sourceEnv writes the env output to a file, sources it with bash and
// returns the variables bash sees.
func sourceEnv(t *testing.T, out string) map[string]string {
	t.Helper()
	f := filepath.Join(t.TempDir(), ".envrc")
	must(t, os.WriteFile(f, []byte(out), 0o600))
	names := []string{"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "MLFLOW_S3_ENDPOINT_URL", "MLFLOW_TRACKING_SERVER_CERT_PATH"}
	script := `set -eu; source "$1"; shift; for n in "$@"; do printf '%s\0' "${!n-}"; done`
	cmd := exec.Command("bash", append([]string{"-c", script, "bash", f}, names...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash could not source the env output: %v", err)
	}
	vals := strings.Split(string(b), "\x00")
	got := map[string]string{}
	for i, n := range names {
		if i < len(vals) {
			got[n] = vals[i]
		}
	}
	return got
}

// checkScopedKeys turns on moto's IAM enforcement and proves the stack's
// keys can use their bucket and nothing else, then that mlstack refuses
// to run with them.
func checkScopedKeys(t *testing.T, e *env, vars map[string]string) {
	ctx := context.Background()
	createBucket(t, e, "someone-elses-bucket")
	defer func() {
		motoAPI(t, e.moto, "/moto-api/reset-auth", "inf")
		deleteBucket(t, e, "someone-elses-bucket")
	}()
	motoAPI(t, e.moto, "/moto-api/reset-auth", "0")
	ec2c, s3c, iamc := clients(t, e.moto, vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"])

	_, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(wantBucket), Key: aws.String("artifacts/probe.txt"), Body: strings.NewReader("ok")})
	if err != nil {
		t.Fatalf("scoped key cannot write its bucket: %v", err)
	}
	got, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(wantBucket), Key: aws.String("artifacts/probe.txt")})
	if err != nil {
		t.Fatalf("scoped key cannot read its bucket: %v", err)
	}
	got.Body.Close()
	denied := func(what string, err error) {
		t.Helper()
		var ae smithy.APIError
		if err == nil {
			t.Errorf("scoped key was allowed to %s", what)
			return
		}
		if !asAPIError(err, &ae) || !(strings.Contains(ae.ErrorCode(), "AccessDenied") || ae.ErrorCode() == "UnauthorizedOperation") {
			t.Errorf("%s: want AccessDenied, got %v", what, err)
		}
	}
	// Narrowed to the artifact prefix: the rest of its own bucket is out of
	// reach. (moto checks the resource; it cannot check aws:SecureTransport
	// or s3:prefix, which provision's TestClientKeyLeastPrivilege evaluates.)
	_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(wantBucket), Key: aws.String("backups/mlflow.db"), Body: strings.NewReader("x")})
	denied("write outside artifacts/ in its bucket", err)
	_, err = s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(wantBucket), Key: aws.String("backups/mlflow.db")})
	denied("read outside artifacts/ in its bucket", err)
	_, err = s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(wantBucket), Key: aws.String("artifactsX/x")})
	denied("delete under a look-alike prefix", err)
	_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("someone-elses-bucket"), Key: aws.String("x"), Body: strings.NewReader("x")})
	denied("write another bucket", err)
	_, err = s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("someone-elses-bucket")})
	denied("list another bucket", err)
	_, err = ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	denied("describe EC2 instances", err)
	_, err = iamc.ListUsers(ctx, &iam.ListUsersInput{})
	denied("list IAM users", err)
	_, err = iamc.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("escalate")})
	denied("create an IAM user", err)
	// None of the stack's parameters: neither its secrets nor the keys the
	// server publishes. (moto answers SSM's AccessDenied as XML, which the
	// SDK cannot decode: the 403 is what is left to check.)
	ssmc := e.ssmAs(vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"], "")
	forbidden := func(what string, err error) {
		t.Helper()
		var re *smithyhttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
			t.Errorf("scoped key was allowed to %s: %v", what, err)
		}
	}
	_, err = ssmc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/mlstack/" + stack + "/admin-password"), WithDecryption: aws.Bool(true)})
	forbidden("read the admin password in SSM", err)
	_, err = ssmc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/mlstack/" + stack + "/tls-cert"), Value: aws.String("x"),
		Type: "String", Overwrite: aws.Bool(true)})
	forbidden("publish a server certificate", err)

	// mlstack itself notices the scoped keys before doing anything.
	motoAPI(t, e.moto, "/moto-api/reset-auth", "inf")
	t.Setenv("AWS_ACCESS_KEY_ID", vars["AWS_ACCESS_KEY_ID"])
	t.Setenv("AWS_SECRET_ACCESS_KEY", vars["AWS_SECRET_ACCESS_KEY"])
	e.rec.reset()
	res := e.mlstack(append([]string{"up", "--allow-cidr", allowCIDR, "--no-wait"}, e.stackFlags(stack)...)...)
	if res.code != 2 || !strings.Contains(res.stderr, "scoped keys") {
		t.Errorf("up with the stack's own keys: exit %d, stderr %q; want exit 2 naming the scoped keys", res.code, res.stderr)
	}
	for _, c := range e.rec.calls() {
		if c.Action != "GetCallerIdentity" {
			t.Errorf("up with scoped keys made a call besides GetCallerIdentity: %+v", c)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
}

func deleteBucket(t *testing.T, e *env, name string) {
	ctx := context.Background()
	objs, err := e.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
	must(t, err)
	for _, o := range objs.Contents {
		_, err := e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: o.Key})
		must(t, err)
	}
	_, err = e.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	must(t, err)
}

func hasIAMTag(tags []iamtypes.Tag, k, v string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == k && aws.ToString(t.Value) == v {
			return true
		}
	}
	return false
}

func hasIAMTagKey(tags []iamtypes.Tag, k string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == k {
			return true
		}
	}
	return false
}

func hasEC2Tag(tags []ec2types.Tag, k, v string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == k && aws.ToString(t.Value) == v {
			return true
		}
	}
	return false
}

func asAPIError(err error, target *smithy.APIError) bool { return errors.As(err, target) }

func createBucket(t *testing.T, e *env, name string) {
	t.Helper()
	_, err := e.s3.CreateBucket(context.Background(), &s3.CreateBucketInput{
		Bucket:                    aws.String(name),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(testRegion)},
	})
	must(t, err)
}

// checkRoleScope proves what the server role's deployed policy lets it do
// in SSM: read the stack's parameters, publish its certificate and host key;
// and what not: another stack's parameters, overwriting the stack's
// secrets, listing. moto evaluates SSM permissions against Resource "*"
// only (it denies every resource-scoped grant), so the deployed document is
// read back from the emulator and evaluated here, Allow statements with
// IAM's action and ARN wildcards; the bucket side runs under moto's own
// enforcement (checkScopedKeys, the boot test).
func checkRoleScope(t *testing.T, e *env) {
	ctx := context.Background()
	p, err := e.iam.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("mlstack-e2e-server"), PolicyName: aws.String("mlstack-bucket")})
	must(t, err)
	doc, err := url.QueryUnescape(aws.ToString(p.PolicyDocument))
	must(t, err)
	arn := func(path string) string { return "arn:aws:ssm:eu-west-3:123456789012:parameter" + path }
	for _, c := range []struct {
		action, resource string
		allowed          bool
	}{
		{"ssm:GetParameter", arn("/mlstack/e2e/admin-password"), true},
		{"ssm:GetParameter", arn("/mlstack/e2e/flask-secret-key"), true},
		{"ssm:PutParameter", arn("/mlstack/e2e/tls-cert"), true},
		{"ssm:PutParameter", arn("/mlstack/e2e/ssh-host-key"), true},
		{"ssm:PutParameter", arn("/mlstack/e2e/admin-password"), false},
		{"ssm:PutParameter", arn("/mlstack/e2e/flask-secret-key"), false},
		{"ssm:GetParameter", arn("/mlstack/other/admin-password"), false},
		{"ssm:GetParametersByPath", arn("/mlstack"), false},
		{"ssm:DeleteParameter", arn("/mlstack/e2e/tls-cert"), false},
		{"s3:PutObject", "arn:aws:s3:::" + wantBucket + "/artifacts/x", true},
		{"s3:PutObject", "arn:aws:s3:::someone-elses-bucket/x", false},
		{"iam:PassRole", "*", false},
	} {
		if got := policyAllows(t, doc, c.action, c.resource); got != c.allowed {
			t.Errorf("the server role's policy: %s on %s allowed=%v, want %v", c.action, c.resource, got, c.allowed)
		}
	}
}

// policyAllows evaluates the Allow statements of an identity policy (no
// Deny, no conditions: mlstack writes neither) for one action and resource.
func policyAllows(t *testing.T, doc, action, resource string) bool {
	t.Helper()
	var pol struct {
		Statement []struct {
			Effect               string
			Action, Resource     any
			Condition, NotAction any
		}
	}
	must(t, json.Unmarshal([]byte(doc), &pol))
	match := func(pattern, s string) bool {
		re := "^" + strings.ReplaceAll(strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*"), `\?`, ".") + "$"
		return regexp.MustCompile("(?i)" + re).MatchString(s) // actions match case-insensitively; our ARNs are lowercase
	}
	for _, st := range pol.Statement {
		if st.Condition != nil || st.NotAction != nil {
			t.Fatalf("policy statement with a condition or NotAction: %s", doc)
		}
		if st.Effect != "Allow" {
			continue
		}
		if slices.ContainsFunc(strs(st.Action), func(a string) bool { return match(a, action) }) &&
			slices.ContainsFunc(strs(st.Resource), func(r string) bool { return match(r, resource) }) {
			return true
		}
	}
	return false
}
