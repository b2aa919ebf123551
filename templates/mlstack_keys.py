# mlstack: ExecStartPre of mlflow.service, run as the mlflow user at every start.
#
# 1. Secrets: the admin password and the Flask secret key come from SSM
#    SecureString parameters under the stack's path, read with the instance
#    role (mlstack writes them before launch; the user-data holds none). They
#    go into /run/mlflow (tmpfs, 0600, gone when the service stops): the
#    basic-auth config and an environment file for the server.
# 2. TLS: a P-256 key made at the first start in /var/lib/mlflow/tls, which
#    never leaves this machine, and a self-signed certificate for the public
#    DNS name and IPv4 address allowed-hosts.sh learned from IMDSv2. A new
#    certificate is made when they change (a stop and start) or it nears its
#    end; the key stays.
# 3. Artifacts: the stack's mode (String parameter "artifacts", mlstack up
#    writes it) sets the default artifact root in /run/mlflow/artifacts.env:
#    proxied, clients send artifacts through the server (mlflow-artifacts:/),
#    which stores them at _MLFLOW_SERVER_ARTIFACT_DESTINATION with its role;
#    direct (or no parameter), clients write s3:// there with their own key.
#    Read at every start, so a live stack switches with a restart.
# 4. Publishing: the certificate and the SSH host public key go to SSM under
#    the stack's path (the role may write those two parameters and no other),
#    at every start, so mlstack tells them from an earlier instance's by date
#    and pins them. Nothing private is published or printed.
# 5. Database (MLSTACK_DATABASE=postgres; unset is sqlite, as before): the
#    tracking, registry and auth stores in one PostgreSQL database (RDS), at
#    the address in the String parameter "database" (JSON host, port, name,
#    user) with the SecureString "db-password", over SSL. mlstack up writes
#    the address once RDS is available, minutes after the first boot: until
#    then this waits, then fails the start, and systemd starts it again.
#    The URI goes to /run/mlflow/store.env and basic_auth.ini, never to a log.
#    Published first, so that mlstack can pin the certificate meanwhile.
#
# Environment: MLSTACK_PARAM_PATH (/mlstack/STACK/), MLSTACK_ADMIN_USERNAME,
# _MLFLOW_SERVER_ARTIFACT_DESTINATION (s3://BUCKET/artifacts, the unit's),
# MLSTACK_PUBLIC_DNS and MLSTACK_PUBLIC_IP (allowed-hosts.sh), AWS_DEFAULT_REGION,
# MLSTACK_DATABASE (mlflow.env), AWS_ENDPOINT_URL_SSM (emulators only). Test
# knobs, unset in production: MLSTACK_RUN_DIR, MLSTACK_TLS_DIR,
# MLSTACK_SSH_HOST_KEY, MLSTACK_KEYS_ATTEMPTS, MLSTACK_DB_ATTEMPTS, MLSTACK_DB_DELAY.


import datetime
import ipaddress
import json
import os
import re
import sys
import tempfile
import time
import urllib.parse

RUN_DIR = os.environ.get("MLSTACK_RUN_DIR", "/run/mlflow")
TLS_DIR = os.environ.get("MLSTACK_TLS_DIR", "/var/lib/mlflow/tls")
HOST_KEY = os.environ.get("MLSTACK_SSH_HOST_KEY", "/etc/ssh/ssh_host_ed25519_key.pub")
ATTEMPTS = int(os.environ.get("MLSTACK_KEYS_ATTEMPTS", "20"))
# How long one start waits for the database parameter (12 x 5 s): well
# within the unit's TimeoutStartSec=120, then systemd starts it again.
DB_ATTEMPTS = int(os.environ.get("MLSTACK_DB_ATTEMPTS", "12"))
DB_DELAY = float(os.environ.get("MLSTACK_DB_DELAY", "5"))
HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
# A certificate is made again when less than this is left of it.
RENEW_BEFORE = datetime.timedelta(days=60)
VALIDITY = datetime.timedelta(days=397)


def log(msg):
    print("mlstack-keys: " + msg, file=sys.stderr, flush=True)


def write_private(path, data):
    """Writes data to path atomically, readable by this user alone."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def retried(what, fn):
    """The role's credentials and IAM changes take a while to reach a new
    instance: errors are retried with backoff, then the start fails and
    systemd tries again."""
    delay = 1.0
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 -- botocore raises many kinds
            # The error names the parameter and the code, never a value.
            code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
            if attempt == ATTEMPTS:
                raise SystemExit("mlstack-keys: giving up on %s: %s" % (what, code))
            log("%s: %s (attempt %d/%d)" % (what, code, attempt, ATTEMPTS))
            time.sleep(delay)
            delay = min(delay * 2, 10)


def env_quote(s):
    """A double-quoted value for a systemd EnvironmentFile."""
    return '"' + "".join("\\" + c if c in '"\\`$' else c for c in s) + '"'


def read_params(ssm, path, postgres):
    """The stack's parameters, {name below path: value}, in one call; a
    missing secret fails the start, naming it."""
    secrets = ["admin-password", "flask-secret-key"] + (["db-password"] if postgres else [])
    names = [path + n for n in secrets + ["artifacts"] + (["database"] if postgres else [])]
    out = retried("reading " + ", ".join(names), lambda: ssm.get_parameters(Names=names, WithDecryption=True))
    got = {p["Name"][len(path):]: p["Value"] for p in out["Parameters"]}
    missing = [path + n for n in secrets if n not in got]
    if missing:
        raise SystemExit("mlstack-keys: no SSM parameter " + ", ".join(missing))
    log("secrets read from SSM (%s)" % ", ".join(secrets))
    return got


def write_secrets(got, username, database_uri):
    # configparser reads "%" as the start of an interpolation. EDIT: every
    # user reads every experiment and logs runs into it; deleting and
    # managing stay with its creator (MANAGE) and the admin.
    ini = (
        "[mlflow]\n"
        "default_permission = EDIT\n"
        "database_uri = %s\n"
        "admin_username = %s\n"
        "admin_password = %s\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    ) % tuple(v.replace("%", "%%") for v in (database_uri, username, got["admin-password"]))
    write_private(os.path.join(RUN_DIR, "basic_auth.ini"), ini.encode())
    env = "MLFLOW_FLASK_SERVER_SECRET_KEY=%s\n" % env_quote(got["flask-secret-key"])
    write_private(os.path.join(RUN_DIR, "secrets.env"), env.encode())


def write_artifacts(name, mode):
    """The default artifact root for the stack's mode; anything else than
    the two modes fails the start rather than guess."""
    roots = {"proxied": "mlflow-artifacts:/", "direct": os.environ["_MLFLOW_SERVER_ARTIFACT_DESTINATION"]}
    if mode not in roots:
        raise SystemExit("mlstack-keys: SSM parameter %s is %r, want proxied or direct" % (name, mode[:40]))
    env = "_MLFLOW_SERVER_ARTIFACT_ROOT=%s\n" % env_quote(roots[mode])
    write_private(os.path.join(RUN_DIR, "artifacts.env"), env.encode())
    log("artifacts %s: default artifact root %s" % (mode, roots[mode]))


def wait_for_database(ssm, path, got):
    """The database parameter: read again while it is missing, DB_ATTEMPTS
    times, then the start fails (systemd starts it again)."""
    name = path + "database"
    attempt = 1
    while "database" not in got:
        log("waiting for the database: SSM parameter %s not written yet (mlstack up writes it once RDS "
            "is available; attempt %d/%d)" % (name, attempt, DB_ATTEMPTS))
        if attempt >= DB_ATTEMPTS:
            raise SystemExit("mlstack-keys: no SSM parameter %s after %d attempts: this start fails, "
                             "systemd starts mlflow.service again" % (name, attempt))
        attempt += 1
        time.sleep(DB_DELAY)
        for p in retried("reading " + name, lambda: ssm.get_parameters(Names=[name]))["Parameters"]:
            got["database"] = p["Value"]
    return database_uri(name, got["database"], got["db-password"])


def database_uri(name, value, password):
    """The SQLAlchemy URI of the database parameter's JSON and the password.
    Errors name the parameter and the field, never a value."""
    try:
        db = json.loads(value)
        host, port, dbname, user = db["host"], db["port"], db["name"], db["user"]
    except (ValueError, TypeError, KeyError) as e:
        raise SystemExit("mlstack-keys: SSM parameter %s is not JSON with host, port, name and user (%s)"
                         % (name, type(e).__name__)) from None
    for field, ok in (
        ("host", isinstance(host, str) and HOST_RE.fullmatch(host)),
        ("port", type(port) is int and 0 < port < 65536),
        ("name", isinstance(dbname, str) and dbname),
        ("user", isinstance(user, str) and user),
    ):
        if not ok:
            raise SystemExit("mlstack-keys: SSM parameter %s: bad %s" % (name, field))
    log("database: PostgreSQL %s:%d, database %s, user %s, SSL required" % (host, port, dbname, user))
    user, password, dbname = (urllib.parse.quote(v, safe="") for v in (user, password, dbname))
    return "postgresql+psycopg2://%s:%s@%s:%d/%s?sslmode=require" % (user, password, host, port, dbname)


def write_store(uri):
    """The stores for mlflow.service, overriding the unit's sqlite ones;
    MLFLOW_BACKEND_STORE_URI is the one `mlflow server` reads (the drop-in
    of other MLflow versions)."""
    env = "".join("%s=%s\n" % (k, env_quote(uri)) for k in (
        "_MLFLOW_SERVER_FILE_STORE", "_MLFLOW_SERVER_REGISTRY_STORE", "MLFLOW_BACKEND_STORE_URI"))
    write_private(os.path.join(RUN_DIR, "store.env"), env.encode())


def tls_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = os.path.join(TLS_DIR, "server.key")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    os.makedirs(TLS_DIR, mode=0o700, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path, pem)
    log("made a new TLS key in " + path)
    return key


def names_of(cert):
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(san.get_values_for_type(x509.DNSName)) | {
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    }


def tls_cert(key, dns, ip):
    """The certificate for dns and ip: the one on disk while it fits, else a new one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    path = os.path.join(TLS_DIR, "server.crt")
    want = {n for n in (dns, ip) if n}
    now = datetime.datetime.now(datetime.timezone.utc)
    if os.path.exists(path):
        with open(path, "rb") as f:
            pem = f.read()
        cert = x509.load_pem_x509_certificate(pem)
        if names_of(cert) == want and cert.not_valid_after_utc - now > RENEW_BEFORE and cert.public_key() == key.public_key():
            return pem
    alt = [x509.DNSName(dns)] if dns else []
    if ip:
        alt.append(x509.IPAddress(ipaddress.IPv4Address(ip)))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns or ip)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    write_private(path, pem)
    log("made a TLS certificate for " + ", ".join(sorted(want)))
    return pem


def publish(ssm, name, value):
    retried(
        "publishing " + name,
        lambda: ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True),
    )
    log("published " + name)


def main():
    path = os.environ["MLSTACK_PARAM_PATH"]
    dns = os.environ.get("MLSTACK_PUBLIC_DNS", "")
    ip = os.environ.get("MLSTACK_PUBLIC_IP", "")
    if not dns and not ip:
        raise SystemExit("mlstack-keys: no public DNS name or IPv4 address (allowed-hosts.sh)")
    database = os.environ.get("MLSTACK_DATABASE", "")
    if database not in ("", "postgres"):
        raise SystemExit("mlstack-keys: MLSTACK_DATABASE is %r, want postgres or nothing (sqlite)" % database[:40])
    import boto3

    ssm = boto3.client("ssm")
    got = read_params(ssm, path, database == "postgres")
    cert = tls_cert(tls_key(), dns, ip)
    publish(ssm, path + "tls-cert", cert.decode())
    with open(HOST_KEY) as f:
        host_key = f.read().strip()
    # The comment (root@host) says nothing mlstack needs.
    publish(ssm, path + "ssh-host-key", " ".join(host_key.split()[:2]))
    # The auth tables share the PostgreSQL database (their own alembic
    # version table, alembic_version_auth); with sqlite they have a file.
    auth_uri = "sqlite:////var/lib/mlflow/basic_auth.db"
    if database == "postgres":
        auth_uri = wait_for_database(ssm, path, got)
        write_store(auth_uri)
    write_secrets(got, os.environ["MLSTACK_ADMIN_USERNAME"], auth_uri)
    write_artifacts(path + "artifacts", got.get("artifacts", "direct"))


if __name__ == "__main__":
    main()
