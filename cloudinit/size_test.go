package cloudinit

import (
	"bytes"
	"strings"
	"testing"
)

// worstParams are the longest values Validate accepts, in the characters
// that grow most when escaped, on arch.
func worstParams(t *testing.T, arch string) Params {
	t.Helper()
	p := Params{
		Stack:          strings.Repeat("s", 63),
		Bucket:         strings.Repeat("b", 63),
		Region:         "ap-southeast-2",
		MLflowVersion:  DefaultMLflowVersion,
		AdminUsername:  "a" + strings.Repeat("_", 63),
		S3EndpointURL:  "http://" + strings.Repeat("e", maxURLLen-len("http://")),
		SSMEndpointURL: "http://" + strings.Repeat("f", maxURLLen-len("http://")),
		Arch:           arch,
		Database:       DatabasePostgres, // adds lines to mlflow.env and the unit
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("worst-case params must be valid: %v", err)
	}
	return p
}

func TestUserDataSize(t *testing.T) {
	t.Parallel()
	for _, arch := range []string{ArchX8664, ArchAarch64} {
		t.Run(arch, func(t *testing.T) {
			typical := validParams()
			typical.Arch = arch
			worst := worstParams(t, arch)
			for _, c := range []struct {
				name string
				p    Params
			}{{"typical", typical}, {"longest values", worst}} {
				ud, err := UserData(c.p)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if len(ud) > MaxUserDataSize {
					t.Errorf("%s user-data is %d bytes, over EC2's %d", c.name, len(ud), MaxUserDataSize)
				}
				t.Logf("%s: %d bytes gzip-compressed (%d unpacked), limit %d", c.name, len(ud), len(render(t, c.p)), MaxUserDataSize)
			}
		})
	}
}

// TestUserDataGzip: what EC2 gets unpacks to exactly the rendered document,
// and the same parameters give the same bytes (re-running up changes nothing).
func TestUserDataGzip(t *testing.T) {
	t.Parallel()
	p := validParams()
	ud, err := UserData(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ud, []byte{0x1f, 0x8b}) {
		t.Fatalf("user-data is not gzip: starts with %q", ud[:min(len(ud), 8)])
	}
	doc, err := Decode(ud)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, render(t, p)) {
		t.Error("the gzip user-data does not unpack to the rendered document")
	}
	again, err := UserData(p)
	if err != nil || !bytes.Equal(again, ud) {
		t.Errorf("a second UserData differs (%v)", err)
	}
	// Decode passes an uncompressed document through, and refuses broken gzip.
	if plain, err := Decode(doc); err != nil || !bytes.Equal(plain, doc) {
		t.Errorf("Decode(plain) = %d bytes, %v", len(plain), err)
	}
	if _, err := Decode(ud[:len(ud)/2]); err == nil {
		t.Error("Decode accepted truncated gzip")
	}
	bad := validParams()
	bad.Stack = "Bad Stack"
	if _, err := UserData(bad); err == nil {
		t.Error("UserData accepted invalid params")
	}
}
