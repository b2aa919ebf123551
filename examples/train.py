"""A tiny training run that logs to the stack in MLFLOW_TRACKING_URI.

Uses only what `mlstack env` exports: the tracking URI and basic-auth
credentials for MLflow, the scoped AWS keys for the artifact bucket.
"""

import os
import random
import tempfile

import mlflow


def main() -> None:
    mlflow.set_experiment(os.environ.get("MLSTACK_EXPERIMENT", "mlstack-demo"))
    with mlflow.start_run():
        lr = 0.01
        mlflow.log_param("learning_rate", lr)
        loss = 1.0
        for step in range(20):
            loss *= 1 - lr * random.uniform(5, 15)
            mlflow.log_metric("loss", loss, step=step)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write(f"final loss {loss:.4f}\n")
            mlflow.log_artifact(path)
        print(f"logged run to {mlflow.get_tracking_uri()}: final loss {loss:.4f}")


if __name__ == "__main__":
    main()
