"""Copy stdin to stdout with every secret replaced by ***.

Usage: python3 mask.py SECRETS_FILE   (one secret per line; a missing file
masks nothing). boot-test.sh pipes every output that could hold a secret
(logs, client errors, journals) through this before printing it.
"""

import sys


def main() -> None:
    secrets = []
    try:
        with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
            secrets = [s for s in f.read().splitlines() if len(s) >= 4]
    except OSError:
        pass
    # Longest first, so a secret that contains another is masked whole.
    secrets.sort(key=len, reverse=True)
    for line in sys.stdin.buffer:
        text = line.decode("utf-8", errors="replace")
        for s in secrets:
            text = text.replace(s, "***")
        sys.stdout.write(text)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
