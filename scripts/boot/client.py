"""The boot test's MLflow user: logs to the tracking server with nothing but
the variables `mlstack env` prints (the boot test runs it under a bare env with
that file sourced), then reads everything back.

Prints JSON facts on the last line of stdout: run id, experiment id, the
artifact URI and the artifact's S3 key. No secret is printed.
"""

import json
import os
import sys
import tempfile

import mlflow
from mlflow.tracking import MlflowClient

ARTIFACT_TEXT = "mlstack boot test artifact\n"


def main() -> None:
    uri = os.environ["MLFLOW_TRACKING_URI"]
    print(f"client: mlflow {mlflow.__version__}, tracking URI {uri}", file=sys.stderr)
    exp = mlflow.set_experiment("mlstack-boot-test")
    with mlflow.start_run(run_name="boot") as run:
        mlflow.log_params({"learning_rate": 0.01, "optimizer": "adam"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "notes.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write(ARTIFACT_TEXT)
            mlflow.log_artifact(path)
        run_id = run.info.run_id
        artifact_uri = run.info.artifact_uri

    client = MlflowClient()
    got = client.get_run(run_id)
    assert got.data.params == {"learning_rate": "0.01", "optimizer": "adam"}, got.data.params
    history = client.get_metric_history(run_id, "loss")
    assert [m.value for m in history] == [1.0 / (s + 1) for s in range(5)], history
    assert got.info.status == "FINISHED", got.info.status
    names = [a.path for a in client.list_artifacts(run_id)]
    assert names == ["notes.txt"], names
    with tempfile.TemporaryDirectory() as d:
        local = client.download_artifacts(run_id, "notes.txt", d)
        with open(local, encoding="utf-8") as f:
            assert f.read() == ARTIFACT_TEXT

    if not artifact_uri.startswith("s3://"):
        raise SystemExit(f"artifact URI {artifact_uri} is not in S3")
    bucket, _, prefix = artifact_uri[len("s3://"):].partition("/")
    print(json.dumps({
        "run_id": run_id,
        "experiment_id": exp.experiment_id,
        "artifact_uri": artifact_uri,
        "bucket": bucket,
        "key": f"{prefix}/notes.txt",
    }))


if __name__ == "__main__":
    main()
