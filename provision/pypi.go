package provision

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/cloudinit"
)

// pypiAsk bounds the one question to PyPI: up must not hang on it.
const pypiAsk = 5 * time.Second

// pypiBase is where up asks PyPI: MLSTACK_PYPI_URL, else pypi.org. Tests
// serve their own; a mirror of PyPI's JSON API works too.
func pypiBase() string { return cmp.Or(os.Getenv("MLSTACK_PYPI_URL"), "https://pypi.org") }

// checkMLflowRelease refuses an --mlflow-version PyPI does not have, before
// anything is created: the instance would install nothing, and up would
// learn it only at the health timeout. The pinned default is known good;
// when PyPI cannot be asked, up says so and goes on.
func checkMLflowRelease(ctx context.Context, version string, log *progress) error {
	if version == cloudinit.DefaultMLflowVersion {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, pypiAsk)
	defer cancel()
	url := pypiBase() + "/pypi/mlflow/" + version + "/json"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("asking PyPI: %w", err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}).Do(req)
	if err != nil {
		log.Info("could not ask PyPI whether MLflow %s exists (%v): not checked", version, err)
		return nil
	}
	defer resp.Body.Close()
	var release struct {
		Info struct {
			Yanked       bool   `json:"yanked"`
			YankedReason string `json:"yanked_reason"`
		} `json:"info"`
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && !listedRelease(ctx, version):
		return cloud.Usagef("--mlflow-version %s: PyPI has no such MLflow release (https://pypi.org/project/mlflow/#history lists them)", version)
	case resp.StatusCode == http.StatusNotFound: // a mirror without per-release pages
	case resp.StatusCode != http.StatusOK:
		log.Info("PyPI answered %s for MLflow %s: not checked", resp.Status, version)
	case json.NewDecoder(resp.Body).Decode(&release) == nil && release.Info.Yanked:
		log.Warn("MLflow %s was yanked from PyPI (%s): pip installs it only when asked for exactly, as mlstack does", version,
			cmp.Or(release.Info.YankedReason, "no reason given"))
	}
	return nil
}

// listedRelease asks the project's page, which lists every release: some
// mirrors of PyPI's JSON API serve no per-release page. Unknown: false.
func listedRelease(ctx context.Context, version string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pypiBase()+"/pypi/mlflow/json", nil)
	if err != nil {
		return false
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}).Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var project struct {
		Releases map[string][]json.RawMessage `json:"releases"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&project) != nil {
		return false
	}
	return len(project.Releases[version]) > 0
}
