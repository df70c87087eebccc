"""Redraw a presale lottery from its published files with Python's standard library alone: print
the list's SHA-256 (to stderr), check it against --list-sha256, then write the result file to
stdout or compare it byte for byte with --result; exit 1 on any mismatch. Written from
docs/lottery.md alone, so that anyone can check the hub's draw without the hub's code."""

import argparse
import hashlib
import hmac
import re
import sys
import unicodedata
from pathlib import Path

INT = "([1-9][0-9]{0,17})"
LOT_LINE = re.compile(f"lot {INT} {INT} {INT} {INT}")
APP_LINE = re.compile(f"app ([A-Z0-9]{{6,20}}) {INT} {INT}")


def fail(message):
    sys.stderr.write(f"verify_draw: {message}\n")
    sys.exit(1)


def read_list(data):
    """The lots {id: tickets} and applications [(number, lot, quantity)] of a canonical list."""
    if not data.endswith(b"\n"):
        fail("the application list does not end with a newline")
    lines = data.decode("utf-8", errors="replace").split("\n")[:-1]
    if not re.fullmatch(f"wicket-presale-applications v1\npresale {INT}", "\n".join(lines[:2])):
        fail("the application list does not start with its two header lines")
    lots, apps = {}, []
    last_lot, last_number = 0, ""
    for n, line in enumerate(lines[2:], 3):
        lot, app = LOT_LINE.fullmatch(line), APP_LINE.fullmatch(line)
        if lot and not apps and int(lot[1]) > last_lot:
            last_lot = int(lot[1])
            lots[last_lot] = int(lot[4])
        elif app and app[1] > last_number and int(app[2]) in lots:
            last_number = app[1]
            apps.append((app[1], int(app[2]), int(app[3])))
        else:
            fail(f"line {n} of the application list is not canonical: {line!r}")
    return lots, apps


def normal_seed(text):
    """NFKC, then whitespace trimmed and each run of it made one space; 1 to 200 characters."""
    seed = " ".join(unicodedata.normalize("NFKC", text).split())
    if not 1 <= len(seed) <= 200 or any(unicodedata.category(c) == "Cc" for c in seed):
        fail("the seed must be 1 to 200 characters without control characters once normalised")
    return seed


def draw(lots, apps, list_sha256, seed):
    """The result file's bytes: per lot, applications in HMAC order, each winning if it fits."""
    key = hashlib.sha256(f"wicket-draw v1\n{list_sha256}\n{seed}".encode()).digest()
    ranked = {lot: [] for lot in lots}
    for number, lot, quantity in apps:
        ranked[lot].append((hmac.digest(key, number.encode(), "sha256"), number, quantity))
    lines = ["wicket-presale-result v1", f"list {list_sha256}", f"seed {seed}"]
    for lot, remaining in sorted(lots.items()):  # remaining: the lot's tickets not yet won
        for _rank, number, quantity in sorted(ranked[lot]):
            if remaining == 0:
                break
            if quantity <= remaining:
                remaining -= quantity
                lines.append(f"win {lot} {number} {quantity}")
    return "".join(line + "\n" for line in lines).encode()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Redraw a presale lottery from its files.")
    parser.add_argument("applications", help="the frozen application list, as published")
    parser.add_argument("seed", help="the seed, as published (quote it if it has spaces)")
    parser.add_argument("--list-sha256", help="the list hash published before the draw")
    parser.add_argument("--result", help="the published result file to compare with")
    args = parser.parse_args(argv)
    data = Path(args.applications).read_bytes()
    list_sha256 = hashlib.sha256(data).hexdigest()
    sys.stderr.write(f"list sha256 {list_sha256}\n")
    if args.list_sha256 is not None and args.list_sha256.strip().lower() != list_sha256:
        fail(f"the list's SHA-256 is {list_sha256}, not the published {args.list_sha256}")
    result = draw(*read_list(data), list_sha256, normal_seed(args.seed))
    if args.result is None:
        sys.stdout.buffer.write(result)
        return
    published = Path(args.result).read_bytes()
    if published == result:
        sys.stdout.write("result matches\n")
        return
    ours, theirs = result.split(b"\n"), published.split(b"\n")
    for n, (mine, given) in enumerate(zip(ours, theirs, strict=False), 1):
        if mine != given:
            fail(f"line {n} differs: published {given!r}, recomputed {mine!r}")
    fail("the published result and the recomputed one differ only in how they end")


if __name__ == "__main__":
    main()
