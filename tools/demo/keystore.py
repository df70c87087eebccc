"""The demo hub's signing key store: a SoftHSM2 token of the run's own where SoftHSM2 is
installed, else the keys wrapped under a key file beside the database."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

from tools.demo.children import DemoError

SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so",
                   "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                   "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so")


def hub_token(hub_db: Path) -> tuple[dict[str, str], str]:
    """A SoftHSM2 token for the hub's signing keys, in the run's folder, when SoftHSM2 is
    installed: the settings every hub command and the hub's server are started with (never
    this process, so the settings end with the run), and what the banner says of the store.
    The PIN is made for the run and written nowhere."""
    module = next((m for m in SOFTHSM_MODULES if os.path.exists(m)), None)
    if module is None or shutil.which("softhsm2-util") is None:
        return {}, f"wrapped under {hub_db}.kek (SoftHSM2 not installed)"
    base = hub_db.parent / "softhsm"
    (base / "tokens").mkdir(parents=True)
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\n"
                    "objectstore.backend = file\nlog.level = ERROR\n")
    pin = secrets.token_hex(8)
    env = {"SOFTHSM2_CONF": str(conf), "WICKET_HUB_PKCS11_MODULE": module,
           "WICKET_HUB_PKCS11_TOKEN": "wicket-demo", "WICKET_HUB_PKCS11_PIN": pin}
    r = subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "wicket-demo",
                        "--pin", pin, "--so-pin", secrets.token_hex(8)],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "SOFTHSM2_CONF": str(conf)})
    if r.returncode != 0:
        raise DemoError(f"softhsm2-util --init-token failed: {r.stderr.strip()}")
    return env, f"SoftHSM2 token wicket-demo ({base})"
