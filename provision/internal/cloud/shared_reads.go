package cloud

// One command asks AWS once for what cannot change while it runs. down
// reads the default VPC for the server's group, the database's group and
// the instances' own group, at discovery and again at deletion: eight
// DescribeVpcs calls per down became one.

import (
	"context"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// OpenSession is connectFor with the reads a command shares.
func OpenSession(ctx context.Context, a AWS) (*Session, error) {
	s, err := ConnectFor(ctx, a)
	if err != nil {
		return nil, err
	}
	s.EC2 = &sharedReads{EC2API: s.EC2}
	return s, nil
}

// sharedReads answers the default-VPC question from its first answer; every
// other call goes to the client. A failed call is not kept.
type sharedReads struct {
	EC2API
	mu         sync.Mutex
	defaultVPC *ec2.DescribeVpcsOutput
}

func (r *sharedReads) DescribeVpcs(ctx context.Context, in *ec2.DescribeVpcsInput, opts ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	if !isDefaultVPCQuery(in) {
		return r.EC2API.DescribeVpcs(ctx, in, opts...)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.defaultVPC != nil {
		return r.defaultVPC, nil
	}
	out, err := r.EC2API.DescribeVpcs(ctx, in, opts...)
	if err == nil {
		r.defaultVPC = out
	}
	return out, err
}

// isDefaultVPCQuery: only the is-default filter, nothing else asked.
func isDefaultVPCQuery(in *ec2.DescribeVpcsInput) bool {
	return in != nil && len(in.VpcIds) == 0 && in.NextToken == nil && len(in.Filters) == 1 &&
		aws.ToString(in.Filters[0].Name) == "is-default" && slices.Equal(in.Filters[0].Values, []string{"true"})
}
