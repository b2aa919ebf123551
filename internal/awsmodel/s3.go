package awsmodel

import "net/http"

// BusyNames is S3 keeping a deleted bucket's name for a while: CreateBucket
// of it answers OperationAborted (and others may claim it later).
type BusyNames struct {
	For  int // CreateBucket calls refused after a delete; 0: free at once
	left map[string]int
}

// Deleted starts a name's busy time.
func (b *BusyNames) Deleted(name string) {
	if b.For <= 0 {
		return
	}
	if b.left == nil {
		b.left = map[string]int{}
	}
	b.left[name] = b.For
}

// Create is S3's answer to CreateBucket of name: nil, or OperationAborted
// while the name is busy (each refusal stands for time passing).
func (b *BusyNames) Create(name string) error {
	if b.left[name] <= 0 {
		return nil
	}
	b.left[name]--
	return &Error{Code: "OperationAborted", Status: http.StatusConflict,
		Message: "A conflicting conditional operation is currently in progress against this resource. Please try again."}
}

// CreateBucketTags is S3's answer to a CreateBucket that carries tags
// (CreateBucketConfiguration.Tags) from a principal allowed
// s3:CreateBucket: tagging at creation needs s3:TagResource as well, and
// without it the create itself is refused.
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html
func CreateBucketTags(canTag bool, tags int) error {
	if canTag || tags == 0 {
		return nil
	}
	return &Error{Code: "AccessDenied", Message: "Access Denied", Status: http.StatusForbidden}
}

// noRegionalNamespace are the regions without S3's account-regional bucket
// namespace (https://docs.aws.amazon.com/AmazonS3/latest/userguide/gpbucketnamespaces.html).
var noRegionalNamespace = map[string]bool{"me-south-1": true, "me-central-1": true}

// BucketNamespace is S3's answer in region to a CreateBucket with the
// x-amz-bucket-namespace header (namespace): nil, or its refusal where
// the account-regional namespace is not offered (lacking, true: a region
// or partition that has none yet). S3 does not document the code; this is
// its answer to a header whose function it does not implement.
func BucketNamespace(region, namespace string, lacking bool) error {
	if namespace != "account-regional" || !lacking && !noRegionalNamespace[region] {
		return nil
	}
	return &Error{Code: "NotImplemented", Status: http.StatusNotImplemented,
		Message: "A header you provided implies functionality that is not implemented"}
}
