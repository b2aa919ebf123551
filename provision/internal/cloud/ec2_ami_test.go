package cloud_test

import (
	"context"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type testImageOpt func(*ec2types.Image)

func testImage(id, name, created string, opts ...testImageOpt) ec2types.Image {
	i := ec2types.Image{
		ImageId: aws.String(id), Name: aws.String(name), CreationDate: aws.String(created),
		OwnerId: aws.String(cloud.CanonicalOwner), Architecture: ec2types.ArchitectureValuesX8664,
		State: ec2types.ImageStateAvailable,
	}
	for _, o := range opts {
		o(&i)
	}
	return i
}

func withOwner(o string) testImageOpt { return func(i *ec2types.Image) { i.OwnerId = aws.String(o) } }
func withArch(a ec2types.ArchitectureValues) testImageOpt {
	return func(i *ec2types.Image) { i.Architecture = a }
}
func withState(s ec2types.ImageState) testImageOpt { return func(i *ec2types.Image) { i.State = s } }

// candidateImages mixes the official images with decoys that are all newer
// than the one that must win, so any missing check picks a decoy.
func candidateImages() []ec2types.Image {
	const (
		amd = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-"
		arm = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-"
	)
	return []ec2types.Image{
		testImage("ami-old1", amd+"20240423", "2024-04-23T10:00:00.000Z"),
		testImage("ami-amd-newest", amd+"20250610", "2025-06-10T10:00:00.000Z"),
		testImage("ami-old2", "ubuntu/images/hvm-ssd/ubuntu-noble-24.04-amd64-server-20240801", "2024-08-01T10:00:00.000Z"),
		testImage("ami-old3", amd+"20250115.1", "2025-01-15T10:00:00.000Z"),
		// Decoys, all newer than ami-amd-newest.
		testImage("ami-impostor", amd+"20251201", "2025-12-01T10:00:00.000Z", withOwner("111122223333")),
		testImage("ami-arm-newest", arm+"20251101", "2025-11-01T10:00:00.000Z", withArch(ec2types.ArchitectureValuesArm64)),
		testImage("ami-arm-old", arm+"20240423", "2024-04-23T10:00:00.000Z", withArch(ec2types.ArchitectureValuesArm64)),
		testImage("ami-jammy", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20251001", "2025-10-01T10:00:00.000Z"),
		testImage("ami-pro", "ubuntu-pro-server/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-pro-server-20251002", "2025-10-02T10:00:00.000Z"),
		testImage("ami-minimal", "ubuntu-minimal/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-minimal-20251003", "2025-10-03T10:00:00.000Z"),
		testImage("ami-pending", amd+"20251004", "2025-10-04T10:00:00.000Z", withState(ec2types.ImageStatePending)),
		testImage("ami-deprecated-name", "ubuntu/images-testing/hvm-ssd-gp3/ubuntu-noble-daily-amd64-server-20251005", "2025-10-05T10:00:00.000Z"),
		testImage("ami-suffix", amd+"20251006-custom", "2025-10-06T10:00:00.000Z"),
	}
}

func TestNewestImage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		images []ec2types.Image
		arch   ec2types.ArchitectureValues
		want   string // "" means nil
	}{
		{"amd64 among decoys", candidateImages(), ec2types.ArchitectureValuesX8664, "ami-amd-newest"},
		{"arm64 among decoys", candidateImages(), ec2types.ArchitectureValuesArm64, "ami-arm-newest"},
		{"empty", nil, ec2types.ArchitectureValuesX8664, ""},
		{"only decoys", candidateImages()[4:5], ec2types.ArchitectureValuesX8664, ""},
		{"order does not matter", []ec2types.Image{
			testImage("ami-b", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250201", "2025-02-01T00:00:00.000Z"),
			testImage("ami-a", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250101", "2025-01-01T00:00:00.000Z"),
		}, ec2types.ArchitectureValuesX8664, "ami-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cloud.NewestImage(tt.images, tt.arch, cloud.CanonicalOwner)
			if tt.want == "" {
				if got != nil {
					t.Fatalf("newestImage = %s, want nil", aws.ToString(got.ImageId))
				}
				return
			}
			if got == nil {
				t.Fatalf("newestImage = nil, want %s", tt.want)
			}
			if id := aws.ToString(got.ImageId); id != tt.want {
				t.Errorf("newestImage = %s (%s), want %s", id, aws.ToString(got.Name), tt.want)
			}
		})
	}
}

// fakeImages answers DescribeImages and DescribeInstanceTypes from canned data
// and records the DescribeImages request.
type fakeImages struct {
	images []ec2types.Image
	archs  []ec2types.ArchitectureType
	req    *ec2.DescribeImagesInput
}

func (f *fakeImages) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.req = in
	return &ec2.DescribeImagesOutput{Images: f.images}, nil
}

func (f *fakeImages) DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	if f.archs == nil {
		return &ec2.DescribeInstanceTypesOutput{}, nil
	}
	return &ec2.DescribeInstanceTypesOutput{InstanceTypes: []ec2types.InstanceTypeInfo{{
		ProcessorInfo: &ec2types.ProcessorInfo{SupportedArchitectures: f.archs},
	}}}, nil
}

// The request asks AWS for Canonical's images only; the result is re-checked anyway.
func TestFindImageRequest(t *testing.T) {
	t.Parallel()
	f := &fakeImages{images: candidateImages()}
	got, err := cloud.FindImage(context.Background(), f, ec2types.ArchitectureValuesArm64, cloud.CanonicalOwner)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.ImageId) != "ami-arm-newest" {
		t.Errorf("findImage = %s", aws.ToString(got.ImageId))
	}
	if len(f.req.Owners) != 1 || f.req.Owners[0] != cloud.CanonicalOwner {
		t.Errorf("Owners = %v, want [%s]", f.req.Owners, cloud.CanonicalOwner)
	}
	filters := map[string]string{}
	for _, fl := range f.req.Filters {
		filters[aws.ToString(fl.Name)] = fl.Values[0]
	}
	if filters["architecture"] != "arm64" || filters["state"] != "available" ||
		filters["name"] != "ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-arm64-server-*" {
		t.Errorf("filters = %v", filters)
	}
}

func TestInstanceArch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		archs   []ec2types.ArchitectureType
		want    ec2types.ArchitectureValues
		wantErr bool
	}{
		{"x86 only", []ec2types.ArchitectureType{ec2types.ArchitectureTypeX8664}, ec2types.ArchitectureValuesX8664, false},
		{"i386 and x86 prefers x86", []ec2types.ArchitectureType{ec2types.ArchitectureTypeI386, ec2types.ArchitectureTypeX8664}, ec2types.ArchitectureValuesX8664, false},
		{"graviton", []ec2types.ArchitectureType{ec2types.ArchitectureTypeArm64}, ec2types.ArchitectureValuesArm64, false},
		{"mac only", []ec2types.ArchitectureType{ec2types.ArchitectureTypeX8664Mac}, "", true},
		{"unknown type", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cloud.InstanceArch(context.Background(), &fakeImages{archs: tt.archs}, "t2.micro")
			if tt.wantErr {
				if !cloud.IsUsage(err) {
					t.Fatalf("instanceArch = %q, %v; want a UsageError", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("instanceArch = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
