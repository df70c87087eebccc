"""``wicket-codes``: make and check ticket codes by hand, and build a sample venue.

    wicket-codes keygen --key-id 1 --out hub-key.json
    wicket-codes sign --key hub-key.json --ticket 1001 --session 7 [--zone 3 --seat 4567 ...]
    wicket-codes verify --pubkey 1:BASE64 CODE
    wicket-codes pubkey --key hub-key.json          the public half, as 1:BASE64
    wicket-codes sample --key hub-key.json --out allowlist.jsonl --codes codes.tsv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sync import codes, sample
from sync.keys import (
    KeyFileError,
    KeyRing,
    generate_signing_key,
    load_signing_key,
    save_signing_key,
)
from sync.timeutil import from_iso, to_iso, utcnow


def _ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ids like 7,8,9") from None


def cmd_keygen(args) -> int:
    key = generate_signing_key(args.key_id)
    save_signing_key(key, args.out)
    print(f"signing key {key.key_id} written to {args.out} (owner-only; keep it on the hub)")
    print(f"public key {key.key_id}: {key.public_key_b64()}")
    return 0


def cmd_sign(args) -> int:
    key = load_signing_key(args.key)
    scopes = [x for x in (args.session, args.sessions, args.venues) if x is not None]
    if len(scopes) != 1:
        print("wicket-codes: give exactly one of --session, --sessions, --venues", file=sys.stderr)
        return 2
    if args.session is not None:
        kind, scope = codes.Kind.SESSION, (args.session,)
    elif args.sessions is not None:
        kind, scope = codes.Kind.SESSIONS, args.sessions
    else:
        kind, scope = codes.Kind.VENUES, args.venues
    payload = codes.TicketPayload(
        ticket_id=args.ticket, kind=kind, scope=scope, role=codes.Role[args.role.upper()],
        serial=args.serial, zone=args.zone, seat=args.seat,
        valid_from=from_iso(args.valid_from) if args.valid_from else None,
        valid_until=from_iso(args.valid_until) if args.valid_until else None,
        daily_limit=args.daily_limit, realname=args.realname)
    print(codes.encode(payload, key))
    return 0


def cmd_verify(args) -> int:
    ring = KeyRing()
    for item in args.pubkey:
        kid, _, b64 = item.partition(":")
        if not kid.isdigit() or not b64:
            print(f"wicket-codes: --pubkey {item!r}: expected KEY_ID:BASE64", file=sys.stderr)
            return 2
        ring.add(int(kid), b64)
    try:
        p = codes.decode(args.code.strip(), ring)
    except codes.CodeError as e:
        print(f"INVALID {e.code}: {e}")
        return 1
    print(f"VALID   signed with key {p.key_id}")
    print(f"  ticket {p.ticket_id} serial {p.serial} {p.kind.name.lower()} "
          f"{p.role.name.lower()} scope {','.join(map(str, p.scope))}")
    print(f"  zone {p.zone or 'any'} seat {p.seat or '-'} real-name {'yes' if p.realname else 'no'}"
          f" daily limit {p.daily_limit or '-'}")
    if p.valid_from:
        print(f"  valid {to_iso(p.valid_from)} .. {to_iso(p.valid_until)}")
    return 0


def cmd_sample(args) -> int:
    key = load_signing_key(args.key)
    now = from_iso(args.at) if args.at else utcnow()
    venue = sample.build(key, now, tickets=args.tickets)
    sample.write_files(venue, Path(args.out), Path(args.codes), key, utcnow())
    print(f"sample venue with {len(venue.tickets)} tickets: {len(venue.changes)} changes in "
          f"{args.out} (signed with key {key.key_id}), codes in {args.codes}")
    return 0


def cmd_pubkey(args) -> int:
    key = load_signing_key(args.key)
    print(f"{key.key_id}:{key.public_key_b64()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wicket-codes", description="Wicket ticket code tools.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("keygen", help="generate a hub signing key")
    s.add_argument("--key-id", type=int, required=True, help="1..255")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_keygen)

    s = sub.add_parser("sign", help="sign a ticket code")
    s.add_argument("--key", required=True, help="signing key file")
    s.add_argument("--ticket", type=int, required=True)
    s.add_argument("--session", type=int)
    s.add_argument("--sessions", type=_ids, help="a pass over these sessions: 7,8,9")
    s.add_argument("--venues", type=_ids, help="a pass over these venues (needs --from/--until)")
    s.add_argument("--zone", type=int, default=0)
    s.add_argument("--seat", type=int)
    s.add_argument("--from", dest="valid_from")
    s.add_argument("--until", dest="valid_until")
    s.add_argument("--daily-limit", type=int, default=0)
    s.add_argument("--role", choices=("ticket", "staff", "registered"), default="ticket")
    s.add_argument("--realname", action="store_true")
    s.add_argument("--serial", type=int, default=0)
    s.set_defaults(func=cmd_sign)

    s = sub.add_parser("verify", help="verify a ticket code")
    s.add_argument("--pubkey", action="append", required=True, help="KEY_ID:BASE64, repeatable")
    s.add_argument("code")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("pubkey", help="print a signing key's public half as KEY_ID:BASE64")
    s.add_argument("--key", required=True, help="signing key file")
    s.set_defaults(func=cmd_pubkey)

    s = sub.add_parser("sample", help="a sample venue: signed allowlist file and codes")
    s.add_argument("--key", required=True)
    s.add_argument("--tickets", type=int, default=500)
    s.add_argument("--out", required=True, help="allowlist file to write (JSON lines, signed "
                   "with --key as the hub signs its exports)")
    s.add_argument("--codes", required=True, help="TSV of codes to write")
    s.add_argument("--at", help="build the sessions around this ISO time (default: now)")
    s.set_defaults(func=cmd_sample)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyFileError, codes.CodeError, ValueError, OSError) as e:
        print(f"wicket-codes: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
