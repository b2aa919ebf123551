package main

// RDS as AWS shows it: moto makes, restores and deletes a database at
// once, while RDS takes minutes in each, passing through states (creating,
// resetting-master-credentials, deleting) in which the database has no
// endpoint, or still exists and holds its subnet group; and moto offers no
// PostgreSQL class at all, where RDS offers the burstable ones. The states
// and classes are internal/awsmodel's RDS; this file speaks RDS's XML.

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

var (
	dbIDRe     = regexp.MustCompile(`<DBInstanceIdentifier>([^<]+)</DBInstanceIdentifier>`)
	dbStatusRe = regexp.MustCompile(`<DBInstanceStatus>[^<]*</DBInstanceStatus>`)
	endpointRe = regexp.MustCompile(`<Endpoint>.*?</Endpoint>`)
	dbMemberRe = regexp.MustCompile(`(?s)<DBInstance>.*?</DBInstance>`)
)

const rdsXMLNS = `xmlns="http://rds.amazonaws.com/doc/2014-10-31/"`

// rdsAnswer answers what moto cannot: the classes RDS offers per engine
// version, its default minor of a major version, combinations it refuses, and a
// subnet group still in use by a database being deleted.
func (a *awsLike) rdsAnswer(w http.ResponseWriter, svc string, form url.Values) bool {
	if svc != "rds" {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch form.Get("Action") {
	case "DescribeOrderableDBInstanceOptions":
		var items string
		if c, v := form.Get("DBInstanceClass"), form.Get("EngineVersion"); a.rds.Offers(form.Get("Engine"), v, c) {
			items = fmt.Sprintf(`<OrderableDBInstanceOption><Engine>postgres</Engine><EngineVersion>%s</EngineVersion><DBInstanceClass>%s</DBInstanceClass><Vpc>true</Vpc></OrderableDBInstanceOption>`,
				cmp.Or(v, a.rds.DefaultVersion("postgres", "17")), c)
		}
		a.note("orderable classes")
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<DescribeOrderableDBInstanceOptionsResponse %s><DescribeOrderableDBInstanceOptionsResult><OrderableDBInstanceOptions>%s</OrderableDBInstanceOptions></DescribeOrderableDBInstanceOptionsResult><ResponseMetadata><RequestId>aws-like</RequestId></ResponseMetadata></DescribeOrderableDBInstanceOptionsResponse>`, rdsXMLNS, items)
		return true
	case "DescribeDBEngineVersions": // moto has none: the model's default minor of the major asked
		var items string
		if v := a.rds.DefaultVersion(form.Get("Engine"), form.Get("EngineVersion")); v != "" && form.Get("DefaultOnly") == "true" {
			items = fmt.Sprintf(`<DBEngineVersion><Engine>postgres</Engine><EngineVersion>%s</EngineVersion></DBEngineVersion>`, v)
		}
		a.note("engine versions")
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<DescribeDBEngineVersionsResponse %s><DescribeDBEngineVersionsResult><DBEngineVersions>%s</DBEngineVersions></DescribeDBEngineVersionsResult><ResponseMetadata><RequestId>aws-like</RequestId></ResponseMetadata></DescribeDBEngineVersionsResponse>`, rdsXMLNS, items)
		return true
	case "CreateDBInstance": // moto makes any combination
		if err := a.rds.CreateDBInstance(form.Get("Engine"), form.Get("EngineVersion"), form.Get("DBInstanceClass")); err != nil {
			a.note("combination not offered")
			writeModelError(w, "rds", err)
			return true
		}
	case "DeleteDBInstance":
		// RDS deletes (or snapshots) a database only once it is made; each
		// refusal stands for time passing.
		if err := a.rds.Delete(form.Get("DBInstanceIdentifier")); err != nil {
			a.note("database busy")
			writeModelError(w, "rds", err)
			return true
		}
	case "DeleteDBSubnetGroup":
		if err := a.rds.DeleteSubnetGroup(); err != nil {
			a.note("subnet group in use")
			writeModelError(w, "rds", err)
			return true
		}
	}
	return false
}

// rdsAfter notes the databases that enter a passing state, and shows them
// in it. The caller holds mu.
func (a *awsLike) rdsAfter(form url.Values, out []byte) []byte {
	id := form.Get("DBInstanceIdentifier")
	switch form.Get("Action") {
	case "CreateDBInstance", "RestoreDBInstanceFromDBSnapshot":
		a.rds.Created(id)
		delete(a.dbMembers, id)
	case "ModifyDBInstance":
		a.rds.Modified(id, form.Get("MasterUserPassword") != "")
	case "DeleteDBInstance":
		a.rds.Deleted(id)
		a.dbMembers[id] = dbMemberRe.FindString(string(out))
	case "DescribeDBInstances":
		return dbMemberRe.ReplaceAllFunc(out, func(m []byte) []byte {
			status, _ := a.rds.Describe(firstMatch(dbIDRe, m))
			if status == "" {
				return m
			}
			a.note("database " + status)
			m = dbStatusRe.ReplaceAll(m, []byte("<DBInstanceStatus>"+status+"</DBInstanceStatus>"))
			if status == awsmodel.DBCreating {
				m = endpointRe.ReplaceAll(m, nil)
			}
			return m
		})
	}
	return out
}

// rdsDeleting answers a describe of a database moto deleted at once as
// RDS does while it deletes it; nil when moto's answer stands. The caller
// holds mu.
func (a *awsLike) rdsDeleting(svc string, form url.Values) []byte {
	id := form.Get("DBInstanceIdentifier")
	if svc != "rds" || form.Get("Action") != "DescribeDBInstances" || a.dbMembers[id] == "" {
		return nil
	}
	if status, _ := a.rds.Describe(id); status != awsmodel.DBDeleting {
		return nil
	}
	a.note("database deleting")
	m := dbStatusRe.ReplaceAllString(a.dbMembers[id], "<DBInstanceStatus>deleting</DBInstanceStatus>")
	return []byte(fmt.Sprintf(`<DescribeDBInstancesResponse %s><DescribeDBInstancesResult><DBInstances>%s</DBInstances></DescribeDBInstancesResult><ResponseMetadata><RequestId>aws-like</RequestId></ResponseMetadata></DescribeDBInstancesResponse>`,
		rdsXMLNS, strings.TrimSpace(m)))
}
