package awsmodel

import (
	"net/http"
	"sort"
)

// Kind is a kind of resource whose new id reads back late.
type Kind string

const (
	Instance Kind = "instance"
	Group    Kind = "group"
	KeyPair  Kind = "keypair" // by name
	Bucket   Kind = "bucket"  // by name
	Profile  Kind = "profile" // an IAM instance profile, by name, as RunInstances uses it
)

// Consistency is AWS's eventual consistency: a new instance, group or key
// pair answers *.NotFound for a while, S3 settings right after
// CreateBucket answer NoSuchBucket, a new instance profile is an invalid
// one to RunInstances, and a listing by filter leaves a new instance out.
type Consistency struct {
	For int // uses a new id stays unknown; 0: it reads back at once
	ids map[string]*unseen
}

type unseen struct {
	kind Kind
	left int
}

// ID is a new id still unknown.
type ID struct {
	Kind Kind
	ID   string
}

// Created starts a new id's unknown time.
func (c *Consistency) Created(kind Kind, id string) {
	if c.For <= 0 || id == "" {
		return
	}
	if c.ids == nil {
		c.ids = map[string]*unseen{}
	}
	c.ids[id] = &unseen{kind: kind, left: c.For}
}

// Use is AWS's answer to a call that names id as kind: nil once the id is
// known, else its NotFound answer (each one a use).
func (c *Consistency) Use(kind Kind, id string) error {
	u := c.ids[id]
	if u == nil || u.kind != kind || u.left <= 0 {
		return nil
	}
	u.left--
	return NotFound(kind, id)
}

// Listed reports whether a listing by filter shows id yet (each leaving out
// is a use).
func (c *Consistency) Listed(id string) bool {
	u := c.ids[id]
	if u == nil || u.left <= 0 {
		return true
	}
	u.left--
	return false
}

// Pending are the ids still unknown, in order (for a tier that finds them
// in a request's text).
func (c *Consistency) Pending() []ID {
	var out []ID
	for id, u := range c.ids {
		if u.left > 0 {
			out = append(out, ID{Kind: u.kind, ID: id})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// NotFound is AWS's answer for an id of kind it does not know.
func NotFound(kind Kind, id string) *Error {
	switch kind {
	case Instance:
		return badRequest("InvalidInstanceID.NotFound", "The instance ID '"+id+"' does not exist")
	case Group:
		return badRequest("InvalidGroup.NotFound", "The security group '"+id+"' does not exist")
	case KeyPair:
		return badRequest("InvalidKeyPair.NotFound", "The key pair '"+id+"' does not exist")
	case Bucket:
		return &Error{Code: "NoSuchBucket", Message: "The specified bucket does not exist", Status: http.StatusNotFound}
	case Profile:
		return badRequest("InvalidParameterValue", "Value ("+id+") for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name")
	}
	return badRequest("InvalidID", "The ID '"+id+"' is not valid")
}
