"""Turn pydantic's validation errors into bilingual problems that name the field."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mobilize.errors import Problem

__all__ = ["validation_problems"]

_ZH = {
    "missing": "缺少此字段",
    "extra_forbidden": "不允许设置此字段",
    "string_too_short": "内容太短",
    "string_too_long": "内容太长",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "float_parsing": "须为数字",
    "float_type": "须为数字",
    "bool_parsing": "须为是/否",
    "bool_type": "须为是/否",
    "enum": "不是允许的取值",
    "literal_error": "不是允许的取值",
    "greater_than_equal": "数值太小",
    "less_than_equal": "数值太大",
    "greater_than": "数值太小",
    "less_than": "数值太大",
    "date_parsing": "日期格式不正确",
    "date_from_datetime_parsing": "日期格式不正确",
    "json_invalid": "不是有效的 JSON",
    "model_attributes_type": "须为对象",
    "dict_type": "须为对象",
    "list_type": "须为列表",
    "value_error": "取值不正确",
    "string_type": "须为文本",
}


def validation_problems(errors: Iterable[dict[str, Any]]) -> list[Problem]:
    """Return one :class:`Problem` per pydantic error, naming the field path (``body.phone``)."""
    problems = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        field = ".".join(loc) or None
        msg = err.get("msg", "invalid")
        ctx = err.get("ctx") or {}
        zh = ctx.get("reason_zh") if isinstance(ctx.get("reason_zh"), str) else None
        if zh is None and err.get("type") == "value_error" and isinstance(ctx.get("error"), Exception):
            text = str(ctx["error"])
            if " / " in text:
                zh, msg = text.split(" / ", 1)
        zh = zh or _ZH.get(err.get("type", ""), "取值不正确")
        value = err.get("input")
        problems.append(Problem(zh, msg, field=field, value=value if isinstance(value, (str, int, float, bool)) else None))
    return problems
