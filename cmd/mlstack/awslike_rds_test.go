package main

// RDS as AWS shows it: moto makes, restores and deletes a database at
// once, while RDS takes minutes in each, passing through states (creating,
// resetting-master-credentials, deleting) in which the database has no
// endpoint, or still exists and holds its subnet group; and moto offers no
// PostgreSQL class at all, where RDS offers the burstable ones.

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// rdsLike holds the RDS behaviours (see awsLike).
type rdsLike struct {
	// slow: describes that show a new, restored, modified or deleted
	// database in its passing state.
	slow int
	busy map[string]*rdsBusy // by database id
	// classes RDS offers for PostgreSQL; nil: db.t4g.micro and db.t3.micro.
	classes []string
}

// rdsBusy is a database in a passing state.
type rdsBusy struct {
	status string
	left   int
	member string // deleting: the DBInstance element moto answered last
}

var (
	dbIDRe     = regexp.MustCompile(`<DBInstanceIdentifier>([^<]+)</DBInstanceIdentifier>`)
	dbStatusRe = regexp.MustCompile(`<DBInstanceStatus>[^<]*</DBInstanceStatus>`)
	endpointRe = regexp.MustCompile(`<Endpoint>.*?</Endpoint>`)
	dbMemberRe = regexp.MustCompile(`(?s)<DBInstance>.*?</DBInstance>`)
)

const rdsXMLNS = `xmlns="http://rds.amazonaws.com/doc/2014-10-31/"`

// rdsAnswer answers what moto cannot: the classes RDS offers, and a
// subnet group still in use by a database being deleted.
func (a *awsLike) rdsAnswer(w http.ResponseWriter, svc string, form url.Values) bool {
	if svc != "rds" {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch form.Get("Action") {
	case "DescribeOrderableDBInstanceOptions":
		classes := a.rds.classes
		if classes == nil {
			classes = []string{"db.t4g.micro", "db.t3.micro"}
		}
		var items string
		if c := form.Get("DBInstanceClass"); form.Get("Engine") == "postgres" && slices.Contains(classes, c) {
			items = fmt.Sprintf(`<OrderableDBInstanceOption><Engine>postgres</Engine><EngineVersion>17.6</EngineVersion><DBInstanceClass>%s</DBInstanceClass><Vpc>true</Vpc></OrderableDBInstanceOption>`, c)
		}
		a.note("orderable classes")
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<DescribeOrderableDBInstanceOptionsResponse %s><DescribeOrderableDBInstanceOptionsResult><OrderableDBInstanceOptions>%s</OrderableDBInstanceOptions></DescribeOrderableDBInstanceOptionsResult><ResponseMetadata><RequestId>aws-like</RequestId></ResponseMetadata></DescribeOrderableDBInstanceOptionsResponse>`, rdsXMLNS, items)
		return true
	case "DeleteDBInstance":
		// RDS deletes (or snapshots) a database only once it is made; each
		// refusal stands for time passing.
		if b := a.rds.busy[form.Get("DBInstanceIdentifier")]; b != nil && b.status != "deleting" && b.left > 0 {
			b.left--
			a.note("database busy")
			writeAWSError(w, "rds", http.StatusBadRequest, "InvalidDBInstanceState", "Instance is not in available state.")
			return true
		}
	case "DeleteDBSubnetGroup":
		for _, b := range a.rds.busy {
			if b.status == "deleting" && b.left > 0 {
				a.note("subnet group in use")
				writeAWSError(w, "rds", http.StatusBadRequest, "InvalidDBSubnetGroupStateFault", "Cannot delete the subnet group because at least one database instance is still using it.")
				return true
			}
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
		a.rds.busy[id] = &rdsBusy{status: "creating", left: a.rds.slow}
	case "ModifyDBInstance":
		if form.Get("MasterUserPassword") != "" {
			a.rds.busy[id] = &rdsBusy{status: "resetting-master-credentials", left: a.rds.slow}
		}
	case "DeleteDBInstance":
		a.rds.busy[id] = &rdsBusy{status: "deleting", left: a.rds.slow, member: dbMemberRe.FindString(string(out))}
	case "DescribeDBInstances":
		return dbMemberRe.ReplaceAllFunc(out, func(m []byte) []byte {
			b := a.rds.busy[firstMatch(dbIDRe, m)]
			if b == nil || b.left == 0 || b.status == "deleting" {
				return m
			}
			b.left--
			a.note("database " + b.status)
			m = dbStatusRe.ReplaceAll(m, []byte("<DBInstanceStatus>"+b.status+"</DBInstanceStatus>"))
			if b.status == "creating" {
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
	if svc != "rds" || form.Get("Action") != "DescribeDBInstances" {
		return nil
	}
	b := a.rds.busy[form.Get("DBInstanceIdentifier")]
	if b == nil || b.status != "deleting" || b.left == 0 || b.member == "" {
		return nil
	}
	b.left--
	a.note("database deleting")
	m := dbStatusRe.ReplaceAllString(b.member, "<DBInstanceStatus>deleting</DBInstanceStatus>")
	return []byte(fmt.Sprintf(`<DescribeDBInstancesResponse %s><DescribeDBInstancesResult><DBInstances>%s</DBInstances></DescribeDBInstancesResult><ResponseMetadata><RequestId>aws-like</RequestId></ResponseMetadata></DescribeDBInstancesResponse>`,
		rdsXMLNS, strings.TrimSpace(m)))
}
