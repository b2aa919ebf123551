// Package templates holds the files that make up an mlstack instance's
// user-data. They live in their own package because go:embed cannot reach
// parent directories; package cloudinit renders them.
package templates

import "embed"

// FS holds the cloud-config template and the files it writes on the instance.
// Files ending in .tmpl are text/template sources; the others are copied verbatim.
//
//go:embed cloud-config.yaml.tmpl basic_auth.ini.tmpl mlflow.env.tmpl mlflow.service.tmpl allowed-hosts.sh mlstack-setup.sh
var FS embed.FS
