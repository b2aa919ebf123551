"""Check templates/mlflow-lock.txt against what it promises, without resolving.

Usage: python verify.py --lock FILE --mlflow V --python 3.11 ... --arch x86_64 ...
                        --uv V --pip V --glibc 2_36 [--self-test] ROOT...

Run by `scripts/lock.sh --check` in the lock-tools venv (pinned `packaging`).
A resolution depends on the day it runs (new releases appear, and the index
these machines use does not honour uv's --exclude-newer), so the check asks
only what never changes for a pinned file:
  1. the inputs: the header pins MLflow V, lists exactly PYTHON x ARCH as
     targets, and the installers uv and pip at the versions given;
  2. every hash is one the index serves for that name and version (files on
     PyPI never change), and that wheel installs on every target its marker
     selects (its tags: CPython, manylinux up to the glibc given, its
     Requires-Python);
  3. per target, one line per package, and the set of lines is exactly the
     closure of ROOTs (e.g. mlflow[auth]==3.17.2 boto3 psycopg2-binary) over
     each pinned wheel's own metadata (Requires-Dist with markers and
     extras), every pin inside every specifier that asks for it.
The install with --require-hashes then proves the files themselves.
--self-test also checks that mutated copies of the lock fail (a dropped
dependency, a foreign hash, a missing target, a wrong MLflow): a check that
cannot fail proves nothing.
"""

import argparse
import concurrent.futures
import io
import json
import os
import re
import sys
import urllib.request
import zipfile
from email.parser import HeaderParser

from packaging import tags
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

INDEX = "https://pypi.org/simple/"
REQ = re.compile(r"^([A-Za-z0-9._-]+)==(\S+?)(?: ; (.+?))? \\\n\s+--hash=sha256:([0-9a-f]{64})$", re.M)


def fetch(url, accept=None, first=None, last=None):
    headers = {"Accept": accept} if accept else {}
    if first is not None:
        headers["Range"] = f"bytes={first}-{last}"
    req = urllib.request.Request(url, headers=headers)
    for attempt in range(3):
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.read()
        except OSError as e:  # transport errors only; an HTTP 404 is final
            if getattr(e, "code", None) == 404 or attempt == 2:
                raise SystemExit(f"verify: GET {url}: {e}") from e


class RemoteFile(io.RawIOBase):
    """A file on an HTTP server, read by ranges: zipfile reads a wheel's
    METADATA through it without downloading the wheel."""

    def __init__(self, url, size):
        self.url, self.size, self.pos = url, size, 0

    def seekable(self):
        return True

    def readable(self):
        return True

    def seek(self, offset, whence=0):
        self.pos = {0: 0, 1: self.pos, 2: self.size}[whence] + offset
        return self.pos

    def tell(self):
        return self.pos

    def readinto(self, b):
        n = min(len(b), self.size - self.pos)
        if n <= 0:
            return 0
        data = fetch(self.url, first=self.pos, last=self.pos + n - 1)[:n]
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)


class Index:
    """Files (by sha256) and wheel metadata the index serves, fetched once.
    Metadata is cached under CACHE by the wheel's sha256: a file on PyPI never
    changes, so neither does what it says."""

    CACHE = os.path.join(os.path.dirname(__file__), "..", "..", ".cache", "lock-metadata")

    def __init__(self):
        self.files = {}  # name -> {sha256: file entry}
        self.meta = {}  # sha256 -> Requires-Dist list

    def load(self, names, wheels):
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for n, files in zip(names, pool.map(self._project, names)):
                self.files[n] = files
            for f, reqs in zip(wheels, pool.map(self._metadata, wheels)):
                self.meta[f["hashes"]["sha256"]] = reqs

    def _project(self, name):
        body = fetch(INDEX + name + "/", "application/vnd.pypi.simple.v1+json")
        return {f["hashes"].get("sha256"): f for f in json.loads(body)["files"]}

    def _metadata(self, f):
        cached = os.path.join(self.CACHE, f["hashes"]["sha256"] + ".METADATA")
        try:
            with open(cached) as c:
                text = c.read()
        except FileNotFoundError:
            text = self._read_metadata(f)
            os.makedirs(self.CACHE, exist_ok=True)
            with open(cached + ".tmp", "w") as c:
                c.write(text)
            os.replace(cached + ".tmp", cached)
        return HeaderParser().parsestr(text).get_all("Requires-Dist") or []

    @staticmethod
    def _read_metadata(f):
        # PEP 658 serves METADATA beside the wheel, where the index has it;
        # else the wheel's zip directory and that one member, by HTTP ranges.
        try:
            return fetch(f["url"] + ".metadata").decode()
        except SystemExit:
            pass
        with zipfile.ZipFile(io.BufferedReader(RemoteFile(f["url"], f["size"]), 1 << 16)) as z:
            (name,) = [n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            return z.read(name).decode()


def parse(text):
    data, tools, lines = {}, {}, []
    for line in text.splitlines():
        if line.startswith("#@ "):
            key, _, value = line[3:].partition(" ")
            if key in ("uv", "pip"):
                arch, sha, url = value.split()
                tools[(key, arch)] = (sha, url)
            else:
                data[key] = value
    for m in REQ.finditer(text):
        lines.append((canonicalize_name(m[1]), m[2], m[3] and Marker(m[3]), m[4]))
    return data, tools, lines


def environment(target):
    py, arch = target.split("-")
    return {"python_version": py, "python_full_version": py + ".0", "platform_machine": arch,
            "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "platform_release": "", "platform_version": "", "implementation_version": py + ".0",
            "extra": ""}


def supported(target, glibc):
    py, arch = target.split("-")
    version = tuple(int(x) for x in py.split("."))
    top = int(glibc.split("_")[1])
    plats = [f"manylinux_2_{m}_{arch}" for m in range(top, 4, -1)] + [f"manylinux2014_{arch}"]
    if arch == "x86_64":
        plats += ["manylinux2010_x86_64", "manylinux1_x86_64"]
    interp = f"cp{version[0]}{version[1]}"
    return set(tags.cpython_tags(version, abis=[interp, "abi3", "none"], platforms=plats)) | set(
        tags.compatible_tags(version, interp, plats))


class Checker:
    def __init__(self, args, index):
        self.a, self.index, self.errors = args, index, []
        self.targets = [f"{p}-{x}" for p in sorted(args.python) for x in sorted(args.arch)]

    def err(self, msg):
        self.errors.append(msg)

    def run(self, text):
        self.errors = []
        data, tools, lines = parse(text)
        self.inputs(data, tools)
        self.tools(tools)
        per = {t: self.lines_for(t, lines) for t in self.targets}
        for t, pins in per.items():
            self.closure(t, pins)
        return self.errors

    def inputs(self, data, tools):
        if data.get("mlflow") != self.a.mlflow:
            self.err(f"the lock pins MLflow {data.get('mlflow')}, DefaultMLflowVersion is {self.a.mlflow}")
        if (data.get("targets") or "").split() != self.targets:
            self.err(f"the lock's targets are {data.get('targets')!r}, want {' '.join(self.targets)!r}")
        want = {("pip", "any")} | {("uv", x) for x in self.a.arch}
        if set(tools) != want:
            self.err(f"the lock's installers are {sorted(tools)}, want {sorted(want)}")

    def tools(self, tools):
        for (name, arch), (sha, url) in sorted(tools.items()):
            f = self.index.files.get(name, {}).get(sha)
            version = self.a.uv if name == "uv" else self.a.pip
            if not f or f["url"] != url:
                self.err(f"installer {name} {arch}: the index serves no file {sha} at {url}")
                continue
            _, v, _, wtags = parse_wheel_filename(f["filename"])
            if str(v) != version:
                self.err(f"installer {name} {arch} is {v}, want {version}")
            if arch != "any" and not any(t.platform.endswith(arch) for t in wtags):
                self.err(f"installer {name} {arch}: {f['filename']} is not for {arch}")

    def lines_for(self, target, lines):
        """{name: (version, sha)} of the lines that install on target."""
        env, ok, pins = environment(target), supported(target, self.a.glibc), {}
        for name, version, marker, sha in lines:
            if marker and not marker.evaluate(env):
                continue
            if name in pins:
                self.err(f"{target}: {name} is listed twice")
            pins[name] = (version, sha)
            f = self.index.files.get(name, {}).get(sha)
            if not f or not f["filename"].endswith(".whl"):
                self.err(f"{name}=={version}: the index serves no wheel with sha256 {sha}")
                continue
            _, v, _, wtags = parse_wheel_filename(f["filename"])
            if v != Version(version):
                self.err(f"{name}=={version}: sha256 {sha} is {f['filename']}")
            if not wtags & ok:
                self.err(f"{target}: {f['filename']} does not install there")
            rp = f.get("requires-python")
            if rp and not Requirement("x" + rp if rp[0] in "<>=!~" else "x>=0").specifier.contains(
                    target.split("-")[0] + ".0"):
                self.err(f"{target}: {f['filename']} requires Python {rp}")
        return pins

    def closure(self, target, pins):
        env, seen, todo = environment(target), set(), [Requirement(r) for r in self.a.roots]
        while todo:
            req = todo.pop()
            name = canonicalize_name(req.name)
            if name not in pins:
                self.err(f"{target}: {req} is needed but not locked")
                continue
            version, sha = pins[name]
            if not req.specifier.contains(version, prereleases=True):
                self.err(f"{target}: {name}=={version} is outside {req}")
            for extra in [""] + sorted(req.extras):
                if (name, extra) in seen:
                    continue
                seen.add((name, extra))
                for dep in self.index.meta.get(sha, []):
                    d = Requirement(dep)
                    if d.marker is None or d.marker.evaluate(dict(env, extra=extra)):
                        if extra and d.marker is None:
                            continue  # an unconditional dependency: the base covers it
                        todo.append(d)
        reached = {n for n, _ in seen}
        for name in sorted(set(pins) - reached):
            self.err(f"{target}: {name} is locked but nothing needs it")


# (what, mutation, a part of the error it must cause)
MUTANTS = [
    ("a dependency dropped", lambda t: re.sub(r"(?m)^six==.*\n.*\n", "", t, count=1), "is needed but not locked"),
    ("a hash the index does not serve",
     lambda t: re.sub(r"--hash=sha256:[0-9a-f]{64}", "--hash=sha256:" + "0" * 64, t, count=1), "serves no wheel"),
    ("a target missing", lambda t: re.sub(r"(?m)^(#@ targets .*) \S+$", r"\1", t), "the lock's targets are"),
    ("another MLflow", lambda t: re.sub(r"(?m)^#@ mlflow .*$", "#@ mlflow 0.0.1", t), "the lock pins MLflow 0.0.1"),
    ("a package nothing needs", lambda t: t + "pip==26.3 \\\n    --hash=sha256:" + re.search(
        r"(?m)^#@ pip any ([0-9a-f]{64})", t)[1] + "\n", "pip is locked but nothing needs it"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lock", required=True)
    ap.add_argument("--mlflow", required=True)
    ap.add_argument("--python", action="append", required=True)
    ap.add_argument("--arch", action="append", required=True)
    ap.add_argument("--uv", required=True)
    ap.add_argument("--pip", required=True)
    ap.add_argument("--glibc", required=True)
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("roots", nargs="+")
    a = ap.parse_args()

    text = open(a.lock).read()
    _, tools, lines = parse(text)
    names = sorted({n for n, *_ in lines} | {n for n, _ in tools})
    index = Index()
    index.load(names, [])
    index.load([], [index.files[n][sha] for n, _, _, sha in lines if sha in index.files[n]])

    checker = Checker(a, index)
    errors = checker.run(text)
    for e in errors:
        print(f"lock: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"lock: {len(lines)} wheels for {' '.join(checker.targets)} are served by the index and are "
          f"exactly what {' '.join(a.roots)} need", file=sys.stderr)
    if a.self_test:
        for what, mutate, expect in MUTANTS:
            mutant = mutate(text)
            got = checker.run(mutant) if mutant != text else []
            if not any(expect in e for e in got):
                print(f"lock: self-test: a lock with {what} did not fail with {expect!r}: {got}", file=sys.stderr)
                return 1
        print(f"lock: self-test: {len(MUTANTS)} mutated locks each failed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
