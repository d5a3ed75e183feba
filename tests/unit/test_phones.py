"""Mainland mobile numbers as rosters write them, normalized and masked."""

from __future__ import annotations

import pytest

from rosters.phones import PhoneError, mask_phone, normalize_phone


@pytest.mark.parametrize("written", [
    "13800138000",
    "138 0013 8000",
    "138-0013-8000",
    "138.0013.8000",
    "(138)00138000",
    "+86 138 0013 8000",
    "+86-13800138000",
    "8613800138000",
    "008613800138000",
    "１３８００１３８０００",  # full-width digits, as a Chinese input method types them
    "＋８６　１３８００１３８０００",  # full-width plus and space
    "13800138000.0",  # an Excel number cell exported as text
    13800138000,
    13800138000.0,
])
def test_every_way_a_roster_writes_a_phone_gives_the_same_11_digits(written: object) -> None:
    assert normalize_phone(written) == "13800138000"


@pytest.mark.parametrize(("written", "says"), [
    ("", "为空"),
    ("1380013800", "11位"),
    ("138001380001", "11位"),
    ("12800138000", "13–19"),
    ("010-12345678", "固定电话"),
    ("+1 415 555 0100", "大陆"),
    ("138OO138000", "非数字"),
    ("1.38001E+10", "科学计数法"),
    (13800138000.5, "整数"),
])
def test_a_bad_phone_is_refused_with_a_reason_in_both_languages(written: object, says: str) -> None:
    with pytest.raises(PhoneError) as caught:
        normalize_phone(written)
    assert says in caught.value.reason_zh
    assert caught.value.reason_en


def test_a_masked_phone_hides_the_middle_four_digits() -> None:
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("+86 138 1234 1234") == "138****1234"


def test_a_mask_never_shows_a_whole_number_even_when_it_is_invalid() -> None:
    assert "5678" not in mask_phone("12345678")[:-4]
    assert mask_phone("123") == "****"
    assert mask_phone(None) == "****"
