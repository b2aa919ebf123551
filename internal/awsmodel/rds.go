package awsmodel

import (
	"cmp"
	"maps"
	"slices"
)

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
	// Versions maps each PostgreSQL major version to the minor RDS makes
	// by default (CreateDBInstance with EngineVersion "17" makes 17.6);
	// nil: 17 → 17.6.
	Versions map[string]string
	// ClassesOf overrides Classes for one full version: RDS offers classes
	// per engine version, not per engine.
	ClassesOf map[string][]string
	busy      map[string]*dbBusy
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

// DefaultVersion is the full version RDS makes for engine and version (a
// major version, or a full one it has), as DescribeDBEngineVersions with
// DefaultOnly answers; "" when it has none.
func (r *RDS) DefaultVersion(engine, version string) string {
	versions := r.Versions
	if versions == nil {
		versions = map[string]string{"17": "17.6"}
	}
	if engine != "postgres" {
		return ""
	}
	if full, ok := versions[version]; ok {
		return full
	}
	for _, full := range versions {
		if full == version {
			return full
		}
	}
	return ""
}

// Offers reports whether RDS offers class for engine at version, as
// DescribeOrderableDBInstanceOptions answers: version is a full version
// (its filter matches versions exactly), or "" for any version.
func (r *RDS) Offers(engine, version, class string) bool {
	if engine != "postgres" {
		return false
	}
	if version == "" {
		return slices.Contains(r.classes(""), class) || slices.ContainsFunc(slices.Collect(maps.Values(r.ClassesOf)), func(c []string) bool {
			return slices.Contains(c, class)
		})
	}
	if r.DefaultVersion(engine, version) != version && r.ClassesOf[version] == nil {
		return false // no such full version
	}
	return slices.Contains(r.classes(version), class)
}

func (r *RDS) classes(version string) []string {
	if c, ok := r.ClassesOf[version]; ok {
		return c
	}
	if r.Classes == nil {
		return []string{"db.t4g.micro", "db.t3.micro"}
	}
	return r.Classes
}

// CreateDBInstance is RDS's answer to making a database of class at
// version (a major version: RDS makes its default minor): nil, or the
// refusal of a combination it does not offer.
func (r *RDS) CreateDBInstance(engine, version, class string) error {
	full := r.DefaultVersion(engine, version)
	if full != "" && r.Offers(engine, full, class) {
		return nil
	}
	return badRequest("InvalidParameterCombination", "RDS does not support creating a DB instance with the following combination: "+
		"DBInstanceClass="+class+", Engine="+engine+", EngineVersion="+cmp.Or(full, version)+", LicenseModel=postgresql-license. "+
		"For supported combinations of instance class and database engine version, see the documentation.")
}
