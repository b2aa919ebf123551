#!/bin/sh
# Runs inside the booted container (boot-test.sh pipes it to nsenter ... sh -s):
# prints the resident memory of every process of the service user mlflow
# (the server and its workers: nothing else runs as mlflow), one line each on
# stderr, and their sum in MiB on stdout.
set -eu
ps -u mlflow -o pid=,rss=,args= | cut -c1-110 | sed 's/^/  /' >&2
ps -u mlflow -o rss= | awk '{ kb += $1 } END { printf "%d\n", kb / 1024 }'
