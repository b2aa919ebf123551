package cloud

// The stack's SSM parameters under /mlstack/<stack>/: the MLflow admin
// password and the Flask secret key (SecureString, written by mlstack before
// launch, read by the server role at boot: no secret travels in user-data),
// and the server's TLS certificate and SSH host key (public halves, written
// by the server role at boot, read and pinned by mlstack). The client keys
// may do nothing with any of them.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Parameter names below the stack's path.
const (
	ParamAdminPassword = "admin-password"
	ParamFlaskSecret   = "flask-secret-key"
	ParamTLSCert       = "tls-cert"
	ParamHostKey       = "ssh-host-key"
)

// serverWrites are the parameters the server role publishes.
var serverWrites = []string{ParamTLSCert, ParamHostKey}

// ParamAPI is the part of SSM the stack's parameters need.
type ParamAPI interface {
	GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	GetParameters(context.Context, *ssm.GetParametersInput, ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
	PutParameter(context.Context, *ssm.PutParameterInput, ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	AddTagsToResource(context.Context, *ssm.AddTagsToResourceInput, ...func(*ssm.Options)) (*ssm.AddTagsToResourceOutput, error)
	DeleteParameters(context.Context, *ssm.DeleteParametersInput, ...func(*ssm.Options)) (*ssm.DeleteParametersOutput, error)
	ssm.GetParametersByPathAPIClient
}

// ParamPath is the folder of the stack's parameters.
func (n Names) ParamPath() string { return "/mlstack/" + n.Stack + "/" }

// Param is the full name of one of the stack's parameters.
func (n Names) Param(name string) string { return n.ParamPath() + name }

// ParamsFound is which of the stack's secrets SSM holds, with their
// values, and the artifacts mode parameter's value ("" when absent).
type ParamsFound struct {
	Values map[string]string // name below the path → decrypted value
	Mode   string
	// DBPassword and dbEndpoint: the database's parameters ("" when absent).
	DBPassword, DBEndpoint string
}

// FindParams reads the stack's secrets (decrypted), mode and database
// parameters from SSM.
func FindParams(ctx context.Context, api ParamAPI, n Names) (*ParamsFound, error) {
	v, err := readParams(ctx, api, n, ParamAdminPassword, ParamFlaskSecret, ParamArtifacts, ParamDBPassword, ParamDatabase)
	if err != nil {
		return nil, err
	}
	f := &ParamsFound{Values: v, Mode: v[ParamArtifacts], DBPassword: v[ParamDBPassword], DBEndpoint: v[ParamDatabase]}
	for _, name := range []string{ParamArtifacts, ParamDBPassword, ParamDatabase} {
		delete(v, name)
	}
	return f, nil
}

// getParametersMax is how many names one GetParameters call takes.
const getParametersMax = 10

// readParams reads some of the stack's parameters (decrypted): name below
// the path → value, absent ones left out. One GetParameters call reads up
// to ten (up read them one GetParameter at a time: 8 calls).
func readParams(ctx context.Context, api ParamAPI, n Names, names ...string) (map[string]string, error) {
	v := map[string]string{}
	for chunk := range slices.Chunk(names, getParametersMax) {
		full := make([]string, len(chunk))
		for i, name := range chunk {
			full[i] = n.Param(name)
		}
		out, err := api.GetParameters(ctx, &ssm.GetParametersInput{Names: full, WithDecryption: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("reading SSM parameters %s: %w", strings.Join(full, ", "), err)
		}
		for _, p := range out.Parameters {
			name, ok := strings.CutPrefix(aws.ToString(p.Name), n.Param(""))
			if ok && slices.Contains(chunk, name) {
				v[name] = aws.ToString(p.Value)
			}
		}
	}
	return v, nil
}

// Plan says in words what ensureParams would do.
func (f *ParamsFound) Plan(n Names, want map[string]string) []PlanStep {
	var p []PlanStep
	for _, name := range SortedKeys(want) {
		if _, ok := f.Values[name]; !ok {
			p = append(p, Step(KindParam, n.Param(name), "store %s as SSM SecureString %s", name, n.Param(name)))
		}
	}
	return p
}

// EnsureParams stores the secrets SSM lacks, as SecureString with the
// stack's tags (the value never goes to the log). One that SSM holds with
// another value was changed elsewhere (creds rotate on another machine):
// it is left as it is, with a warning, since the server may already use it;
// rotate is the command that sets both again.
func EnsureParams(ctx context.Context, api ParamAPI, f *ParamsFound, n Names, want, tags map[string]string, rotate string, log Log) error {
	for _, name := range SortedKeys(want) {
		have, ok := f.Values[name]
		switch {
		case ok && have == want[name]:
			continue
		case ok:
			log.Warn("SSM parameter %s differs from this machine's state: kept (rotated elsewhere? `%s` here sets both)", n.Param(name), rotate)
			continue
		}
		full := n.Param(name)
		log.Step("storing %s in SSM as SecureString %s", name, full)
		if err := PutSecret(ctx, api, full, want[name], false, tags); err != nil {
			return err
		}
		f.Values[name] = want[name]
	}
	return nil
}

// UpdateParams overwrites secrets in SSM with new values (creds rotate).
func UpdateParams(ctx context.Context, api ParamAPI, f *ParamsFound, n Names, want, tags map[string]string, log Log) error {
	for _, name := range SortedKeys(want) {
		_, exists := f.Values[name]
		log.Step("storing the new %s in SSM %s", name, n.Param(name))
		if err := PutSecret(ctx, api, n.Param(name), want[name], exists, tags); err != nil {
			return err
		}
		f.Values[name] = want[name]
	}
	return nil
}

// PutSecret writes one SecureString. Tags go with a new parameter; SSM
// refuses them together with Overwrite, so an update tags separately.
func PutSecret(ctx context.Context, api ParamAPI, name, value string, exists bool, tags map[string]string) error {
	in := &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeSecureString,
		Description: aws.String("mlstack: written by mlstack, read by the stack's server role")}
	if err := PutParam(ctx, api, in, exists, tags); err != nil {
		return err
	}
	if exists {
		if _, err := api.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter,
			ResourceId: aws.String(name), Tags: ssmTags(tags)}); err != nil {
			return fmt.Errorf("tagging SSM parameter %s: %w", name, err)
		}
	}
	return nil
}

// PutParam writes one parameter: a new one with the stack's tags, an
// existing one overwritten (SSM refuses tags together with Overwrite), and
// one another run made meanwhile overwritten too.
func PutParam(ctx context.Context, api ParamAPI, in *ssm.PutParameterInput, exists bool, tags map[string]string) error {
	if exists {
		in.Overwrite = aws.Bool(true)
	} else {
		in.Tags = ssmTags(tags)
	}
	_, err := api.PutParameter(ctx, in)
	if HasCode(err, "ParameterAlreadyExists") {
		in.Overwrite, in.Tags = aws.Bool(true), nil
		_, err = api.PutParameter(ctx, in)
	}
	if err != nil {
		return fmt.Errorf("storing SSM parameter %s: %w", aws.ToString(in.Name), err)
	}
	return nil
}

func ssmTags(m map[string]string) []ssmtypes.Tag {
	var out []ssmtypes.Tag
	for _, k := range SortedKeys(m) {
		out = append(out, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// stackParamsMode lists the names of every parameter under the stack's
// path, and the artifacts mode parameter's value ("" when absent): a
// String, which the listing gives in clear.
func stackParamsMode(ctx context.Context, api ParamAPI, n Names) (out []string, mode string, err error) {
	p := ssm.NewGetParametersByPathPaginator(api, &ssm.GetParametersByPathInput{Path: aws.String(strings.TrimSuffix(n.ParamPath(), "/")), Recursive: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("listing SSM parameters under %s: %w", n.ParamPath(), err)
		}
		for _, prm := range page.Parameters {
			out = append(out, aws.ToString(prm.Name))
			if aws.ToString(prm.Name) == n.Param(ParamArtifacts) && prm.Type == ssmtypes.ParameterTypeString {
				mode = aws.ToString(prm.Value)
			}
		}
	}
	slices.Sort(out)
	return out, mode, nil
}

// ParamInventory is the status rows of the stack's parameters, and its
// artifacts mode parameter's value.
func ParamInventory(ctx context.Context, api ParamAPI, n Names) ([]Resource, string, error) {
	names, mode, err := stackParamsMode(ctx, api, n)
	var out []Resource
	for _, name := range names {
		out = append(out, Resource{Kind: KindParam, ID: name, Name: name, State: StateExists})
	}
	return out, mode, err
}

// DeleteParams removes the parameters the inventory found under the
// stack's path: the path is the stack's by name, like its derived resource
// names.
func DeleteParams(ctx context.Context, api ParamAPI, n Names, all []string, log Log) error {
	if len(all) == 0 {
		return nil
	}
	log.Step("deleting %s under %s", Plural(len(all), "SSM parameter"), n.ParamPath())
	var errs []error
	for chunk := range slices.Chunk(all, 10) { // DeleteParameters takes at most 10 names
		if _, err := api.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: chunk}); err != nil {
			errs = append(errs, fmt.Errorf("deleting SSM parameters %v: %w", chunk, err))
		}
	}
	return errors.Join(errs...)
}

// publishedParam is a public parameter the server writes, with when it
// was written; Value "" while it has not been (yet).
type publishedParam struct {
	Value string
	At    time.Time
}

// Published reads public parameters the server writes, in one call.
func Published(ctx context.Context, api ParamAPI, n Names, names ...string) (map[string]publishedParam, error) {
	full := make([]string, len(names))
	for i, name := range names {
		full[i] = n.Param(name)
	}
	out, err := api.GetParameters(ctx, &ssm.GetParametersInput{Names: full})
	if err != nil {
		return nil, fmt.Errorf("reading SSM parameters %s: %w", strings.Join(full, ", "), err)
	}
	got := map[string]publishedParam{}
	for _, p := range out.Parameters {
		name, ok := strings.CutPrefix(aws.ToString(p.Name), n.Param(""))
		if !ok || !slices.Contains(names, name) {
			continue
		}
		if p.Type != ssmtypes.ParameterTypeString {
			return nil, fmt.Errorf("SSM parameter %s is a %s, not the String the server writes", aws.ToString(p.Name), p.Type)
		}
		got[name] = publishedParam{Value: aws.ToString(p.Value), At: aws.ToTime(p.LastModifiedDate)}
	}
	return got, nil
}

// ParamArtifacts is the mode's parameter below the stack's path.
const ParamArtifacts = "artifacts"
