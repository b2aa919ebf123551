package provision

// up's database phase (--db postgres): settle the stack's engine, plan and
// make the RDS database (rds_database*.go), and wait for it before the
// server is asked for its health.

import (
	"cmp"
	"context"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// chooseDatabase settles the stack's engine: --db, else what AWS shows
// (a database or a kept snapshot of one: postgres; a server or kept
// backups without one: sqlite), else what this machine recorded. A switch
// of the engine of a stack with data is refused: mlstack does not move
// tracking data between engines. The user-data is rendered again when the
// engine differs from the one preflight assumed.
func (r *upRun) chooseDatabase(ctx context.Context, f *found) error {
	have := ""
	switch {
	case f.db.Exists():
		have = cloud.DBPostgres
	case len(f.instances) > 0 || f.backups != "":
		have = cloud.DBSQLite
	}
	want := cmp.Or(r.o.Database, have, r.db)
	if have != "" && want != have {
		return r.switchRefused(have, want, f)
	}
	if want != r.db {
		r.db = want
		if err := r.render(); err != nil {
			return err
		}
	}
	if r.db != cloud.DBPostgres {
		return nil
	}
	if !f.db.NetworkRead {
		if err := f.db.ReadNetwork(ctx, r.s, r.n); err != nil {
			return err
		}
	}
	if f.db.Foreign != nil {
		return f.db.Foreign
	}
	switch {
	case f.db.Inst != nil:
		r.dbClass = aws.ToString(f.db.Inst.DBInstanceClass)
		return nil
	case f.db.Restorable() != "" && r.o.DBClass == "":
		return nil // RDS restores a snapshot with the class it was taken of
	}
	var err error
	r.dbClass, err = cloud.ChooseDBClass(ctx, r.s.RDS, r.o.DBClass, r.s.Region)
	return err
}

// switchRefused says why the stack keeps its engine, and what would do.
func (r *upRun) switchRefused(have, want string, f *found) error {
	if have == cloud.DBPostgres {
		where := "RDS database " + r.n.DB
		if f.db.Inst == nil {
			where = "the kept snapshot " + f.db.Restorable() + " of RDS database " + r.n.DB
		}
		// Not upHint: it repeats the --db that was refused.
		return cloud.Usagef("stack %s keeps its tracking data in %s: mlstack does not move it back into sqlite; "+
			"`%s` keeps it on PostgreSQL", r.n.Stack, where, r.h.up(r.o.AllowCIDRs, r.o.SSH))
	}
	where := "on its server"
	if len(f.instances) == 0 {
		where = "in the kept bucket's backups (" + f.backups + ")"
	}
	return cloud.Usagef("stack %s keeps its tracking data in sqlite %s, and mlstack does not move it into PostgreSQL: "+
		"`%s` keeps the stack on sqlite; for PostgreSQL without that data, `%s` removes the stack, then `%s --db %s` makes it again",
		r.n.Stack, where, r.h.up(r.o.AllowCIDRs, r.o.SSH), r.h.cmd("down", "--yes"), r.h.up(r.o.AllowCIDRs, r.o.SSH), want)
}

// dbPlan is the database's part of the plan.
func (r *upRun) dbPlan() []cloud.PlanStep {
	if r.db != cloud.DBPostgres {
		return nil
	}
	return r.found.db.Plan(r.n, r.dbClass)
}

// readyDatabase is up's phase that waits for a postgres stack's database
// (see readyDatabase); with --no-wait it says what is left to do.
func (r *upRun) readyDatabase(ctx context.Context) error {
	if r.db != cloud.DBPostgres {
		return nil
	}
	if r.o.NoWait && r.found.db.Endpoint == "" {
		r.log.Info("the server starts once RDS database %s is available and `%s` (without --no-wait) has told it where it is",
			r.n.DB, r.upHint())
		return nil
	}
	if r.o.NoWait {
		return nil
	}
	return readyDatabase(ctx, r.s, r.found.db, r.n, r.tags, r.log)
}
