#!/bin/sh
# Runs inside the booted container (the boot test pipes it to nsenter ... sh -s):
# the memory of every process of the service user mlflow (the server and its
# workers: nothing else runs as mlflow). One line per process on stderr;
# on stdout "RSS_MIB PSS_MIB PROCESSES": resident memory summed (shared pages
# counted in each process), proportional set size summed (shared pages
# split), and how many processes there are.
set -eu
ps -u mlflow -o pid=,rss=,args= | cut -c1-110 | sed 's/^/  /' >&2
rss=$(ps -u mlflow -o rss= | awk '{ kb += $1 } END { print kb + 0 }')
pss=0
n=0
for p in $(pgrep -u mlflow); do
	n=$((n + 1))
	kb=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
	pss=$((pss + ${kb:-0}))
done
echo "$((rss / 1024)) $((pss / 1024)) $n"
