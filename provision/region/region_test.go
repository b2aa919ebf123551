package region

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"eu-west-3", true}, {"us-east-1", true}, {"ap-southeast-5", true}, {"us-gov-west-1", true},
		{"cn-northwest-1", true}, {"eusc-de-east-1", true}, {"us-isof-south-1", true}, {"il-central-1", true},
		{"", false}, {"mars-1", false}, {"EU-WEST-3", false}, {"eu-west", false}, {"eu-west-100", false}, {"eu_west_3", false},
	} {
		if got := Valid(tc.name); got != tc.ok {
			t.Errorf("Valid(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		region, partition, owner, principal string
	}{
		{"eu-west-3", "aws", "099720109477", "ec2.amazonaws.com"},
		{"us-east-1", "aws", "099720109477", "ec2.amazonaws.com"},
		{"cn-north-1", "aws-cn", "837727238323", "ec2.amazonaws.com.cn"},
		{"cn-northwest-1", "aws-cn", "837727238323", "ec2.amazonaws.com.cn"},
		{"us-gov-west-1", "aws-us-gov", "513442679011", "ec2.amazonaws.com"},
		{"eusc-de-east-1", "aws-eusc", "", "ec2.amazonaws.com"},
	} {
		p := Of(tc.region)
		if p.Name != tc.partition || p.CanonicalOwner != tc.owner || p.EC2Principal != tc.principal {
			t.Errorf("Of(%q) = %+v", tc.region, p)
		}
	}
}

// TestKnownIsTheSDKs: the known regions are exactly those of the SDK's
// partition metadata in the module cache (the pinned aws-sdk-go-v2).
func TestKnownIsTheSDKs(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "internal", "endpoints", "awsrulesfn", "partitions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Partitions []struct {
			Regions map[string]json.RawMessage `json:"regions"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	sdk := map[string]bool{}
	for _, p := range meta.Partitions {
		for r := range p.Regions {
			if Valid(r) { // not the aws-global pseudo-regions
				sdk[r] = true
			}
		}
	}
	for r := range sdk {
		if !Known(r) {
			t.Errorf("the SDK lists %s, mlstack does not", r)
		}
	}
	for r := range known {
		if !sdk[r] {
			t.Errorf("mlstack lists %s, the SDK does not", r)
		}
	}
	if Known("eu-west-9") || Known("mars-west-1") {
		t.Error("an invented region is known")
	}
}

// TestIsolated: every ISO region of the table is named with its partition,
// and Of gives none of them commercial AWS's values.
func TestIsolated(t *testing.T) {
	want := map[string]string{"us-iso-east-1": "aws-iso", "us-iso-west-1": "aws-iso", "us-isob-east-1": "aws-iso-b",
		"us-isob-west-1": "aws-iso-b", "eu-isoe-west-1": "aws-iso-e", "us-isof-east-1": "aws-iso-f", "us-isof-south-1": "aws-iso-f"}
	for _, r := range Names() {
		got := Isolated(r)
		if got != want[r] {
			t.Errorf("Isolated(%q) = %q, want %q", r, got, want[r])
		}
		if p := Of(r); got != "" && (p.Name != got || p.CanonicalOwner != "" || p.EC2Principal != "" || p.DNSSuffix == "amazonaws.com") {
			t.Errorf("Of(%q) = %+v", r, p)
		}
	}
}
