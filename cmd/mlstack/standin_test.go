package main

// The emulator boots no server. Where a test needs what a booted server
// does in AWS (publish its TLS certificate and SSH host key in SSM through
// its role), a stand-in does it, as the server role.

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
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/mlstack/mlstack/provision/local"
)

// ssmAs is an SSM client of moto with the given credentials.
func (e *env) ssmAs(key, secret, token string) *ssm.Client {
	e.t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(testRegion),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(key, secret, token)))
	must(e.t, err)
	cfg.BaseEndpoint = aws.String(e.moto)
	return ssm.NewFromConfig(cfg)
}

// roleSSM is an SSM client that signs as the stack's server role, as the
// instance does with the credentials IMDS hands it.
func (e *env) roleSSM(stack, session string) *ssm.Client {
	e.t.Helper()
	out, err := e.stsAs("test", "test", "").AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::123456789012:role/mlstack/mlstack-" + stack + "-server"),
		RoleSessionName: aws.String(session)})
	must(e.t, err)
	c := out.Credentials
	return e.ssmAs(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
}

// publishAsServer waits (in the background, until the test ends) for the
// stack's instance to run and then publishes, as its role, a certificate for
// its addresses and a host key, as the bootstrap does.
func (e *env) publishAsServer(stack string) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			if inst, ok := e.runningInstance(ctx, stack); ok {
				e.publish(ctx, stack, inst)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
}

func (e *env) runningInstance(ctx context.Context, stack string) (ec2types.Instance, bool) {
	out, err := e.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:mlstack:stack"), Values: []string{stack}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
	}})
	if err != nil || len(out.Reservations) == 0 {
		return ec2types.Instance{}, false
	}
	return out.Reservations[0].Instances[0], true
}

// publishNow publishes for the stack's running instance at once and
// returns the host key's private half (for a test sshd playing the server).
func (e *env) publishNow(stack string) (hostKeyPEM []byte) {
	e.t.Helper()
	inst, ok := e.runningInstance(context.Background(), stack)
	if !ok {
		e.t.Fatalf("stack %s has no running instance to publish for", stack)
	}
	return e.publish(context.Background(), stack, inst)
}

func (e *env) publish(ctx context.Context, stack string, inst ec2types.Instance) []byte {
	c := e.roleSSM(stack, aws.ToString(inst.InstanceId))
	cert := standInCert(e.t, aws.ToString(inst.PublicDnsName), aws.ToString(inst.PublicIpAddress))
	priv, hostKey, err := local.NewSSHKey("host")
	must(e.t, err)
	seen.addKey("host key of the stand-in server of "+stack, priv)
	for name, value := range map[string]string{"tls-cert": string(cert), "ssh-host-key": strings.TrimSpace(string(hostKey))} {
		_, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/mlstack/" + stack + "/" + name),
			Value: aws.String(value), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)})
		if err != nil && ctx.Err() == nil {
			e.t.Errorf("the stand-in server could not publish %s: %v", name, err)
		}
	}
	return priv
}

// standInCert is a self-signed P-256 certificate for a DNS name and an IP.
func standInCert(t *testing.T, dns, ip string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: dns},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{dns},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if a := net.ParseIP(ip); a != nil {
		tmpl.IPAddresses = []net.IP{a}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
