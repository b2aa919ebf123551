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
# With MLSTACK_DATABASE=postgres both do nothing but say so: the data is in
# PostgreSQL (RDS), whose automated backups and snapshots keep it.
#
# Environment: MLSTACK_BACKUPS (s3://BUCKET/backups/), MLSTACK_PARAM_PATH,
# MLSTACK_ADMIN_USERNAME, MLSTACK_DATABASE, AWS_DEFAULT_REGION (+ endpoint
# overrides in tests).
# Test knobs, unset in production: MLSTACK_DATA_DIR (default /var/lib/mlflow),
# MLSTACK_BACKUP_KEEP (default 48).

import datetime
import fcntl
import gzip
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

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


def main():
    if os.environ.get("MLSTACK_DATABASE") == "postgres":
        log("%s: nothing to do: the tracking data is in PostgreSQL, which RDS's backups and snapshots keep" % sys.argv[1])
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
