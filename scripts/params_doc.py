"""The parameter tables of README.md and docs/parameters.md, rendered from `pictrain.params`.

`python -m scripts.params_doc` rewrites them; tests/unit/test_params.py fails when they are
stale. Each table sits between `<!-- params:NAME -->` and `<!-- /params:NAME -->`: README's
`main` table keeps the names it lists (rows re-rendered), docs' `all` table lists every
parameter, docs' `ignored` table the keys ignored with a reason of their own.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic.fields import FieldInfo

from pictrain.params import NO_EFFECT, NOT_OFFERED, UNKNOWN, Parameters

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "parameters.md"
HEADER = "| name | aliases | type | range | default | notes |\n|---|---|---|---|---|---|"


def render(text: str) -> str:
    """`text` (README.md or docs/parameters.md) with each marked table rendered anew."""
    for name in re.findall(r"<!-- params:(\w+) -->", text):
        text = _replace(text, name, _table(name, _section(text, name)))
    return text


def listed_names(table: str) -> list[str]:
    """The parameter names in a rendered table's first column."""
    return re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE)


def _table(name: str, current: str) -> str:
    if name == "ignored":
        rows = [f"| `{key}` | {reason} |" for key, reason in NO_EFFECT.items()]
        rows += [
            f"| any other ultralytics setting (`cfg/default.yaml`) | {NOT_OFFERED} |",
            f"| anything else | {UNKNOWN} |",
        ]
        return "\n".join(["| key | reason |", "|---|---|", *rows])
    names = list(Parameters.model_fields) if name == "all" else listed_names(current)
    return "\n".join([HEADER, *(_row(n, Parameters.model_fields[n]) for n in names)])


def _row(name: str, field: FieldInfo) -> str:
    choices = getattr(field.validation_alias, "choices", [name])
    aliases = ", ".join(f"`{alias}`" for alias in choices if alias != name)
    default = f"`{_json(field.default)}`"
    cells = [f"`{name}`", aliases, _kind(field.annotation), _range(field), default]
    return "| " + " | ".join([*cells, field.description or ""]) + " |"


def _kind(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return ", ".join(f"`{_json(value)}`" for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_kind(part) for part in get_args(annotation))
    if origin is list:
        return f"list of {_kind(get_args(annotation)[0])}"
    names = {int: "int", float: "float", bool: "bool", str: "text", type(None): "`null`"}
    return names[annotation]


def _range(field: FieldInfo) -> str:
    low = high = ""
    for bound in field.metadata:
        if isinstance(bound, Ge):
            low = f"{bound.ge} ≤"
        elif isinstance(bound, Gt):
            low = f"{bound.gt} <"
        elif isinstance(bound, Le):
            high = f"≤ {bound.le}"
        elif isinstance(bound, Lt):
            high = f"< {bound.lt}"
    return " ".join(part for part in (low, "x" if low or high else "", high) if part)


def _json(value: Any) -> str:
    return value if isinstance(value, str) and value else json.dumps(value)


def _section(text: str, name: str) -> str:
    match = re.search(rf"<!-- params:{name} -->\n(.*?)<!-- /params:{name} -->", text, re.S)
    if match is None:
        raise ValueError(f"table {name!r} has no closing marker")
    return match.group(1).rstrip("\n")


def _replace(text: str, name: str, body: str) -> str:
    start, end = f"<!-- params:{name} -->\n", f"<!-- /params:{name} -->"
    before, rest = text.split(start, 1)
    return before + start + body + "\n" + end + rest.split(end, 1)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.params_doc",
        description="Render the parameter tables of README.md and docs/parameters.md in place.",
    )
    parser.parse_args(argv)
    for path in (README, REFERENCE):
        path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"rendered the parameter tables of {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
