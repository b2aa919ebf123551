package cloudinit

import (
	"strings"
	"testing"
)

func TestUserDataSize(t *testing.T) {
	// The longest values Validate accepts, in the characters that grow most
	// when escaped.
	p := Params{
		Stack:          strings.Repeat("s", 63),
		Bucket:         strings.Repeat("b", 63),
		Region:         "ap-southeast-2",
		MLflowVersion:  "3.17.2",
		AdminUsername:  "a" + strings.Repeat("_", 63),
		AdminPassword:  strings.Repeat("%", maxSecretLen),
		FlaskSecretKey: strings.Repeat(`"`, maxSecretLen),
		S3EndpointURL:  "http://" + strings.Repeat("e", maxURLLen-len("http://")),
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("worst-case params must be valid: %v", err)
	}
	got := render(t, p)
	if len(got) > MaxUserDataSize {
		t.Errorf("worst-case user-data is %d bytes, over EC2's %d", len(got), MaxUserDataSize)
	}
	t.Logf("user-data: %d bytes typical, %d worst case, limit %d", len(render(t, validParams())), len(got), MaxUserDataSize)
}
