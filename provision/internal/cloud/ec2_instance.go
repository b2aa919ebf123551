package cloud

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

// LiveStates are the states of an instance that is not gone yet: down
// waits for all of them, status and ls show them.
var LiveStates = []string{"pending", "running", "stopping", "stopped", "shutting-down"}

// UsableStates leave out shutting-down: for up, such an instance is gone.
var UsableStates = []string{"pending", "running", "stopping", "stopped"}

// FindInstances returns the stack's instances in the given states, oldest first.
func FindInstances(ctx context.Context, api instanceAPI, stack string, states []string) ([]ec2types.Instance, error) {
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

// InstancesPlan says in words what ensureInstance would do.
func InstancesPlan(insts []ec2types.Instance, n Names, image *ec2types.Image, place Placement) []PlanStep {
	var p []PlanStep
	switch {
	case len(insts) == 0:
		line := fmt.Sprintf("launch instance %s from %s (%s) as %s in %s", n.Instance, aws.ToString(image.ImageId), aws.ToString(image.Name), place.InstanceType, place.Zone)
		if place.Why != "" {
			line += " (" + place.Why + ")"
		}
		p = append(p, Step(KindInstance, n.Instance, "%s", line))
	case len(insts) > 1:
		p = append(p, Step(KindInstance, n.Instance, "terminate %s", Plural(len(insts)-1, "duplicate instance")))
	}
	if len(insts) > 0 && StateOf(&insts[0]) == ec2types.InstanceStateNameStopped {
		id := aws.ToString(insts[0].InstanceId)
		p = append(p, Step(KindInstance, id, "start stopped instance %s", id))
	}
	return p
}

func StateOf(i *ec2types.Instance) ec2types.InstanceStateName {
	if i.State == nil {
		return ""
	}
	return i.State.Name
}

// ClientToken makes RunInstances idempotent for one launch of a stack: a
// retried or resumed launch reuses it; a stack rebuilt after `down` gets a
// new security group, and a relaunch after the instance died gets a new
// nonce (EC2 remembers a token for at least a day after termination).
func ClientToken(stack, sgID, nonce string) string {
	sum := sha256.Sum256([]byte(stack + "/" + sgID + "/" + nonce))
	return "mlstack-" + hex.EncodeToString(sum[:])[:48]
}

// ErrStaleToken: EC2 answered the client token with an instance launched
// earlier that is gone, or with IdempotentParameterMismatch. The caller
// picks a new nonce and launches again.
var ErrStaleToken = errors.New("client token belongs to an earlier launch")

// LaunchInput is everything RunInstances needs.
type LaunchInput struct {
	Names    Names
	Image    *ec2types.Image
	Place    Placement
	SGID     string
	Nonce    string // part of the client token; see clientToken
	UserData []byte
	Tags     map[string]string
	RetryFor time.Duration // how long to retry eventual-consistency errors
	Log      Log
}

// runRequest is the RunInstances request for in.
func (in LaunchInput) runRequest() *ec2.RunInstancesInput {
	n := in.Names
	root := aws.String("/dev/sda1")
	if in.Image.RootDeviceName != nil {
		root = in.Image.RootDeviceName
	}
	req := &ec2.RunInstancesInput{
		ImageId:      in.Image.ImageId,
		InstanceType: ec2types.InstanceType(in.Place.InstanceType),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		// The type is part of the token: a fallback launch is another request.
		ClientToken: aws.String(ClientToken(n.Stack, in.SGID, in.Nonce+"/"+in.Place.InstanceType)),
		KeyName:     aws.String(n.KeyPair),
		// A public address is asked for, not left to the subnet's
		// MapPublicIpOnLaunch: without one the server is unreachable.
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(in.Place.SubnetID), Groups: []string{in.SGID},
			AssociatePublicIpAddress: aws.Bool(true), DeleteOnTermination: aws.Bool(true),
		}},
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(n.Profile)},
		UserData:           aws.String(base64.StdEncoding.EncodeToString(in.UserData)),
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
			EC2TagSpec(ec2types.ResourceTypeInstance, in.Tags, n.Instance),
			EC2TagSpec(ec2types.ResourceTypeVolume, in.Tags, n.Instance),
		},
	}
	if in.Place.StandardCredits {
		req.CreditSpecification = &ec2types.CreditSpecificationRequest{CpuCredits: aws.String("standard")}
	}
	return req
}

// LaunchInstance runs the server and returns its id. A new instance
// profile, key pair or security group is not visible to EC2 for some
// seconds; exactly those answers are retried.
func LaunchInstance(ctx context.Context, api instanceAPI, in LaunchInput) (string, error) {
	req := in.runRequest()
	in.Log.Step("launching %s instance %s from %s (%s)", in.Place.InstanceType, in.Names.Instance, aws.ToString(in.Image.ImageId), aws.ToString(in.Image.Name))
	var id string
	err := RetryOn(ctx, in.RetryFor, isLaunchPropagation,
		func(err error) { in.Log.Info("%s is not visible to EC2 yet; retrying", propagating(err)) },
		func() error {
			out, err := api.RunInstances(ctx, req)
			if err != nil {
				return err
			}
			if len(out.Instances) == 0 {
				return fmt.Errorf("RunInstances answered without an instance")
			}
			inst := out.Instances[0]
			if s := StateOf(&inst); s == ec2types.InstanceStateNameTerminated || s == ec2types.InstanceStateNameShuttingDown {
				return ErrStaleToken
			}
			id = aws.ToString(inst.InstanceId)
			return nil
		})
	if HasCode(err, "IdempotentParameterMismatch") || errors.Is(err, ErrStaleToken) {
		return "", ErrStaleToken
	}
	if err != nil {
		return "", fmt.Errorf("launching instance %s: %w", in.Names.Instance, err)
	}
	return id, nil
}

// IsProfilePropagation matches EC2's answers for an instance profile it
// cannot see yet, or whose role it cannot see yet. The code alone is too
// broad, so the message narrows it, as terraform-provider-aws does.
func IsProfilePropagation(err error) bool {
	if !HasCode(err, "InvalidParameterValue") {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "Invalid IAM Instance Profile") || strings.Contains(msg, "has no associated IAM Roles")
}

// isLaunchPropagation adds a key pair or security group created a moment ago.
func isLaunchPropagation(err error) bool {
	return IsProfilePropagation(err) || HasCode(err, "InvalidKeyPair.NotFound", "InvalidGroup.NotFound")
}

func propagating(err error) string {
	switch {
	case HasCode(err, "InvalidKeyPair.NotFound"):
		return "the new key pair"
	case HasCode(err, "InvalidGroup.NotFound"):
		return "the new security group"
	}
	return "the new instance profile"
}

// EnsureInstanceInput is what ensureInstance needs besides the API.
type EnsureInstanceInput struct {
	Found  []ec2types.Instance // the stack's usable instances, oldest first
	Places []Placement         // where to launch, best first (see placements)
	Launch LaunchInput
	// RenewNonce saves and returns a new launch nonce, for a relaunch after
	// the last launch's instance is gone.
	RenewNonce func() (string, error)
	Wait       time.Duration
}

// EnsureInstance launches the server when none runs, keeps exactly one (the
// oldest), starts it when stopped, and waits for it to run.
func EnsureInstance(ctx context.Context, api instanceAPI, in EnsureInstanceInput) (*ec2types.Instance, error) {
	insts, log := in.Found, in.Launch.Log
	if len(insts) > 1 {
		var extra []string
		for _, i := range insts[1:] {
			extra = append(extra, aws.ToString(i.InstanceId))
		}
		log.Step("terminating duplicate %s %s", PluralWord(len(extra), "instance"), strings.Join(extra, ", "))
		if err := Terminate(ctx, api, extra, 0, log); err != nil {
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
		if StateOf(&keep) == ec2types.InstanceStateNameRunning && TrackingHost(&keep) != "" {
			return &keep, nil // no need to poll: re-running up on a complete stack stays cheap
		}
		if StateOf(&keep) == ec2types.InstanceStateNameStopped {
			log.Step("starting stopped instance %s", id)
			if _, err := api.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
				return nil, fmt.Errorf("starting instance %s: %w", id, err)
			}
		}
	}
	return waitRunning(ctx, api, id, in.Wait, log)
}

// launchOne launches the instance where it can run, and returns the id
// RunInstances gave it (a new instance can be missing from listings by tag
// for a while). A stale client token gets a new nonce; a free plan that
// refuses the default type gets the fallback.
func launchOne(ctx context.Context, api instanceAPI, in EnsureInstanceInput) (string, error) {
	var err error
	for i, p := range in.Places {
		in.Launch.Place = p
		if p.Why != "" {
			in.Launch.Log.Step("%s: launching %s with standard CPU credits instead (bursts never bill beyond the hourly price)", p.Why, p.InstanceType)
		}
		var id string
		id, err = LaunchInstance(ctx, api, in.Launch)
		if errors.Is(err, ErrStaleToken) {
			if in.Launch.Nonce, err = in.RenewNonce(); err != nil {
				return "", err
			}
			id, err = LaunchInstance(ctx, api, in.Launch)
		}
		if isFreePlanRefusal(err) && i+1 < len(in.Places) {
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

// Terminate ends instances and, when wait is set, waits until they are gone.
func Terminate(ctx context.Context, api instanceAPI, ids []string, wait time.Duration, log Log) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	if err != nil && !HasCode(err, "InvalidInstanceID.NotFound") && !terminating(ctx, api, ids) {
		return fmt.Errorf("terminating %s %s: %w", PluralWord(len(ids), "instance"), strings.Join(ids, ", "), err)
	}
	if wait <= 0 {
		return nil
	}
	return waitGone(ctx, api, ids, wait, log)
}

// terminating re-reads instances after an ambiguous TerminateInstances
// failure (a retry of a call whose answer was lost, which the emulator
// refuses): when every one is listed shutting down or terminated, the
// termination happened. One not listed proves nothing: EC2 lists a
// terminated instance for about an hour, and a new one may not be listed
// yet, still running.
func terminating(ctx context.Context, api instanceAPI, ids []string) bool {
	insts, err := describeIDs(ctx, api, ids)
	if err != nil {
		return false
	}
	ending := map[string]bool{}
	for _, i := range insts {
		if s := StateOf(&i); s == ec2types.InstanceStateNameShuttingDown || s == ec2types.InstanceStateNameTerminated {
			ending[aws.ToString(i.InstanceId)] = true
		}
	}
	for _, id := range ids {
		if !ending[id] {
			return false
		}
	}
	return true
}

// describeIDs lists the instances among ids. A filter, not InstanceIds: an
// id EC2 does not know yet, or no longer, is simply absent, not an error.
func describeIDs(ctx context.Context, api instanceAPI, ids []string) ([]ec2types.Instance, error) {
	return DescribeInstances(ctx, api, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("instance-id"), Values: ids},
	}})
}

// waitGone polls until every instance is terminated or no longer listed.
// The SDK's waiter would fail on pending or stopping (terminating them
// goes on all the same) and on an id that is gone already.
func waitGone(ctx context.Context, api instanceAPI, ids []string, wait time.Duration, log Log) error {
	what := PluralWord(len(ids), "instance") + " " + strings.Join(ids, ", ")
	live := log.Wait("waiting for %s to terminate", what)
	defer live.Stop()
	err := Poll(ctx, wait, func() (bool, string, error) {
		insts, err := describeIDs(ctx, api, ids)
		if err != nil {
			return false, "", err
		}
		for _, i := range insts {
			if StateOf(&i) != ec2types.InstanceStateNameTerminated {
				return false, aws.ToString(i.InstanceId) + " " + string(StateOf(&i)), nil
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
	err := Poll(ctx, wait, func() (bool, string, error) {
		insts, err := describeIDs(ctx, api, []string{id})
		if err != nil {
			return false, "", err
		}
		if len(insts) == 0 {
			return false, "not listed yet", nil
		}
		switch s := StateOf(&insts[0]); s {
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

// Poll calls check until it is done, fails, or wait has passed; last says
// what it saw, for the timeout error. Its pace is the context's (waitsOf).
func Poll(ctx context.Context, wait time.Duration, check func() (done bool, last string, err error)) error {
	w := WaitsOf(ctx)
	deadline := time.Now().Add(wait)
	delay := w.PollFirst
	for {
		done, last, err := check()
		if done || err != nil {
			return err
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("gave up after %s (last seen: %s)", wait, last)
		}
		if err := Sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(delay*2, w.PollMax)
	}
}

// TrackingHost is the name clients use: the public DNS name, else the public IP.
func TrackingHost(inst *ec2types.Instance) string {
	if h := aws.ToString(inst.PublicDnsName); h != "" {
		return h
	}
	return aws.ToString(inst.PublicIpAddress)
}

// TrackingURI is the server's address, or "" when it has no public name.
func TrackingURI(inst *ec2types.Instance) string {
	if h := TrackingHost(inst); h != "" {
		return fmt.Sprintf("https://%s:%d", h, MlflowPort)
	}
	return ""
}

// InstanceInventory is the status rows of the stack's instances.
func InstanceInventory(insts []ec2types.Instance) []Resource {
	var out []Resource
	for _, i := range insts {
		out = append(out, instanceRow(&i))
	}
	return out
}

func instanceRow(i *ec2types.Instance) Resource {
	return Resource{Kind: KindInstance, ID: aws.ToString(i.InstanceId), Name: EC2TagMap(i.Tags)["Name"], State: string(StateOf(i))}
}

// SetInstance records the stack's server and, when it runs, its address.
func (info *StackInfo) SetInstance(i *ec2types.Instance) {
	info.Instance = &InstanceInfo{ID: aws.ToString(i.InstanceId), Type: string(i.InstanceType), State: string(StateOf(i))}
	info.TrackingURI = ""
	if StateOf(i) == ec2types.InstanceStateNameRunning {
		info.TrackingURI = TrackingURI(i)
	}
}

// ListInstances adds to set the stacks of every live instance of a region
// that runs with its stack's instance profile, with its state and tracking
// URI. A tagged instance without the profile is not the stack's.
func ListInstances(ctx context.Context, api instanceAPI, account, region string, set *StackSet) error {
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{anyStackFilter,
		{Name: aws.String("instance-state-name"), Values: LiveStates}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing instances in %s: %w", region, err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				tags := EC2TagMap(inst.Tags)
				want := NamesFor(tags[TagStack], account, region).ProfileARN()
				if inst.IamInstanceProfile == nil || aws.ToString(inst.IamInstanceProfile.Arn) != want {
					continue
				}
				set.Add(region, tags, instanceRow(&inst), func(info *StackInfo) { info.SetInstance(&inst) })
			}
		}
	}
	return nil
}

// InstanceTagIDs are the ids that carry the instances' tags: the instances
// and their volumes.
func InstanceTagIDs(insts []ec2types.Instance) []string {
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

// ConsoleOutput is the instance's console output, decoded: the latest where
// EC2 keeps it (Nitro types), else the buffer EC2 publishes after boot.
func ConsoleOutput(ctx context.Context, api instanceAPI, id string) (string, error) {
	out, err := api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
	if HasCode(err, "UnsupportedOperation", "InvalidParameterCombination", "InvalidParameterValue") {
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
