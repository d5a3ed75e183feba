"""Which phone presses the fast route answers itself (everything else goes to the documented route)."""

from __future__ import annotations

import pytest

from mobilize.activations.phone_routes import _plain_press

JSON = (b"content-type", b"application/json")
KEY = (b"idempotency-key", b"press-0001")


def scope(*headers):
    return {"headers": list(headers)}


@pytest.mark.parametrize("action", ["acknowledge", "en_route", "arrive"])
def test_a_plain_press_is_taken_with_its_key(action):
    body = f'{{"action": "{action}"}}'.encode()
    assert _plain_press(scope(JSON, KEY), body) == (action, "press-0001")
    assert _plain_press(scope((b"content-type", b"application/json; charset=utf-8"), KEY), body) == (
        action, "press-0001")
    assert _plain_press(scope(JSON, KEY), f'{{"action": "{action}", "note": null}}'.encode()) == (action, "press-0001")


@pytest.mark.parametrize(("headers", "body"), [
    ((JSON, KEY), b'{"action": "decline", "reason": "ill"}'),  # a decline searches a backup: the full route
    ((JSON, KEY), b'{"action": " acknowledge "}'),  # the model strips whitespace
    ((JSON, KEY), b'{"action": "acknowledge", "note": "on my way"}'),  # a note is the model's to check
    ((JSON, KEY), b'{"action": "acknowledge", "reason": "ill"}'),
    ((JSON, KEY), b'{"action": "acknowledge", "extra": 1}'),  # unknown fields are refused by the model
    ((JSON, KEY), b'["acknowledge"]'),
    ((JSON, KEY), b'{"action": "acknowledge"'),  # not JSON
    ((JSON, KEY), b'{"action": 1}'),
    ((JSON,), b'{"action": "acknowledge"}'),  # no key: the model's 422 names the header
    ((JSON, (b"idempotency-key", b"short")), b'{"action": "acknowledge"}'),
    ((JSON, (b"idempotency-key", b"k" * 129)), b'{"action": "acknowledge"}'),
    ((JSON, KEY, KEY), b'{"action": "acknowledge"}'),  # two keys: ambiguous
    ((KEY,), b'{"action": "acknowledge"}'),  # no content type
    (((b"content-type", b"text/plain"), KEY), b'{"action": "acknowledge"}'),
    ((JSON, JSON, KEY), b'{"action": "acknowledge"}'),
])
def test_anything_else_is_passed_on(headers, body):
    assert _plain_press(scope(*headers), body) is None


def test_a_missing_key_and_a_key_of_the_wrong_length_are_told_apart():
    from mobilize.errors import InvalidInput
    from mobilize.idempotency import require_key

    with pytest.raises(InvalidInput) as missing:
        require_key(None)
    with pytest.raises(InvalidInput) as short:
        require_key("ack-1")
    assert "required" in missing.value.message_en and missing.value.problems[0].field == "Idempotency-Key"
    assert "（现为 5 个）" in short.value.message_zh and "this one has 5" in short.value.message_en
    assert short.value.problems[0].field == "Idempotency-Key"
    assert require_key("press-0001") == "press-0001"
