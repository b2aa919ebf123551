"""The boot test's client after `mlstack up --artifacts proxied`: nothing but
the variables `mlstack env` prints then, none of them AWS's. A new
experiment's artifacts go through the server (mlflow-artifacts:/); a run
logs an artifact and reads it back through the server; the experiment and
runs logged before the switch are still there.

Prints JSON facts on the last line of stdout. No secret is printed.
"""

import json
import os
import sys
import tempfile

import mlflow
from mlflow.tracking import MlflowClient

TEXT = "mlstack boot test proxied artifact"


def main():
    leaked = sorted(k for k in os.environ if k.startswith("AWS_") or k == "MLFLOW_S3_ENDPOINT_URL")
    if leaked:
        raise SystemExit("AWS variables in the client's environment: " + ", ".join(leaked))
    exp_id = mlflow.create_experiment("mlstack-boot-proxied")
    location = mlflow.get_experiment(exp_id).artifact_location
    if not location.startswith("mlflow-artifacts:/"):
        raise SystemExit("the new experiment's artifact location is %s, want mlflow-artifacts:/..." % location)
    with mlflow.start_run(experiment_id=exp_id, run_name="proxied") as run:
        mlflow.log_metric("loss", 0.1)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "proxied.txt")
            with open(path, "w") as f:
                f.write(TEXT)
            mlflow.log_artifact(path)
    with tempfile.TemporaryDirectory() as d:
        got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="proxied.txt", dst_path=d)
        with open(got) as f:
            back = f.read()
    if back != TEXT:
        raise SystemExit("proxied.txt read back through the server differs (%d bytes)" % len(back))
    earlier = mlflow.get_experiment_by_name("mlstack-boot-test")
    runs = MlflowClient().search_runs([earlier.experiment_id]) if earlier else []
    if not runs:
        raise SystemExit("the experiment and runs logged before the switch are gone")
    print(
        "proxied: %s, logged and read back proxied.txt through the server; %d earlier run(s) still there"
        % (location, len(runs)),
        file=sys.stderr,
    )
    print(json.dumps({"run_id": run.info.run_id, "artifact_uri": run.info.artifact_uri}))


if __name__ == "__main__":
    main()
