package provision

// Drift and replacement. The user-data is rendered only at launch, so an
// up that asks for another MLflow version, instance type or bootstrap than
// the running instance has would otherwise be ignored. up compares them and
// replaces the instance: the old one is stopped (its server backs up what
// changed, see templates/mlstack_backup.py), a new one launches and
// restores that backup before its server starts, and only once the new
// server answers is the old one terminated; when it does not, the new one
// goes and the old one starts again. Allowed CIDRs and SSH change in place
// (the security group), the artifacts mode by a reboot.

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/provision/local"
)

// replacement is an instance up replaces, and why.
type replacement struct {
	old     *ec2types.Instance
	reasons []string
	stopped bool   // up stopped it (a rollback starts it again)
	db      string // the stack's RDS database, which holds the data (postgres), or ""
	// launching: RunInstances may have been sent for the new instance; its
	// answer can be lost (an interrupt) while EC2 made the instance.
	launching bool
}

// newInstanceListed bounds how long a rollback waits for EC2's listing to
// show an instance whose launch answer was lost: a new instance is left
// out of DescribeInstances for a few seconds (eventual consistency).
const newInstanceListed = 30 * time.Second

// driftOf says how inst differs from what this up would launch: the
// MLflow version and the rest of the bootstrap (its user-data), and the
// instance type when one was asked for. backups: its bootstrap backs up.
func (r *upRun) driftOf(ctx context.Context, inst *ec2types.Instance, explicitType bool) (reasons []string, asked, backups bool, err error) {
	old, err := r.userDataOf(ctx, inst)
	if err != nil {
		return nil, false, false, err
	}
	want, err := cloudinit.Decode(r.userData)
	if err != nil {
		return nil, false, false, err
	}
	if explicitType && string(inst.InstanceType) != r.o.InstanceType {
		reasons, asked = append(reasons, fmt.Sprintf("instance type %s → %s", inst.InstanceType, r.o.InstanceType)), true
	}
	if len(old) > 0 && !bytes.Equal(old, want) {
		from, to := cloud.BootstrapOf(old).MLflowVersion, cloud.BootstrapOf(want).MLflowVersion
		if from != "" && to != "" && from != to {
			reasons = append(reasons, fmt.Sprintf("MLflow %s → %s", from, to))
			asked = asked || r.explicitVersion
		} else {
			reasons = append(reasons, "the bootstrap of this mlstack version")
		}
	}
	return reasons, asked, cloud.BootstrapOf(old).Can(cloudinit.CapBackups), nil
}

// planReplace decides, read-only, whether up replaces the stack's instance.
// An instance whose bootstrap cannot back up is kept: asked-for changes are
// refused, a newer bootstrap is only reported.
func (r *upRun) planReplace(ctx context.Context, explicitType bool) error {
	f := r.found
	if len(f.instances) == 0 || r.secrets == nil {
		return nil
	}
	inst := &f.instances[0]
	switch cloud.StateOf(inst) {
	case ec2types.InstanceStateNameRunning, ec2types.InstanceStateNameStopped:
	default:
		return nil // pending or stopping: the next up looks again
	}
	reasons, asked, backups, err := r.driftOf(ctx, inst, explicitType)
	if r.o.restoreFrom != "" {
		reasons, asked = append(reasons, "restore backup "+r.o.restoreFrom), true
	}
	if err != nil || len(reasons) == 0 {
		return err
	}
	id, why := aws.ToString(inst.InstanceId), strings.Join(reasons, ", ")
	switch {
	case !backups && !asked:
		r.log.Warn("instance %s differs from what this up would launch (%s), but runs the bootstrap of an earlier mlstack, "+
			"which keeps no backups: replacing it would lose its runs, so it stays as it is", id, why)
		return nil
	case !backups:
		return cloud.Usagef("instance %s (%s) runs the bootstrap of an earlier mlstack, which keeps no backups: replacing it would lose its runs. "+
			"Export what you need, then `%s` and up again with the new flags", id, why, r.h.cmd("down", "--yes"))
	case r.o.NoWait && !r.o.DryRun:
		return cloud.Usagef("instance %s would be replaced (%s), and a replacement waits for the new server before it removes the old one: leave out --no-wait", id, why)
	}
	r.replace = &replacement{old: inst, reasons: reasons}
	if r.db == cloud.DBPostgres {
		r.replace.db = r.n.DB
	}
	r.restart = nil // the new server reads the artifacts mode when it starts
	return nil
}

// replacePlan says in words what the replacement does.
func replacePlan(rp *replacement) []cloud.PlanStep {
	if rp == nil {
		return nil
	}
	id, why := aws.ToString(rp.old.InstanceId), strings.Join(rp.reasons, ", ")
	if rp.db == "" {
		return []cloud.PlanStep{cloud.Step(cloud.KindInstance, id, "replace instance %s (%s): stop it (its server backs up), launch a new one that restores the backup, "+
			"terminate %s once the new server answers; the tracking server is unavailable meanwhile (a few minutes)", id, why, id)}
	}
	line := fmt.Sprintf("replace instance %s (%s): stop it, launch a new one whose server uses RDS database %s, where the data stays, "+
		"terminate %s once the new server answers; the tracking server is unavailable meanwhile (a few minutes)", id, why, rp.db, id)
	if strings.Contains(why, "MLflow ") {
		line += fmt.Sprintf("; the new MLflow upgrades the database's schema, which the old one cannot serve afterwards: should the new "+
			"server fail, the old one comes back refusing it, and RDS's point-in-time restore of %s to before now gets the old schema back", rp.db)
	}
	return []cloud.PlanStep{cloud.Step(cloud.KindInstance, id, "%s", line)}
}

// confirmReplace asks before a replacement (or needs --yes).
func (r *upRun) confirmReplace() error {
	if r.replace == nil || r.o.Yes {
		return nil
	}
	what := replacePlan(r.replace)[0].Text
	if r.o.Confirm == nil {
		return cloud.Usagef("up would %s; pass --yes to go ahead (no terminal to ask on)", what)
	}
	ok, err := r.o.Confirm("up would " + what + ". Go ahead? [y/N] ")
	if err != nil {
		return err
	}
	if !ok {
		return cloud.Usagef("not confirmed: nothing changed")
	}
	return nil
}

// replaceInstance stops the old instance and launches the new one.
func (r *upRun) replaceInstance(ctx context.Context) (*ec2types.Instance, error) {
	rp := r.replace
	id := aws.ToString(rp.old.InstanceId)
	r.log.Step("replacing instance %s: %s", id, strings.Join(rp.reasons, ", "))
	if cloud.StateOf(rp.old) != ec2types.InstanceStateNameStopped {
		rp.stopped = true // from here on a rollback starts it again
		if err := stopForBackup(ctx, r.s.EC2, []string{id}, r.o.Timeout, r.log); err != nil {
			return nil, err
		}
	}
	if r.o.restoreFrom != "" {
		if err := promoteBackup(ctx, r.s.S3, r.n.Bucket, r.o.restoreFrom, time.Now(), r.log); err != nil {
			return nil, err
		}
	}
	in := r.instanceInput()
	in.Found = nil
	// A fresh client token: the old one would hand back the old instance.
	nonce, err := in.RenewNonce()
	if err != nil {
		return nil, err
	}
	in.Launch.Nonce = nonce
	rp.launching = true
	return cloud.EnsureInstance(ctx, r.s.EC2, in)
}

// retire terminates the old instance once the new server answers. An
// interrupt no longer stops it: the replacement is done but for this call.
func (r *upRun) retire(ctx context.Context) error {
	if r.replace == nil {
		return nil
	}
	id := aws.ToString(r.replace.old.InstanceId)
	r.log.Step("the new server answers: terminating the old instance %s", id)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return cloud.Terminate(ctx, r.s.EC2, []string{id}, 0, r.log)
}

// rollback undoes a replacement that failed or was interrupted after it
// began: every other instance of the stack goes (the new one, also one
// whose launch was cut short), the old one starts again with its data as
// it was. It runs to its end whatever happened to ctx.
func (r *upRun) rollback(ctx context.Context, cause error) error {
	rp := r.replace
	if rp == nil || !rp.stopped && r.inst == nil {
		return cause
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.Timeout)
	defer cancel()
	oldID := aws.ToString(rp.old.InstanceId)
	news, err := r.newInstances(ctx, oldID)
	if err != nil {
		return fmt.Errorf("%w\nthe replacement failed, and undoing it too: %v", cause, err)
	}
	newID := strings.Join(news, ", ")
	r.log.Warn("the replacement did not finish: terminating the new instance %s, starting %s again", cmp.Or(newID, "(none launched)"), oldID)
	errs := []error{cloud.Terminate(ctx, r.s.EC2, news, 0, r.log)}
	if rp.stopped {
		errs = append(errs, startAgain(ctx, r.s.EC2, oldID, r.o.Timeout))
	}
	errs = append(errs, r.store.Update(func(x *local.Secrets) { x.InstanceID = oldID }))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\nthe replacement failed, and undoing it too: %v", cause, err)
	}
	return fmt.Errorf("%w\nthe replacement failed: instance %s was terminated and %s started again with its data as it was; "+
		"it answers at a new address: `%s` pins it and rewrites the env file (with a newer bootstrap it offers the replacement again)",
		cause, newID, oldID, r.h.up(r.o.AllowCIDRs, r.o.SSH))
}

// newInstances lists the stack's instances other than oldID. When the
// launch's answer was lost (no instance known, RunInstances perhaps sent)
// and none is listed, it asks again until newInstanceListed has passed:
// the instance EC2 made may not be listed yet, and left alone it would run
// and bill.
func (r *upRun) newInstances(ctx context.Context, oldID string) ([]string, error) {
	w := cloud.WaitsOf(ctx)
	deadline, wait := time.Now().Add(newInstanceListed), w.PollFirst
	for {
		insts, _, err := cloud.StackInstances(ctx, r.s.EC2, r.n, cloud.UsableStates)
		if err != nil {
			return nil, err
		}
		var news []string
		for _, i := range insts {
			if id := aws.ToString(i.InstanceId); id != oldID {
				news = append(news, id)
			}
		}
		if len(news) > 0 || r.inst != nil || !r.replace.launching || time.Now().Add(wait).After(deadline) {
			return news, nil
		}
		r.log.Info("the new instance's launch was cut short: looking again for an instance EC2 made but does not list yet")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, w.PollMax)
	}
}

// UpgradeOptions are what `mlstack upgrade` takes.
type UpgradeOptions struct {
	Stack
	cloud.AWS
	Streams
	MLflowVersion string // "": the locked version
	Timeout       time.Duration
	Yes           bool
	Confirm       func(prompt string) (bool, error)
}

// Upgrade is an up that keeps the stack as it is (who may reach it, SSH,
// the artifacts mode) and asks for an MLflow version (the locked one by
// default) and this mlstack's bootstrap: a replacement when they differ.
func Upgrade(ctx context.Context, o UpgradeOptions) error {
	uo, err := stackAsIs(ctx, o.Stack, o.AWS, o.Streams, "upgrade", nil)
	if err != nil {
		return err
	}
	uo.MLflowVersion = cmp.Or(o.MLflowVersion, cloudinit.DefaultMLflowVersion)
	uo.Timeout, uo.Yes, uo.Confirm = o.Timeout, o.Yes, o.Confirm
	return Up(ctx, uo)
}

// stackAsIs is an up of the stack as it is: who may reach it and SSH as its
// security group has them (its artifacts mode stays in SSM). also reads
// more of the stack while it is open; what names the command for errors.
func stackAsIs(ctx context.Context, st Stack, a cloud.AWS, s Streams, what string, also func(*openedStack) error) (UpOptions, error) {
	s.fill()
	if err := validateAll(st.validate, a.Validate); err != nil {
		return UpOptions{}, err
	}
	op, err := openStack(ctx, st, a, s.progress(), false)
	if err != nil {
		return UpOptions{}, err
	}
	defer op.release()
	g, err := cloud.FindSecurityGroup(ctx, op.s.EC2, op.n)
	if err != nil {
		return UpOptions{}, err
	}
	if g.ID == "" {
		return UpOptions{}, fmt.Errorf("stack %s has no security group in %s: nothing to %s (`%s` makes the stack)",
			st.Name, op.s.Region, what, hintsFor(st, a).cmd("up"))
	}
	if also != nil {
		if err := also(op); err != nil {
			return UpOptions{}, err
		}
	}
	return UpOptions{Stack: st, AWS: a, Streams: s, AllowCIDRs: g.Allowed(), SSH: g.SSHOpen()}, nil
}

// startAgain starts an instance up stopped, once it is stopped (an
// interrupted stop may still be under way); one that runs is left so.
func startAgain(ctx context.Context, api cloud.StopAPI, id string, timeout time.Duration) error {
	insts, err := cloud.DescribeInstances(ctx, api, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return fmt.Errorf("reading instance %s: %w", id, err)
	}
	state := ec2types.InstanceStateName("")
	for i := range insts {
		state = cloud.StateOf(&insts[i])
	}
	switch state {
	case ec2types.InstanceStateNamePending, ec2types.InstanceStateNameRunning:
		return nil
	case ec2types.InstanceStateNameStopping:
		pace := cloud.WaitsOf(ctx)
		w := ec2.NewInstanceStoppedWaiter(api, func(o *ec2.InstanceStoppedWaiterOptions) { o.MinDelay, o.MaxDelay = pace.PollFirst, pace.PollMax })
		if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, timeout); err != nil {
			return fmt.Errorf("waiting for instance %s to stop before starting it again: %w", id, err)
		}
	}
	if _, err := api.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
		return fmt.Errorf("starting instance %s again: %w", id, err)
	}
	return nil
}
