package awsmodel

import "slices"

// RDS statuses a database passes through (moto skips them all).
const (
	DBCreating  = "creating"
	DBResetting = "resetting-master-credentials"
	DBDeleting  = "deleting"
	DBAvailable = "available"
)

// RDS is RDS taking minutes where an emulator takes none: a new or restored
// database is creating (no endpoint yet), a new master password is being
// set, a deleted database is deleting and still holds its subnet group;
// each describe that shows the state stands for time passing.
type RDS struct {
	Slow int // describes a database shows a passing state; 0: none
	// Classes RDS offers for PostgreSQL; nil: db.t4g.micro and db.t3.micro.
	Classes []string
	busy    map[string]*dbBusy
}

type dbBusy struct {
	status string
	left   int
}

func (r *RDS) enter(id, status string) {
	if r.busy == nil {
		r.busy = map[string]*dbBusy{}
	}
	r.busy[id] = &dbBusy{status: status, left: r.Slow}
}

// Created: a database was created or restored.
func (r *RDS) Created(id string) { r.enter(id, DBCreating) }

// Modified: a database was modified; a new master password takes a while.
func (r *RDS) Modified(id string, password bool) {
	if password {
		r.enter(id, DBResetting)
	}
}

// Deleted: a database is being deleted.
func (r *RDS) Deleted(id string) { r.enter(id, DBDeleting) }

// Describe is the passing status a describe of id shows now ("" when it
// shows none: the database is done with it, or was never in one), and
// whether the database still exists (false once a deletion is over).
func (r *RDS) Describe(id string) (status string, exists bool) {
	b := r.busy[id]
	if b == nil || b.left <= 0 {
		return "", b == nil || b.status != DBDeleting
	}
	b.left--
	return b.status, true
}

// Delete is RDS's answer to DeleteDBInstance: it deletes (or snapshots) a
// database only once it is made (each refusal stands for time passing).
func (r *RDS) Delete(id string) error {
	b := r.busy[id]
	if b == nil || b.status == DBDeleting || b.left <= 0 {
		return nil
	}
	b.left--
	return badRequest("InvalidDBInstanceState", "Instance is not in available state.")
}

// DeleteSubnetGroup is RDS's answer to DeleteDBSubnetGroup while a
// database that used it is still deleting.
func (r *RDS) DeleteSubnetGroup() error {
	for _, b := range r.busy {
		if b.status == DBDeleting && b.left > 0 {
			return badRequest("InvalidDBSubnetGroupStateFault", "Cannot delete the subnet group because at least one database instance is still using it.")
		}
	}
	return nil
}

// Offers reports whether RDS offers class for engine.
func (r *RDS) Offers(engine, class string) bool {
	classes := r.Classes
	if classes == nil {
		classes = []string{"db.t4g.micro", "db.t3.micro"}
	}
	return engine == "postgres" && slices.Contains(classes, class)
}
