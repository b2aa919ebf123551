package cloudinit

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

// worstParams are the longest values Validate accepts, in the characters
// that grow most when escaped, with an SSH host key, on arch.
func worstParams(t *testing.T, arch string) Params {
	t.Helper()
	p := Params{
		Stack:          strings.Repeat("s", 63),
		Bucket:         strings.Repeat("b", 63),
		Region:         "ap-southeast-2",
		MLflowVersion:  DefaultMLflowVersion,
		AdminUsername:  "a" + strings.Repeat("_", 63),
		AdminPassword:  strings.Repeat("%", maxSecretLen),
		FlaskSecretKey: strings.Repeat(`"`, maxSecretLen),
		S3EndpointURL:  "http://" + strings.Repeat("e", maxURLLen-len("http://")),
		Arch:           arch,
	}
	p.SSHHostKeyPrivate, p.SSHHostKeyPublic = testHostKey(t)
	if err := p.Validate(); err != nil {
		t.Fatalf("worst-case params must be valid: %v", err)
	}
	return p
}

// randomSecret is a valid secret that gzip cannot shrink much.
func randomSecret(t *testing.T) string {
	t.Helper()
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~!#%"
	b := make([]byte, maxSecretLen)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

func TestUserDataSize(t *testing.T) {
	for _, arch := range []string{ArchX8664, ArchAarch64} {
		t.Run(arch, func(t *testing.T) {
			typical := validParams()
			typical.Arch = arch
			worst := worstParams(t, arch)
			// Escaping grows repeated characters most, random ones compress least.
			random := worst
			random.AdminPassword, random.FlaskSecretKey = randomSecret(t), randomSecret(t)
			for _, c := range []struct {
				name string
				p    Params
			}{{"typical", typical}, {"worst escaping", worst}, {"random secrets", random}} {
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
	p := sshParams(t)
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
