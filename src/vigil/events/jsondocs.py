"""Reading JSON records that may hold several documents one after another.

Tools such as ``evtx_dump`` write pretty-printed JSON objects back to back with no array
around them; a record like that yields each document in turn.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_DECODER = json.JSONDecoder()


def load_documents(data: bytes) -> list[Any]:
    """Every JSON value in ``data``: one value, or several written back to back.

    Raises ``ValueError`` (``orjson.JSONDecodeError`` is one) when the text is not JSON.
    """
    try:
        return [orjson.loads(data)]
    except orjson.JSONDecodeError as exc:
        if "unexpected content after document" not in str(exc):
            raise
    text = data.decode("utf-8", "replace")
    documents: list[Any] = []
    position = 0
    while position < len(text):
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text):
            break
        value, position = _DECODER.raw_decode(text, position)
        documents.append(value)
    return documents
