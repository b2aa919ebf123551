package cloud

import (
	"bytes"
	"regexp"

	"github.com/mlstack/mlstack/cloudinit"
)

// What a running instance's bootstrap can do, read from its user-data
// (which cannot change while it runs, unlike a tag): the capability line
// cloudinit writes, or, for user-data made before that line, the paths
// that only a bootstrap with the capability has.

// modeMarker is in the user-data of every bootstrap that reads the mode:
// an earlier one would come back from a reboot in the mode it had.
var ModeMarker = []byte("/run/mlflow/artifacts.env")

// LegacyMarker is the basic-auth file earlier user-data wrote, with the
// admin password in it; today's bootstrap writes it under /run from SSM.
var LegacyMarker = []byte("path: /etc/mlflow/basic_auth.ini")

// BackupMarker is in the user-data of every bootstrap that backs up and
// restores: replacing an instance without it would lose its runs.
var BackupMarker = []byte("/usr/local/lib/mlstack/mlstack_backup.py")

// setupVersion finds the MLflow version in a user-data's setup command.
var setupVersion = regexp.MustCompile(`mlstack-setup, "([0-9.]+)"`)

// BootstrapOf is what inst's user-data (unpacked; nil for none) says its
// bootstrap can do.
func BootstrapOf(ud []byte) cloudinit.BootstrapInfo {
	if info, ok := cloudinit.ReadBootstrap(ud); ok {
		return info
	}
	var info cloudinit.BootstrapInfo
	if m := setupVersion.FindSubmatch(ud); m != nil {
		info.MLflowVersion = string(m[1])
	}
	for c, marker := range map[string][]byte{cloudinit.CapArtifactsMode: ModeMarker, cloudinit.CapBackups: BackupMarker} {
		if bytes.Contains(ud, marker) {
			info.Capabilities = append(info.Capabilities, c)
		}
	}
	if !bytes.Contains(ud, LegacyMarker) {
		info.Capabilities = append(info.Capabilities, cloudinit.CapTLS)
	}
	return info
}

// IsLegacyUserData: ud (not empty) is a plain-HTTP bootstrap of an earlier
// mlstack, with the admin password in its basic-auth file.
func IsLegacyUserData(ud []byte) bool { return len(ud) > 0 && !BootstrapOf(ud).Can(cloudinit.CapTLS) }
