"""Per-instance header values read straight from pydicom's raw elements.

At ingest every instance's UIDs, image size, position and pixel attributes are read dozens of times by
validation, indexing and the ledger. pydicom converts an element on its first access (value objects and
validation, about 20-40 µs) and every access walks its Dataset machinery; for the plain single-valued VRs
read on that path (UI, CS, US, IS, DS) decoding the raw bytes takes about 2 µs and gives the same value.
Anything else (another VR, a multi-valued US/IS/UI/CS, bytes that do not decode, a converted element, the
JSON datasets of a QIDO re-sync) goes through ``ds.get``, so the result always equals pydicom's.
"""

from __future__ import annotations

import struct
from functools import cache
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement

_US_LE, _US_BE = struct.Struct("<H"), struct.Struct(">H")


def _text(raw: bytes) -> str:
    text = raw.decode("ascii").strip(" \x00")
    if "\\" in text:
        raise ValueError("multi-valued")
    return text


def _ds(raw: bytes, little_endian: bool) -> float | list[float]:
    parts = raw.decode("ascii").strip(" \x00").split("\\")
    values = [float(part) for part in parts]  # ValueError on an empty or malformed value: pydicom decides
    return values if len(values) > 1 else values[0]


def _is(raw: bytes, little_endian: bool) -> int:
    return int(_text(raw))


def _us(raw: bytes, little_endian: bool) -> int:
    if len(raw) != 2:
        raise ValueError("multi-valued")
    return (_US_LE if little_endian else _US_BE).unpack(raw)[0]


def _plain_text(raw: bytes, little_endian: bool) -> str:
    text = _text(raw)
    if not text:
        raise ValueError("empty")
    return text


_DECODERS = {"UI": _plain_text, "CS": _plain_text, "US": _us, "IS": _is, "DS": _ds}


@cache
def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"not a DICOM keyword: {keyword}")
    return tag


def value(ds: pydicom.Dataset, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword, default)``, decoded from the raw element where that is plain (see module doc)."""
    tag = _tag(keyword)
    elem = ds.get_item(tag)
    if not isinstance(elem, RawDataElement) or elem.value is None:
        return ds.get(keyword, default)
    decode = _DECODERS.get(elem.VR or dictionary_VR(tag))
    if decode is None:
        return ds.get(keyword, default)
    try:
        return decode(elem.value, elem.is_little_endian)
    except (ValueError, UnicodeDecodeError, struct.error):
        return ds.get(keyword, default)
