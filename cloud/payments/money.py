"""Exact conversions between whole fen and the providers' yuan strings (Alipay's amounts and
WeChat's bills): decimal arithmetic on text, never floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

FEN_PER_YUAN = 100


def fen_to_yuan(fen: int) -> str:
    """``1234`` → ``"12.34"``: Alipay's two-decimal yuan string."""
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise ValueError("an amount is a whole, non-negative number of fen")
    return f"{fen // FEN_PER_YUAN}.{fen % FEN_PER_YUAN:02d}"


def yuan_to_fen(yuan: str) -> int:
    """``"12.34"`` → ``1234``; refuses anything that is not an exact amount of fen."""
    text = str(yuan).strip().lstrip("`")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{yuan!r} is not an amount of yuan") from None
    fen = value * FEN_PER_YUAN
    if not value.is_finite() or fen != fen.to_integral_value():
        raise ValueError(f"{yuan!r} is not a whole number of fen")
    return int(fen)
