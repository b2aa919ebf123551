"""Runs on the booted instance, with the server's Python (the boot test
pipes it to /opt/mlflow/bin/python - KEY_ID under a bare environment): where
boto3 finds its credentials there, and whether they are the instance
role's (KEY_ID, the access key id IMDS serves).

Prints "METHOD SAME", e.g. "iam-role True". No secret is printed.
"""

import sys

import boto3


def main():
    creds = boto3.Session().get_credentials()
    if creds is None:
        raise SystemExit("boto3 found no credentials")
    print(creds.method, creds.access_key == sys.argv[1])


if __name__ == "__main__":
    main()
