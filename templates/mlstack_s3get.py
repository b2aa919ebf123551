# mlstack: fetches one object of the stack bucket at first boot (what the
# user-data has no room for, such as the install lock), signed with AWS
# SigV4 with the instance role's credentials from IMDSv2, and keeps it only
# when its sha256 is the one the user-data pins: the bucket is a channel,
# the user-data the trust. Standard library alone: it runs before the venv
# exists. Errors are retried with backoff (a new instance's role takes a
# while to reach IMDS and S3), then it fails.
#
# Usage: python3 mlstack_s3get.py URL REGION SHA256 DEST
# Test knobs, unset in production: MLSTACK_IMDS_ENDPOINT, MLSTACK_S3GET_ATTEMPTS.

import datetime
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.parse
import urllib.request

IMDS = os.environ.get("MLSTACK_IMDS_ENDPOINT", "http://169.254.169.254")
ATTEMPTS = int(os.environ.get("MLSTACK_S3GET_ATTEMPTS", "12"))


def imds(path, token=None):
    req = urllib.request.Request(IMDS + path, method="PUT" if token is None else "GET")
    if token is None:
        req.add_header("X-aws-ec2-metadata-token-ttl-seconds", "300")
    else:
        req.add_header("X-aws-ec2-metadata-token", token)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


def role_credentials():
    token = imds("/latest/api/token")
    base = "/latest/meta-data/iam/security-credentials/"
    role = imds(base, token).split()[0]
    return json.loads(imds(base + role, token))


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_get(url, region, creds):
    """GET url with a SigV4 header signature (service s3, empty payload)."""
    u = urllib.parse.urlsplit(url)
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    empty = hashlib.sha256(b"").hexdigest()
    headers = {"host": u.netloc, "x-amz-content-sha256": empty, "x-amz-date": stamp,
               "x-amz-security-token": creds["Token"]}
    names = ";".join(sorted(headers))
    canonical = "\n".join(["GET", u.path or "/", u.query, "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)),
                           names, empty])
    scope = "%s/%s/s3/aws4_request" % (day, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + creds["SecretAccessKey"]).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac256(key, part)
    req = urllib.request.Request(url)
    for k, v in headers.items():
        if k != "host":
            req.add_header(k, v)
    req.add_header("Authorization", "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        creds["AccessKeyId"], scope, names, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()))
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def main():
    url, region, want, dest = sys.argv[1:5]
    delay = 1.0
    for attempt in range(1, ATTEMPTS + 1):
        try:
            body = signed_get(url, region, role_credentials())
            got = hashlib.sha256(body).hexdigest()
            if got == want:
                break
            why = "sha256 %s, want %s" % (got, want)
        except Exception as e:  # noqa: BLE001 -- urllib raises many kinds
            # The status or cause, never a header (the role's token).
            why = "%s %s" % (type(e).__name__, getattr(e, "code", "") or getattr(e, "reason", ""))
        if attempt == ATTEMPTS:
            raise SystemExit("mlstack-s3get: giving up on %s: %s" % (url, why))
        print("mlstack-s3get: %s: %s (attempt %d/%d)" % (url, why, attempt, ATTEMPTS), file=sys.stderr, flush=True)
        time.sleep(delay)
        delay = min(delay * 2, 30)
    tmp = dest + ".tmp"
    with open(tmp, "wb") as f:
        f.write(body)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)
    print("mlstack-s3get: %s (%d bytes, sha256 checked) -> %s" % (url, len(body), dest), file=sys.stderr)


if __name__ == "__main__":
    main()
