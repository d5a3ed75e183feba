"""Logging that never prints a whole phone number: every record passes through :class:`PhoneMask`."""

from __future__ import annotations

import logging
import re

__all__ = ["PhoneMask", "mask_text", "install"]

# A mainland mobile inside any text (not part of a longer number): 13812341234, +86 138 1234 1234, 138-1234-1234.
_PHONE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")


def mask_text(text: str) -> str:
    """Return ``text`` with every mobile number masked to ``138****1234``.

    >>> mask_text("GET /api/v1/people?q=13812341234 200")
    'GET /api/v1/people?q=138****1234 200'
    """
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


class PhoneMask(logging.Filter):
    """Mask phone numbers in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(mask_text(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        return True


def install(level: str = "INFO") -> None:
    """Put the mask on every handler of the root and uvicorn loggers (call after they are configured)."""
    mask = PhoneMask()
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "mobilize", "realtime"):
        logger = logging.getLogger(name)
        logger.addFilter(mask)
        for handler in logger.handlers:
            handler.addFilter(mask)
    logger = logging.getLogger("mobilize")
    logger.setLevel(level)
    if not logger.handlers:  # uvicorn configures its own loggers only; ours would print nothing below WARNING
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        handler.addFilter(mask)
        logger.addHandler(handler)
