package cloud

import (
	"context"
	"fmt"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/region"
)

// CanonicalOwner is the AWS account that publishes official Ubuntu images
// in the commercial partition (region.Of gives the others). Anyone can
// publish an image with the same name, so the owner is what we trust.
var CanonicalOwner = region.Of("us-east-1").CanonicalOwner

type imageAPI interface {
	DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
}

// ubuntuName matches official Ubuntu 24.04 server images (not pro, not minimal).
var ubuntuName = regexp.MustCompile(`^ubuntu/images/hvm-ssd(-gp3)?/ubuntu-noble-24\.04-(amd64|arm64)-server-[0-9]{8}(\.[0-9]+)?$`)

// FindImage returns the newest official Ubuntu 24.04 image for arch that owner published.
func FindImage(ctx context.Context, api imageAPI, arch ec2types.ArchitectureValues, owner string) (*ec2types.Image, error) {
	img, _, err := findImages(ctx, api, arch, owner)
	return img, err
}

// findImages is findImage, with every image the answer listed (which
// refsFor then need not ask about again).
func findImages(ctx context.Context, api imageAPI, arch ec2types.ArchitectureValues, owner string) (*ec2types.Image, []ec2types.Image, error) {
	ubuntuArch := "amd64"
	if arch == ec2types.ArchitectureValuesArm64 {
		ubuntuArch = "arm64"
	}
	images, err := describeImages(ctx, api, &ec2.DescribeImagesInput{
		Owners: []string{owner},
		Filters: []ec2types.Filter{
			{Name: aws.String("name"), Values: []string{"ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-" + ubuntuArch + "-server-*"}},
			{Name: aws.String("architecture"), Values: []string{string(arch)}},
			{Name: aws.String("state"), Values: []string{"available"}},
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("looking up the Ubuntu 24.04 image: %w", err)
	}
	return NewestImage(images, arch, owner), images, nil
}

// NewestImage re-checks owner, name, architecture and state, because filters
// are only as good as the service that applies them, then picks the newest.
func NewestImage(images []ec2types.Image, arch ec2types.ArchitectureValues, owner string) *ec2types.Image {
	var best *ec2types.Image
	for i := range images {
		img := &images[i]
		if aws.ToString(img.OwnerId) != owner || img.Architecture != arch ||
			img.State != ec2types.ImageStateAvailable || !ubuntuName.MatchString(aws.ToString(img.Name)) {
			continue
		}
		// RFC 3339 timestamps in one zone compare as strings.
		if best == nil || aws.ToString(img.CreationDate) > aws.ToString(best.CreationDate) {
			best = img
		}
	}
	return best
}

// UbuntuImage is findImage with Canonical's account of the region's
// partition, where finding none is an error.
func UbuntuImage(ctx context.Context, api imageAPI, arch ec2types.ArchitectureValues, regionName string) (*ec2types.Image, []ec2types.Image, error) {
	p := region.Of(regionName)
	if p.CanonicalOwner == "" {
		// The region is the user's choice, refused before anything is made.
		return nil, nil, Usagef("mlstack does not know which account publishes Canonical's Ubuntu images in partition %s (%s): use a region of aws, aws-cn or aws-us-gov", p.Name, regionName)
	}
	img, listed, err := findImages(ctx, api, arch, p.CanonicalOwner)
	if err == nil && img == nil {
		err = fmt.Errorf("no official Ubuntu 24.04 %s image (owner %s) found in %s", arch, p.CanonicalOwner, regionName)
	}
	return img, listed, err
}
