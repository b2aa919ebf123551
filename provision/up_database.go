package provision

// up's database phase (--db postgres): settle the stack's engine, plan and
// make the RDS database (rds_database*.go), and wait for it before the
// server is asked for its health.

import (
	"cmp"
	"context"

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
	case f.db.exists():
		have = DBPostgres
	case len(f.instances) > 0 || f.backups != "":
		have = DBSQLite
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
	if r.db != DBPostgres {
		return nil
	}
	if !f.db.networkRead {
		if err := f.db.readNetwork(ctx, r.s, r.n); err != nil {
			return err
		}
	}
	if f.db.foreign != nil {
		return f.db.foreign
	}
	switch {
	case f.db.inst != nil:
		r.dbClass = aws.ToString(f.db.inst.DBInstanceClass)
		return nil
	case f.db.restorable() != "" && r.o.DBClass == "":
		return nil // RDS restores a snapshot with the class it was taken of
	}
	var err error
	r.dbClass, err = chooseDBClass(ctx, r.s.rds, r.o.DBClass, r.s.region)
	return err
}

// switchRefused says why the stack keeps its engine, and what would do.
func (r *upRun) switchRefused(have, want string, f *found) error {
	if have == DBPostgres {
		where := "RDS database " + r.n.DB
		if f.db.inst == nil {
			where = "the kept snapshot " + f.db.restorable() + " of RDS database " + r.n.DB
		}
		// Not upHint: it repeats the --db that was refused.
		return usagef("stack %s keeps its tracking data in %s: mlstack does not move it back into sqlite; "+
			"`%s` keeps it on PostgreSQL", r.n.Stack, where, r.h.up(r.o.AllowCIDRs, r.o.SSH))
	}
	where := "on its server"
	if len(f.instances) == 0 {
		where = "in the kept bucket's backups (" + f.backups + ")"
	}
	return usagef("stack %s keeps its tracking data in sqlite %s, and mlstack does not move it into PostgreSQL: "+
		"`%s` keeps the stack on sqlite; for PostgreSQL without that data, `%s` removes the stack, then `%s --db %s` makes it again",
		r.n.Stack, where, r.h.up(r.o.AllowCIDRs, r.o.SSH), r.h.cmd("down", "--yes"), r.h.up(r.o.AllowCIDRs, r.o.SSH), want)
}

// dbPlan is the database's part of the plan.
func (r *upRun) dbPlan() []planStep {
	if r.db != DBPostgres {
		return nil
	}
	return r.found.db.plan(r.n, r.dbClass)
}

// readyDatabase is up's phase that waits for a postgres stack's database
// (see readyDatabase); with --no-wait it says what is left to do.
func (r *upRun) readyDatabase(ctx context.Context) error {
	if r.db != DBPostgres {
		return nil
	}
	if r.o.NoWait && r.found.db.endpoint == "" {
		r.log.Info("the server starts once RDS database %s is available and `%s` (without --no-wait) has told it where it is",
			r.n.DB, r.upHint())
		return nil
	}
	if r.o.NoWait {
		return nil
	}
	return readyDatabase(ctx, r.s, r.found.db, r.n, r.tags, r.log)
}
