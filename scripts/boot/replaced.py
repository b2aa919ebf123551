"""The boot test's client after the instance was replaced (`down
--keep-data`, then `up`, a second boot from the kept bucket): with nothing
but the variables `mlstack env` prints for the new server, it finds every
run logged on the first one, their params and metrics, and reads back the
artifact logged through the server.

Prints JSON facts on the last line of stdout. No secret is printed.
"""

import json
import sys
import tempfile

import mlflow
from mlflow.tracking import MlflowClient


def main():
    client = MlflowClient()
    exp = mlflow.get_experiment_by_name("mlstack-boot-test")
    if exp is None:
        raise SystemExit("the experiment logged before the replacement is gone")
    runs = client.search_runs([exp.experiment_id])
    boot = [r for r in runs if r.info.run_name == "boot"]
    if len(runs) < 2 or not boot:
        raise SystemExit("runs before the replacement: %d, the first user's among them: %s" % (len(runs), bool(boot)))
    run = boot[0]
    losses = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "loss"), key=lambda m: m.step)]
    if losses != [1.0 / (s + 1) for s in range(5)] or run.data.params.get("optimizer") != "adam":
        raise SystemExit("the run's metrics or params changed: loss %s, params %s" % (losses, run.data.params))
    proxied = mlflow.get_experiment_by_name("mlstack-boot-proxied")
    prun = client.search_runs([proxied.experiment_id])[0] if proxied else None
    if prun is None:
        raise SystemExit("the run logged with proxied artifacts is gone")
    with tempfile.TemporaryDirectory() as d:
        with open(mlflow.artifacts.download_artifacts(run_id=prun.info.run_id, artifact_path="proxied.txt", dst_path=d)) as f:
            text = f.read()
    if text != "mlstack boot test proxied artifact":
        raise SystemExit("the artifact logged through the first server reads back differently")
    print("replaced: %d runs, the boot run's 5 losses and params, proxied.txt read back" % len(runs), file=sys.stderr)
    print(json.dumps({"runs": len(runs)}))


if __name__ == "__main__":
    main()
