# mlstack: MLflow's tracking server app, for uvicorn to serve in one process.
#
# mlflow.service runs `python -m uvicorn --workers 1 --factory
# mlstack_mlflow:create_app` with the environment `mlflow server --app-name
# basic-auth` gives the uvicorn child it starts, instead of `mlflow server`,
# whose process only waits for that child and holds as much memory. What it
# does first happens here, before the first request: the stores are created
# and migrated (first requests would race to do it), and the basic-auth app
# bootstraps the admin user. This follows MLflow 3.17.2 (mlflow/cli `server`,
# mlflow/server `_run_server`), the locked version the boot test proves;
# mlstack-setup starts any other version with `mlflow server`.


import os
import uuid


def create_app():
    # `mlflow server` sets a per-start id, by which MLflow knows it is a server.
    os.environ.setdefault("_MLFLOW_SERVER_BOOT_ID", os.environ.get("INVOCATION_ID") or uuid.uuid4().hex)

    from mlflow.server.auth import create_app as create_basic_auth_app
    from mlflow.server.handlers import initialize_backend_stores
    from mlflow.tracing.trace_rollup_service import validate_sql_trace_rollup_startup

    store = os.environ["_MLFLOW_SERVER_FILE_STORE"]
    initialize_backend_stores(
        store,
        os.environ.get("_MLFLOW_SERVER_REGISTRY_STORE", store),
        os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"],
    )
    validate_sql_trace_rollup_startup(store)
    return create_basic_auth_app()
