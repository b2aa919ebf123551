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
)

// family is what the uniform verbs know of one kind of resource, or of a
// few read together (the instances are told from look-alikes by their
// group, a database comes with its network and snapshots).
type family struct {
	// labels: each kind (as JSON names it) as people read it.
	labels map[string]string
	// inventory reads the stack's resources (same-named ones without the
	// stack's tag as stateForeign rows); the families read concurrently.
	inventory func(ctx context.Context, s *session, n names, pending string) (invPart, error)
	// listAll adds to set the stacks this family's global resources (IAM,
	// S3) name; listIn those of one region. Either may be nil.
	listAll func(ctx context.Context, s *session, want map[string]bool, set *stackSet) error
	listIn  func(ctx context.Context, s *session, region string, set *stackSet) error
	// retag moves mlstack:expires-at on what up found (new resources get
	// it at creation); an EC2 family names its ids in ec2IDs instead, and
	// one CreateTags call moves them all.
	retag  func(ctx context.Context, s *session, f *found, n names, expires string) error
	ec2IDs func(f *found) []string
	// deletes are its delete steps: the step of stage k runs after every
	// step of the stages before it, beside the other steps of stage k.
	deletes []deleteStep
}

// invPart is what one family's inventory read found: rows, and what else
// of it status and down use, applied once every read is in.
type invPart struct {
	rows  []resource
	apply func(inv *stackInventory)
}

// deleteStep deletes the stack's resources of some kinds, as the inventory
// found them; a step that owns none of the inventory's rows is skipped.
type deleteStep struct {
	stage int
	owns  func(n names, r resource) bool
	run   func(ctx context.Context, s *session, n names, d deletion, inv *stackInventory, log *progress) error
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
func kinds(k ...string) func(names, resource) bool {
	return func(_ names, r resource) bool { return slices.Contains(k, r.Kind) }
}

// addIAMTags records the tags of the stack's IAM user or role (nil: none).
func (inv *stackInventory) addIAMTags(tags map[string]string) {
	if tags != nil {
		inv.iamTags = append(inv.iamTags, tags)
	}
}

var instanceFamily = family{
	labels: map[string]string{kindInstance: "instance", kindSG: "security group"},
	inventory: func(ctx context.Context, s *session, n names, _ string) (invPart, error) {
		sgs, rules, sgID, err := sgInventory(ctx, s.ec2, n)
		if err != nil {
			return invPart{}, err
		}
		insts, lookalikes, err := stackInstancesIn(ctx, s.ec2, n, sgID, liveStates)
		return invPart{rows: append(instanceInventory(insts), sgs...), apply: func(inv *stackInventory) {
			inv.insts, inv.lookalikes, inv.rules = insts, lookalikes, rules
		}}, err
	},
	listIn: func(ctx context.Context, s *session, r string, set *stackSet) error {
		if err := listInstances(ctx, s.ec2ForRegion(r), s.account, r, set); err != nil {
			return err
		}
		return listSecurityGroups(ctx, s.ec2ForRegion(r), r, set)
	},
	ec2IDs: func(f *found) []string { return append(instanceTagIDs(f.instances), f.sg.tagIDs()...) },
	deletes: []deleteStep{
		{stageCompute, kinds(kindInstance), func(ctx context.Context, s *session, n names, d deletion, inv *stackInventory, log *progress) error {
			return terminateStackInstances(ctx, s, n, inv, d.timeout, log)
		}},
		{stageNetwork, func(n names, r resource) bool { return r.Kind == kindSG && r.Name == n.SecurityGroup },
			func(ctx context.Context, s *session, n names, _ deletion, inv *stackInventory, log *progress) error {
				own := slices.DeleteFunc(inv.of(kindSG), func(r resource) bool { return r.Name != n.SecurityGroup })
				return deleteSecurityGroups(ctx, s.ec2, own, 3*time.Minute, log)
			}},
	},
}

var keyPairFamily = family{
	labels: map[string]string{kindKeyPair: "key pair"},
	inventory: func(ctx context.Context, s *session, n names, _ string) (invPart, error) {
		rows, err := keyPairInventory(ctx, s.ec2, n)
		return invPart{rows: rows}, err
	},
	listIn: func(ctx context.Context, s *session, r string, set *stackSet) error {
		return listKeyPairs(ctx, s.ec2ForRegion(r), r, set)
	},
	ec2IDs: func(f *found) []string { return f.keyPair.tagIDs() },
	deletes: []deleteStep{{stageKeys, kinds(kindKeyPair), func(ctx context.Context, s *session, n names, _ deletion, _ *stackInventory, log *progress) error {
		return deleteKeyPair(ctx, s.ec2, n, log)
	}}},
}

var userFamily = family{
	labels: map[string]string{kindUser: "IAM user"},
	inventory: func(ctx context.Context, s *session, n names, _ string) (invPart, error) {
		rows, tags, err := userInventory(ctx, s.iam, n)
		return invPart{rows: rows, apply: func(inv *stackInventory) { inv.addIAMTags(tags) }}, err
	},
	listAll: func(ctx context.Context, s *session, want map[string]bool, set *stackSet) error {
		return listUsers(ctx, s.iam, set, want)
	},
	retag: func(ctx context.Context, s *session, f *found, n names, expires string) error {
		if !f.user.exists {
			return nil
		}
		return retagUser(ctx, s.iam, n, expires)
	},
	deletes: []deleteStep{{stageUser, kinds(kindUser), func(ctx context.Context, s *session, n names, _ deletion, _ *stackInventory, log *progress) error {
		return deleteUser(ctx, s.iam, n, log)
	}}},
}

var roleFamily = family{
	labels: map[string]string{kindRole: "IAM role", kindProfile: "instance profile"},
	inventory: func(ctx context.Context, s *session, n names, _ string) (invPart, error) {
		rows, tags, err := roleInventory(ctx, s.iam, n)
		return invPart{rows: rows, apply: func(inv *stackInventory) { inv.addIAMTags(tags) }}, err
	},
	listAll: func(ctx context.Context, s *session, want map[string]bool, set *stackSet) error {
		return listRoles(ctx, s.iam, set, want)
	},
	retag: func(ctx context.Context, s *session, f *found, n names, expires string) error {
		return retagRole(ctx, s.iam, f.role, n, expires)
	},
	deletes: []deleteStep{{stageIAM, kinds(kindRole, kindProfile), func(ctx context.Context, s *session, n names, _ deletion, inv *stackInventory, log *progress) error {
		return deleteRole(ctx, s.iam, n, len(inv.of(kindProfile)) > 0, len(inv.of(kindRole)) > 0, log)
	}}},
}

var bucketFamily = family{
	labels: map[string]string{kindBucket: "S3 bucket"},
	inventory: func(ctx context.Context, s *session, n names, pending string) (invPart, error) {
		rows, err := bucketInventory(ctx, s.s3, n, pending)
		return invPart{rows: rows}, err
	},
	listAll: func(ctx context.Context, s *session, want map[string]bool, set *stackSet) error {
		return listBuckets(ctx, s.s3, s.account, set, want)
	},
	retag: func(ctx context.Context, s *session, f *found, n names, expires string) error {
		if !f.bucket.exists {
			return nil
		}
		return retagBucket(ctx, s.s3, n, expires)
	},
	deletes: []deleteStep{{stageData, kinds(kindBucket), func(ctx context.Context, s *session, n names, _ deletion, _ *stackInventory, log *progress) error {
		return deleteBucket(ctx, s.s3, n, log)
	}}},
}

var paramFamily = family{
	labels: map[string]string{kindParam: "SSM parameter"},
	inventory: func(ctx context.Context, s *session, n names, _ string) (invPart, error) {
		rows, mode, err := paramInventory(ctx, s.ssm, n)
		return invPart{rows: rows, apply: func(inv *stackInventory) { inv.mode = mode }}, err
	},
	deletes: []deleteStep{{stageParams, kinds(kindParam), func(ctx context.Context, s *session, n names, _ deletion, inv *stackInventory, log *progress) error {
		var names []string
		for _, r := range inv.of(kindParam) {
			names = append(names, r.ID)
		}
		return deleteParams(ctx, s.ssm, n, names, log)
	}}},
}

var databaseFamily = family{
	labels: map[string]string{kindDB: "RDS database", kindDBSubnetGroup: "DB subnet group", kindDBSnapshot: "RDS snapshot"},
	inventory: func(ctx context.Context, s *session, n names, _ string) (invPart, error) {
		rows, db, err := dbInventory(ctx, s, n)
		return invPart{rows: rows, apply: func(inv *stackInventory) { inv.db = db }}, err
	},
	listIn: func(ctx context.Context, s *session, r string, set *stackSet) error {
		return listDatabases(ctx, s.rdsForRegion(r), r, set)
	},
	retag: func(ctx context.Context, s *session, f *found, _ names, expires string) error {
		return retagDatabase(ctx, s.rds, f.db, expires)
	},
	deletes: []deleteStep{{stageCompute, func(n names, r resource) bool {
		return slices.Contains([]string{kindDB, kindDBSnapshot, kindDBSubnetGroup}, r.Kind) || r.Kind == kindSG && r.Name == n.DBSecurityGroup
	}, func(ctx context.Context, s *session, n names, d deletion, _ *stackInventory, log *progress) error {
		return deleteDatabase(ctx, s, n, d.keepData, log)
	}}},
}

// label is the resource as a message names it.
func label(r resource) string {
	s := kindLabels[r.Kind] + " " + r.Name
	if r.ID != "" && r.ID != r.Name && (r.Kind == kindSG || r.Kind == kindInstance) {
		s += " (" + r.ID + ")"
	}
	return s
}
