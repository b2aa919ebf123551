package provision

// The artifacts mode (`up --artifacts`). direct: clients write artifacts
// to s3://<bucket>/artifacts/ with the stack's scoped key. proxied: they
// send them to the server (mlflow-artifacts:/), which stores them at the
// same place with its role; the IAM user then has no key and the env file
// no AWS variable. The mode is the String parameter /mlstack/<stack>/artifacts,
// which the server reads at every start (mlstack_keys.py), so a live stack
// switches with a reboot. Experiments keep the artifact location they were
// made with: MLflow has no call that moves it.

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/mlstack/mlstack/cloudinit"
)

// The artifacts modes; a stack without the parameter is direct.
const (
	ArtifactsDirect  = "direct"
	ArtifactsProxied = "proxied"
)

func validateArtifacts(mode string) error {
	switch mode {
	case "", ArtifactsDirect, ArtifactsProxied:
		return nil
	}
	return cloud.Usagef("--artifacts %q: use proxied (through the server, no AWS key on clients) or direct (clients write to S3)", mode)
}

// modeOf is the mode a stack's parameter value means.
func modeOf(value string) string {
	if value == "" {
		return ArtifactsDirect
	}
	return value
}

// modePlan says in words what setting the mode would do.
func modePlan(n cloud.Names, have, want string, restart *ec2types.Instance) []cloud.PlanStep {
	if have == want {
		return nil
	}
	p := []cloud.PlanStep{cloud.Step(cloud.KindParam, n.Param(cloud.ParamArtifacts), "set the artifacts mode to %s (SSM parameter %s)", want, n.Param(cloud.ParamArtifacts))}
	if restart != nil {
		id := aws.ToString(restart.InstanceId)
		p = append(p, cloud.Step(cloud.KindInstance, id, "reboot instance %s so that its server serves artifacts %s (unavailable for about a minute)", id, want))
	}
	return p
}

// ensureMode stores the mode when the parameter lacks or differs from it,
// and returns when SSM says it was written (SSM's clock, which also dates
// what the server publishes after reading it); zero when nothing changed.
func ensureMode(ctx context.Context, api cloud.ParamAPI, n cloud.Names, have, want string, tags map[string]string, log *progress) (time.Time, error) {
	if have == want {
		return time.Time{}, nil
	}
	name := n.Param(cloud.ParamArtifacts)
	log.Step("setting the artifacts mode to %s (SSM parameter %s)", want, name)
	in := &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(want), Type: ssmtypes.ParameterTypeString,
		Description: aws.String("mlstack: artifacts mode, written by mlstack, read by the stack's server at every start")}
	if err := cloud.PutParam(ctx, api, in, have != "", tags); err != nil {
		return time.Time{}, err
	}
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		return time.Time{}, fmt.Errorf("reading SSM parameter %s back: %w", name, err)
	}
	return aws.ToTime(out.Parameter.LastModifiedDate), nil
}

// canSwitch refuses, before anything changes, to switch the mode of an
// instance whose bootstrap (its user-data, ud) does not read it.
func canSwitch(ud []byte, inst *ec2types.Instance, stack, down string) error {
	if len(ud) == 0 || cloud.BootstrapOf(ud).Can(cloudinit.CapArtifactsMode) {
		return nil
	}
	return cloud.Usagef("instance %s of stack %s was made by an earlier mlstack, whose server does not read the artifacts mode: "+
		"it would come back from a reboot as it is. Keep its mode (leave out --artifacts), or make the stack again: `%s`, "+
		"then up with --artifacts (this deletes its runs and artifacts, so export what you need first)",
		aws.ToString(inst.InstanceId), stack, down)
}

// restartServer reboots inst: its server starts again and reads the mode.
func restartServer(ctx context.Context, api cloud.RebootAPI, inst *ec2types.Instance, mode string, log *progress) error {
	id := aws.ToString(inst.InstanceId)
	log.Step("rebooting instance %s so that its server serves artifacts %s", id, mode)
	if _, err := api.RebootInstances(ctx, &ec2.RebootInstancesInput{InstanceIds: []string{id}}); err != nil {
		return fmt.Errorf("rebooting instance %s: %w", id, err)
	}
	return nil
}

// switchNote says what a switch means for the experiments made before it.
func switchNote(to string) string {
	if to == ArtifactsProxied {
		return "experiments made before the switch keep their s3:// artifact location (MLflow cannot move it): " +
			"the UI still shows their artifacts (the server reads them), but clients, which hold no AWS key now, " +
			"cannot log or download them. Log new runs into a new experiment (mlflow.set_experiment), " +
			"not into Default; --artifacts direct switches back"
	}
	return "experiments made while artifacts were proxied keep their mlflow-artifacts:/ location: the server " +
		"still stores and serves those; new experiments get s3:// locations, which clients write with the AWS key"
}

// artifactsCell is the mode as status shows it.
func artifactsCell(mode string) string {
	switch mode {
	case ArtifactsProxied:
		return "proxied (through the server; clients hold no AWS key)"
	case ArtifactsDirect:
		return "direct (clients write to S3 with the stack's key)"
	}
	return cmp.Or(mode, "unknown")
}
