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

// liveStates are the states of an instance that is not gone yet: down
// waits for all of them, status and ls show them.
var liveStates = []string{"pending", "running", "stopping", "stopped", "shutting-down"}

// usableStates leave out shutting-down: for up, such an instance is gone.
var usableStates = []string{"pending", "running", "stopping", "stopped"}

// findInstances returns the stack's instances in the given states, oldest first.
func findInstances(ctx context.Context, api instanceAPI, stack string, states []string) ([]ec2types.Instance, error) {
	var out []ec2types.Instance
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		stackFilter(stack),
		{Name: aws.String("instance-state-name"), Values: states},
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
func instancesPlan(insts []ec2types.Instance, n names, image *ec2types.Image, place placement) []planStep {
	var p []planStep
	switch {
	case len(insts) == 0:
		line := fmt.Sprintf("launch instance %s from %s (%s) as %s in %s", n.Instance, aws.ToString(image.ImageId), aws.ToString(image.Name), place.instanceType, place.zone)
		if place.why != "" {
			line += " (" + place.why + ")"
		}
		p = append(p, step(kindInstance, n.Instance, "%s", line))
	case len(insts) > 1:
		p = append(p, step(kindInstance, n.Instance, "terminate %s", plural(len(insts)-1, "duplicate instance")))
	}
	if len(insts) > 0 && stateOf(&insts[0]) == ec2types.InstanceStateNameStopped {
		id := aws.ToString(insts[0].InstanceId)
		p = append(p, step(kindInstance, id, "start stopped instance %s", id))
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
	names    names
	image    *ec2types.Image
	place    placement
	sgID     string
	nonce    string // part of the client token; see clientToken
	userData []byte
	tags     map[string]string
	retryFor time.Duration // how long to retry eventual-consistency errors
	log      Log
}

// runRequest is the RunInstances request for in.
func (in launchInput) runRequest() *ec2.RunInstancesInput {
	n := in.names
	root := aws.String("/dev/sda1")
	if in.image.RootDeviceName != nil {
		root = in.image.RootDeviceName
	}
	req := &ec2.RunInstancesInput{
		ImageId:      in.image.ImageId,
		InstanceType: ec2types.InstanceType(in.place.instanceType),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		// The type is part of the token: a fallback launch is another request.
		ClientToken: aws.String(clientToken(n.Stack, in.sgID, in.nonce+"/"+in.place.instanceType)),
		KeyName:     aws.String(n.KeyPair),
		// A public address is asked for, not left to the subnet's
		// MapPublicIpOnLaunch: without one the server is unreachable.
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(in.place.subnetID), Groups: []string{in.sgID},
			AssociatePublicIpAddress: aws.Bool(true), DeleteOnTermination: aws.Bool(true),
		}},
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
	if in.place.standardCredits {
		req.CreditSpecification = &ec2types.CreditSpecificationRequest{CpuCredits: aws.String("standard")}
	}
	return req
}

// launchInstance runs the server and returns its id. A new instance
// profile, key pair or security group is not visible to EC2 for some
// seconds; exactly those answers are retried.
func launchInstance(ctx context.Context, api instanceAPI, in launchInput) (string, error) {
	req := in.runRequest()
	in.log.Step("launching %s instance %s from %s (%s)", in.place.instanceType, in.names.Instance, aws.ToString(in.image.ImageId), aws.ToString(in.image.Name))
	var id string
	err := retryOn(ctx, in.retryFor, isLaunchPropagation,
		func(err error) { in.log.Info("%s is not visible to EC2 yet; retrying", propagating(err)) },
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

// isProfilePropagation matches EC2's answers for an instance profile it
// cannot see yet, or whose role it cannot see yet. The code alone is too
// broad, so the message narrows it, as terraform-provider-aws does.
func isProfilePropagation(err error) bool {
	if !hasCode(err, "InvalidParameterValue") {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "Invalid IAM Instance Profile") || strings.Contains(msg, "has no associated IAM Roles")
}

// isLaunchPropagation adds a key pair or security group created a moment ago.
func isLaunchPropagation(err error) bool {
	return isProfilePropagation(err) || hasCode(err, "InvalidKeyPair.NotFound", "InvalidGroup.NotFound")
}

func propagating(err error) string {
	switch {
	case hasCode(err, "InvalidKeyPair.NotFound"):
		return "the new key pair"
	case hasCode(err, "InvalidGroup.NotFound"):
		return "the new security group"
	}
	return "the new instance profile"
}

// ensureInstanceInput is what ensureInstance needs besides the API.
type ensureInstanceInput struct {
	found  []ec2types.Instance // the stack's usable instances, oldest first
	places []placement         // where to launch, best first (see placements)
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
	if len(insts) > 1 {
		var extra []string
		for _, i := range insts[1:] {
			extra = append(extra, aws.ToString(i.InstanceId))
		}
		log.Step("terminating duplicate %s %s", pluralWord(len(extra), "instance"), strings.Join(extra, ", "))
		if err := terminate(ctx, api, extra, 0, log); err != nil {
			return nil, err
		}
	}
	var id string
	if len(insts) == 0 {
		var err error
		if id, err = launchOne(ctx, api, in); err != nil {
			return nil, err
		}
	} else {
		keep := insts[0]
		id = aws.ToString(keep.InstanceId)
		if stateOf(&keep) == ec2types.InstanceStateNameRunning && trackingHost(&keep) != "" {
			return &keep, nil // no need to poll: re-running up on a complete stack stays cheap
		}
		if stateOf(&keep) == ec2types.InstanceStateNameStopped {
			log.Step("starting stopped instance %s", id)
			if _, err := api.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
				return nil, fmt.Errorf("starting instance %s: %w", id, err)
			}
		}
	}
	return waitRunning(ctx, api, id, in.wait, log)
}

// launchOne launches the instance where it can run, and returns the id
// RunInstances gave it (a new instance can be missing from listings by tag
// for a while). A stale client token gets a new nonce; a free plan that
// refuses the default type gets the fallback.
func launchOne(ctx context.Context, api instanceAPI, in ensureInstanceInput) (string, error) {
	var err error
	for i, p := range in.places {
		in.launch.place = p
		if p.why != "" {
			in.launch.log.Step("%s: launching %s with standard CPU credits instead (bursts never bill beyond the hourly price)", p.why, p.instanceType)
		}
		var id string
		id, err = launchInstance(ctx, api, in.launch)
		if errors.Is(err, errStaleToken) {
			if in.launch.nonce, err = in.renewNonce(); err != nil {
				return "", err
			}
			id, err = launchInstance(ctx, api, in.launch)
		}
		if isFreePlanRefusal(err) && i+1 < len(in.places) {
			continue
		}
		if isFreePlanRefusal(err) {
			return "", fmt.Errorf("%w\nthis account's free plan allows only free-tier eligible instance types: "+
				"pass --instance-type %s, or leave --instance-type out and mlstack picks one", err, fallbackInstanceType)
		}
		return id, err
	}
	return "", err
}

// terminate ends instances and, when wait is set, waits until they are gone.
func terminate(ctx context.Context, api instanceAPI, ids []string, wait time.Duration, log Log) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	if err != nil && !hasCode(err, "InvalidInstanceID.NotFound") && !terminating(ctx, api, ids) {
		return fmt.Errorf("terminating %s %s: %w", pluralWord(len(ids), "instance"), strings.Join(ids, ", "), err)
	}
	if wait <= 0 {
		return nil
	}
	return waitGone(ctx, api, ids, wait, log)
}

// terminating re-reads instances after an ambiguous TerminateInstances
// failure (a retry of a call whose answer was lost, which the emulator
// refuses): when all are shutting down or gone, the termination happened.
func terminating(ctx context.Context, api instanceAPI, ids []string) bool {
	insts, err := describeIDs(ctx, api, ids)
	if err != nil {
		return false
	}
	for _, i := range insts {
		if s := stateOf(&i); s != ec2types.InstanceStateNameShuttingDown && s != ec2types.InstanceStateNameTerminated {
			return false
		}
	}
	return true
}

// describeIDs lists the instances among ids. A filter, not InstanceIds: an
// id EC2 does not know yet, or no longer, is simply absent, not an error.
func describeIDs(ctx context.Context, api instanceAPI, ids []string) ([]ec2types.Instance, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("instance-id"), Values: ids},
	}})
	if err != nil {
		return nil, err
	}
	var insts []ec2types.Instance
	for _, r := range out.Reservations {
		insts = append(insts, r.Instances...)
	}
	return insts, nil
}

// waitGone polls until every instance is terminated or no longer listed.
// The SDK's waiter would fail on pending or stopping (terminating them
// goes on all the same) and on an id that is gone already.
func waitGone(ctx context.Context, api instanceAPI, ids []string, wait time.Duration, log Log) error {
	what := pluralWord(len(ids), "instance") + " " + strings.Join(ids, ", ")
	live := log.Wait("waiting for %s to terminate", what)
	defer live.Stop()
	err := poll(ctx, wait, func() (bool, string, error) {
		insts, err := describeIDs(ctx, api, ids)
		if err != nil {
			return false, "", err
		}
		for _, i := range insts {
			if stateOf(&i) != ec2types.InstanceStateNameTerminated {
				return false, aws.ToString(i.InstanceId) + " " + string(stateOf(&i)), nil
			}
		}
		return true, "", nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s to terminate: %w", what, err)
	}
	live.Done("%s terminated", what)
	return nil
}

// waitRunning polls the instance until it runs and returns it. A new id
// can be unlisted for a while, and a started one pending or still stopped:
// all mean wait; shutting down or terminated is an error.
func waitRunning(ctx context.Context, api instanceAPI, id string, wait time.Duration, log Log) (*ec2types.Instance, error) {
	live := log.Wait("waiting for instance %s to run", id)
	defer live.Stop()
	var running *ec2types.Instance
	err := poll(ctx, wait, func() (bool, string, error) {
		insts, err := describeIDs(ctx, api, []string{id})
		if err != nil {
			return false, "", err
		}
		if len(insts) == 0 {
			return false, "not listed yet", nil
		}
		switch s := stateOf(&insts[0]); s {
		case ec2types.InstanceStateNameRunning:
			running = &insts[0]
			return true, "", nil
		case ec2types.InstanceStateNameShuttingDown, ec2types.InstanceStateNameTerminated:
			return false, "", fmt.Errorf("it is %s instead of running", s)
		default:
			return false, string(s), nil
		}
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for instance %s to run: %w", id, err)
	}
	live.Done("instance %s is running", id)
	return running, nil
}

// poll calls check until it is done, fails, or wait has passed; last says
// what it saw, for the timeout error. Its pace is the context's (waitsOf).
func poll(ctx context.Context, wait time.Duration, check func() (done bool, last string, err error)) error {
	w := waitsOf(ctx)
	deadline := time.Now().Add(wait)
	delay := w.pollFirst
	for {
		done, last, err := check()
		if done || err != nil {
			return err
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("gave up after %s (last seen: %s)", wait, last)
		}
		if err := sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(delay*2, w.pollMax)
	}
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
		return fmt.Sprintf("https://%s:%d", h, mlflowPort)
	}
	return ""
}

// instanceInventory is the status rows of the stack's instances.
func instanceInventory(insts []ec2types.Instance) []resource {
	var out []resource
	for _, i := range insts {
		out = append(out, instanceRow(&i))
	}
	return out
}

func instanceRow(i *ec2types.Instance) resource {
	return resource{Kind: kindInstance, ID: aws.ToString(i.InstanceId), Name: ec2TagMap(i.Tags)["Name"], State: string(stateOf(i))}
}

// setInstance records the stack's server and, when it runs, its address.
func (info *stackInfo) setInstance(i *ec2types.Instance) {
	info.Instance = &instanceInfo{ID: aws.ToString(i.InstanceId), Type: string(i.InstanceType), State: string(stateOf(i))}
	info.TrackingURI = ""
	if stateOf(i) == ec2types.InstanceStateNameRunning {
		info.TrackingURI = trackingURI(i)
	}
}

// listInstances adds to set the stacks of every live instance of a region
// that runs with its stack's instance profile, with its state and tracking
// URI. A tagged instance without the profile is not the stack's.
func listInstances(ctx context.Context, api instanceAPI, account, region string, set *stackSet) error {
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{anyStackFilter,
		{Name: aws.String("instance-state-name"), Values: liveStates}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing instances in %s: %w", region, err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				tags := ec2TagMap(inst.Tags)
				want := namesFor(tags[tagStack], account, region).profileARN()
				if inst.IamInstanceProfile == nil || aws.ToString(inst.IamInstanceProfile.Arn) != want {
					continue
				}
				set.add(region, tags, instanceRow(&inst), func(info *stackInfo) { info.setInstance(&inst) })
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

// consoleOutput is the instance's console output, decoded: the latest where
// EC2 keeps it (Nitro types), else the buffer EC2 publishes after boot.
func consoleOutput(ctx context.Context, api instanceAPI, id string) (string, error) {
	out, err := api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
	if hasCode(err, "UnsupportedOperation", "InvalidParameterCombination", "InvalidParameterValue") {
		out, err = api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	}
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
