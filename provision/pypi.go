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
	ask, cancel := context.WithTimeout(ctx, pypiAsk)
	defer cancel()
	url := pypiBase() + "/pypi/mlflow/" + version + "/json"
	req, err := http.NewRequestWithContext(ask, http.MethodGet, url, nil)
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
	case resp.StatusCode == http.StatusNotFound:
		return checkListed(ctx, version, log)
	case resp.StatusCode != http.StatusOK:
		log.Info("PyPI answered %s for MLflow %s: not checked", resp.Status, version)
	case json.NewDecoder(resp.Body).Decode(&release) == nil && release.Info.Yanked:
		log.Warn("MLflow %s was yanked from PyPI (%s): pip installs it only when asked for exactly, as mlstack does", version,
			cmp.Or(release.Info.YankedReason, "no reason given"))
	}
	return nil
}

// projectAsk bounds reading the project's page, a few megabytes: its own
// bound, apart from pypiAsk's, so that a slow mirror is not taken for a
// missing release.
const projectAsk = 20 * time.Second

// checkListed decides after a release page PyPI does not serve (some
// mirrors serve none): the project's page, which lists every release,
// refuses a version it does not list; when it cannot be read, up says so
// and goes on, as when PyPI cannot be asked at all.
func checkListed(ctx context.Context, version string, log *progress) error {
	ctx, cancel := context.WithTimeout(ctx, projectAsk)
	defer cancel()
	listed, err := listedRelease(ctx, version)
	switch {
	case err != nil:
		log.Info("could not tell whether PyPI has MLflow %s (%v): not checked", version, err)
		return nil
	case !listed:
		return cloud.Usagef("--mlflow-version %s: PyPI has no such MLflow release (https://pypi.org/project/mlflow/#history lists them)", version)
	}
	return nil
}

// listedRelease asks the project's page whether it lists version with
// files (a page the index does not have lists nothing); an error when the
// page cannot be read.
func listedRelease(ctx context.Context, version string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pypiBase()+"/pypi/mlflow/json", nil)
	if err != nil {
		return false, err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}).Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound: // the index serves no MLflow at all
		return false, nil
	default:
		return false, fmt.Errorf("the project's page answered %s", resp.Status)
	}
	var project struct {
		Releases map[string][]json.RawMessage `json:"releases"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&project); err != nil {
		return false, fmt.Errorf("reading the project's page: %w", err)
	}
	return len(project.Releases[version]) > 0, nil
}
