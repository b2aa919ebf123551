package provision

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// instanceAPI is the part of EC2 the tracking server instance needs.
type instanceAPI interface {
	ec2.DescribeInstancesAPIClient
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	StartInstances(context.Context, *ec2.StartInstancesInput, ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error)
	TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
}

// liveStates are instance states that still bill or may bill again.
var liveStates = []string{"pending", "running", "stopping", "stopped", "shutting-down"}

// findInstances returns the stack's non-terminated instances, oldest first.
func findInstances(ctx context.Context, api instanceAPI, stack string) ([]ec2types.Instance, error) {
	var out []ec2types.Instance
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + TagStack), Values: []string{stack}},
		{Name: aws.String("instance-state-name"), Values: liveStates},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing instances of stack %s: %w", stack, err)
		}
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		ti, tj := aws.ToTime(out[i].LaunchTime), aws.ToTime(out[j].LaunchTime)
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return aws.ToString(out[i].InstanceId) < aws.ToString(out[j].InstanceId)
	})
	return out, nil
}

// clientToken makes RunInstances idempotent for one launch of a stack: a
// retried or resumed launch reuses it; a stack rebuilt after `down` gets a
// new security group, and a relaunch after the instance died gets a new
// nonce (EC2 remembers a token for at least a day after termination).
func clientToken(stack, sgID, nonce string) string {
	sum := sha256.Sum256([]byte(stack + "/" + sgID + "/" + nonce))
	return "mlstack-" + hex.EncodeToString(sum[:])[:48]
}

// errStaleToken: EC2 answered the client token with an instance launched
// earlier that is gone, or with IdempotentParameterMismatch. The caller
// picks a new nonce and launches again.
var errStaleToken = errors.New("client token belongs to an earlier launch")

// launchInput is everything RunInstances needs.
type launchInput struct {
	names        Names
	image        *ec2types.Image
	instanceType string
	sgID         string
	nonce        string // part of the client token; see clientToken
	userData     []byte
	tags         map[string]string
	retryFor     time.Duration // how long to retry IAM propagation errors
	log          *progress
}

// launchInstance runs the server. A new instance profile is not visible to
// EC2 for some seconds; RunInstances then fails with InvalidParameterValue
// naming the profile, and only that error is retried.
func launchInstance(ctx context.Context, api instanceAPI, in launchInput) (string, error) {
	n := in.names
	root := aws.String("/dev/sda1")
	if in.image.RootDeviceName != nil {
		root = in.image.RootDeviceName
	}
	req := &ec2.RunInstancesInput{
		ImageId:            in.image.ImageId,
		InstanceType:       ec2types.InstanceType(in.instanceType),
		MinCount:           aws.Int32(1),
		MaxCount:           aws.Int32(1),
		ClientToken:        aws.String(clientToken(n.Stack, in.sgID, in.nonce)),
		KeyName:            aws.String(n.KeyPair),
		SecurityGroupIds:   []string{in.sgID},
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(n.Profile)},
		UserData:           aws.String(base64.StdEncoding.EncodeToString(in.userData)),
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{
			HttpTokens:              ec2types.HttpTokensStateRequired,
			HttpEndpoint:            ec2types.InstanceMetadataEndpointStateEnabled,
			HttpPutResponseHopLimit: aws.Int32(1),
		},
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
			DeviceName: root,
			Ebs: &ec2types.EbsBlockDevice{
				Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(true),
				VolumeSize: aws.Int32(16), VolumeType: ec2types.VolumeTypeGp3,
			},
		}},
		TagSpecifications: []ec2types.TagSpecification{
			ec2TagSpec(ec2types.ResourceTypeInstance, in.tags, n.Instance),
			ec2TagSpec(ec2types.ResourceTypeVolume, in.tags, n.Instance),
		},
	}
	in.log.step("launching %s instance %s from %s (%s)", in.instanceType, n.Instance, aws.ToString(in.image.ImageId), aws.ToString(in.image.Name))
	var id string
	err := retryOn(ctx, in.retryFor, isProfilePropagation,
		func(error) { in.log.info("instance profile not visible to EC2 yet; retrying") },
		func() error {
			out, err := api.RunInstances(ctx, req)
			if err != nil {
				return err
			}
			if len(out.Instances) == 0 {
				return fmt.Errorf("RunInstances answered without an instance")
			}
			inst := out.Instances[0]
			if inst.State != nil && (inst.State.Name == ec2types.InstanceStateNameTerminated || inst.State.Name == ec2types.InstanceStateNameShuttingDown) {
				return errStaleToken
			}
			id = aws.ToString(inst.InstanceId)
			return nil
		})
	if hasCode(err, "IdempotentParameterMismatch") || errors.Is(err, errStaleToken) {
		return "", errStaleToken
	}
	if err != nil {
		return "", fmt.Errorf("launching instance %s: %w", n.Instance, err)
	}
	return id, nil
}

// isProfilePropagation matches EC2's answer for an instance profile it cannot
// see yet. The code alone is too broad, so the message narrows it, as
// terraform-provider-aws does for the same error.
func isProfilePropagation(err error) bool {
	return hasCode(err, "InvalidParameterValue") && strings.Contains(err.Error(), "Invalid IAM Instance Profile")
}

// terminate ends instances and, when wait is set, waits until they are gone.
func terminate(ctx context.Context, api instanceAPI, ids []string, wait time.Duration) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	if err != nil && !hasCode(err, "InvalidInstanceID.NotFound") {
		return fmt.Errorf("terminating %v: %w", ids, err)
	}
	if wait <= 0 {
		return nil
	}
	w := ec2.NewInstanceTerminatedWaiter(api, func(o *ec2.InstanceTerminatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 2*time.Second, 15*time.Second
	})
	if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids}, wait); err != nil {
		return fmt.Errorf("waiting for %v to terminate: %w", ids, err)
	}
	return nil
}

// waitRunning waits for the instance to run and returns it.
func waitRunning(ctx context.Context, api instanceAPI, id string, wait time.Duration) (*ec2types.Instance, error) {
	w := ec2.NewInstanceRunningWaiter(api, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 2*time.Second, 10*time.Second
	})
	out, err := w.WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, wait)
	if err != nil {
		return nil, fmt.Errorf("waiting for instance %s to run: %w", id, err)
	}
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if aws.ToString(r.Instances[i].InstanceId) == id {
				return &r.Instances[i], nil
			}
		}
	}
	return nil, fmt.Errorf("instance %s vanished while starting", id)
}

// trackingHost is the name clients use: the public DNS name, else the public IP.
func trackingHost(inst *ec2types.Instance) string {
	if h := aws.ToString(inst.PublicDnsName); h != "" {
		return h
	}
	return aws.ToString(inst.PublicIpAddress)
}
