"""payload.form_encode is urlencode in one pass: the same text, the same error for an unencodable character."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedback_check.payload import form_encode
from feedback_check.signature import _upper_names, signed_string

TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "A-Z_a.z~0", "a b", "a+b", "é", "€", "x/y?z=&", "\ufffd", "50.00", "2026-12-01"])


@pytest.mark.parametrize("codec", ["utf-8", "iso-8859-1"])
@given(pairs=st.lists(st.tuples(TEXT, TEXT), max_size=6))
def test_form_encode_is_urlencode(codec: str, pairs: list[tuple[str, str]]) -> None:
    try:
        expected: str | type[Exception] = urlencode(pairs, encoding=codec)
    except UnicodeEncodeError:
        expected = UnicodeEncodeError
    if expected is UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            form_encode(pairs, codec)
    else:
        assert form_encode(pairs, codec) == expected


def test_signed_string_same_for_tuple_and_list_of_names() -> None:
    params = [("orderID", "1"), ("amount", "2"), ("Brand", "VISA"), ("NCERROR", "")]
    names = ("ORDERID", "amount", "brand", "NCERROR")
    assert signed_string(params, names) == signed_string(params, list(names))
    assert _upper_names(names) == frozenset({"ORDERID", "AMOUNT", "BRAND", "NCERROR"})
