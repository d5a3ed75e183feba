"""Message texts: every kind in both languages, drills marked, links never cut."""

from __future__ import annotations

import pytest

from mobilize.notify.templates import (
    KINDS,
    LANGS,
    SMS_BODY_LIMIT,
    TemplateError,
    check,
    render,
    sms_segments,
    variables,
)

LINK = "https://mobilize.example/m/Zm9vYmFyYmF6cXV4cXV1eHh5ego12345678"
VALUES = {"post": "东门卡口值守", "post_en": "East gate control", "place": "东门", "report_by": "14:30",
          "member": "王**", "short": 2}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_both_languages(kind, lang):
    payload = {name: VALUES[name] for name in variables(kind)} | {"post_en": VALUES["post_en"], "link": LINK}
    check(kind, payload)
    r = render(kind, payload, lang=lang)
    assert "{" not in r.text and "}" not in r.text
    assert r.text.endswith(LINK)
    if lang == "en":
        assert "东门卡口值守" not in r.text  # the English message names the post in English
    else:
        assert any("\u4e00" <= c <= "\u9fff" for c in r.body)


def test_the_order_message_says_where_and_by_when():
    r = render("order_notified", {**VALUES, "link": LINK}, lang="zh-CN")
    assert "东门卡口值守" in r.text and "东门" in r.text and "14:30" in r.text
    r = render("order_notified", {**VALUES, "link": LINK}, lang="en")
    assert "East gate control" in r.text and "Report by 14:30" in r.text


def test_a_drill_is_marked_in_both_languages():
    assert render("reminder", VALUES, drill=True).text.startswith("【演练】")
    assert render("reminder", VALUES, lang="en", drill=True).text.startswith("[DRILL] ")
    assert "演练" not in render("reminder", VALUES).text


def test_english_falls_back_to_the_chinese_post_name():
    assert "东门卡口值守" in render("reassigned", {"post": "东门卡口值守"}, lang="en").text


def test_iso_times_show_as_local_wall_clock():
    r = render("order_notified", {**VALUES, "report_by": "2026-11-21T06:30:00+00:00"})
    assert "11-21 14:30" in r.text  # Asia/Shanghai is UTC+8


def test_a_missing_variable_is_refused_before_anything_is_sent():
    with pytest.raises(TemplateError, match="report_by"):
        check("order_notified", {"post": "x", "place": "y"})
    with pytest.raises(TemplateError, match="unknown notification kind"):
        check("telegram", {})
    with pytest.raises(TemplateError):
        render("order_notified", {"post": "x"})


def test_a_long_body_is_cut_but_the_link_stays_whole():
    long_place = "幸福里小区" * 60
    r = render("order_notified", {**VALUES, "place": long_place, "link": LINK}, max_body=SMS_BODY_LIMIT)
    assert r.truncated and len(r.body) == SMS_BODY_LIMIT and r.body.endswith("…")
    assert r.text.endswith(LINK) and r.link == LINK
    short = render("order_notified", {**VALUES, "link": LINK}, max_body=SMS_BODY_LIMIT)
    assert not short.truncated


def test_sms_segments_count_like_a_carrier():
    assert sms_segments("a" * 160) == 1 and sms_segments("a" * 161) == 2
    assert sms_segments("短" * 70) == 1 and sms_segments("短" * 71) == 2 and sms_segments("短" * 135) == 3
    assert render("order_notified", {**VALUES, "link": LINK}).segments == 2
