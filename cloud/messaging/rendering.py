"""What each kind of message says, in Chinese and English, and how a template becomes text.

Every kind declares the parameters its messages carry (:data:`PARAMS`); a template may name
only those, and is rendered by Jinja's *sandboxed* environment with only those values: a
template edited by staff can neither reach Python objects nor print something the message was
not meant to carry. The built-in words (:data:`DEFAULTS`) are used until staff change a kind's
template (``message_templates``, ``cloud/messaging/templates.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from cloud.messaging.errors import MessagingError

CODE = ("code", "minutes")
PARAMS: dict[str, tuple[str, ...]] = {
    "sign_in_code": CODE,
    "register_code": CODE,
    "password_reset_code": CODE,
    "order_paid": ("order", "amount", "session"),
    "ticket_delivery": ("session", "seat", "link"),
    "refund_done": ("order", "amount"),
    # what cloud/buyers/verifying.py writes: the identity's state (verified, refused or
    # unavailable) and the person's name masked; the words for the state are the template's
    "verification_result": ("state", "name"),
    "session_changed": ("session", "change"),
    # cloud/lottery/drawing.py: a presale application's draw result (won or lost)
    "presale_result": ("application", "session", "state"),
    # cloud/channels/accounts.py: a partner's prepaid balance at its warning threshold (yuan)
    "account_balance_low": ("partner", "balance", "threshold"),
}
KINDS = tuple(PARAMS)
MAX_TEMPLATE = 2000

_ZH = {
    "sign_in_code": ("登录验证码", "【Wicket】您的登录验证码是 {{ code }}，{{ minutes }} 分钟内有效。"
                     "请勿告诉他人。"),
    "register_code": ("注册验证码", "【Wicket】您的注册验证码是 {{ code }}，{{ minutes }} 分钟内有效。"),
    "password_reset_code": ("重置密码验证码", "【Wicket】您正在重置密码，验证码 {{ code }}，"
                            "{{ minutes }} 分钟内有效。如非本人操作请忽略。"),
    "order_paid": ("订单已支付", "【Wicket】订单 {{ order }} 已支付 {{ amount }}，场次：{{ session }}。"),
    "ticket_delivery": ("您的电子票", "【Wicket】{{ session }} {{ seat }} 的电子票：{{ link }}"),
    "refund_done": ("退款完成", "【Wicket】订单 {{ order }} 已退款 {{ amount }}。"),
    "verification_result": ("实名认证结果", "【Wicket】{{ name }} 的实名认证"
                            "{% if state == 'verified' %}已通过{% elif state == 'refused' %}未通过"
                            "{% else %}暂时无法完成，请稍后再试{% endif %}。"),
    "session_changed": ("场次变更通知", "【Wicket】{{ session }}：{{ change }}"),
    "presale_result": ("预售抽签结果", "【Wicket】您的预售申请 {{ application }}（{{ session }}）"
                       "{% if state == 'won' %}已中签，请在选座期内登录选座，逾期将自动分配座位"
                       "{% else %}未中签，款项将原路退回{% endif %}。"),
    "account_balance_low": ("备用金余额不足", "【Wicket】{{ partner }} 的备用金余额为 {{ balance }} 元，"
                            "已低于预警值 {{ threshold }} 元，请及时充值。"),
}
_EN = {
    "sign_in_code": ("Your sign-in code", "[Wicket] Your sign-in code is {{ code }}, valid for "
                     "{{ minutes }} minutes. Do not share it."),
    "register_code": ("Your registration code", "[Wicket] Your registration code is {{ code }}, "
                      "valid for {{ minutes }} minutes."),
    "password_reset_code": ("Your password reset code", "[Wicket] To reset your password enter "
                            "{{ code }} within {{ minutes }} minutes. Not you? Ignore this."),
    "order_paid": ("Order paid", "[Wicket] Order {{ order }} is paid: {{ amount }}, "
                   "{{ session }}."),
    "ticket_delivery": ("Your ticket", "[Wicket] Your ticket for {{ session }} {{ seat }}: "
                        "{{ link }}"),
    "refund_done": ("Refund done", "[Wicket] Order {{ order }} was refunded: {{ amount }}."),
    "verification_result": ("Identity verification", "[Wicket] Identity verification of "
                            "{{ name }}: {% if state == 'verified' %}verified"
                            "{% elif state == 'refused' %}not verified"
                            "{% else %}not possible just now, please try again later"
                            "{% endif %}."),
    "session_changed": ("Session changed", "[Wicket] {{ session }}: {{ change }}"),
    "presale_result": ("Presale draw result", "[Wicket] Your presale application "
                       "{{ application }} ({{ session }}) "
                       "{% if state == 'won' %}won: choose your seats while the window is "
                       "open, or seats are given to you when it closes"
                       "{% else %}was not drawn: your payment is refunded{% endif %}."),
    "account_balance_low": ("Prepaid balance low", "[Wicket] The prepaid balance of "
                            "{{ partner }} is {{ balance }} yuan, at or below its warning "
                            "threshold of {{ threshold }} yuan. Please top it up."),
}
DEFAULTS: dict[tuple[str, str], tuple[str, str]] = {
    **{(k, "zh"): v for k, v in _ZH.items()}, **{(k, "en"): v for k, v in _EN.items()}}

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class Text:
    subject: str
    body: str


def check_kind(kind: str) -> None:
    if kind not in PARAMS:
        raise MessagingError("unknown_message_kind", kind=kind)


def check_template(kind: str, subject: str, body: str) -> None:
    """A template staff wrote: it parses, is not too long, and names only the kind's
    parameters (refused with the first unknown name)."""
    check_kind(kind)
    for text in (subject, body):
        if not text.strip() or len(text) > MAX_TEMPLATE:
            raise MessagingError("bad_template_length", limit=MAX_TEMPLATE)
        try:
            names = meta.find_undeclared_variables(_env.parse(text))
        except TemplateSyntaxError as e:
            raise MessagingError("bad_template", detail=e.message or "syntax") from None
        unknown = sorted(names - set(PARAMS[kind]))
        if unknown:
            raise MessagingError("unknown_template_parameter", name=unknown[0],
                                 allowed=", ".join(PARAMS[kind]))


@lru_cache(maxsize=512)
def _compiled(text: str):
    """A template compiled once per text (a batch renders the same few hundreds of times)."""
    return _env.from_string(text)


def render(kind: str, subject: str, body: str, params: dict[str, Any]) -> Text:
    """The message's words: only the kind's declared parameters reach the template (as text);
    a missing one is an error, never an empty gap."""
    check_kind(kind)
    values = {name: str(params[name]) for name in PARAMS[kind] if name in params}
    try:
        return Text(_compiled(subject).render(values).strip(),
                    _compiled(body).render(values).strip())
    except (UndefinedError, SecurityError, TemplateSyntaxError) as e:
        raise MessagingError("bad_template", detail=str(e)) from None
