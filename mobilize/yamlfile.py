"""YAML files whose errors can name the line: load the data and keep where each value was written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mobilize.errors import InvalidInput, Problem

__all__ = ["YamlDoc", "load_yaml"]


class YamlDoc:
    """Parsed YAML data plus the line of every mapping key and sequence item (1-based)."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data: Any = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise InvalidInput("YAML 格式错误", "The YAML is malformed",
                               [Problem(f"无法解析：{getattr(exc, 'problem', exc)}",
                                        f"cannot parse: {getattr(exc, 'problem', exc)}", file=name, row=line)]) from exc
        self._lines: dict[tuple, int] = {}
        if node is not None:
            self._index(node, ())

    def _index(self, node: yaml.Node, path: tuple) -> None:
        self._lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, key.value)
                self._lines[sub] = key.start_mark.line + 1
                self._index(value, sub)
                self._lines[sub] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, (*path, i))

    def line(self, path: tuple) -> int | None:
        """Return the line where ``path`` (keys and indexes) was written, or its nearest parent's."""
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get(())

    def problem(self, path: tuple, zh: str, en: str) -> Problem:
        """Return a problem naming this file, the line of ``path`` and the field ``a.b[2].c``."""
        field = ""
        for part in path:
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        return Problem(zh, en, file=self.name, row=self.line(path), field=field or None)


def load_yaml(path: Path | str) -> YamlDoc:
    """Return the parsed file; an unreadable or malformed file raises :class:`InvalidInput`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput("无法读取文件", "Cannot read the file",
                           [Problem(f"读取失败：{exc}", f"read failed: {exc}", file=str(path))]) from exc
    return YamlDoc(path.name, text)
