"""The boot test's RDS: what RDS does for `up --db postgres`, on a real PostgreSQL.

Usage: python rds.py STACK SOCKET_DIR HOST_FILE SECRETS_FILE   (the boot test
runs it in the background with moto's AWS_* variables and the client venv's
boto3, as root; it runs psql as the postgres user.)

moto keeps RDS databases as records: it makes, restores and deletes them at
once, and connects nothing. Here, while the stack's database exists in moto,
the private cluster the boot test started holds its master user (mlflow) with
the master password mlstack stored in SSM and its database (mlflow), as RDS
makes them at CreateDBInstance, restores them from a snapshot (the cluster's
data stays, as a snapshot keeps it) and sets a new password at
ModifyDBInstance. The endpoint moto gives goes to HOST_FILE, for the
container's /etc/hosts; each password goes to SECRETS_FILE (masked, scanned).
Nothing is printed but what happens, never a password.
"""

import subprocess
import sys
import time

import boto3


def log(msg):
    print("rds: " + msg, file=sys.stderr, flush=True)


def sql_for(password):
    # The password goes on psql's stdin, never on a command line; mlstack's
    # alphabet has no quote, doubling one anyway keeps the literal whole.
    quoted = password.replace("'", "''")
    return (
        "SELECT 'CREATE ROLE mlflow LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mlflow')\\gexec\n"
        "ALTER ROLE mlflow WITH LOGIN PASSWORD '%s';\n"
        "SELECT 'CREATE DATABASE mlflow OWNER mlflow' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow')\\gexec\n"
    ) % quoted


def main():
    stack, socket_dir, host_file, secrets_file = sys.argv[1:5]
    rds, ssm = boto3.client("rds"), boto3.client("ssm")
    db_id, param = "mlstack-" + stack, "/mlstack/%s/db-password" % stack
    applied, host = None, None
    while True:
        try:
            db = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]
        except rds.exceptions.DBInstanceNotFoundFault:
            db = None
        if db and db.get("Endpoint", {}).get("Address") and db["Endpoint"]["Address"] != host:
            host = db["Endpoint"]["Address"]
            with open(host_file, "w") as f:
                f.write(host + "\n")
            log("database %s answers at %s:%s" % (db_id, host, db["Endpoint"]["Port"]))
        try:
            password = ssm.get_parameter(Name=param, WithDecryption=True)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            password = None
        if db and password and password != applied:
            with open(secrets_file, "a") as f:
                f.write(password + "\n")
            subprocess.run(
                ["runuser", "-u", "postgres", "--", "psql", "-q", "-h", socket_dir, "-p", "5432", "-d", "postgres",
                 "-v", "ON_ERROR_STOP=1"],
                input=sql_for(password), text=True, check=True, stdout=subprocess.DEVNULL,
            )
            log("master user mlflow has the password in SSM %s; database mlflow is there" % param)
            applied = password
        time.sleep(0.5)


if __name__ == "__main__":
    main()
