package cloudinit

// The user-data says what its bootstrap can do in one line, so that
// mlstack reads what a running instance can do from a line made for it,
// not by searching the document for paths that happen to be in it. User-
// data from before the line has none: provision then falls back to those
// paths (the only way to know for those instances).

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
)

// What a bootstrap can do, as its capability line names it.
const (
	// CapArtifactsMode: the server reads the artifacts mode (direct or
	// proxied) from SSM at every start, so a reboot switches it.
	CapArtifactsMode = "artifacts-mode"
	// CapBackups: the server backs up its data to the bucket and restores
	// the newest backup before its first start.
	CapBackups = "backups"
	// CapTLS: the server makes its own TLS key and publishes the certificate
	// and SSH host key in SSM (no plain-HTTP basic-auth file).
	CapTLS = "tls"
)

// capabilities are what this version's bootstrap can do.
var capabilities = []string{CapArtifactsMode, CapBackups, CapTLS}

// capabilityPrefix starts the capability line (a YAML comment).
const capabilityPrefix = "# mlstack-bootstrap: "

// BootstrapInfo is what a user-data's capability line says.
type BootstrapInfo struct {
	MLflowVersion string
	Capabilities  []string
}

// Can says whether the bootstrap has a capability.
func (b BootstrapInfo) Can(capability string) bool {
	return slices.Contains(b.Capabilities, capability)
}

// capabilityLine is the line the template writes.
func capabilityLine(p Params) string {
	return capabilityPrefix + "mlflow=" + p.MLflowVersion + " can=" + strings.Join(capabilities, ",")
}

// ReadBootstrap reads a user-data's capability line; ok is false for a
// user-data without one (made before mlstack wrote it).
func ReadBootstrap(userData []byte) (info BootstrapInfo, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(userData))
	for sc.Scan() {
		rest, found := strings.CutPrefix(sc.Text(), capabilityPrefix)
		if !found {
			continue
		}
		for _, field := range strings.Fields(rest) {
			key, value, _ := strings.Cut(field, "=")
			switch key {
			case "mlflow":
				info.MLflowVersion = value
			case "can":
				info.Capabilities = strings.Split(value, ",")
			}
		}
		return info, true
	}
	return BootstrapInfo{}, false
}
