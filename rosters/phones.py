"""Mainland mobile numbers (手机号): the stable key of a person, normalized and masked.

A roster writes phones many ways: ``+86 138-0013-8000``, ``(0086)13800138000``, full-width
``１３８００１３８０００``, or the float ``13800138000.0`` an Excel cell turns it into.
:func:`normalize_phone` brings them all to 11 digits; :func:`mask_phone` hides the middle four for
lists and logs (``138****1234``).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["PhoneError", "normalize_phone", "mask_phone", "MOBILE"]

MOBILE = re.compile(r"^1[3-9]\d{9}$")
_SEPARATORS = re.compile(r"[\s\-.()\u2010-\u2015\u2212·]+")
_EXCEL_FLOAT = re.compile(r"^(\d+)\.0+$")
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?e\+\d+$", re.IGNORECASE)


class PhoneError(ValueError):
    """A phone that is not a mainland mobile; ``reason_zh`` and ``reason_en`` say why."""

    def __init__(self, reason_zh: str, reason_en: str) -> None:
        super().__init__(reason_en)
        self.reason_zh = reason_zh
        self.reason_en = reason_en


def normalize_phone(text: object) -> str:
    """Return the 11-digit mainland mobile number that ``text`` writes, or raise :class:`PhoneError`.

    Accepts the prefixes ``+86``, ``86`` and ``0086``, spaces, dashes, dots and parentheses,
    full-width digits and ``＋``, and Excel's integer or float cells.

    >>> normalize_phone("+86 138-0013-8000")
    '13800138000'
    >>> normalize_phone(13800138000.0)
    '13800138000'
    >>> normalize_phone("１３８００１３８０００")
    '13800138000'
    """
    if isinstance(text, bool) or text is None:
        raise PhoneError("手机号为空", "the phone number is empty")
    if isinstance(text, float):
        if not text.is_integer():
            raise PhoneError(f"手机号不是整数：{text}", f"the phone number is not a whole number: {text}")
        text = int(text)
    raw = unicodedata.normalize("NFKC", str(text)).strip()
    if not raw:
        raise PhoneError("手机号为空", "the phone number is empty")
    if _SCIENTIFIC.match(raw):
        raise PhoneError(f"手机号被 Excel 写成了科学计数法（{raw}），位数已丢失，请把该列设为文本后重新填写",
                         f"Excel turned the phone into scientific notation ({raw}) and lost digits; "
                         "format the column as text and enter it again")
    excel = _EXCEL_FLOAT.match(raw)
    digits = excel.group(1) if excel else _SEPARATORS.sub("", raw)
    if digits.startswith("+"):
        if not digits.startswith("+86"):
            raise PhoneError(f"仅支持中国大陆手机号：{raw}", f"only mainland China mobile numbers are accepted: {raw}")
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not digits.isdigit() or not digits.isascii():
        raise PhoneError(f"手机号含有非数字字符：{raw}", f"the phone number contains characters that are not digits: {raw}")
    if digits.startswith("0"):
        raise PhoneError(f"这是固定电话，请填写手机号：{raw}", f"this is a landline; give a mobile number: {raw}")
    if len(digits) != 11:
        raise PhoneError(f"手机号应为11位，实为{len(digits)}位：{raw}",
                         f"a mobile number has 11 digits, this one has {len(digits)}: {raw}")
    if not MOBILE.match(digits):
        raise PhoneError(f"不是有效的大陆手机号（应以13–19开头）：{raw}",
                         f"not a valid mainland mobile number (must start with 13–19): {raw}")
    return digits


def mask_phone(phone: object) -> str:
    """Return ``phone`` with its middle digits hidden, as lists and logs show it: ``138****1234``.

    A phone that does not normalize is masked all the same (first 3 and last 4 characters kept
    when it is long enough, else all hidden), so a mask never leaks a whole number.

    >>> mask_phone("13812341234")
    '138****1234'
    >>> mask_phone("+86 138 1234 1234")
    '138****1234'
    """
    try:
        digits = normalize_phone(phone)
    except PhoneError:
        digits = _SEPARATORS.sub("", unicodedata.normalize("NFKC", str(phone or "")).strip())
        if len(digits) < 8:
            return "****"
    return f"{digits[:3]}****{digits[-4:]}"
