# mlstack: backups of the tracking data (both sqlite databases) to the
# stack bucket, and their restore on a new instance. Run as the mlflow user
# with the venv's Python; the role may write the bucket, the client key only
# reaches artifacts/, never backups/.
#
#   backup   (mlstack-backup.timer every 5 minutes, and ExecStopPost of
#            mlflow.service, so a clean stop or reboot saves the last writes):
#            when a database changed since the last backup, sqlite's online
#            backup of each (a consistent copy while the server writes),
#            gzip, uploaded under backups/STAMP/, the manifest last: a backup
#            without one (killed halfway) is never restored and is pruned.
#            Keeps the newest KEEP complete backups.
#   restore  (ExecStartPre of mlflow.service): when there is no tracking
#            database yet (a new instance of a stack whose data was kept),
#            the newest complete backup, its sha256 checked; the tracking
#            schema upgraded when MLflow's version differs; the admin's
#            password set to the one in SSM (the backup has an older one).
#
# With MLSTACK_DATABASE=postgres the data is in PostgreSQL (RDS), whose
# automated backups and snapshots keep it: backup does nothing but say so,
# and restore, at every start, brings the database's tracking schema to
# this MLflow's: it reads the database's alembic revisions (psycopg2, one
# connection) and this MLflow's migration scripts as text (no import of
# MLflow, SQLAlchemy or alembic, which take 2.4 s), and only when the
# schema is behind runs MLflow's upgrade (`mlflow db upgrade`'s code, in
# this process: the URI holds the password and a command line is public).
# MLflow's basic-auth app upgrades its own tables (alembic_version_auth) as
# it starts. A revision this MLflow does not know means a newer MLflow
# upgraded the database (a rollback): the start fails with one line that
# says so, and fails again at each of systemd's restarts.
#
# Environment: MLSTACK_BACKUPS (s3://BUCKET/backups/), MLSTACK_PARAM_PATH,
# MLSTACK_ADMIN_USERNAME, MLSTACK_DATABASE, AWS_DEFAULT_REGION (+ endpoint
# overrides in tests); with postgres _MLFLOW_SERVER_FILE_STORE, the URI
# mlstack_keys.py writes to /run/mlflow/store.env (an EnvironmentFile of
# the unit, read as each ExecStartPre starts).
# Test knobs, unset in production: MLSTACK_DATA_DIR (default /var/lib/mlflow),
# MLSTACK_BACKUP_KEEP (default 48).

import contextlib
import datetime
import fcntl
import gzip
import hashlib
import json
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse

DATA = os.environ.get("MLSTACK_DATA_DIR", "/var/lib/mlflow")
DBS = ("mlflow.db", "basic_auth.db")
KEEP = int(os.environ.get("MLSTACK_BACKUP_KEEP", "48"))


def log(msg):
    print("mlstack-backup: " + msg, file=sys.stderr, flush=True)


def location():
    bucket, _, prefix = os.environ["MLSTACK_BACKUPS"].removeprefix("s3://").partition("/")
    return bucket, prefix


def signature():
    """What changes when a database does: size and time of each file."""
    sig = []
    for db in DBS:
        for suffix in ("", "-wal", "-journal"):
            try:
                st = os.stat(os.path.join(DATA, db + suffix))
                sig.append([db + suffix, st.st_size, st.st_mtime_ns])
            except FileNotFoundError:
                pass
    return sig


def backups(s3, bucket, prefix):
    """{stamp: {name: size}} of every backup under prefix, complete or not."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            stamp, _, name = o["Key"][len(prefix):].partition("/")
            out.setdefault(stamp, {})[name] = o["Size"]
    return out


def backup(s3):
    bucket, prefix = location()
    state = os.path.join(DATA, ".backup-state")
    sig = signature()
    if not os.path.exists(os.path.join(DATA, DBS[0])):
        log("no tracking database yet: nothing to back up")
        return
    try:
        with open(state) as f:
            if json.load(f) == sig:
                log("unchanged since the last backup")
                return
    except (OSError, ValueError):
        pass
    start, ru = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    files = {}
    with tempfile.TemporaryDirectory(dir=DATA, prefix=".backup-") as tmp:
        for db in DBS:
            if not os.path.exists(os.path.join(DATA, db)):
                continue
            copy = os.path.join(tmp, db)
            src, dst = sqlite3.connect("file:%s?mode=ro" % os.path.join(DATA, db), uri=True), sqlite3.connect(copy)
            with dst:
                src.backup(dst)
            src.close()
            dst.close()
            with open(copy, "rb") as f, gzip.open(copy + ".gz", "wb", compresslevel=6) as g:
                shutil.copyfileobj(f, g)
            with open(copy + ".gz", "rb") as f:
                body = f.read()
            s3.put_object(Bucket=bucket, Key="%s%s/%s.gz" % (prefix, stamp, db), Body=body)
            files[db] = {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
    manifest = {"mlflow_version": mlflow_version(), "files": files}
    s3.put_object(Bucket=bucket, Key="%s%s/manifest.json" % (prefix, stamp), Body=json.dumps(manifest).encode())
    with open(state + ".tmp", "w") as f:
        json.dump(sig, f)
    os.replace(state + ".tmp", state)
    ru2 = resource.getrusage(resource.RUSAGE_SELF)
    log("backed up %s to s3://%s/%s%s/ (%d bytes gzip) in %.2f s, CPU %.2f s, max RSS %d MiB" % (
        ", ".join(files), bucket, prefix, stamp, sum(f["bytes"] for f in files.values()), time.monotonic() - start,
        ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime, ru2.ru_maxrss // 1024))
    prune(s3, bucket, prefix)


def prune(s3, bucket, prefix):
    """Keeps the newest KEEP complete backups; deletes older ones and the
    incomplete ones older than the newest complete one."""
    all_ = backups(s3, bucket, prefix)
    complete = sorted(s for s, names in all_.items() if "manifest.json" in names)
    drop = complete[:-KEEP] + [s for s, n in all_.items() if "manifest.json" not in n and complete and s < complete[-1]]
    for stamp in drop:
        keys = [{"Key": "%s%s/%s" % (prefix, stamp, name)} for name in all_[stamp]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    if drop:
        log("pruned %d old or incomplete backup(s); %d kept" % (len(drop), min(len(complete), KEEP)))


def mlflow_version():
    from importlib.metadata import version

    return version("mlflow")


def restore(s3):
    if os.path.exists(os.path.join(DATA, DBS[0])):
        return
    bucket, prefix = location()
    complete = sorted(s for s, names in backups(s3, bucket, prefix).items() if "manifest.json" in names)
    if not complete:
        log("no tracking database and no backup in s3://%s/%s: a new stack" % (bucket, prefix))
        return
    stamp = complete[-1]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key="%s%s/manifest.json" % (prefix, stamp))["Body"].read())
    with tempfile.TemporaryDirectory(dir=DATA, prefix=".restore-") as tmp:
        for db, meta in manifest["files"].items():
            body = s3.get_object(Bucket=bucket, Key="%s%s/%s.gz" % (prefix, stamp, db))["Body"].read()
            if hashlib.sha256(body).hexdigest() != meta["sha256"]:
                raise SystemExit("mlstack-backup: %s of backup %s does not match its manifest" % (db, stamp))
            path = os.path.join(tmp, db)
            with open(path, "wb") as f:
                f.write(gzip.decompress(body))
            os.chmod(path, 0o600)
            if sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise SystemExit("mlstack-backup: %s of backup %s fails sqlite's integrity check" % (db, stamp))
        if manifest["mlflow_version"] != mlflow_version():
            log("backup made by MLflow %s, this is %s: upgrading the schema" % (manifest["mlflow_version"], mlflow_version()))
            subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", "sqlite:///" + os.path.join(tmp, DBS[0])], check=True)
        if os.path.exists(os.path.join(tmp, DBS[1])):
            set_admin_password(s3, os.path.join(tmp, DBS[1]))
        # The tracking database last: its presence means restored.
        for db in sorted(manifest["files"], key=lambda d: d == DBS[0]):
            os.replace(os.path.join(tmp, db), os.path.join(DATA, db))
    log("restored backup %s from s3://%s/%s (MLflow %s)" % (stamp, bucket, prefix, manifest["mlflow_version"]))


def set_admin_password(s3, path):
    """The admin's password in SSM, which mlstack holds, replaces the one
    the backup has (the stack's secrets were made again since)."""
    import boto3
    from werkzeug.security import generate_password_hash

    name = os.environ["MLSTACK_PARAM_PATH"] + "admin-password"
    password = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE users SET password_hash = ? WHERE username = ?",
                   (generate_password_hash(password), os.environ["MLSTACK_ADMIN_USERNAME"]))
    db.close()


# postgres: the alembic scripts (under the mlflow package) and version
# tables of the tracking store and of the basic-auth app.
SCHEMAS = (("tracking", "store/db_migrations", "alembic_version"),
           ("basic-auth", "server/auth/db/migrations", "alembic_version_auth"))
NOTHING = "nothing to do: the tracking data is in PostgreSQL, which RDS's backups and snapshots keep"
# alembic's "revision = ..." and "down_revision = ..." lines (a tuple may
# span lines): a regex reads the 70 scripts in 5 ms, ast.parse in 60 ms.
REVISION_RE = re.compile(r"^(revision|down_revision)\b[^=\n]*=\s*(\([^)]*\)|.*)$", re.M)


# {revision: down_revision} of this MLflow's alembic scripts in mlflow/DIR/versions, read as text.
def migrations(dir_):
    import ast
    import glob
    import importlib.util

    root = os.path.dirname(importlib.util.find_spec("mlflow").origin)
    revs = {}
    for path in glob.glob(os.path.join(root, dir_, "versions", "*.py")):
        with open(path) as f:
            v = {k: ast.literal_eval(x) for k, x in REVISION_RE.findall(f.read())}
        revs[v.get("revision")] = v.get("down_revision")
    revs.pop(None, None)
    return revs


# text without the URI's password, as written or URL-quoted.
def scrub(text, uri):
    pw = urllib.parse.urlsplit(uri).password or "\0"
    return text.replace(pw, "***").replace(urllib.parse.unquote(pw), "***")


# {version table: its revisions} of the version tables that exist.
def db_revisions(uri):
    import psycopg2

    try:
        conn = psycopg2.connect(uri.replace("+psycopg2", "", 1), connect_timeout=10)
        with contextlib.closing(conn), conn.cursor() as cur:
            out = {}
            for _, _, table in SCHEMAS:
                cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
                if cur.fetchone()[0]:
                    cur.execute("SELECT version_num FROM " + table)
                    out[table] = {r[0] for r in cur.fetchall()}
            return out
    except psycopg2.Error as e:
        msg = scrub(" ".join(str(e).split()), uri)
        sys.exit("mlstack-backup: restore: reading the schema's version from the database: " + msg)


# postgres, at every start: the tracking schema brought to this MLflow's
# head, or the start failed when a newer MLflow upgraded the database.
def upgrade_schema():
    uri = os.environ.get("_MLFLOW_SERVER_FILE_STORE", "")
    if not uri.startswith("postgresql"):
        sys.exit("mlstack-backup: restore: no PostgreSQL store in _MLFLOW_SERVER_FILE_STORE "
                 "(/run/mlflow/store.env, which mlstack_keys.py writes)")
    found = db_revisions(uri)
    known = {table: migrations(dir_) for _, dir_, table in SCHEMAS}
    for what, _, table in SCHEMAS:
        unknown = ",".join(sorted(found.get(table, set()) - set(known[table])))
        if unknown:
            sys.exit("mlstack-backup: restore: the database's %s schema is at revision %s, which MLflow %s does not "
                     "know: a newer MLflow upgraded the database, and this one cannot serve it; run the newer MLflow "
                     "version again" % (what, unknown, mlflow_version()))
    # The tracking store's head; the basic-auth app upgrades its tables itself as it starts.
    revs = known["alembic_version"]
    downs = {d for v in revs.values() for d in (v if isinstance(v, (tuple, list)) else [v])}
    new = ",".join(sorted(set(revs) - downs))
    old = ",".join(sorted(found.get("alembic_version", ())))
    if not old:
        return log("restore: %s; a new database: MLflow makes its tables" % NOTHING)
    if old == new:
        return log("restore: %s; its schema is at this MLflow's head (%s)" % (NOTHING, new))
    log("restore: upgrading the tracking schema from %s to %s (MLflow %s)" % (old, new, mlflow_version()))
    start = time.monotonic()
    try:
        from mlflow.store.db.utils import _upgrade_db, create_sqlalchemy_engine_with_retry

        _upgrade_db(create_sqlalchemy_engine_with_retry(uri))
    except Exception:
        import traceback

        sys.exit(scrub(traceback.format_exc(), uri) + "mlstack-backup: restore: the upgrade to %s failed" % new)
    log("restore: the tracking schema is at %s (%.1f s)" % (new, time.monotonic() - start))


# postgres: the admin's password in the database is the stack's (SSM's, in
# basic_auth.ini): a database restored from a snapshot holds the one of its
# day, and MLflow only makes a missing admin. Changed only when it differs.
def sync_admin(uri):
    path = os.environ.get("MLFLOW_AUTH_CONFIG_PATH")
    if not path:
        return
    import configparser

    import psycopg2
    from werkzeug.security import check_password_hash, generate_password_hash

    ini = configparser.ConfigParser()
    ini.read(path)
    user, password = ini["mlflow"]["admin_username"], ini["mlflow"]["admin_password"]
    try:
        conn = psycopg2.connect(uri.replace("+psycopg2", "", 1), connect_timeout=10)
        with contextlib.closing(conn), conn.cursor() as cur:
            cur.execute("SELECT to_regclass('users') IS NOT NULL")
            if not cur.fetchone()[0]:
                return  # a new database: MLflow makes the admin as it starts
            cur.execute("SELECT password_hash FROM users WHERE username = %s", (user,))
            row = cur.fetchone()
            if row is None or check_password_hash(row[0], password):
                return
            cur.execute("UPDATE users SET password_hash = %s WHERE username = %s", (generate_password_hash(password), user))
            conn.commit()
    except psycopg2.Error as e:
        sys.exit("mlstack-backup: restore: setting the admin's password: " + scrub(" ".join(str(e).split()), uri))
    log("restore: the admin's password in the database set to the stack's (the database had another one: a restored snapshot?)")


def main():
    if os.environ.get("MLSTACK_DATABASE") == "postgres":
        if sys.argv[1] == "restore":
            upgrade_schema()
            sync_admin(os.environ["_MLFLOW_SERVER_FILE_STORE"])
        else:
            log("%s: %s" % (sys.argv[1], NOTHING))
        return
    if sys.argv[1] == "restore" and os.path.exists(os.path.join(DATA, DBS[0])):
        return  # every start but a new instance's: no boto3 import (0.3 s)
    import boto3

    s3 = boto3.client("s3")
    with open(os.path.join(DATA, ".backup-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the timer's and the stop's never overlap
        {"backup": backup, "restore": restore}[sys.argv[1]](s3)


if __name__ == "__main__":
    main()
