package provision

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/cloudinit"
)

// discovery is what exists of a stack, read without changing anything.
type discovery struct {
	user      *userState
	role      *roleState
	bucket    *bucketState
	sg        *sgState
	keyPair   *keyPairState
	instances []ec2types.Instance
	image     *ec2types.Image
}

// parallel runs independent steps concurrently and joins their errors.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func discover(ctx context.Context, s *session, n Names, policy string, arch ec2types.ArchitectureValues) (*discovery, error) {
	d := &discovery{}
	err := parallel(
		func() (err error) { d.user, err = findUser(ctx, s.iam, n, policy); return },
		func() (err error) { d.role, err = findRole(ctx, s.iam, n, policy); return },
		func() (err error) { d.bucket, err = findBucket(ctx, s.s3, n); return },
		func() (err error) { d.sg, err = findSecurityGroup(ctx, s.ec2, n); return },
		func() (err error) { d.keyPair, err = findKeyPair(ctx, s.ec2, n); return },
		func() (err error) { d.instances, err = findInstances(ctx, s.ec2, n.Stack); return },
		func() (err error) {
			d.image, err = findImage(ctx, s.ec2, arch)
			if err == nil && d.image == nil {
				err = fmt.Errorf("no official Ubuntu 24.04 %s image (owner %s) found in %s", arch, CanonicalOwner, s.region)
			}
			return err
		},
	)
	return d, err
}

// plan lists what up would create or change, in words.
func (d *discovery) plan(n Names, wantRules []rule) []string {
	var p []string
	if !d.user.exists {
		p = append(p, "create IAM user "+n.User+" with a bucket-only policy and one access key")
	} else {
		if !d.user.policyOK {
			p = append(p, "set the bucket-only policy of IAM user "+n.User)
		}
		if len(d.user.keys) == 0 {
			p = append(p, "create an access key for "+n.User)
		}
	}
	if !d.role.roleExists {
		p = append(p, "create IAM role "+n.Role)
	} else if !d.role.policyOK {
		p = append(p, "set the bucket-only policy of IAM role "+n.Role)
	}
	if !d.role.profileExists {
		p = append(p, "create instance profile "+n.Profile)
	}
	if !d.role.roleInProf {
		p = append(p, "put role "+n.Role+" into instance profile "+n.Profile)
	}
	if !d.bucket.exists {
		p = append(p, "create S3 bucket "+n.Bucket+" (public access blocked, AES256 default encryption)")
	} else {
		if !d.bucket.publicBlocked {
			p = append(p, "block public access to S3 bucket "+n.Bucket)
		}
		if !d.bucket.encrypted {
			p = append(p, "set default encryption on S3 bucket "+n.Bucket)
		}
	}
	if d.sg.id == "" {
		p = append(p, fmt.Sprintf("create security group %s in %s", n.SecurityGroup, d.sg.vpcID))
	}
	if add, extra := ruleDiff(d.sg.rules, wantRules); len(add) > 0 || extra {
		var cidrs []string
		for _, r := range wantRules {
			cidrs = append(cidrs, fmt.Sprintf("tcp %d from %s", r.port, r.cidr))
		}
		p = append(p, "set ingress of "+n.SecurityGroup+" to exactly: "+strings.Join(cidrs, ", "))
	}
	if d.keyPair.id == "" {
		p = append(p, "import a locally generated ed25519 key pair "+n.KeyPair)
	}
	switch {
	case len(d.instances) == 0:
		p = append(p, fmt.Sprintf("launch instance %s from %s (%s)", n.Instance, aws.ToString(d.image.ImageId), aws.ToString(d.image.Name)))
	case len(d.instances) > 1:
		p = append(p, fmt.Sprintf("terminate %d duplicate instance(s)", len(d.instances)-1))
	}
	if len(d.instances) > 0 && d.instances[0].State != nil && d.instances[0].State.Name == ec2types.InstanceStateNameStopped {
		p = append(p, "start stopped instance "+aws.ToString(d.instances[0].InstanceId))
	}
	return p
}

// Up creates or converges the stack, waits for the server, writes the env file.
func Up(ctx context.Context, c Config) error {
	if err := c.Validate(true); err != nil {
		return err
	}
	log := newProgress(c.Log)
	if len(c.AllowCIDRs) == 0 {
		cidr, err := detectCIDR(c.DetectIP)
		if err != nil {
			return err
		}
		log.info("no --allow-cidr given: allowing only your public IP %s", cidr)
		c.AllowCIDRs = []string{cidr}
	}
	for _, cidr := range c.AllowCIDRs {
		if strings.HasSuffix(cidr, "/0") {
			log.warn("--allow-cidr %s opens the tracking server to the whole internet", cidr)
		}
	}
	if !c.DryRun {
		if err := newStateDir(c.StateDir, c.Stack).checkWritable(); err != nil {
			return err
		}
	}
	o, err := openStack(ctx, &c, log, !c.DryRun)
	if err != nil {
		return err
	}
	defer o.release()
	s, n, sd, st := o.s, o.n, o.sd, o.st
	// A trial render with placeholder secrets finds bad parameters before
	// anything is created, not after the IAM user and bucket exist.
	if _, err := cloudinit.Render(bootstrapParams(n, s, c, &State{
		MLflowUser: mlflowUser, MLflowPassword: "placeholder-password-0", FlaskSecretKey: "placeholder-flask-secret-0",
	})); err != nil {
		return usagef("bootstrap parameters: %v", err)
	}

	policy := bucketPolicy(s.partition, n.Bucket)
	ports := []int32{mlflowPort}
	if c.SSH {
		ports = append(ports, sshPort)
	}
	rules := wantRules(c.AllowCIDRs, ports...)
	// Checked first: an unknown instance type is a usage error, reported alone.
	arch, err := instanceArch(ctx, s.ec2, c.InstanceType)
	if err != nil {
		return err
	}
	log.step("checking stack %s in account %s, %s", c.Stack, s.account, s.region)
	d, err := discover(ctx, s, n, policy, arch)
	if err != nil {
		return err
	}
	if st == nil && len(d.instances) > 0 {
		return fmt.Errorf("stack %s already runs instance %s but this machine has no local secrets for it (%s): "+
			"run mlstack where the stack was created, or `mlstack down` and `up` again",
			c.Stack, aws.ToString(d.instances[0].InstanceId), sd.path)
	}
	plan := d.plan(n, rules)
	if c.DryRun {
		if len(plan) == 0 {
			fmt.Fprintf(c.Out, "(plan) stack %s is complete: nothing to do\n", c.Stack)
		}
		for _, p := range plan {
			fmt.Fprintf(c.Out, "(plan) would %s\n", p)
		}
		return nil
	}

	st, authorized, err := prepareState(sd, st, c.Stack, s.account, s.region, d.keyPair.id != "", log)
	if err != nil {
		return err
	}
	if st.hostKey, err = prepareHostKey(sd, c.Stack, len(d.instances) > 0, log); err != nil {
		return err
	}
	now := time.Now()
	tags := withTTL(stackTags(c.Stack, now), s.region, now, c.TTL)
	if c.TTL > 0 {
		if err := extendTTL(ctx, retagAPI{ec2: s.ec2, iam: s.iam, s3: s.s3}, d, n, tags[TagExpiresAt], log); err != nil {
			return err
		}
	}
	err = parallel(
		func() error {
			return ensureUser(ctx, s.iam, d.user, ensureUserInput{
				names: n, policy: policy, tags: tags, knownKey: st.AccessKeyID, log: log,
				saveKey: func(id, secret string) error {
					// Written before anything else happens: the secret cannot be read back.
					next := *st
					next.AccessKeyID, next.SecretAccessKey = id, secret
					if err := sd.save(&next); err != nil {
						return err
					}
					st.AccessKeyID, st.SecretAccessKey = id, secret
					return nil
				},
			})
		},
		func() error { return ensureRole(ctx, s.iam, d.role, n, policy, tags, log) },
		func() error { return ensureBucket(ctx, s.s3, d.bucket, n, s.region, tags, log) },
		func() error { return ensureSecurityGroup(ctx, s.ec2, d.sg, n, rules, tags, log) },
		func() error { return ensureKeyPair(ctx, s.ec2, d.keyPair, n, authorized, tags, log) },
	)
	if err != nil {
		return fmt.Errorf("%w\nrun `mlstack up` again to converge, or `mlstack down` to remove what was created", err)
	}

	inst, err := ensureInstance(ctx, s, d, n, sd, st, c, tags, log)
	if err != nil {
		return fmt.Errorf("%w\nrun `mlstack up` again to converge, or `mlstack down` to remove what was created", err)
	}
	host := trackingHost(inst)
	if host == "" {
		return fmt.Errorf("instance %s has no public DNS name or IP: is the default subnet public?", aws.ToString(inst.InstanceId))
	}
	if err := recordHostKey(sd, inst, st.hostKey, c.SSH, c.Stack, log); err != nil {
		return err
	}
	uri := fmt.Sprintf("http://%s:%d", host, mlflowPort)
	if err := writeEnv(sd, envVars(st, uri, s.region, s.s3Endpoint)); err != nil {
		return err
	}
	log.step("wrote %s", sd.EnvFile())
	if !c.NoWait {
		health := c.HealthURL
		if health == "" {
			health = uri + "/health"
		}
		log.step("waiting for the tracking server at %s (up to %s)", health, c.Timeout)
		if err := waitHealthy(ctx, health, c.Timeout, log); err != nil {
			return explainUnhealthy(ctx, s, sd, inst, c, st.hostKey, err, log)
		}
	}
	if c.Output == "json" {
		if err := writeJSON(c.Out, UpReport{
			Stack: c.Stack, Account: s.account, Region: s.region, TrackingURI: uri, InstanceID: aws.ToString(inst.InstanceId),
			Bucket: n.Bucket, EnvFile: sd.EnvFile(), ExpiresAt: tags[TagExpiresAt], Healthy: !c.NoWait,
		}); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(c.Out, uri)
	}
	log.step("ready: `mlstack env --stack %s >> .envrc` exports the tracking URI and scoped credentials", c.Stack)
	return nil
}

// prepareState loads or creates the local secrets and SSH key, and saves
// them before any AWS resource is created.
func prepareState(sd stateDir, st *State, stack, account, region string, keyPairExists bool, log *progress) (*State, []byte, error) {
	changed := false
	if st == nil {
		st = &State{Stack: stack, Account: account, Region: region, MLflowUser: mlflowUser}
		changed = true
	}
	var err error
	if st.MLflowPassword == "" {
		if st.MLflowPassword, err = randomSecret(32); err != nil {
			return nil, nil, err
		}
		changed = true
	}
	if st.FlaskSecretKey == "" {
		if st.FlaskSecretKey, err = randomSecret(48); err != nil {
			return nil, nil, err
		}
		changed = true
	}
	if st.SSHPublicKey == "" {
		if keyPairExists {
			log.warn("key pair exists in AWS but its private key is not in %s: SSH to the instance will not work", sd.path)
		}
		priv, pub, err := newSSHKey("mlstack-" + stack)
		if err != nil {
			return nil, nil, err
		}
		if err := sd.writeFile("id_ed25519", priv); err != nil {
			return nil, nil, err
		}
		st.SSHPublicKey = string(pub)
		changed = true
	}
	if changed {
		if err := sd.save(st); err != nil {
			return nil, nil, err
		}
	}
	return st, []byte(st.SSHPublicKey), nil
}

// ensureInstance launches the server when none runs, keeps exactly one, and
// waits for it to run.
func ensureInstance(ctx context.Context, s *session, d *discovery, n Names, sd stateDir, st *State, c Config, tags map[string]string, log *progress) (*ec2types.Instance, error) {
	insts := d.instances
	if len(insts) == 0 {
		ud, err := cloudinit.Render(bootstrapParams(n, s, c, st))
		if err != nil {
			return nil, fmt.Errorf("rendering cloud-init user-data: %w", err)
		}
		in := launchInput{
			names: n, image: d.image, instanceType: c.InstanceType, sgID: d.sg.id, nonce: st.LaunchNonce,
			userData: ud, tags: tags, retryFor: 2 * time.Minute, log: log,
		}
		_, err = launchInstance(ctx, s.ec2, in)
		if errors.Is(err, errStaleToken) {
			// The last launch's instance is gone: launch anew under a new token.
			if st.LaunchNonce, err = randomSecret(12); err != nil {
				return nil, err
			}
			if err := sd.save(st); err != nil {
				return nil, err
			}
			in.nonce = st.LaunchNonce
			_, err = launchInstance(ctx, s.ec2, in)
		}
		if err != nil {
			return nil, err
		}
		// Real EC2 de-duplicates by client token; emulators and concurrent
		// runs may not, so converge on the oldest instance by tag.
		if insts, err = findInstances(ctx, s.ec2, n.Stack); err != nil {
			return nil, err
		}
		if len(insts) == 0 {
			return nil, fmt.Errorf("instance of stack %s not found after launch", n.Stack)
		}
	}
	keep := insts[0]
	if len(insts) > 1 {
		var extra []string
		for _, i := range insts[1:] {
			extra = append(extra, aws.ToString(i.InstanceId))
		}
		log.step("terminating duplicate instance(s) %v", extra)
		if err := terminate(ctx, s.ec2, extra, 0); err != nil {
			return nil, err
		}
	}
	id := aws.ToString(keep.InstanceId)
	if keep.State != nil && keep.State.Name == ec2types.InstanceStateNameStopped {
		log.step("starting stopped instance %s", id)
		if _, err := s.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
			return nil, fmt.Errorf("starting instance %s: %w", id, err)
		}
	}
	if keep.State != nil && keep.State.Name == ec2types.InstanceStateNameRunning && trackingHost(&keep) != "" {
		return &keep, nil // no need to poll: re-running up on a complete stack stays cheap
	}
	log.step("waiting for instance %s to run", id)
	return waitRunning(ctx, s.ec2, id, c.Timeout)
}

// detectCIDR finds the caller's public IPv4 address as a /32.
func detectCIDR(detect func() (netip.Addr, error)) (string, error) {
	if detect == nil {
		detect = DetectPublicIP
	}
	ip, err := detect()
	if err != nil {
		return "", usagef("no --allow-cidr given and your public IP could not be detected (%v): pass --allow-cidr YOUR.IP/32", err)
	}
	if !ip.Is4() {
		return "", usagef("no --allow-cidr given and your public IP %s is not IPv4: pass --allow-cidr", ip)
	}
	return netip.PrefixFrom(ip, 32).String(), nil
}

func bootstrapParams(n Names, s *session, c Config, st *State) cloudinit.Params {
	p := cloudinit.Params{
		Stack: n.Stack, Bucket: n.Bucket, Region: s.region, MLflowVersion: c.MLflowVersion,
		AdminUsername: st.MLflowUser, AdminPassword: st.MLflowPassword, FlaskSecretKey: st.FlaskSecretKey,
		S3EndpointURL: s.s3Endpoint,
	}
	if st.hostKey != nil {
		p.SSHHostKeyPrivate, p.SSHHostKeyPublic = string(st.hostKey.private), st.hostKey.authorizedLine()
	}
	return p
}
