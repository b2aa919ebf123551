package cloud

// The narrow SDK interfaces that commands outside this layer use; the
// resources' own sit next to their use.

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// RebootAPI restarts the server so that it reads the new mode.
type RebootAPI interface {
	RebootInstances(context.Context, *ec2.RebootInstancesInput, ...func(*ec2.Options)) (*ec2.RebootInstancesOutput, error)
}

// BackupLister lists the bucket's backups.
type BackupLister interface {
	s3.ListObjectsV2APIClient
}

// ObjectAPI puts the bootstrap objects in the bucket.
type ObjectAPI interface {
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// KeyProbeAPI is the S3 call that proves a new access key works.
type KeyProbeAPI interface {
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// StopAPI stops the stack's instances before down --keep-data deletes them.
type StopAPI interface {
	StopInstances(context.Context, *ec2.StopInstancesInput, ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error)
	StartInstances(context.Context, *ec2.StartInstancesInput, ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error)
	ec2.DescribeInstancesAPIClient
}

// RegionAPI lists the account's regions.
type RegionAPI interface {
	DescribeRegions(context.Context, *ec2.DescribeRegionsInput, ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error)
}

// CopyAPI copies a backup's objects within the bucket.
type CopyAPI interface {
	BackupLister
	CopyObject(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
}
