package cloud_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

func TestClientToken(t *testing.T) {
	t.Parallel()
	a := cloud.ClientToken("demo", "sg-0123456789abcdef0", "")
	tests := []struct {
		name      string
		stack, sg string
		same      bool
	}{
		{"same inputs", "demo", "sg-0123456789abcdef0", true},
		{"other group (stack rebuilt)", "demo", "sg-0fedcba9876543210", false},
		{"other stack", "demo2", "sg-0123456789abcdef0", false},
		// The separator keeps ("ab","c") and ("a","bc") apart.
		{"shifted boundary", "demos", "g-0123456789abcdef0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cloud.ClientToken(tt.stack, tt.sg, "")
			if (got == a) != tt.same {
				t.Errorf("clientToken(%q, %q) = %q; equal to %q: %v, want %v", tt.stack, tt.sg, got, a, got == a, tt.same)
			}
			// EC2 accepts up to 64 ASCII characters.
			if len(got) > 64 || len(got) == 0 {
				t.Errorf("token %q has length %d", got, len(got))
			}
		})
	}
	if long := cloud.ClientToken(strings.Repeat("a", cloud.MaxStackLen), "sg-0123456789abcdef0", ""); len(long) > 64 {
		t.Errorf("token for the longest stack is %d chars", len(long))
	}
}

func profileErr() error {
	return &smithy.GenericAPIError{Code: "InvalidParameterValue",
		Message: "Value (mlstack-demo-server) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"}
}

func TestIsProfilePropagation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"propagation", profileErr(), true},
		{"wrapped propagation", fmt.Errorf("run: %w", profileErr()), true},
		{"same code, other message", &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "Invalid value 't2.nano2' for InstanceType"}, false},
		{"other code, same message", &smithy.GenericAPIError{Code: "InvalidParameterCombination", Message: "Invalid IAM Instance Profile name"}, false},
		{"plain error with the message", errors.New("InvalidParameterValue: Invalid IAM Instance Profile name"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cloud.IsProfilePropagation(tt.err); got != tt.want {
				t.Errorf("isProfilePropagation(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// fakeInstances is a narrow instanceAPI: RunInstances answers from runErrs in
// turn, then succeeds; every request is kept for inspection.
type fakeInstances struct {
	mu      sync.Mutex
	runErrs []error
	runs    []*ec2.RunInstancesInput
	state   ec2types.InstanceStateName // state of the answered instance ("" = none given)
}

func (f *fakeInstances) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, in)
	if len(f.runErrs) > 0 {
		err := f.runErrs[0]
		f.runErrs = f.runErrs[1:]
		return nil, err
	}
	inst := ec2types.Instance{InstanceId: aws.String("i-0123456789abcdef0")}
	if f.state != "" {
		inst.State = &ec2types.InstanceState{Name: f.state}
	}
	return &ec2.RunInstancesOutput{Instances: []ec2types.Instance{inst}}, nil
}

func (f *fakeInstances) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return &ec2.DescribeInstancesOutput{}, nil
}

func (f *fakeInstances) StartInstances(context.Context, *ec2.StartInstancesInput, ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error) {
	return nil, errors.New("unexpected StartInstances")
}

func (f *fakeInstances) TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	return nil, errors.New("unexpected TerminateInstances")
}

func (f *fakeInstances) GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error) {
	return nil, errors.New("unexpected GetConsoleOutput")
}

func (f *fakeInstances) DescribeInstanceAttribute(context.Context, *ec2.DescribeInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error) {
	return nil, errors.New("unexpected DescribeInstanceAttribute")
}

func testLaunchInput(retryFor time.Duration) cloud.LaunchInput {
	return cloud.LaunchInput{
		Names: cloud.NamesFor("demo", "123456789012", "eu-west-3"),
		Image: &ec2types.Image{
			ImageId:        aws.String("ami-0abc"),
			Name:           aws.String("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610"),
			RootDeviceName: aws.String("/dev/xvda"),
		},
		Place:    cloud.Placement{InstanceType: "t2.micro", SubnetID: "subnet-0a", Zone: "eu-west-3a"},
		SGID:     "sg-1",
		UserData: []byte("#cloud-config\npackages: [python3-venv]\n"),
		Tags:     cloud.StackTags("demo", "eu-west-3", cloudfake.FakeOwner, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), 0),
		RetryFor: retryFor,
		Log:      newProgress(io.Discard),
	}
}

// A fresh instance profile is invisible to EC2 for a while: that one error is retried.
func TestLaunchInstanceRetriesProfilePropagation(t *testing.T) {
	t.Parallel() // sleeps 2 × 3 s
	f := &fakeInstances{runErrs: []error{profileErr(), fmt.Errorf("sdk: %w", profileErr())}}
	id, err := cloud.LaunchInstance(context.Background(), f, testLaunchInput(time.Minute))
	if err != nil {
		t.Fatalf("launchInstance: %v", err)
	}
	if id != "i-0123456789abcdef0" {
		t.Errorf("id = %q", id)
	}
	if len(f.runs) != 3 {
		t.Fatalf("RunInstances called %d times, want 3", len(f.runs))
	}
	// Every retry must carry the same client token, or EC2 may launch twice.
	for i, r := range f.runs {
		if aws.ToString(r.ClientToken) != aws.ToString(f.runs[0].ClientToken) {
			t.Errorf("call %d used token %q", i, aws.ToString(r.ClientToken))
		}
	}
}

func TestLaunchInstanceNoRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		retryFor time.Duration
	}{
		{"other error", &smithy.GenericAPIError{Code: "InsufficientInstanceCapacity", Message: "no capacity"}, time.Minute},
		{"same code, other message", &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "bad AMI"}, time.Minute},
		{"propagation after the deadline", profileErr(), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeInstances{runErrs: []error{tt.err}}
			start := time.Now()
			_, err := cloud.LaunchInstance(context.Background(), f, testLaunchInput(tt.retryFor))
			if err == nil {
				t.Fatal("launchInstance succeeded, want the error")
			}
			if cloud.ErrorCode(err) != cloud.ErrorCode(tt.err) {
				t.Errorf("error %v does not wrap the AWS error", err)
			}
			if len(f.runs) != 1 {
				t.Errorf("RunInstances called %d times, want 1", len(f.runs))
			}
			if time.Since(start) > time.Second {
				t.Errorf("took %s: slept before giving up", time.Since(start))
			}
		})
	}
}

func TestLaunchInstanceCancelled(t *testing.T) {
	t.Parallel()
	f := &fakeInstances{runErrs: []error{profileErr(), profileErr()}}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := cloud.LaunchInstance(ctx, f, testLaunchInput(time.Minute)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %s after cancellation", time.Since(start))
	}
}

func tagsOf(spec ec2types.TagSpecification) map[string]string { return cloud.EC2TagMap(spec.Tags) }

// The launch request carries the security properties the design promises.
func TestLaunchInstanceRequest(t *testing.T) {
	t.Parallel()
	in := testLaunchInput(time.Minute)
	f := &fakeInstances{}
	if _, err := cloud.LaunchInstance(context.Background(), f, in); err != nil {
		t.Fatal(err)
	}
	if len(f.runs) != 1 {
		t.Fatalf("RunInstances called %d times", len(f.runs))
	}
	r := f.runs[0]

	checks := []struct {
		what      string
		got, want any
	}{
		{"ImageId", aws.ToString(r.ImageId), "ami-0abc"},
		{"InstanceType", r.InstanceType, ec2types.InstanceTypeT2Micro},
		{"MinCount", aws.ToInt32(r.MinCount), int32(1)},
		{"MaxCount", aws.ToInt32(r.MaxCount), int32(1)},
		{"ClientToken", aws.ToString(r.ClientToken), cloud.ClientToken("demo", "sg-1", "/t2.micro")},
		{"KeyName", aws.ToString(r.KeyName), "mlstack-demo"},
		{"SecurityGroupIds (on the interface instead)", len(r.SecurityGroupIds), 0},
		{"NetworkInterfaces", len(r.NetworkInterfaces), 1},
		{"CreditSpecification (t2.micro: the type's default)", r.CreditSpecification == nil, true},
		{"IamInstanceProfile", r.IamInstanceProfile != nil && aws.ToString(r.IamInstanceProfile.Name) == "mlstack-demo-server", true},
		{"HttpTokens (IMDSv2)", r.MetadataOptions != nil && r.MetadataOptions.HttpTokens == ec2types.HttpTokensStateRequired, true},
		{"BlockDeviceMappings", len(r.BlockDeviceMappings), 1},
		{"TagSpecifications", len(r.TagSpecifications), 2},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}

	if len(r.NetworkInterfaces) == 1 {
		ni := r.NetworkInterfaces[0]
		// A public address is asked for, whatever the subnet maps by default.
		if aws.ToInt32(ni.DeviceIndex) != 0 || aws.ToString(ni.SubnetId) != "subnet-0a" || fmt.Sprint(ni.Groups) != "[sg-1]" ||
			!aws.ToBool(ni.AssociatePublicIpAddress) || !aws.ToBool(ni.DeleteOnTermination) {
			t.Errorf("network interface %+v", ni)
		}
	}
	in.Place = cloud.Placement{InstanceType: "t3.micro", SubnetID: "subnet-0b", StandardCredits: true}
	if _, err := cloud.LaunchInstance(context.Background(), f, in); err != nil {
		t.Fatal(err)
	}
	if r := f.runs[1]; r.CreditSpecification == nil || aws.ToString(r.CreditSpecification.CpuCredits) != "standard" ||
		r.InstanceType != "t3.micro" || aws.ToString(r.ClientToken) == aws.ToString(f.runs[0].ClientToken) {
		t.Errorf("fallback launch: type %s, credits %+v, token reused %v", r.InstanceType, r.CreditSpecification, aws.ToString(r.ClientToken) == aws.ToString(f.runs[0].ClientToken))
	}

	ud, err := base64.StdEncoding.DecodeString(aws.ToString(r.UserData))
	if err != nil || string(ud) != string(in.UserData) {
		t.Errorf("UserData does not base64-decode to the user-data: %q, %v", ud, err)
	}

	if len(r.BlockDeviceMappings) == 1 {
		bd := r.BlockDeviceMappings[0]
		// The root volume is the image's root device, else encryption applies to a second disk.
		if aws.ToString(bd.DeviceName) != "/dev/xvda" {
			t.Errorf("block device %q, want the image's root device /dev/xvda", aws.ToString(bd.DeviceName))
		}
		if bd.Ebs == nil || !aws.ToBool(bd.Ebs.Encrypted) || !aws.ToBool(bd.Ebs.DeleteOnTermination) {
			t.Errorf("root volume not encrypted and deleted on termination: %+v", bd.Ebs)
		}
	}

	kinds := map[ec2types.ResourceType]bool{}
	for _, s := range r.TagSpecifications {
		kinds[s.ResourceType] = true
		tags := tagsOf(s)
		if tags[cloud.TagStack] != "demo" || tags["Name"] != "mlstack-demo" || tags[cloud.TagCreatedAt] != "2025-01-02T03:04:05Z" {
			t.Errorf("%s tags = %v", s.ResourceType, tags)
		}
	}
	if !kinds[ec2types.ResourceTypeInstance] || !kinds[ec2types.ResourceTypeVolume] {
		t.Errorf("tagged resource types %v, want instance and volume", kinds)
	}
}

// Without RootDeviceName the Ubuntu default /dev/sda1 is used.
func TestLaunchInstanceDefaultRootDevice(t *testing.T) {
	t.Parallel()
	in := testLaunchInput(time.Minute)
	in.Image.RootDeviceName = nil
	f := &fakeInstances{}
	if _, err := cloud.LaunchInstance(context.Background(), f, in); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(f.runs[0].BlockDeviceMappings[0].DeviceName); got != "/dev/sda1" {
		t.Errorf("root device %q, want /dev/sda1", got)
	}
}

func TestTrackingHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		inst ec2types.Instance
		want string
	}{
		{"dns preferred", ec2types.Instance{PublicDnsName: aws.String("ec2-198-51-100-7.eu-west-3.compute.amazonaws.com"), PublicIpAddress: aws.String("198.51.100.7")},
			"ec2-198-51-100-7.eu-west-3.compute.amazonaws.com"},
		{"empty dns falls back to IP", ec2types.Instance{PublicDnsName: aws.String(""), PublicIpAddress: aws.String("198.51.100.7")}, "198.51.100.7"},
		{"nil dns falls back to IP", ec2types.Instance{PublicIpAddress: aws.String("198.51.100.7")}, "198.51.100.7"},
		{"neither", ec2types.Instance{PrivateIpAddress: aws.String("172.31.0.5")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cloud.TrackingHost(&tt.inst); got != tt.want {
				t.Errorf("trackingHost = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLaunchStaleClientToken: EC2 answers a reused token with the earlier,
// terminated instance or IdempotentParameterMismatch; launchInstance reports
// errStaleToken so the caller launches again under a new nonce.
func TestLaunchStaleClientToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		api   *fakeInstances
		stale bool
	}{
		{"terminated instance", &fakeInstances{state: ec2types.InstanceStateNameTerminated}, true},
		{"shutting down", &fakeInstances{state: ec2types.InstanceStateNameShuttingDown}, true},
		{"parameter mismatch", &fakeInstances{runErrs: []error{&smithy.GenericAPIError{Code: "IdempotentParameterMismatch"}}}, true},
		{"running instance", &fakeInstances{state: ec2types.InstanceStateNamePending}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := cloud.LaunchInstance(context.Background(), tt.api, testLaunchInput(0))
			if got := errors.Is(err, cloud.ErrStaleToken); got != tt.stale {
				t.Fatalf("launchInstance = %q, %v; stale %v, want %v", id, err, got, tt.stale)
			}
			if !tt.stale && id != "i-0123456789abcdef0" {
				t.Errorf("id %q", id)
			}
		})
	}
	if cloud.ClientToken("demo", "sg-1", "") == cloud.ClientToken("demo", "sg-1", "n2") {
		t.Error("a new nonce must give a new client token")
	}
}
