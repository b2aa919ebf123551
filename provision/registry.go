package provision

// The registry of resource families: the verbs that are the same for every
// kind of resource — the inventory that status and down read, the listing
// of ls and sweeps, up --ttl's re-tagging, down's delete order, and the
// words for each kind — loop over one table, so that a new kind of
// resource is its own file plus one entry here. Finding and ensuring stay
// explicit per kind in up (up.go), where their order and the plan matter.

import (
	"context"
	"slices"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"
)

// family is what the uniform verbs know of one kind of resource, or of a
// few read together (the instances are told from look-alikes by their
// group, a database comes with its network and snapshots).
type family struct {
	// labels: each kind (as JSON names it) as people read it.
	labels map[string]string
	// inventory reads the stack's resources (same-named ones without the
	// stack's tag as stateForeign rows); the families read concurrently.
	inventory func(ctx context.Context, s *cloud.Session, n cloud.Names, pending string) (invPart, error)
	// listAll adds to set the stacks this family's global resources (IAM,
	// S3) name; listIn those of one region. Either may be nil.
	listAll func(ctx context.Context, s *cloud.Session, want map[string]bool, set *cloud.StackSet) error
	listIn  func(ctx context.Context, s *cloud.Session, region string, set *cloud.StackSet) error
	// retag moves mlstack:expires-at on what up found (new resources get
	// it at creation); an EC2 family names its ids in ec2IDs instead, and
	// one CreateTags call moves them all.
	retag  func(ctx context.Context, s *cloud.Session, f *found, n cloud.Names, expires string) error
	ec2IDs func(f *found) []string
	// deletes are its delete steps: the step of stage k runs after every
	// step of the stages before it, beside the other steps of stage k.
	deletes []deleteStep
}

// invPart is what one family's inventory read found: rows, and what else
// of it status and down use, applied once every read is in.
type invPart struct {
	rows  []cloud.Resource
	apply func(inv *stackInventory)
}

// deleteStep deletes the stack's resources of some kinds, as the inventory
// found them; a step that owns none of the inventory's rows is skipped.
type deleteStep struct {
	stage int
	owns  func(n cloud.Names, r cloud.Resource) bool
	run   func(ctx context.Context, s *cloud.Session, n cloud.Names, d deletion, inv *stackInventory, log *progress) error
}

// Delete stages. RDS deletes a database in minutes: the instances go
// meanwhile. A group cannot go while an interface of an instance is
// attached to it; a role while it is in a profile.
const (
	stageCompute = iota
	stageNetwork
	stageKeys
	stageIAM
	stageParams
	stageData
	stageUser
)

// families is the registry, in the order status lists and reads.
var families = []family{
	instanceFamily, keyPairFamily, userFamily, roleFamily, bucketFamily, paramFamily, databaseFamily,
}

// kindLabels are the kinds as people read them.
var kindLabels = func() map[string]string {
	m := map[string]string{}
	for _, f := range families {
		for k, v := range f.labels {
			m[k] = v
		}
	}
	return m
}()

// deleteOrder is the families' delete steps by stage.
var deleteOrder = func() [][]deleteStep {
	var stages [][]deleteStep
	for _, f := range families {
		for _, st := range f.deletes {
			for len(stages) <= st.stage {
				stages = append(stages, nil)
			}
			stages[st.stage] = append(stages[st.stage], st)
		}
	}
	return slices.DeleteFunc(stages, func(s []deleteStep) bool { return len(s) == 0 })
}()

// kinds is a deleteStep's owns for whole kinds.
func kinds(k ...string) func(cloud.Names, cloud.Resource) bool {
	return func(_ cloud.Names, r cloud.Resource) bool { return slices.Contains(k, r.Kind) }
}

// addIAMTags records the tags of the stack's IAM user or role (nil: none).
func (inv *stackInventory) addIAMTags(tags map[string]string) {
	if tags != nil {
		inv.iamTags = append(inv.iamTags, tags)
	}
}

var instanceFamily = family{
	labels: map[string]string{cloud.KindInstance: "instance", cloud.KindSG: "security group"},
	inventory: func(ctx context.Context, s *cloud.Session, n cloud.Names, _ string) (invPart, error) {
		sgs, rules, sgID, err := cloud.SGInventory(ctx, s.EC2, n)
		if err != nil {
			return invPart{}, err
		}
		insts, lookalikes, err := cloud.StackInstancesIn(ctx, s.EC2, n, sgID, cloud.LiveStates)
		return invPart{rows: append(cloud.InstanceInventory(insts), sgs...), apply: func(inv *stackInventory) {
			inv.insts, inv.lookalikes, inv.rules = insts, lookalikes, rules
		}}, err
	},
	listIn: func(ctx context.Context, s *cloud.Session, r string, set *cloud.StackSet) error {
		if err := cloud.ListInstances(ctx, s.EC2ForRegion(r), s.Account, r, set); err != nil {
			return err
		}
		return cloud.ListSecurityGroups(ctx, s.EC2ForRegion(r), r, set)
	},
	ec2IDs: func(f *found) []string { return append(cloud.InstanceTagIDs(f.instances), f.sg.TagIDs()...) },
	deletes: []deleteStep{
		{stageCompute, kinds(cloud.KindInstance), func(ctx context.Context, s *cloud.Session, n cloud.Names, d deletion, inv *stackInventory, log *progress) error {
			return terminateStackInstances(ctx, s, n, inv, d.timeout, log)
		}},
		{stageNetwork, func(n cloud.Names, r cloud.Resource) bool { return r.Kind == cloud.KindSG && r.Name == n.SecurityGroup },
			func(ctx context.Context, s *cloud.Session, n cloud.Names, _ deletion, inv *stackInventory, log *progress) error {
				own := slices.DeleteFunc(inv.of(cloud.KindSG), func(r cloud.Resource) bool { return r.Name != n.SecurityGroup })
				return cloud.DeleteSecurityGroups(ctx, s.EC2, own, 3*time.Minute, log)
			}},
	},
}

var keyPairFamily = family{
	labels: map[string]string{cloud.KindKeyPair: "key pair"},
	inventory: func(ctx context.Context, s *cloud.Session, n cloud.Names, _ string) (invPart, error) {
		rows, err := cloud.KeyPairInventory(ctx, s.EC2, n)
		return invPart{rows: rows}, err
	},
	listIn: func(ctx context.Context, s *cloud.Session, r string, set *cloud.StackSet) error {
		return cloud.ListKeyPairs(ctx, s.EC2ForRegion(r), r, set)
	},
	ec2IDs: func(f *found) []string { return f.keyPair.TagIDs() },
	deletes: []deleteStep{{stageKeys, kinds(cloud.KindKeyPair), func(ctx context.Context, s *cloud.Session, n cloud.Names, _ deletion, _ *stackInventory, log *progress) error {
		return cloud.DeleteKeyPair(ctx, s.EC2, n, log)
	}}},
}

var userFamily = family{
	labels: map[string]string{cloud.KindUser: "IAM user"},
	inventory: func(ctx context.Context, s *cloud.Session, n cloud.Names, _ string) (invPart, error) {
		rows, tags, err := cloud.UserInventory(ctx, s.IAM, n)
		return invPart{rows: rows, apply: func(inv *stackInventory) { inv.addIAMTags(tags) }}, err
	},
	listAll: func(ctx context.Context, s *cloud.Session, want map[string]bool, set *cloud.StackSet) error {
		return cloud.ListUsers(ctx, s.IAM, set, want)
	},
	retag: func(ctx context.Context, s *cloud.Session, f *found, n cloud.Names, expires string) error {
		if !f.user.Exists {
			return nil
		}
		return cloud.RetagUser(ctx, s.IAM, n, expires)
	},
	deletes: []deleteStep{{stageUser, kinds(cloud.KindUser), func(ctx context.Context, s *cloud.Session, n cloud.Names, _ deletion, _ *stackInventory, log *progress) error {
		return cloud.DeleteUser(ctx, s.IAM, n, log)
	}}},
}

var roleFamily = family{
	labels: map[string]string{cloud.KindRole: "IAM role", cloud.KindProfile: "instance profile"},
	inventory: func(ctx context.Context, s *cloud.Session, n cloud.Names, _ string) (invPart, error) {
		rows, tags, err := cloud.RoleInventory(ctx, s.IAM, n)
		return invPart{rows: rows, apply: func(inv *stackInventory) { inv.addIAMTags(tags) }}, err
	},
	listAll: func(ctx context.Context, s *cloud.Session, want map[string]bool, set *cloud.StackSet) error {
		return cloud.ListRoles(ctx, s.IAM, set, want)
	},
	retag: func(ctx context.Context, s *cloud.Session, f *found, n cloud.Names, expires string) error {
		return cloud.RetagRole(ctx, s.IAM, f.role, n, expires)
	},
	deletes: []deleteStep{{stageIAM, kinds(cloud.KindRole, cloud.KindProfile), func(ctx context.Context, s *cloud.Session, n cloud.Names, _ deletion, inv *stackInventory, log *progress) error {
		return cloud.DeleteRole(ctx, s.IAM, n, len(inv.of(cloud.KindProfile)) > 0, len(inv.of(cloud.KindRole)) > 0, log)
	}}},
}

var bucketFamily = family{
	labels: map[string]string{cloud.KindBucket: "S3 bucket"},
	inventory: func(ctx context.Context, s *cloud.Session, n cloud.Names, pending string) (invPart, error) {
		rows, err := cloud.BucketInventory(ctx, s.S3, n, pending)
		return invPart{rows: rows}, err
	},
	listAll: func(ctx context.Context, s *cloud.Session, want map[string]bool, set *cloud.StackSet) error {
		return cloud.ListBuckets(ctx, s.S3, s.Account, set, want)
	},
	retag: func(ctx context.Context, s *cloud.Session, f *found, n cloud.Names, expires string) error {
		if !f.bucket.Exists {
			return nil
		}
		return cloud.RetagBucket(ctx, s.S3, n, expires)
	},
	deletes: []deleteStep{{stageData, kinds(cloud.KindBucket), func(ctx context.Context, s *cloud.Session, n cloud.Names, _ deletion, _ *stackInventory, log *progress) error {
		return cloud.DeleteBucket(ctx, s.S3, n, log)
	}}},
}

var paramFamily = family{
	labels: map[string]string{cloud.KindParam: "SSM parameter"},
	inventory: func(ctx context.Context, s *cloud.Session, n cloud.Names, _ string) (invPart, error) {
		rows, mode, err := cloud.ParamInventory(ctx, s.SSM, n)
		return invPart{rows: rows, apply: func(inv *stackInventory) { inv.mode = mode }}, err
	},
	deletes: []deleteStep{{stageParams, kinds(cloud.KindParam), func(ctx context.Context, s *cloud.Session, n cloud.Names, _ deletion, inv *stackInventory, log *progress) error {
		var names []string
		for _, r := range inv.of(cloud.KindParam) {
			names = append(names, r.ID)
		}
		return cloud.DeleteParams(ctx, s.SSM, n, names, log)
	}}},
}

var databaseFamily = family{
	labels: map[string]string{cloud.KindDB: "RDS database", cloud.KindDBSubnetGroup: "DB subnet group", cloud.KindDBSnapshot: "RDS snapshot"},
	inventory: func(ctx context.Context, s *cloud.Session, n cloud.Names, _ string) (invPart, error) {
		rows, db, err := dbInventory(ctx, s, n)
		return invPart{rows: rows, apply: func(inv *stackInventory) { inv.db = db }}, err
	},
	listIn: func(ctx context.Context, s *cloud.Session, r string, set *cloud.StackSet) error {
		return listDatabases(ctx, s.RDSForRegion(r), r, set)
	},
	retag: func(ctx context.Context, s *cloud.Session, f *found, _ cloud.Names, expires string) error {
		return retagDatabase(ctx, s.RDS, f.db, expires)
	},
	deletes: []deleteStep{{stageCompute, func(n cloud.Names, r cloud.Resource) bool {
		return slices.Contains([]string{cloud.KindDB, cloud.KindDBSnapshot, cloud.KindDBSubnetGroup}, r.Kind) || r.Kind == cloud.KindSG && r.Name == n.DBSecurityGroup
	}, func(ctx context.Context, s *cloud.Session, n cloud.Names, d deletion, _ *stackInventory, log *progress) error {
		return deleteDatabase(ctx, s, n, d.keepData, log)
	}}},
}

// label is the resource as a message names it.
func label(r cloud.Resource) string {
	s := kindLabels[r.Kind] + " " + r.Name
	if r.ID != "" && r.ID != r.Name && (r.Kind == cloud.KindSG || r.Kind == cloud.KindInstance) {
		s += " (" + r.ID + ")"
	}
	return s
}
