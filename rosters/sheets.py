"""Reading roster files into raw tables: which table each file or sheet holds, its header, its rows.

CSV comes in the encodings Excel in China writes (UTF-8 with or without BOM, GB18030/GBK, UTF-16);
XLSX is opened with openpyxl (``read_only=True, data_only=True``). Nothing here checks a value:
that is :mod:`rosters.importer`'s work. Problems with a file go to a :class:`ProblemList`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import XMLPullParser

from openpyxl.reader.excel import ExcelReader

from mobilize.errors import Problem
from rosters.columns import NOTES_SHEETS, TABLES, TableSpec, detect_table, normalize_header, table_for_sheet

__all__ = ["RawTable", "ProblemList", "read_tables", "MAX_PROBLEMS"]

MAX_PROBLEMS = 1000
"""Problems listed at most; one more problem then says how many were left out."""

_HEADER_SEARCH = 5  # a title row or two may sit above the header (常见的"××社区人员名册"标题行)


@dataclass
class RawTable:
    """One table as a file holds it: the header as written, and its data rows numbered as in Excel."""

    file: str
    table: TableSpec
    headers: dict[str, str]  # field -> header as written
    index: dict[str, int]  # field -> column position
    rows: list[tuple[int, Sequence[Any]]]


@dataclass
class ProblemList:
    """Problems found so far, at most ``cap`` of them kept; the rest only counted."""

    cap: int = MAX_PROBLEMS
    items: list[Problem] = field(default_factory=list)
    more: int = 0

    def add(self, zh: str, en: str, *, file: str | None = None, row: int | None = None,
            column: str | None = None, value: Any = None) -> None:
        if len(self.items) < self.cap:
            self.items.append(Problem(zh, en, file=file, row=row, column=column, value=value))
        else:
            self.more += 1


def read_tables(path: Path, problems: ProblemList) -> list[RawTable]:
    """Return the tables in the CSV or XLSX file at ``path`` (none if it cannot be read: see ``problems``)."""
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx", ".xlsm", ".txt"):
        hint_zh = "旧版 .xls 请在 Excel 中另存为 .xlsx；" if suffix == ".xls" else ""
        hint_en = "save an old .xls as .xlsx in Excel; " if suffix == ".xls" else ""
        problems.add(f"不支持的文件类型「{suffix or '无扩展名'}」：{hint_zh}请使用 .xlsx 或 .csv",
                     f"unsupported file type {suffix or '(none)'!r}: {hint_en}use .xlsx or .csv", file=name)
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.add(f"无法读取文件：{exc.strerror or exc}", f"cannot read the file: {exc.strerror or exc}", file=name)
        return []
    if data[:4] == b"PK\x03\x04":  # a workbook, whatever its name says
        return _read_xlsx(path, problems)
    if suffix in (".xlsx", ".xlsm"):
        old = data[:4] == b"\xd0\xcf\x11\xe0"
        problems.add("文件不是有效的 .xlsx 工作簿（" + ("这是旧版 .xls，请另存为 .xlsx）" if old else "已损坏或并非 Excel 文件）"),
                     "the file is not a valid .xlsx workbook (" + ("it is an old .xls; save it as .xlsx)" if old
                                                                  else "corrupt or not an Excel file)"), file=name)
        return []
    return _read_csv(name, data, problems)


def _decode(data: bytes) -> str | None:
    """Return the text of a CSV as Excel in China writes it: UTF-8 (with or without BOM), UTF-16 or GB18030."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _read_csv(name: str, data: bytes, problems: ProblemList) -> list[RawTable]:
    text = _decode(data)
    if text is None or "\x00" in text:
        problems.add("无法识别文件编码或不是文本文件（支持 UTF-8、GBK/GB18030）",
                     "unknown encoding or not a text file (UTF-8 and GBK/GB18030 are supported)", file=name)
        return []
    first = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = max(",\t;", key=first.count) if any(d in first for d in ",\t;") else ","
    rows: list[tuple[int, Sequence[Any]]] = []
    number = 0
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
            if "".join(row).strip():
                rows.append((number, row))
    except csv.Error as exc:
        problems.add(f"CSV 格式错误：{exc}", f"malformed CSV: {exc}", file=name, row=number + 1)
        return []
    table = _locate(name, None, rows, problems)
    return [table] if table else []


def _read_xlsx(path: Path, problems: ProblemList) -> list[RawTable]:
    tables: list[RawTable] = []
    try:
        # load_workbook(read_only=True, data_only=True) without its read_worksheets step, which scans a
        # whole sheet that lacks a <dimension> element (as openpyxl's own write-only files do).
        book = ExcelReader(path, read_only=True, data_only=True)
        book.read_manifest()
        book.read_strings()
        book.read_workbook()
    except Exception as exc:  # openpyxl raises many kinds for a corrupt file
        problems.add(f"无法打开 Excel 文件（已损坏或格式不对）：{exc}",
                     f"cannot open the workbook (corrupt or wrong format): {exc}", file=path.name)
        return []
    try:
        for sheet, rel in book.parser.find_sheets():
            if rel.target not in book.valid_files or "chartsheet" in rel.Type:
                continue
            if normalize_header(sheet.name) in NOTES_SHEETS:
                continue
            with book.archive.open(rel.target) as source:
                rows = [(n, r) for n, r in _sheet_rows(source, book.shared_strings)
                        if any(v is not None and (type(v) is not str or v.strip()) for v in r)]
            if rows:
                table = _locate(f"{path.name}[{sheet.name}]", table_for_sheet(sheet.name), rows, problems)
                tables.append(table) if table else None
    except Exception as exc:
        problems.add(f"读取 Excel 文件失败（文件可能已损坏）：{exc}",
                     f"reading the workbook failed (it may be corrupt): {exc}", file=path.name)
        return []
    finally:
        book.archive.close()
    return tables


def _locate(file: str, table: TableSpec | None, rows: list[tuple[int, Sequence[Any]]],
            problems: ProblemList) -> RawTable | None:
    """Return the table found in ``rows``: the header is the first of the first rows naming 2+ columns."""
    at = 0
    for i, (_, row) in enumerate(rows[:_HEADER_SEARCH]):
        guess = table or detect_table(row)
        if guess and sum(1 for h in row if guess.column_for(h)) >= 2:
            at, table = i, guess
            break
    if table is None:
        expected = "；".join(f"{t.zh}：" + "、".join(c.zh for c in t.required) for t in TABLES)
        problems.add(f"无法识别是哪张表，表头应包含 {expected}",
                     "cannot tell which table this is; the header must name the required columns of units, "
                     "people or teams (see the column list)", file=file, row=rows[0][0] if rows else None)
        return None
    headers: dict[str, str] = {}
    index: dict[str, int] = {}
    header_row = rows[at][1] if rows else ()
    for position, header in enumerate(header_row):
        column = table.column_for(header) if header is not None else None
        if column is None:
            continue
        written = str(header).strip()
        if column.field in index:
            problems.add(f"列「{written}」与列「{headers[column.field]}」重复（都是{column.zh}）",
                         f"the column {written} repeats the column {headers[column.field]} (both are "
                         f"{column.field})", file=file, row=rows[at][0], column=written)
            continue
        headers[column.field], index[column.field] = written, position
    return RawTable(file, table, headers, index, rows[at + 1:])


# ---- the rows of a worksheet, fast ------------------------------------------------------------
# openpyxl's own cell reader takes ~8 s for 44,000 rows × 18 columns on a small machine (a cell object
# per value, and a pure-Python XML parser under defusedxml). openpyxl still reads the package, the
# workbook and the shared strings; only a sheet's <row>/<c> elements are read here, by the C parser,
# after refusing any DTD (the XML attacks defusedxml guards against all need one).

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_ROW, _V, _T, _R = (_MAIN + t for t in ("row", "v", "t", "r"))
_PROLOG_LIMIT = 1 << 16
_COLUMNS: dict[str, int] = {}


def _column(ref: str) -> int:
    """Return the 0-based column of a cell reference such as ``AB12``."""
    letters = ref.rstrip("0123456789")
    position = _COLUMNS.get(letters)
    if position is None:
        position = -1
        for ch in letters.upper():
            position = (position + 1) * 26 + ord(ch) - 65
        _COLUMNS[letters] = position
    return position


def _sheet_rows(source: IO[bytes], shared: Sequence[str]) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """Yield (Excel row number, values) of a worksheet's XML; blank cells are None."""
    parser = XMLPullParser(events=("end",))
    head = source.read(_PROLOG_LIMIT)
    root = re.search(rb"<(?![?!])", head)
    if root is None or b"<!DOCTYPE" in head[:root.start()].upper():
        raise ValueError("the worksheet XML has a DTD or no root element")
    chunk, number = head, 0
    while chunk:
        parser.feed(chunk)
        for _, element in parser.read_events():
            if element.tag == _ROW:
                number = int(element.get("r") or number + 1)
                yield number, _row_values(element, shared)
                element.clear()
        chunk = source.read(1 << 20)
    parser.close()


def _row_values(row: Any, shared: Sequence[str]) -> tuple[Any, ...]:
    values: list[Any] = []
    for cell in row:
        ref = cell.get("r")
        if ref:
            position = _column(ref)
            if position > len(values):
                values.extend([None] * (position - len(values)))
        kind = cell.get("t")
        if kind == "inlineStr":
            inline = cell[0] if len(cell) else None
            if inline is None:
                values.append(None)
            elif len(inline) == 1 and inline[0].tag == _T:
                values.append(inline[0].text or "")
            else:  # rich text: the runs' text, not the phonetic guide (rPh)
                parts = [inline.find(_T)] + [r.find(_T) for r in inline.iter(_R)]
                values.append("".join(t.text or "" for t in parts if t is not None))
            continue
        v = cell.find(_V)
        text = None if v is None else v.text
        if text is None:
            values.append(None)
        elif kind is None or kind == "n":
            values.append(int(text) if text.isdigit() else float(text))
        elif kind == "s":
            values.append(shared[int(text)])
        elif kind == "b":
            values.append(text == "1")
        else:  # str (a formula's text), e (an error such as #N/A), d (an ISO date)
            values.append(text)
    return tuple(values)
