// Package region is mlstack's one source of facts about AWS regions and
// partitions: which names are regions, and what differs between the
// partitions (the account that publishes Ubuntu images, the EC2 service
// principal, the DNS suffix).
package region

import (
	"regexp"
	"strings"
)

// nameRe matches region names of every partition: eu-west-3, us-gov-west-1,
// cn-northwest-1, eusc-de-east-1, us-isof-south-1.
var nameRe = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)

// Valid reports whether name has the shape of an AWS region name.
func Valid(name string) bool { return nameRe.MatchString(name) }

// Partition is what mlstack needs to know of one AWS partition.
type Partition struct {
	Name string // aws, aws-cn, aws-us-gov, aws-eusc
	// CanonicalOwner publishes the official Ubuntu images; "" where mlstack
	// does not know it.
	CanonicalOwner string
	// EC2Principal is the service principal instances assume roles with.
	EC2Principal string
	DNSSuffix    string
	// Home is a region always enabled in the partition.
	Home string
}

var (
	commercial = Partition{Name: "aws", CanonicalOwner: "099720109477", EC2Principal: "ec2.amazonaws.com", DNSSuffix: "amazonaws.com", Home: "us-east-1"}
	china      = Partition{Name: "aws-cn", CanonicalOwner: "837727238323", EC2Principal: "ec2.amazonaws.com.cn", DNSSuffix: "amazonaws.com.cn", Home: "cn-north-1"}
	govCloud   = Partition{Name: "aws-us-gov", CanonicalOwner: "513442679011", EC2Principal: "ec2.amazonaws.com", DNSSuffix: "amazonaws.com", Home: "us-gov-west-1"}
	// The European Sovereign Cloud: Canonical's account there is not known
	// to mlstack, so up refuses with a clear error rather than guessing.
	sovereign = Partition{Name: "aws-eusc", EC2Principal: "ec2.amazonaws.com", DNSSuffix: "amazonaws.eu"}
)

// Of returns the partition a region belongs to.
func Of(name string) Partition {
	switch {
	case strings.HasPrefix(name, "cn-"):
		return china
	case strings.HasPrefix(name, "us-gov-"):
		return govCloud
	case strings.HasPrefix(name, "eusc-"):
		return sovereign
	}
	return commercial
}
