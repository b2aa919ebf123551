package provision

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/mlstack/mlstack/provision/server"
)

// lossCountTimeout bounds asking the server what it holds: down must not
// hang before its question on a server that does not answer.
const lossCountTimeout = 10 * time.Second

// lossLines say what down destroys for good, beyond the resources: the
// runs in the server's database and the artifacts in the bucket, counted
// where they can be, else with why not.
func (op *openedStack) lossLines(ctx context.Context, inv *stackInventory, uri string) []string {
	var lines []string
	if uri == "" && len(inv.insts) > 0 {
		uri = cloud.TrackingURI(&inv.insts[0])
	}
	lines = append(lines, op.runsLost(ctx, uri))
	for _, r := range inv.rows {
		if r.Kind != cloud.KindBucket {
			continue
		}
		u, err := cloud.MeasureBucket(ctx, op.s.S3, r.Name)
		if err != nil {
			lines = append(lines, fmt.Sprintf("the artifacts in S3 bucket %s (not counted: %v)", r.Name, err))
			continue
		}
		lines = append(lines, fmt.Sprintf("%s (%s, every version) in S3 bucket %s", cloud.Plural(u.Objects, "artifact file"), humanBytes(u.Bytes), r.Name))
	}
	return lines
}

// runsLost counts the experiments and runs in the server's database.
func (op *openedStack) runsLost(ctx context.Context, uri string) string {
	const what = "the experiments and runs in the server's database"
	switch {
	case uri == "":
		return what + " (not counted: no running server)"
	case op.secrets == nil || op.secrets.MLflowPassword == "":
		return what + " (not counted: this machine has no MLflow password for the stack)"
	}
	// The admin password goes only to the server whose certificate this
	// machine pinned, as check's does: not to whatever the system's roots
	// trust (an intercepting CA), and a real stack's self-signed
	// certificate is in none of them.
	httpc, err := serverHTTP(op.dir, uri, func() string {
		return localUp(Stack{Name: op.n.Stack, StateDir: filepath.Dir(op.dir.Path())}, op.secrets)
	})
	if err != nil {
		return fmt.Sprintf("%s (not counted: %v)", what, err)
	}
	cctx, cancel := context.WithTimeout(ctx, lossCountTimeout)
	defer cancel()
	c := &server.Client{URI: uri, User: op.secrets.MLflowUser, Password: op.secrets.MLflowPassword, HTTP: httpc}
	n, err := c.Count(cctx)
	if err != nil {
		return fmt.Sprintf("%s (not counted: %v)", what, err)
	}
	return fmt.Sprintf("%s in %s in the server's database", cloud.Plural(n.Runs, "run"), cloud.Plural(n.Experiments, "experiment"))
}

// dbLoss is what a plain down loses of a database: its data, its automated
// backups and the snapshots an earlier down --keep-data kept.
func dbLoss(inv *stackInventory) []string {
	var lines []string
	if inv.db != nil {
		lines = append(lines, fmt.Sprintf("the tracking data in RDS database %s and its automated backups (no final snapshot: `down --keep-data` takes one)",
			aws.ToString(inv.db.DBInstanceIdentifier)))
	}
	for _, r := range inv.rows {
		if r.Kind == cloud.KindDBSnapshot {
			lines = append(lines, "RDS snapshot "+r.Name+", kept by an earlier down --keep-data")
		}
	}
	return lines
}
