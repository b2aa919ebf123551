package provision

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/provision/local"
)

// mlflowUser is the MLflow admin login mlstack creates.
const mlflowUser = "admin"

// upRun is one `mlstack up`: each phase reads what the earlier ones left.
type upRun struct {
	o   UpOptions
	ttl time.Duration
	log *progress
	h   hints
	*openedStack

	// preflight
	policy     string // the client user's
	rolePolicy string // the server role's
	rules      []cloud.Rule
	places     []cloud.Placement // where the server can run, best first
	arch       ec2types.ArchitectureValues
	keep       upLocal
	userData   []byte
	bootstrap  []cloudinit.Object // put in the bucket before launch
	// discover
	found   *found
	plan    []cloud.PlanStep
	mode    string             // the artifacts mode the stack gets
	db      string             // the database engine the stack gets (sqlite, postgres)
	dbClass string             // postgres: the RDS class of a database still to make
	restart *ec2types.Instance // the running server to reboot into it, if it switches
	replace *replacement       // the instance to replace, if what runs differs
	// explicitType, explicitVersion: --instance-type, --mlflow-version were
	// given (only the default type falls back; only asked-for changes are
	// refused where a replacement would lose data).
	explicitType, explicitVersion bool
	// converge
	since time.Time // keys published before this (SSM's clock) are the old server's
	// keepLocal, converge, publish
	store *local.Store
	tags  map[string]string
	inst  *ec2types.Instance
	uri   string
	tls   *tls.Config // trusts the pinned server certificate alone
	// ensureLogin: the env file's user exists on the server with another
	// password; up ends with it once the stack is up.
	loginRefused error
	// instanceUD holds the instances' user-data as read once (drift, mode
	// switch and legacy checks all look at it), by instance id.
	instanceUD map[string][]byte
}

// userDataOf is inst's user-data, unpacked, read from EC2 once per up.
func (r *upRun) userDataOf(ctx context.Context, inst *ec2types.Instance) ([]byte, error) {
	id := aws.ToString(inst.InstanceId)
	if ud, ok := r.instanceUD[id]; ok {
		return ud, nil
	}
	ud, err := cloud.UserData(ctx, r.s.EC2, inst)
	if err != nil {
		return nil, err
	}
	if r.instanceUD == nil {
		r.instanceUD = map[string][]byte{}
	}
	r.instanceUD[id] = ud
	return ud, nil
}

// upLocal is what up keeps on this machine. It is made in memory first, so
// that the user-data can be rendered (and checked) once before anything is
// written here or created in AWS.
type upLocal struct {
	secrets  local.Secrets
	changed  bool   // secrets differ from the saved ones
	loginKey []byte // a new private login key to save; nil keeps the saved one
}

// Up creates or converges the stack, waits for the server and writes the
// env file: preflight → discover and plan → keep local state → converge →
// publish → wait → report.
func Up(ctx context.Context, o UpOptions) error {
	o.hooks = hooksOf(ctx, o.hooks)
	r, err := preflight(ctx, o)
	if err != nil {
		return err
	}
	defer r.release()
	if err := r.discover(ctx); err != nil {
		return err
	}
	if r.o.DryRun {
		return r.printPlan()
	}
	if err := r.confirmReplace(); err != nil {
		return err
	}
	if err := r.keepLocal(ctx); err != nil {
		return err
	}
	if err := r.converge(ctx); err != nil {
		return r.rollback(ctx, err) // a replacement begun is undone
	}
	// A replacement's new server must answer before the old one goes. The
	// server publishes its keys once it knows where its database is.
	for _, phase := range []func(context.Context) error{r.readyDatabase, r.publish, r.wait, r.ensureLogin} {
		if err := phase(ctx); err != nil {
			return r.rollback(ctx, err)
		}
	}
	if err := r.retire(ctx); err != nil {
		return err
	}
	return errors.Join(r.report(ctx), r.loginRefused)
}
