package cloudinit

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	const secretKey = "leaky-flask-key-9876" // in a URL's user part, it must never be echoed
	tests := []struct {
		name  string
		field string // "" means valid
		edit  func(*Params)
	}{
		{"valid", "", func(*Params) {}},
		{"valid with endpoint", "", func(p *Params) { p.S3EndpointURL = "http://127.0.0.1:9000" }},
		{"valid empty version means default", "", func(p *Params) { p.MLflowVersion = "" }},
		{"valid minimum version", "", func(p *Params) { p.MLflowVersion = "3.5.0" }},
		{"valid newer major", "", func(p *Params) { p.MLflowVersion = "4.0.0" }},
		{"empty stack", "Stack", func(p *Params) { p.Stack = "" }},
		{"uppercase stack", "Stack", func(p *Params) { p.Stack = "Demo" }},
		{"stack with space", "Stack", func(p *Params) { p.Stack = "de mo" }},
		{"empty bucket", "Bucket", func(p *Params) { p.Bucket = "" }},
		{"bucket uppercase", "Bucket", func(p *Params) { p.Bucket = "Bucket-1" }},
		{"bucket double dot", "Bucket", func(p *Params) { p.Bucket = "a..b" }},
		{"bucket ip", "Bucket", func(p *Params) { p.Bucket = "192.168.1.1" }},
		{"bucket too long", "Bucket", func(p *Params) { p.Bucket = strings.Repeat("a", 64) }},
		{"bucket with slash", "Bucket", func(p *Params) { p.Bucket = "a/b" }},
		{"empty region", "Region", func(p *Params) { p.Region = "" }},
		{"bad region", "Region", func(p *Params) { p.Region = "us east 1" }},
		{"version with v", "MLflowVersion", func(p *Params) { p.MLflowVersion = "v3.17.2" }},
		{"version two parts", "MLflowVersion", func(p *Params) { p.MLflowVersion = "3.17" }},
		{"version rc", "MLflowVersion", func(p *Params) { p.MLflowVersion = "3.17.2rc1" }},
		{"version too old", "MLflowVersion", func(p *Params) { p.MLflowVersion = "3.4.9" }},
		{"version 2.x", "MLflowVersion", func(p *Params) { p.MLflowVersion = "2.22.0" }},
		{"version injection", "MLflowVersion", func(p *Params) { p.MLflowVersion = "3.17.2; rm -rf /" }},
		{"empty username", "AdminUsername", func(p *Params) { p.AdminUsername = "" }},
		{"username with colon", "AdminUsername", func(p *Params) { p.AdminUsername = "ad:min" }},
		{"username with newline", "AdminUsername", func(p *Params) { p.AdminUsername = "admin\nx" }},
		{"endpoint no scheme", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "127.0.0.1:9000" }},
		{"endpoint ftp", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "ftp://example.com" }},
		{"endpoint no host", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "http://" }},
		{"endpoint with space", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "http://exa mple.com" }},
		{"endpoint newline", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "http://example.com\nX=1" }},
		{"endpoint credentials", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "http://AKIDEXAMPLE:" + secretKey + "@example.com" }},
		{"endpoint bad escape", "S3EndpointURL", func(p *Params) { p.S3EndpointURL = "http://" + secretKey + "%zz@example.com" }},
		{"valid SSM endpoint", "", func(p *Params) { p.SSMEndpointURL = "http://127.0.0.1:5000" }},
		{"valid postgres", "", func(p *Params) { p.Database = DatabasePostgres }},
		{"database sqlite by name", "Database", func(p *Params) { p.Database = "sqlite" }},
		{"database capitalised", "Database", func(p *Params) { p.Database = "Postgres" }},
		{"database injection", "Database", func(p *Params) { p.Database = "postgres\nMLSTACK_PARAM_PATH=/x/" }},
		{"SSM endpoint credentials", "SSMEndpointURL", func(p *Params) { p.SSMEndpointURL = "http://AKIDEXAMPLE:" + secretKey + "@example.com" }},
		{"SSM endpoint newline", "SSMEndpointURL", func(p *Params) { p.SSMEndpointURL = "http://example.com\nX=1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validParams()
			tt.edit(&p)
			err := p.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %s", tt.field)
			}
			if !errors.Is(err, ErrInvalidParams) {
				t.Errorf("error does not wrap ErrInvalidParams: %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.field+":") {
				t.Errorf("error %q does not name field %s", msg, tt.field)
			}
			if strings.Contains(msg, secretKey) {
				t.Errorf("error %q contains a secret value", msg)
			}
			if _, rerr := Render(p); !errors.Is(rerr, ErrInvalidParams) {
				t.Errorf("Render did not refuse the invalid params: %v", rerr)
			}
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	t.Parallel()
	err := Params{}.Validate()
	if err == nil {
		t.Fatal("Validate() of zero Params = nil")
	}
	for _, f := range []string{"Stack", "Bucket", "Region", "AdminUsername"} {
		if !strings.Contains(err.Error(), f+":") {
			t.Errorf("error does not name %s:\n%v", f, err)
		}
	}
}
