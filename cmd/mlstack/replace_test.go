package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/internal/testhooks"
)

// publishForNew plays the bootstrap of the next instance of the stack that
// is not old: once it runs, it publishes its keys.
func (e *env) publishForNew(stack, old string) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			if inst, ok := e.runningInstance(ctx, stack); ok && aws.ToString(inst.InstanceId) != old {
				e.publish(ctx, stack, inst)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
}

// instanceOf is the stack's live instances, id → type and state.
func (e *env) instancesOf(stack string) map[string]string {
	e.t.Helper()
	out, err := e.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:mlstack:stack"), Values: []string{stack}}}})
	must(e.t, err)
	m := map[string]string{}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if i.State.Name != ec2types.InstanceStateNameTerminated {
				m[aws.ToString(i.InstanceId)] = string(i.InstanceType) + " " + string(i.State.Name)
			}
		}
	}
	return m
}

// TestUpReplacesDriftedInstance: against moto, up --instance-type on a
// live stack is refused without --yes and changes nothing; with --yes it
// stops the old instance, launches the new type, waits for its server and
// only then terminates the old one; down leaves nothing.
func TestUpReplacesDriftedInstance(t *testing.T) {
	e := newEnv(t)
	const stack = "repl"
	flags := append([]string{"--allow-cidr", allowCIDR}, e.stackFlags(stack)...)
	e.ok(append([]string{"up", "--no-wait"}, flags...)...)
	before := e.instancesOf(stack)
	var old string
	for id := range before {
		old = id
	}
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer healthy.Close()
	args := append([]string{"up", "--instance-type", "t3.micro", "--timeout", "2m"}, flags...)
	at := testhooks.Hooks{HealthURL: healthy.URL + "/health"}

	e.rec.reset()
	if res := e.mlstackWith(at, args...); res.code != 2 || !strings.Contains(res.stderr, "would replace instance "+old+" (instance type t2.micro → t3.micro)") ||
		len(e.rec.mutating()) != 0 {
		t.Fatalf("a replacement without --yes: exit %d, mutating %v\n%s", res.code, e.rec.mutating(), res.stderr)
	}
	e.publishForNew(stack, old)
	e.rec.reset()
	res := e.okWith(at, append(args, "--yes")...)
	var order []string
	for _, c := range e.rec.calls() {
		switch c.Action {
		case "StopInstances", "RunInstances", "TerminateInstances":
			order = append(order, c.Action)
		}
	}
	if strings.Join(order, ",") != "StopInstances,RunInstances,TerminateInstances" {
		t.Errorf("replacement calls %v, want stop, launch, terminate", order)
	}
	after := e.instancesOf(stack)
	if len(after) != 1 || after[old] != "" {
		t.Errorf("after the replacement: %v (old %s)", after, old)
	}
	for _, v := range after {
		if v != "t3.micro running" {
			t.Errorf("the new instance is %s", v)
		}
	}
	if !strings.Contains(res.stderr, "terminating the old instance "+old) {
		t.Errorf("up does not say it retired the old instance:\n%s", res.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags(stack)...)...)
	e.assertNothingLeft()
}

// TestUpgrade: mlstack upgrade moves a stack made with MLflow 3.6.0 to the
// locked version by a replacement, keeping its CIDRs; asked for without a
// terminal it refuses and changes nothing; once done, it has nothing to do.
func TestUpgrade(t *testing.T) {
	e := newEnv(t)
	const stack = "upg"
	flags := e.stackFlags(stack)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR, "--mlflow-version", "3.6.0"}, flags...)...)
	var old string
	for id := range e.instancesOf(stack) {
		old = id
	}
	e.rec.reset()
	if res := e.mlstack(append([]string{"upgrade"}, flags...)...); res.code != 2 ||
		!strings.Contains(res.stderr, "would replace instance "+old+" (MLflow 3.6.0 → "+cloudinit.DefaultMLflowVersion+")") || len(e.rec.mutating()) != 0 {
		t.Fatalf("upgrade without --yes: exit %d, mutating %v\n%s", res.code, e.rec.mutating(), res.stderr)
	}
	e.publishForNew(stack, old)
	e.ok(append([]string{"upgrade", "--yes"}, flags...)...)
	insts := e.instancesOf(stack)
	if len(insts) != 1 || insts[old] != "" {
		t.Fatalf("after upgrade: %v", insts)
	}
	for id := range insts {
		out, err := e.ec2.DescribeInstanceAttribute(context.Background(), &ec2.DescribeInstanceAttributeInput{
			InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameUserData})
		must(t, err)
		raw, _ := base64.StdEncoding.DecodeString(aws.ToString(out.UserData.Value))
		doc, err := cloudinit.Decode(raw)
		must(t, err)
		if !strings.Contains(string(doc), `mlstack-setup, "`+cloudinit.DefaultMLflowVersion+`"`) {
			t.Errorf("the new instance does not install MLflow %s", cloudinit.DefaultMLflowVersion)
		}
	}
	if doc := decodeStack(t, e.ok(append([]string{"status", "--output", "json"}, flags...)...).stdout); len(doc.AllowedCIDRs) != 1 || doc.AllowedCIDRs[0] != allowCIDR {
		t.Errorf("upgrade changed the allowed CIDRs: %v", doc.AllowedCIDRs)
	}
	e.rec.reset()
	e.ok(append([]string{"upgrade"}, flags...)...)
	if m := e.rec.mutating(); len(m) != 0 {
		t.Errorf("a second upgrade changed %v", m)
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// publishForEach plays the bootstrap of every instance of the stack that
// runs, once per start, until the test ends.
func (e *env) publishForEach(stack string) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	go func() {
		done := map[string]bool{}
		for ctx.Err() == nil {
			out, err := e.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
				{Name: aws.String("tag:mlstack:stack"), Values: []string{stack}},
				{Name: aws.String("instance-state-name"), Values: []string{"running"}}}})
			if err == nil {
				for _, r := range out.Reservations {
					for _, i := range r.Instances {
						// Again after a stop and start: a new address.
						if key := aws.ToString(i.InstanceId) + " " + aws.ToString(i.PublicIpAddress); !done[key] {
							done[key] = true
							e.publish(ctx, stack, i)
						}
					}
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
}

// TestInterruptReplacement sends SIGINT to a real mlstack replacing the
// stack's instance, after every few of its AWS calls: it stops with exit
// 130 (or finishes), and exactly one instance of the stack is left, the one
// the state names: the old one (started again) until the new server
// answered, the new one after. The next up converges; down leaves nothing.
func TestInterruptReplacement(t *testing.T) {
	bin := binary(t)
	e := newEnv(t)
	const stack = "sigr"
	base := append([]string{"--allow-cidr", allowCIDR}, e.stackFlags(stack)...)
	e.publishForEach(stack)
	e.ok(append([]string{"up"}, base...)...)
	// Every run asks for the other type than the one that runs: a replacement.
	replace := func() []string {
		typ := "t3.micro"
		for _, v := range e.instancesOf(stack) {
			if strings.HasPrefix(v, typ+" ") {
				typ = "t2.micro"
			}
		}
		return append([]string{"up", "--instance-type", typ, "--yes"}, base...)
	}
	e.rec.reset()
	e.ok(replace()...)
	total := len(e.rec.calls())
	interrupted, rolledBack := 0, 0
	for n := 1; n <= total; n++ {
		args := replace()
		e.rec.reset()
		run := e.runInterrupted(bin, offlineArgs(args), n, fmt.Sprintf("interrupted replacement at call %d", n))
		if strings.Contains(run.stderr, "the replacement did not finish: terminating the new instance") {
			rolledBack++
		}
		switch run.code {
		case 130:
			interrupted++
		case 0:
		default:
			t.Errorf("replacement interrupted after call %d: exit %d\n%s", n, run.code, run.stderr)
		}
		live := e.instancesOf(stack)
		recorded := stateFile(t, filepath.Join(e.stateDir, stack)).InstanceID
		t.Logf("interrupt at call %d (%s): exit %d, instances %v", n, callName(e.rec.calls(), n), run.code, live)
		if len(live) != 1 || live[recorded] == "" {
			t.Fatalf("after an interrupt at call %d of %d: instances %v, the state names %s\n%s", n, total, live, recorded, run.stderr)
		}
		// The next up, asking for the type that runs, converges.
		typ := strings.Fields(live[recorded])[0]
		if res := e.mlstack(append([]string{"up", "--instance-type", typ}, base...)...); res.code != 0 {
			t.Fatalf("up after the interrupt at call %d: exit %d\n%s", n, res.code, res.stderr)
		}
	}
	// Guard against a vacuous pass: runs must be stopped mid-replacement.
	if interrupted == 0 || rolledBack == 0 {
		t.Errorf("of %d calls: %d runs interrupted, %d rolled back; want some of each", total, interrupted, rolledBack)
	}
	t.Logf("of %d calls: %d runs interrupted, %d rolled back", total, interrupted, rolledBack)
	e.ok(append([]string{"down", "--yes"}, e.stackFlags(stack)...)...)
	e.assertNothingLeft()
}

// callName is the action of the nth call (1-based), or "".
func callName(calls []apiCall, n int) string {
	if n < 1 || n > len(calls) {
		return ""
	}
	return calls[n-1].Action
}
