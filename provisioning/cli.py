"""``wicket-provision``: the field technician's command line, from a bare box to a running
appliance (see docs/provisioning.md).

    wicket-provision [--config FILE] enroll --hub URL --token TOKEN|-   (or --qr PAYLOAD|-)
    wicket-provision [--config FILE] doctor [--json]
    wicket-provision [--config FILE] install [--root DIR] [--no-start]
    wicket-provision [--config FILE] reset [--yes] [--force] [--export FILE] [--with-config]

Exit status of ``enroll``: 0 enrolled and synced, 2 bad input or configuration, 3 hub
unreachable, 4 token not valid, 5 token expired, 6 token already used, 7 clock off the hub's,
8 already enrolled (``reset`` first), 9 enrolled but the first sync failed (it is retried).
``doctor``: 0 no check failed, 1 at least one failed. ``reset``: 1 refused or not confirmed.
Every command: 74 when the disk is full or read-only (one line says which file).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

from edge import config as config_mod
from edge.cli import CliError
from edge.config import disk_paths
from edge.holders import HolderKeyError
from provisioning import doctor as doctor_mod
from provisioning import enroll as enroll_mod
from provisioning import install as install_mod
from provisioning import reset as reset_mod
from sync.diskfault import guard

PROG = "wicket-provision"


def _stdin_or(value: str) -> str:
    return sys.stdin.read().strip() if value == "-" else value


def cmd_enroll(args) -> int:
    if args.qr is not None:
        if args.hub or args.token:
            raise enroll_mod.ProvisionError("give either --qr or --hub and --token",
                                            enroll_mod.EXIT_BAD_INPUT)
        ticket = enroll_mod.parse_qr(_stdin_or(args.qr))
    else:
        if not args.hub or not args.token:
            raise enroll_mod.ProvisionError("give --hub URL and --token TOKEN (or --qr "
                                            "PAYLOAD)", enroll_mod.EXIT_BAD_INPUT)
        ticket = enroll_mod.check_ticket(args.hub, _stdin_or(args.token))
    return enroll_mod.run(args.config, ticket, max_skew_s=args.max_skew,
                          progress=enroll_mod.Progress())


def cmd_doctor(args) -> int:
    checks = doctor_mod.run(args.config, max_skew_s=args.max_skew)
    print(doctor_mod.as_json(checks) if args.json else doctor_mod.render(checks))
    return 1 if any(c.status == doctor_mod.FAIL for c in checks) else 0


def cmd_install(args) -> int:
    root = Path(args.root).resolve() if args.root else None
    return install_mod.run(args.config, root, start=not args.no_start)


def cmd_reset(args) -> int:
    def ask(prompt: str) -> str:
        print(prompt, end="", flush=True)
        return sys.stdin.readline()

    return reset_mod.run(args.config, args.yes, args.force, args.export, args.with_config, ask)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Set up, check and reset a Wicket "
                                "venue appliance.")
    p.add_argument("--config", help=f"configuration file (default: ${config_mod.ENV_VAR} or "
                   f"{config_mod.DEFAULT_PATH})")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("enroll", help="create the config and database, enroll with the hub "
                       "and run the first full sync")
    s.add_argument("--hub", help="the hub's base URL, e.g. https://hub.example")
    s.add_argument("--token", help="the enrollment token; - reads it from stdin (write "
                   "--token=TOKEN for a token that begins with -)")
    s.add_argument("--qr", help='the QR payload the hub shows ({"v":1,"hub":…,"token":…}); '
                   "- reads it from stdin")
    s.add_argument("--max-skew", type=float, default=enroll_mod.MAX_SKEW_S,
                   help="largest clock difference to the hub accepted, in seconds (default "
                   "%(default).0f)")
    s.set_defaults(func=cmd_enroll)

    s = sub.add_parser("doctor", help="check the box: config, database, devices, hub, clock, "
                       "disk, services, sync")
    s.add_argument("--json", action="store_true", help="a JSON list of checks")
    s.add_argument("--max-skew", type=float, default=doctor_mod.MAX_SKEW_S,
                   help="clock difference to the hub that fails, in seconds")
    s.set_defaults(func=cmd_doctor)

    s = sub.add_parser("install", help="service user, directories and systemd units")
    s.add_argument("--root", help="install into this directory tree (no user, no systemctl)")
    s.add_argument("--no-start", action="store_true", help="enable the units, do not start them")
    s.set_defaults(func=cmd_install)

    s = sub.add_parser("reset", help="wipe the appliance (database, credential) to enroll anew")
    s.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    s.add_argument("--force", action="store_true", help="reset even with entries the hub has "
                   "not acknowledged, exporting them first")
    s.add_argument("--export", help="where --force writes the entries (default: a timestamped "
                   "file beside the database)")
    s.add_argument("--with-config", action="store_true", help="remove the configuration file "
                   "too, and the holder key in it")
    s.set_defaults(func=cmd_reset)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    try:
        return guard(PROG, lambda: args.func(args), lambda: disk_paths(args.config))
    except enroll_mod.ProvisionError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.exit_code
    except reset_mod.ResetError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.exit_code
    except (config_mod.ConfigError, CliError, HolderKeyError, install_mod.InstallError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"{PROG}: {' '.join(map(str, e.cmd))} failed (exit {e.returncode})",
              file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
