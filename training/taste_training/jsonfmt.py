"""Readable, diff-friendly JSON for test fixtures: lists of scalars and flat objects stay on one line."""

from __future__ import annotations

import json


def dumps(obj, indent: int = 0) -> str:
    pad, inner = " " * indent, " " * (indent + 1)

    def flat(x):
        return not isinstance(x, (list, dict)) or (
            isinstance(x, dict) and all(not isinstance(v, (list, dict)) for v in x.values()))

    if isinstance(obj, list) and all(flat(x) for x in obj) and not any(isinstance(x, dict) for x in obj):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, dict) and flat(obj) and len(json.dumps(obj, ensure_ascii=False)) < 240:
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, list):
        return "[\n" + ",\n".join(inner + dumps(x, indent + 1) for x in obj) + "\n" + pad + "]"
    if isinstance(obj, dict):
        items = [inner + json.dumps(k, ensure_ascii=False) + ": " + dumps(v, indent + 1) for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    return json.dumps(obj, ensure_ascii=False)
