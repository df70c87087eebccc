"""Signing a partner API request (cloud/channels/signing.py): known requests give known
signatures, the documentation's curl recipe signs exactly as the hub checks, and every change
to a signed part breaks the signature."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest

from cloud.channels import signing

ORDER_BODY = b'{"lines":[{"product_id":7,"day":"2026-01-01","quantity":2}],"confirm":true}'
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# (secret, method, path, timestamp, nonce, body) -> signature: computed once, kept fixed so
# that any change to the canonical string is seen (clients in the field sign this way)
VECTORS = [
    (("example-secret-do-not-use", "POST", "/api/partner/v1/orders", "1767225600",
      "3f2b8c1d9e7a4b6c", ORDER_BODY),
     "dc9d0c0d248ff84ffc826f549bdb1a7f2a602ab8c24c1027b06ccfcf24cb352f"),
    (("s3cr3t", "GET", "/api/partner/v1/products/7/availability?from=2026-01-01&days=3",
      "1767225600", "nonce-0000000000001", b""),
     "76de379fdedc647888ff5a57766ca6d85c638f13fbc33a701422772ad921420d"),
]


@pytest.mark.parametrize("request_parts,signature", VECTORS, ids=["post-order", "get-query"])
def test_a_known_request_has_a_known_signature(request_parts, signature):
    assert signing.sign(*request_parts) == signature
    assert signing.signature_matches(*request_parts, signature)


def test_the_canonical_string_is_six_lines_without_a_final_newline():
    text = signing.canonical("get", "/api/partner/v1/ping", "1767225600", "n" * 16, b"")
    assert text == ("WICKET-HMAC-SHA256\nGET\n/api/partner/v1/ping\n1767225600\n"
                    + "n" * 16 + "\n" + EMPTY_SHA256)


@pytest.mark.parametrize("part", range(6))
def test_changing_any_signed_part_breaks_the_signature(part):
    parts, signature = VECTORS[0]
    changed = list(parts)
    changed[part] = changed[part] + (b"x" if isinstance(changed[part], bytes) else "1")
    assert not signing.signature_matches(*changed, signature)


def test_a_signature_in_another_form_does_not_match():
    (parts, signature) = VECTORS[0]
    assert not signing.signature_matches(*parts, signature.upper())
    assert not signing.signature_matches(*parts, "é" * 64)


def test_the_timestamp_window_is_five_minutes_either_way():
    now = datetime.fromtimestamp(1767225600, UTC)
    assert signing.fresh("1767225300", now) and signing.fresh("1767225900", now)
    assert not signing.fresh("1767225299", now) and not signing.fresh("1767225901", now)


def test_the_first_missing_or_malformed_header_is_named():
    good = signing.signed_headers("wk_abc", "s", "GET", "/x", b"", 1767225600, "n" * 16)
    assert signing.malformed_header(good) is None
    for name, value in ((signing.KEY_HEADER, "bad key!"), (signing.TIMESTAMP_HEADER, "-1"),
                        (signing.TIMESTAMP_HEADER, "1.5"), (signing.NONCE_HEADER, "short"),
                        (signing.NONCE_HEADER, "n" * 65), (signing.SIGNATURE_HEADER, "ab"),
                        (signing.SIGNATURE_HEADER, "A" * 64)):
        assert signing.malformed_header({**good, name: value}) == name
        assert signing.malformed_header({k: v for k, v in good.items() if k != name}) == name


def test_the_documented_curl_recipe_signs_as_the_hub_checks():
    """The shell lines of the portal's API page (openssl), with the moment and the nonce
    fixed, give the hub's signature."""
    (secret, method, path, stamp, nonce, body), signature = VECTORS[0]
    script = (
        "BODY_SHA=$(printf '%s' \"$BODY\" | openssl dgst -sha256 -r | cut -d' ' -f1)\n"
        "printf 'WICKET-HMAC-SHA256\\nPOST\\n%s\\n%s\\n%s\\n%s' \"$URL_PATH\" \"$TS\" "
        "\"$NONCE\" \"$BODY_SHA\" | openssl dgst -sha256 -hmac \"$SECRET\" -r "
        "| cut -d' ' -f1\n")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "BODY": body.decode(),
                              "URL_PATH": path, "TS": stamp, "NONCE": nonce,
                              "SECRET": secret})
    assert out.stdout.strip() == signature
