package provision

// Pinning: the server makes its TLS key and SSH host key itself (the
// private halves never leave it) and publishes the public halves in SSM
// through its role, a channel the client keys cannot write. mlstack reads
// them there, checks that they fit the instance, and trusts them alone.

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
	"golang.org/x/crypto/ssh"
)

// serverKeys are the public halves the server published.
type serverKeys struct {
	certPEM []byte
	cert    *x509.Certificate
	hostKey ssh.PublicKey
}

// launchSlack allows for clocks: a key published by this instance is never
// older than its launch, give or take this.
const launchSlack = time.Minute

// readServerKeys reads what the server published and accepts it only for
// inst: a certificate that names the instance's address now, and both
// written since the instance launched (an earlier instance's are stale)
// and not before since (SSM's time of a change the server must have read
// first; zero for none). While they are missing or stale it returns nil
// and says what it waits for.
func readServerKeys(ctx context.Context, api cloud.ParamAPI, n cloud.Names, inst *ec2types.Instance, since, now time.Time) (*serverKeys, string, error) {
	pub, err := cloud.Published(ctx, api, n, cloud.ParamTLSCert, cloud.ParamHostKey)
	if err != nil {
		return nil, "", err
	}
	certPEM, certAt := pub[cloud.ParamTLSCert].Value, pub[cloud.ParamTLSCert].At
	hostLine, keyAt := pub[cloud.ParamHostKey].Value, pub[cloud.ParamHostKey].At
	launched := aws.ToTime(inst.LaunchTime).Add(-launchSlack)
	switch {
	case certPEM == "" || hostLine == "":
		return nil, "the server has not published its certificate and host key yet", nil
	case certAt.Before(launched) || keyAt.Before(launched):
		return nil, "the published certificate or host key is older than the instance", nil
	case certAt.Before(since) || keyAt.Before(since):
		return nil, "the server has not started again since the change", nil
	}
	cert, err := server.ParseCert([]byte(certPEM))
	if err != nil {
		return nil, "", fmt.Errorf("SSM parameter %s: %w", n.Param(cloud.ParamTLSCert), err)
	}
	host := cloud.TrackingHost(inst)
	if err := server.Covers(cert, host, now); err != nil {
		return nil, fmt.Sprintf("the published certificate is not for %s yet (%v)", host, err), nil
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostLine))
	if err != nil {
		return nil, "", fmt.Errorf("SSM parameter %s is not an SSH public key: %w", n.Param(cloud.ParamHostKey), err)
	}
	return &serverKeys{certPEM: []byte(certPEM), cert: cert, hostKey: hostKey}, "", nil
}

// waitServerKeys polls until the server has published keys that fit inst.
func waitServerKeys(ctx context.Context, api cloud.ParamAPI, n cloud.Names, inst *ec2types.Instance, since time.Time, wait time.Duration) (*serverKeys, error) {
	var keys *serverKeys
	err := cloud.Poll(ctx, wait, func() (bool, string, error) {
		k, why, err := readServerKeys(ctx, api, n, inst, since, time.Now())
		keys = k
		return k != nil, why, err
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for instance %s to publish its TLS certificate and SSH host key in SSM: %w", aws.ToString(inst.InstanceId), err)
	}
	return keys, nil
}

// pinKeys saves the certificate and host key in the stack's folder and
// pins the host key for the instance's addresses; it reports what changed.
func pinKeys(dir local.Dir, keys *serverKeys, inst *ec2types.Instance) (changed bool, err error) {
	old, err := dir.LoadServerCert()
	if err != nil {
		return false, err
	}
	oldKey, err := dir.LoadPinnedHostKey()
	if err != nil {
		return false, err
	}
	if string(old) != string(keys.certPEM) {
		if err := dir.SaveServerCert(keys.certPEM); err != nil {
			return false, err
		}
		changed = true
	}
	if oldKey == nil || string(oldKey.Marshal()) != string(keys.hostKey.Marshal()) {
		if err := dir.SavePinnedHostKey(keys.hostKey); err != nil {
			return false, err
		}
		changed = true
	}
	hosts, err := dir.WriteKnownHosts([]string{aws.ToString(inst.PublicDnsName), aws.ToString(inst.PublicIpAddress)}, keys.hostKey)
	return changed || hosts, err
}
