package provision

// The bootstrap objects: what the instance's first boot needs besides its
// user-data (EC2 takes 16 KB), put under bootstrap/ of the stack bucket
// before launch. The user-data pins each by sha256 (mlstack_s3get.py), so
// the bucket only carries them: what anyone may have written there is not
// installed. The client key cannot reach bootstrap/; the server role reads it.

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mlstack/mlstack/cloudinit"
)

// missingObjects are the keys of objs the bucket lacks (all of them when
// the bucket does not exist yet).
func missingObjects(ctx context.Context, api cloud.ObjectAPI, bucket string, exists bool, objs []cloudinit.Object) ([]string, error) {
	var missing []string
	for _, o := range objs {
		if exists {
			_, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Key)})
			if err == nil {
				continue
			}
			if !cloud.HasCode(err, "NotFound", "NoSuchKey") {
				return nil, fmt.Errorf("reading s3://%s/%s: %w", bucket, o.Key, err)
			}
		}
		missing = append(missing, o.Key)
	}
	return missing, nil
}

// bootstrapPlan says in words what ensureBootstrap would do.
func bootstrapPlan(bucket string, missing []string) []cloud.PlanStep {
	var p []cloud.PlanStep
	for _, k := range missing {
		p = append(p, cloud.Step(cloud.KindBucket, bucket, "put the instance's install lock in s3://%s/%s", bucket, k))
	}
	return p
}

// ensureBootstrap puts the objects the bucket lacks. Their keys are named
// by content, so one that exists is the right one.
func ensureBootstrap(ctx context.Context, api cloud.ObjectAPI, bucket string, objs []cloudinit.Object, missing []string, log *progress) error {
	for _, o := range objs {
		if !slices.Contains(missing, o.Key) {
			continue
		}
		log.Step("putting the instance's install lock in s3://%s/%s", bucket, o.Key)
		_, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Key),
			Body: bytes.NewReader(o.Body), ContentType: aws.String("text/plain; charset=utf-8")})
		if err != nil {
			return fmt.Errorf("putting s3://%s/%s: %w", bucket, o.Key, err)
		}
	}
	return nil
}
