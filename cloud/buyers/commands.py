"""The buyers area's commands: ``wicket-hub idcheck-sandbox`` (the identity verification
sandbox, docs/identity.md); ``cloud/cli.py`` hands it its subcommands."""

from __future__ import annotations

import logging


def cmd_idcheck_sandbox(args) -> int:
    from cloud.buyers.idcheck_sandbox_api import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    serve(args.publish, args.port, args.host, args.slow, args.public_url)
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("idcheck-sandbox", help="run the identity verification sandbox")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--publish", required=True, help="folder for its public key, the app id "
                   "and secret it issues, and its address (docs/identity.md)")
    s.add_argument("--slow", type=float, default=0.2, help="seconds a 'slow' answer takes")
    s.add_argument("--public-url", help="its address as the hub reaches it")
    s.set_defaults(func=cmd_idcheck_sandbox)
