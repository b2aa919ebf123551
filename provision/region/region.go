// Package region is mlstack's one source of facts about AWS regions and
// partitions: which names are regions, and what differs between the
// partitions (the account that publishes Ubuntu images, the EC2 service
// principal, the DNS suffix).
package region

import (
	"maps"
	"regexp"
	"slices"
	"strings"
)

// nameRe matches region names of every partition: eu-west-3, us-gov-west-1,
// cn-northwest-1, eusc-de-east-1, us-isof-south-1.
var nameRe = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)

// Valid reports whether name has the shape of an AWS region name.
func Valid(name string) bool { return nameRe.MatchString(name) }

// known are the regions of the AWS SDK's partition metadata
// (internal/endpoints/awsrulesfn/partitions.json of aws-sdk-go-v2 v1.48.0,
// which the SDK cannot export; a test compares the two). A region opened
// after that release is not here: callers ask EC2 about it.
var known = map[string]bool{}

func init() {
	for _, r := range strings.Fields(`
		af-south-1 ap-east-1 ap-east-2 ap-northeast-1 ap-northeast-2 ap-northeast-3 ap-south-1 ap-south-2
		ap-southeast-1 ap-southeast-2 ap-southeast-3 ap-southeast-4 ap-southeast-5 ap-southeast-6 ap-southeast-7
		ca-central-1 ca-west-1 eu-central-1 eu-central-2 eu-north-1 eu-south-1 eu-south-2 eu-west-1 eu-west-2
		eu-west-3 il-central-1 me-central-1 me-south-1 me-west-1 mx-central-1 sa-east-1 sa-west-1 us-east-1
		us-east-2 us-west-1 us-west-2
		cn-north-1 cn-northwest-1
		eusc-de-east-1
		us-iso-east-1 us-iso-west-1 us-isob-east-1 us-isob-west-1 eu-isoe-west-1 us-isof-east-1 us-isof-south-1
		us-gov-east-1 us-gov-west-1`) {
		known[r] = true
	}
}

// Known reports whether the SDK's partition metadata lists name.
func Known(name string) bool { return known[name] }

// Names are the regions Known reports, sorted.
func Names() []string { return slices.Sorted(maps.Keys(known)) }

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

// isolated are AWS's isolated (ISO) partitions, by region prefix, with
// their DNS suffixes (the SDK's partitions.json). mlstack does not support
// them: their image publishers, endpoints and service principals are not
// known to it, and nothing of it is tested there.
var isolated = []Partition{
	{Name: "aws-iso", DNSSuffix: "c2s.ic.gov", Home: "us-iso-"},
	{Name: "aws-iso-b", DNSSuffix: "sc2s.sgov.gov", Home: "us-isob-"},
	{Name: "aws-iso-e", DNSSuffix: "cloud.adc-e.uk", Home: "eu-isoe-"},
	{Name: "aws-iso-f", DNSSuffix: "csp.hci.ic.gov", Home: "us-isof-"},
}

// Isolated names the ISO partition a region belongs to (aws-iso,
// aws-iso-b, aws-iso-e, aws-iso-f), or "" for any other region.
func Isolated(name string) string {
	for _, p := range isolated {
		if strings.HasPrefix(name, p.Home) {
			return p.Name
		}
	}
	return ""
}

// Of returns the partition a region belongs to. An ISO region's is its
// own, with no image publisher or principal: mlstack refuses those regions
// before using it, and no commercial value stands in.
func Of(name string) Partition {
	for _, p := range isolated {
		if strings.HasPrefix(name, p.Home) {
			return Partition{Name: p.Name, DNSSuffix: p.DNSSuffix}
		}
	}
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
