"""Coded errors: every refusal of a hub rule is a :class:`HubError` with a stable snake_case
code, the values it names as parameters, and an English message made from its code's template.

Each area declares its codes once, beside its error class (``codes``: code → :class:`Code`, the
HTTP status that fits and the English template with ``%(name)s`` placeholders); the JSON APIs
answer ``{"error": code, "message": english, "params": {...}}`` with that status, and the pages
look the words up by code (``cloud/web/error_words.py``). ``cloud/errors.py`` gathers every
area's codes so that a test can compare them with the translations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Code:
    """What a code means: the HTTP status an API answers it with, and its English template."""

    status: int
    message: str


# What any request can be refused for before a rule is reached (the JSON APIs and the sync
# contract): the area error classes that raise one of these include them in their codes.
PROTOCOL = {
    "unauthorized": Code(401, "this request needs valid credentials"),
    "forbidden": Code(403, "the %(role)s role may not do this"),
    "bad_json": Code(400, "the request body must be a JSON object"),
    "too_large": Code(413, "the request body must be under %(limit)s bytes"),
}


class HubError(ValueError):
    """A request a rule refuses; nothing was changed. ``code`` says which refusal it is,
    ``params`` the values its message names. ``message`` overrides the template's sentence
    (for a detail no template can say, such as a parser's own words)."""

    codes: ClassVar[dict[str, Code]] = PROTOCOL

    def __init__(self, code: str, message: str | None = None, /, **params: Any):
        known = self.codes.get(code)
        if known is None:
            raise LookupError(f"{type(self).__name__} has no code {code!r}")
        self.code, self.params, self.status = code, params, known.status
        super().__init__(message if message is not None else known.message % params)

    @property
    def message(self) -> str:
        return str(self)

    def as_json(self) -> dict[str, Any]:
        return {"error": self.code, "message": str(self), "params": self.params}
