package provision

// The tracking server: one EC2 instance named mlstack-<stack>, IMDSv2
// required, encrypted root volume, the instance profile, bootstrapped by
// the user-data.

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
	GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
	DescribeInstanceAttribute(context.Context, *ec2.DescribeInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
}

// liveStates are instance states that still bill or may bill again.
var liveStates = []string{"pending", "running", "stopping", "stopped", "shutting-down"}

// findInstances returns the stack's non-terminated instances, oldest first.
func findInstances(ctx context.Context, api instanceAPI, stack string) ([]ec2types.Instance, error) {
	var out []ec2types.Instance
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		stackFilter(stack),
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

// instancesPlan says in words what ensureInstance would do.
func instancesPlan(insts []ec2types.Instance, n names, image *ec2types.Image) []string {
	var p []string
	switch {
	case len(insts) == 0:
		p = append(p, fmt.Sprintf("launch instance %s from %s (%s)", n.Instance, aws.ToString(image.ImageId), aws.ToString(image.Name)))
	case len(insts) > 1:
		p = append(p, fmt.Sprintf("terminate %d duplicate instance(s)", len(insts)-1))
	}
	if len(insts) > 0 && stateOf(&insts[0]) == ec2types.InstanceStateNameStopped {
		p = append(p, "start stopped instance "+aws.ToString(insts[0].InstanceId))
	}
	return p
}

func stateOf(i *ec2types.Instance) ec2types.InstanceStateName {
	if i.State == nil {
		return ""
	}
	return i.State.Name
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
	names        names
	image        *ec2types.Image
	instanceType string
	sgID         string
	nonce        string // part of the client token; see clientToken
	userData     []byte
	tags         map[string]string
	retryFor     time.Duration // how long to retry IAM propagation errors
	log          *progress
}

// runRequest is the RunInstances request for in.
func (in launchInput) runRequest() *ec2.RunInstancesInput {
	n := in.names
	root := aws.String("/dev/sda1")
	if in.image.RootDeviceName != nil {
		root = in.image.RootDeviceName
	}
	return &ec2.RunInstancesInput{
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
}

// launchInstance runs the server. A new instance profile is not visible to
// EC2 for some seconds; RunInstances then fails with InvalidParameterValue
// naming the profile, and only that error is retried.
func launchInstance(ctx context.Context, api instanceAPI, in launchInput) (string, error) {
	req := in.runRequest()
	in.log.Step("launching %s instance %s from %s (%s)", in.instanceType, in.names.Instance, aws.ToString(in.image.ImageId), aws.ToString(in.image.Name))
	var id string
	err := retryOn(ctx, in.retryFor, isProfilePropagation,
		func(error) { in.log.Info("instance profile not visible to EC2 yet; retrying") },
		func() error {
			out, err := api.RunInstances(ctx, req)
			if err != nil {
				return err
			}
			if len(out.Instances) == 0 {
				return fmt.Errorf("RunInstances answered without an instance")
			}
			inst := out.Instances[0]
			if s := stateOf(&inst); s == ec2types.InstanceStateNameTerminated || s == ec2types.InstanceStateNameShuttingDown {
				return errStaleToken
			}
			id = aws.ToString(inst.InstanceId)
			return nil
		})
	if hasCode(err, "IdempotentParameterMismatch") || errors.Is(err, errStaleToken) {
		return "", errStaleToken
	}
	if err != nil {
		return "", fmt.Errorf("launching instance %s: %w", in.names.Instance, err)
	}
	return id, nil
}

// isProfilePropagation matches EC2's answer for an instance profile it cannot
// see yet. The code alone is too broad, so the message narrows it, as
// terraform-provider-aws does for the same error.
func isProfilePropagation(err error) bool {
	return hasCode(err, "InvalidParameterValue") && strings.Contains(err.Error(), "Invalid IAM Instance Profile")
}

// ensureInstanceInput is what ensureInstance needs besides the API.
type ensureInstanceInput struct {
	found  []ec2types.Instance // the stack's live instances, oldest first
	launch launchInput
	// renewNonce saves and returns a new launch nonce, for a relaunch after
	// the last launch's instance is gone.
	renewNonce func() (string, error)
	wait       time.Duration
}

// ensureInstance launches the server when none runs, keeps exactly one (the
// oldest), starts it when stopped, and waits for it to run.
func ensureInstance(ctx context.Context, api instanceAPI, in ensureInstanceInput) (*ec2types.Instance, error) {
	insts, log := in.found, in.launch.log
	if len(insts) == 0 {
		var err error
		if insts, err = launchOne(ctx, api, in); err != nil {
			return nil, err
		}
	}
	keep := insts[0]
	if len(insts) > 1 {
		var extra []string
		for _, i := range insts[1:] {
			extra = append(extra, aws.ToString(i.InstanceId))
		}
		log.Step("terminating duplicate instance(s) %v", extra)
		if err := terminate(ctx, api, extra, 0); err != nil {
			return nil, err
		}
	}
	id := aws.ToString(keep.InstanceId)
	if stateOf(&keep) == ec2types.InstanceStateNameStopped {
		log.Step("starting stopped instance %s", id)
		if _, err := api.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
			return nil, fmt.Errorf("starting instance %s: %w", id, err)
		}
	}
	if stateOf(&keep) == ec2types.InstanceStateNameRunning && trackingHost(&keep) != "" {
		return &keep, nil // no need to poll: re-running up on a complete stack stays cheap
	}
	log.Step("waiting for instance %s to run", id)
	return waitRunning(ctx, api, id, in.wait)
}

// launchOne launches the instance (anew under a new client token when the
// last launch's instance is gone) and returns the stack's instances after
// it. Real EC2 de-duplicates by client token; emulators and concurrent runs
// may not, so the caller keeps the oldest.
func launchOne(ctx context.Context, api instanceAPI, in ensureInstanceInput) ([]ec2types.Instance, error) {
	_, err := launchInstance(ctx, api, in.launch)
	if errors.Is(err, errStaleToken) {
		if in.launch.nonce, err = in.renewNonce(); err != nil {
			return nil, err
		}
		_, err = launchInstance(ctx, api, in.launch)
	}
	if err != nil {
		return nil, err
	}
	stack := in.launch.names.Stack
	insts, err := findInstances(ctx, api, stack)
	if err != nil {
		return nil, err
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("instance of stack %s not found after launch", stack)
	}
	return insts, nil
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

// trackingURI is the server's address, or "" when it has no public name.
func trackingURI(inst *ec2types.Instance) string {
	if h := trackingHost(inst); h != "" {
		return fmt.Sprintf("http://%s:%d", h, mlflowPort)
	}
	return ""
}

// instanceInventory is the status rows of the stack's instances.
func instanceInventory(insts []ec2types.Instance) []resource {
	var out []resource
	for _, i := range insts {
		out = append(out, resource{Kind: "instance", Name: aws.ToString(i.InstanceId), State: string(stateOf(&i))})
	}
	return out
}

// listInstances adds to set the stacks of every live tagged instance of a
// region, with its state and tracking URI.
func listInstances(ctx context.Context, api instanceAPI, region string, set *stackSet) error {
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{anyStackFilter,
		{Name: aws.String("instance-state-name"), Values: liveStates}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing instances in %s: %w", region, err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				set.add(region, ec2TagMap(inst.Tags), func(info *stackInfo) {
					info.InstanceState = string(stateOf(&inst))
					if stateOf(&inst) == ec2types.InstanceStateNameRunning {
						info.TrackingURI = trackingURI(&inst)
					}
				})
			}
		}
	}
	return nil
}

// instanceTagIDs are the ids that carry the instances' tags: the instances
// and their volumes.
func instanceTagIDs(insts []ec2types.Instance) []string {
	var ids []string
	for _, i := range insts {
		ids = append(ids, aws.ToString(i.InstanceId))
		for _, b := range i.BlockDeviceMappings {
			if b.Ebs != nil && b.Ebs.VolumeId != nil {
				ids = append(ids, aws.ToString(b.Ebs.VolumeId))
			}
		}
	}
	return ids
}

// consoleOutput is the instance's console output, decoded.
func consoleOutput(ctx context.Context, api instanceAPI, id string) (string, error) {
	out, err := api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("reading the console output of %s: %w", id, err)
	}
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		return "", fmt.Errorf("console output of %s is not base64: %w", id, err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n"), nil
}

// instanceUserData is the user-data the instance was launched with.
func instanceUserData(ctx context.Context, api instanceAPI, id string) ([]byte, error) {
	out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameUserData})
	if err != nil {
		return nil, fmt.Errorf("reading user-data of %s: %w", id, err)
	}
	if out.UserData == nil {
		return nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.UserData.Value))
	if err != nil {
		return nil, fmt.Errorf("user-data of %s is not base64", id)
	}
	return raw, nil
}
