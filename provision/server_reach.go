package provision

// Reaching the stack's running server from this machine, as its admin or
// as one user: the address (https with the published certificate pinned,
// plain http for a stack made before TLS) and an HTTP client that trusts
// the pinned certificate alone.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
)

// errNoServer: the stack runs no instance of its own.
var errNoServer = errors.New("no running instance")

// serverURI is the tracking URI of the stack's own instance (never a
// look-alike's: it would see a password), the one this machine recorded
// first. Over https it pins the certificate the server published, since
// the instance may have been replaced since up pinned one.
func serverURI(ctx context.Context, op *openedStack) (string, error) {
	s, n := op.s, op.n
	insts, _, err := cloud.StackInstances(ctx, s.EC2, n, cloud.UsableStates)
	if err != nil {
		return "", err
	}
	if len(insts) == 0 {
		return "", fmt.Errorf("stack %s: %w", n.Stack, errNoServer)
	}
	if op.secrets != nil {
		insts = recordedFirst(insts, op.secrets.InstanceID)
	}
	inst := &insts[0]
	legacy, err := cloud.IsLegacy(ctx, s.EC2, inst)
	if err != nil || legacy {
		return cloud.LegacyURI(inst), err
	}
	keys, _, err := readServerKeys(ctx, s.SSM, n, inst, time.Time{}, time.Now())
	if err == nil && keys != nil {
		_, err = pinKeys(op.dir, keys, inst)
	}
	return cloud.TrackingURI(inst), err
}

// serverHTTP trusts the pinned server certificate alone (nil, the default
// client, for a plain http:// address: earlier stacks, the tests' servers).
// upHint is the command that pins it, with the flags in use.
func serverHTTP(dir local.Dir, uri string, upHint func() string) (*http.Client, error) {
	if !strings.HasPrefix(uri, "https://") {
		return nil, nil
	}
	cert, err := dir.LoadServerCert()
	if err != nil {
		return nil, err
	}
	if cert == nil {
		return nil, fmt.Errorf("no pinned server certificate in %s: `%s` pins it", dir.Path(), upHint())
	}
	return server.PinnedClient(cert, 20*time.Second)
}

// adminPassword is the admin's password: this machine's, else the one the
// server reads from SSM (an admin identity may read it).
func adminPassword(ctx context.Context, op *openedStack, sec local.Secrets) (string, error) {
	if sec.MLflowPassword != "" {
		return sec.MLflowPassword, nil
	}
	params, err := cloud.FindParams(ctx, op.s.SSM, op.n)
	if err != nil {
		return "", err
	}
	return params.Values[cloud.ParamAdminPassword], nil
}

// upHintFor is `mlstack up` for the stack as it is: the flags in use, the
// CIDRs and SSH its security group allows (else this machine's record).
func upHintFor(ctx context.Context, op *openedStack, h hints) string {
	var cidrs []string
	var ssh bool
	if sec := op.secrets; sec != nil {
		cidrs, ssh = sec.AllowCIDRs, sec.SSH
	}
	if g, err := cloud.FindSecurityGroup(ctx, op.s.EC2, op.n); err == nil && g.ID != "" {
		cidrs, ssh = g.Allowed(), g.SSHOpen()
	}
	return h.up(cidrs, ssh)
}
