"""Personal phone links: unguessable tokens, stored hashed, refused clearly when unknown, revoked or expired."""

from __future__ import annotations

import base64
import doctest
import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from mobilize import phonelinks
from mobilize.errors import MobilizeError
from mobilize.phonelinks import LinkRefused, PhoneLink, check, hash_token, issue, link_url, new_token, revoke

T0 = datetime(2024, 7, 1, 8, 0, tzinfo=timezone.utc)


def make_link(**overrides):
    token, link = issue(7, 1, now=T0, valid_for=timedelta(hours=24))
    return token, PhoneLink(**{**{f: getattr(link, f) for f in link.__slots__}, **overrides})


def refused(link, token, now=T0, **kw) -> LinkRefused:
    with pytest.raises(LinkRefused) as caught:
        check(link, token, now, **kw)
    return caught.value


def test_tokens_carry_at_least_128_random_bits_and_never_repeat():
    tokens = {new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    raw = base64.urlsafe_b64decode(next(iter(tokens)) + "==")
    assert len(raw) * 8 >= 128


def test_tokens_fit_in_a_url_without_escaping():
    token = new_token()
    assert link_url("https://m.example.gov.cn", token) == f"https://m.example.gov.cn/m/{token}"
    assert link_url("https://m.example.gov.cn/", token, path="phone") == f"https://m.example.gov.cn/phone/{token}"


def test_only_the_hash_is_stored_and_it_is_sha256():
    token, link = issue(7, 1, now=T0)
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest() == hash_token(token)
    assert token not in repr(link)


def test_a_valid_link_opens_for_its_person_and_activation():
    token, link = make_link()
    assert check(link, token, T0 + timedelta(hours=23), activation_id=1).person_id == 7


@pytest.mark.parametrize("token", ["", "short", "x" * 43 + "/", "给我看看" * 11, "a" * 200])
def test_a_malformed_token_is_unknown(token):
    _, link = make_link()
    err = refused(link, token)
    assert (err.code, err.status) == ("link_unknown", 404)


def test_a_token_nobody_issued_is_unknown():
    err = refused(None, new_token())
    assert (err.code, err.status) == ("link_unknown", 404)
    assert "链接无效" in err.message_zh and "not valid" in err.message_en


def test_a_token_that_does_not_match_the_stored_hash_is_unknown():
    _, link = make_link()
    assert refused(link, new_token()).code == "link_unknown"


def test_a_link_of_another_activation_is_unknown_and_says_nothing_more():
    token, link = make_link()
    err = refused(link, token, activation_id=2)
    assert err.code == "link_unknown" and "activation" not in str(err.as_dict())


def test_a_revoked_link_says_it_was_revoked():
    token, link = make_link()
    err = refused(revoke(link, T0 + timedelta(minutes=5)), token, T0 + timedelta(minutes=6))
    assert (err.code, err.status) == ("link_revoked", 410)
    assert "收回" in err.message_zh and "revoked" in err.message_en


def test_an_expired_link_says_it_expired_from_the_expiry_moment():
    token, link = make_link()
    assert check(link, token, link.expires_at - timedelta(seconds=1)) is link
    err = refused(link, token, link.expires_at)
    assert (err.code, err.status) == ("link_expired", 410)
    assert "过期" in err.message_zh and "expired" in err.message_en


def test_revoked_wins_over_expired():
    token, link = make_link()
    assert refused(revoke(link, T0), token, T0 + timedelta(days=30)).code == "link_revoked"


def test_the_three_refusals_read_differently_in_both_languages():
    token, link = make_link()
    errs = [refused(None, token), refused(revoke(link, T0), token), refused(link, token, T0 + timedelta(days=2))]
    assert len({e.code for e in errs}) == len({e.message_zh for e in errs}) == len({e.message_en for e in errs}) == 3
    assert all(isinstance(e, MobilizeError) and e.as_dict()["error"]["code"] == e.code for e in errs)


def test_revoking_twice_keeps_the_first_time():
    _, link = make_link()
    once = revoke(link, T0)
    assert revoke(once, T0 + timedelta(hours=1)).revoked_at == T0


def test_the_hash_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = phonelinks.hmac.compare_digest
    monkeypatch.setattr(phonelinks.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    token, link = make_link()
    check(link, token, T0)
    assert calls == [(link.token_hash, link.token_hash)]


def test_the_docstring_examples_run():
    assert doctest.testmod(phonelinks).failed == 0
