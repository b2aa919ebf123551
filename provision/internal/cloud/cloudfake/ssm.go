package cloudfake

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/mlstack/mlstack/provision/local"
)

// fakeParam is one SSM parameter of the fake account.
type fakeParam struct {
	Typ      ssmtypes.ParameterType
	Value    string
	version  int64
	modified time.Time
	Tags     map[string]string
}

func (f *FakeAWS) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return fakeCall(f, in, "SSM", "GetParameter", func() (*ssm.GetParameterOutput, error) {
		p := f.Params[aws.ToString(in.Name)]
		if p == nil {
			return nil, AwsErr("ParameterNotFound")
		}
		v := p.Value
		if p.Typ == ssmtypes.ParameterTypeSecureString && !aws.ToBool(in.WithDecryption) {
			v = "fake-ciphertext"
		}
		return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Type: p.Typ, Value: aws.String(v),
			Version: p.version, LastModifiedDate: aws.Time(p.modified)}}, nil
	})
}

// GetParameters answers the named parameters it has; the others come back
// in InvalidParameters, as SSM does (not an error). More than ten names is
// a ValidationException.
func (f *FakeAWS) GetParameters(_ context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	return fakeCall(f, in, "SSM", "GetParameters", func() (*ssm.GetParametersOutput, error) {
		if len(in.Names) == 0 || len(in.Names) > 10 {
			return nil, AwsErrMsg("ValidationException", "fake: GetParameters takes 1 to 10 names")
		}
		out := &ssm.GetParametersOutput{}
		for _, name := range in.Names {
			p := f.Params[name]
			if p == nil {
				out.InvalidParameters = append(out.InvalidParameters, name)
				continue
			}
			v := p.Value
			if p.Typ == ssmtypes.ParameterTypeSecureString && !aws.ToBool(in.WithDecryption) {
				v = "fake-ciphertext"
			}
			out.Parameters = append(out.Parameters, ssmtypes.Parameter{Name: aws.String(name), Type: p.Typ, Value: aws.String(v),
				Version: p.version, LastModifiedDate: aws.Time(p.modified)})
		}
		return out, nil
	})
}

func (f *FakeAWS) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	return fakeCall(f, in, "SSM", "PutParameter", func() (*ssm.PutParameterOutput, error) {
		name := aws.ToString(in.Name)
		p := f.Params[name]
		switch {
		case aws.ToBool(in.Overwrite) && len(in.Tags) > 0:
			return nil, AwsErrMsg("ValidationException", "fake: Tags and Overwrite can't be used together")
		case p != nil && !aws.ToBool(in.Overwrite):
			return nil, AwsErr("ParameterAlreadyExists")
		case p == nil:
			p = &fakeParam{Tags: map[string]string{}}
			for _, t := range in.Tags {
				p.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			f.Params[name] = p
		}
		p.Typ, p.Value, p.modified = in.Type, aws.ToString(in.Value), f.tick()
		p.version++
		return &ssm.PutParameterOutput{Version: p.version}, nil
	})
}

func (f *FakeAWS) AddTagsToResource(_ context.Context, in *ssm.AddTagsToResourceInput, _ ...func(*ssm.Options)) (*ssm.AddTagsToResourceOutput, error) {
	return fakeCall(f, in, "SSM", "AddTagsToResource", func() (*ssm.AddTagsToResourceOutput, error) {
		p := f.Params[aws.ToString(in.ResourceId)]
		if p == nil {
			return nil, AwsErr("InvalidResourceId")
		}
		for _, t := range in.Tags {
			p.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		return &ssm.AddTagsToResourceOutput{}, nil
	})
}

func (f *FakeAWS) DeleteParameters(_ context.Context, in *ssm.DeleteParametersInput, _ ...func(*ssm.Options)) (*ssm.DeleteParametersOutput, error) {
	return fakeCall(f, in, "SSM", "DeleteParameters", func() (*ssm.DeleteParametersOutput, error) {
		if len(in.Names) > 10 {
			return nil, AwsErrMsg("ValidationException", "fake: at most 10 names")
		}
		out := &ssm.DeleteParametersOutput{}
		for _, n := range in.Names {
			if f.Params[n] == nil {
				out.InvalidParameters = append(out.InvalidParameters, n)
				continue
			}
			delete(f.Params, n)
			out.DeletedParameters = append(out.DeletedParameters, n)
		}
		return out, nil
	})
}

func (f *FakeAWS) GetParametersByPath(_ context.Context, in *ssm.GetParametersByPathInput, _ ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error) {
	return fakeCall(f, in, "SSM", "GetParametersByPath", func() (*ssm.GetParametersByPathOutput, error) {
		prefix := strings.TrimSuffix(aws.ToString(in.Path), "/") + "/"
		var names []string
		for n := range f.Params {
			if strings.HasPrefix(n, prefix) && (aws.ToBool(in.Recursive) || !strings.Contains(n[len(prefix):], "/")) {
				names = append(names, n)
			}
		}
		names, next, err := page(f, "ssm", "GetParametersByPath", in, names, itself)
		if err != nil {
			return nil, err
		}
		out := &ssm.GetParametersByPathOutput{NextToken: next}
		for i := range names {
			// As SSM: every value, a SecureString's encrypted unless asked to decrypt.
			p := f.Params[names[i]]
			v := p.Value
			if p.Typ == ssmtypes.ParameterTypeSecureString && !aws.ToBool(in.WithDecryption) {
				v = "fake-ciphertext"
			}
			out.Parameters = append(out.Parameters, ssmtypes.Parameter{Name: aws.String(names[i]), Type: p.Typ, Value: aws.String(v),
				Version: p.version, LastModifiedDate: aws.Time(p.modified)})
		}
		return out, nil
	})
}

// PutPublished writes a parameter as the server role would.
func (f *FakeAWS) PutPublished(name, value string) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.putPublishedLocked(name, value)
}

// publishKeys does what an instance's bootstrap does: make a TLS
// certificate for its addresses and an SSH host key, and publish their
// public halves under its stack's path. Called with f.mu held.
func (f *FakeAWS) publishKeys(i *fakeInstance) {
	stack := cloud.EC2TagMap(i.Inst.Tags)[cloud.TagStack]
	n := cloud.NamesFor(stack, f.Account, f.Region)
	certPEM := TestCert(aws.ToString(i.Inst.PublicDnsName), aws.ToString(i.Inst.PublicIpAddress))
	priv, line, err := local.NewSSHKey("host")
	if err != nil {
		panic(err)
	}
	f.hostKeys[aws.ToString(i.Inst.InstanceId)] = priv
	f.putPublishedLocked(n.Param(cloud.ParamTLSCert), string(certPEM))
	f.putPublishedLocked(n.Param(cloud.ParamHostKey), strings.TrimSpace(string(line)))
}

// TestCert is a self-signed P-256 certificate for a DNS name and an IP.
func TestCert(dns, ip string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: dns},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if dns != "" {
		tmpl.DNSNames = []string{dns}
	}
	if a := net.ParseIP(ip); a != nil {
		tmpl.IPAddresses = []net.IP{a}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// putPublishedLocked is putPublished with f.mu held.
func (f *FakeAWS) putPublishedLocked(name, value string) {
	p := f.Params[name]
	if p == nil {
		p = &fakeParam{Tags: map[string]string{}}
		f.Params[name] = p
	}
	p.Typ, p.Value, p.modified = ssmtypes.ParameterTypeString, value, f.tick()
	p.version++
}
