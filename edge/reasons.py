"""The closed set of reasons a scan is admitted or refused, and their words for people.

Staff read these at a turnstile in a second: short, plain, and in the language of the screen.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    OK = "OK"
    ALREADY_ENTERED = "ALREADY_ENTERED"
    UNKNOWN = "UNKNOWN"
    FORGED = "FORGED"
    REVOKED = "REVOKED"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    WRONG_SESSION = "WRONG_SESSION"
    WRONG_GATE = "WRONG_GATE"
    REALNAME_REQUIRED = "REALNAME_REQUIRED"
    REALNAME_MISMATCH = "REALNAME_MISMATCH"
    BLOCKED = "BLOCKED"
    DEVICE_ERROR = "DEVICE_ERROR"


# reason -> (English, Simplified Chinese)
WORDS: dict[Reason, tuple[str, str]] = {
    Reason.OK: ("Valid ticket: go ahead", "验票通过，请通行"),
    Reason.ALREADY_ENTERED: ("Ticket already used", "票已使用"),
    Reason.UNKNOWN: ("Ticket not recognised", "无法识别此票"),
    Reason.FORGED: ("Invalid ticket: not issued by us", "无效票：非本系统签发"),
    Reason.REVOKED: ("Ticket cancelled or refunded", "票已作废或退票"),
    Reason.NOT_YET_VALID: ("Too early: not valid yet", "未到入场时间"),
    Reason.EXPIRED: ("Ticket no longer valid", "票已过期"),
    Reason.WRONG_SESSION: ("Not valid for this event or venue", "非本场次或本场馆的票"),
    Reason.WRONG_GATE: ("Wrong gate for this zone", "请从对应区域的入口入场"),
    Reason.REALNAME_REQUIRED: ("ID card required", "请出示身份证件"),
    Reason.REALNAME_MISMATCH: ("ID does not match the ticket holder", "证件与购票人不符"),
    Reason.BLOCKED: ("Blocked: call a supervisor", "已被禁止入场，请联系主管"),
    Reason.DEVICE_ERROR: ("System fault: call a technician", "设备故障，请联系技术人员"),
}


def words(reason: Reason, lang: str = "en") -> str:
    en, zh = WORDS[reason]
    return zh if lang.lower().startswith("zh") else en


def colour(reason: Reason) -> str:
    """What the verdict light shows: green admits, orange is a repeat, red refuses."""
    if reason is Reason.OK:
        return "green"
    if reason is Reason.ALREADY_ENTERED:
        return "orange"
    return "red"
