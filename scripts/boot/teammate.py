"""The boot test's second MLflow user (bob, made with `mlstack users add`):
with nothing but the variables `mlstack env --user bob` prints, it sees the
first user's experiment and run, logs a run of its own into it, and is
refused what only the experiment's creator or the admin may do: deleting
that experiment or its runs, and managing users.

Prints JSON facts on the last line of stdout. No secret is printed.
"""

import json
import sys

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient
from mlflow.tracking import MlflowClient


def refused(what, fn):
    """fn must fail with 403 (PERMISSION_DENIED)."""
    try:
        fn()
    except MlflowException as e:
        if e.error_code != "PERMISSION_DENIED" and "403" not in str(e):
            raise SystemExit(f"{what}: refused, but not as forbidden: {e.error_code}")
        print(f"teammate: {what}: refused ({e.error_code})", file=sys.stderr)
        return
    raise SystemExit(f"{what}: allowed, want 403")


def main() -> None:
    client = MlflowClient()
    exp = client.get_experiment_by_name("mlstack-boot-test")
    if exp is None:
        raise SystemExit("the first user's experiment is not visible")
    theirs = client.search_runs([exp.experiment_id], filter_string="attributes.run_name = 'boot'")
    if len(theirs) != 1:
        raise SystemExit(f"the first user's run is not visible: {len(theirs)} runs named boot")
    mlflow.set_experiment(experiment_id=exp.experiment_id)
    with mlflow.start_run(run_name="teammate") as run:
        mlflow.log_param("who", "bob")
        mlflow.log_metric("loss", 0.5)
    got = client.get_run(run.info.run_id)
    assert got.data.metrics == {"loss": 0.5}, got.data.metrics
    assert got.info.user_id == "bob", got.info.user_id

    refused("delete the first user's experiment", lambda: client.delete_experiment(exp.experiment_id))
    refused("delete the first user's run", lambda: client.delete_run(theirs[0].info.run_id))
    auth = AuthServiceClient(mlflow.get_tracking_uri())
    refused("create a user", lambda: auth.create_user("mallory", "mallory-password-0123456789"))
    refused("delete a user", lambda: auth.delete_user("admin"))
    refused("make itself admin", lambda: auth.update_user_admin("bob", True))
    print(json.dumps({"run_id": run.info.run_id, "experiment_id": exp.experiment_id}))


if __name__ == "__main__":
    main()
