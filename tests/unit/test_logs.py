"""Phone numbers never reach a log whole."""

from __future__ import annotations

import logging

from mobilize.logs import PhoneMask, mask_text


def test_numbers_in_any_spelling_are_masked():
    assert mask_text("q=13812341234&x=1") == "q=138****1234&x=1"
    assert mask_text("call +86 138 1234 5678 now") == "call 138****5678 now"
    assert mask_text("138-1234-5678") == "138****5678"
    assert mask_text("order 4711 at 2026-11-21 id 123456789012345") == "order 4711 at 2026-11-21 id 123456789012345"


def test_the_filter_masks_message_and_arguments(caplog):
    logger = logging.getLogger("mobilize.test")
    logger.addFilter(PhoneMask())
    with caplog.at_level(logging.INFO, logger="mobilize.test"):
        logger.info("person %s called from 13900001111", "13812345678")
    assert "13812345678" not in caplog.text and "13900001111" not in caplog.text
    assert "138****5678" in caplog.text and "139****1111" in caplog.text
