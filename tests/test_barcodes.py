"""In-store barcodes carrying a price or a weight, read with the store's layouts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.messages import EdgeError
from edge.selling.barcodes import gtin_check_digit, is_valid_gtin, layout_problem, read_embedded

WEIGHT = {"prefix": "21", "layout": "PPIIIIIVVVVVC", "value": "weight"}
PRICE_WITH_CHECK = {"prefix": "22", "layout": "PPIIIIXVVVVVC", "value": "price"}
LAYOUTS = [WEIGHT, PRICE_WITH_CHECK]


def code(body: str) -> str:
    return body + str(gtin_check_digit(body))


def test_a_weight_label_gives_grams_and_the_products_barcode() -> None:
    # 0,347 kg of item 12345: the product is the same code with the weight at 0.
    assert read_embedded(code("211234500347"), LAYOUTS) == {
        "lookup": code("211234500000"), "value": 347, "kind": "weight"}


def test_a_price_label_with_a_price_check_digit_gives_cents() -> None:
    # X (the price check digit) is not checked, and is 0 in the product's barcode.
    read = read_embedded(code("221234701250"), LAYOUTS)
    assert read == {"lookup": code("221234000000"), "value": 1250, "kind": "price"}
    assert is_valid_gtin(read["lookup"])


def test_a_wrong_check_digit_is_refused() -> None:
    good = code("211234500347")
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    with pytest.raises(EdgeError) as refused:
        read_embedded(bad, LAYOUTS)
    assert refused.value.code == "invalid_barcode"


@pytest.mark.parametrize("barcode", [
    "3017620422003",  # an ordinary EAN-13
    "20123455",  # an 8-digit in-store code: never read
    code("231234500347"),  # a prefix the store set no layout for
    "211234500347",  # 12 digits
    "21123450034a7",
    "",
])
def test_other_barcodes_are_ordinary(barcode: str) -> None:
    assert read_embedded(barcode, LAYOUTS) is None


def test_a_bad_check_digit_outside_the_layouts_is_left_to_the_catalogue() -> None:
    assert read_embedded("3017620422004", LAYOUTS) is None


@pytest.mark.parametrize(("layout", "problem"), [
    (WEIGHT, None),
    (PRICE_WITH_CHECK, None),
    ({**WEIGHT, "prefix": "30"}, "'prefix' must be 02 or 20 to 29"),
    ({**WEIGHT, "value": "kilo"}, "'value' must be 'price' or 'weight'"),
    ({**WEIGHT, "layout": "PPIIIIIVVVVV"}, "'layout' must be 13 letters of P, I, X, V and C"),
    ({**WEIGHT, "layout": "PPIIIIIVVVVVV"}, "'layout' is PP, then I, X and V, then C "
                                            "(e.g. PPIIIIIVVVVVC)"),
    ({**WEIGHT, "layout": "PPIIIIIIIIIIC"}, "'layout' needs at least one V and at most one X"),
    ({**WEIGHT, "layout": "PPIIIXXVVVVVC"}, "'layout' needs at least one V and at most one X"),
])
def test_layouts_are_checked(layout: dict, problem: str | None) -> None:
    assert layout_problem(layout) == problem


def test_an_unusable_layout_is_skipped_and_the_first_usable_one_applies() -> None:
    layouts = [{**PRICE_WITH_CHECK, "prefix": "21", "layout": "bad"}, WEIGHT,
               {**PRICE_WITH_CHECK, "prefix": "21"}]
    assert read_embedded(code("211234500347"), layouts)["kind"] == "weight"


@st.composite
def labelled(draw: st.DrawFn) -> tuple[dict, str, int]:
    """A usable layout and a label made with it: (layout, barcode, the value written)."""
    values = draw(st.integers(1, 10))
    roles = ["I"] * (10 - values) + ["V"] * values
    if values < 10 and draw(st.booleans()):
        roles[0] = "X"
    middle = draw(st.permutations(roles))
    layout = {"prefix": draw(st.sampled_from(["02", *map(str, range(20, 30))])),
              "layout": "PP" + "".join(middle) + "C",
              "value": draw(st.sampled_from(["price", "weight"]))}
    value = draw(st.integers(0, 10 ** values - 1))
    digits = iter(str(value).zfill(values))
    body = layout["prefix"] + "".join(
        next(digits) if role == "V" else draw(st.sampled_from("0123456789"))
        for role in middle)
    return layout, code(body), value


@given(labelled())
def test_any_label_reads_back_its_value_and_a_valid_product_barcode(made: tuple) -> None:
    layout, barcode, value = made
    read = read_embedded(barcode, [layout])
    assert read["value"] == value and read["kind"] == layout["value"]
    assert is_valid_gtin(read["lookup"])
    for position, role in enumerate(layout["layout"][:12]):
        expected = "0" if role in "VX" else barcode[position]
        assert read["lookup"][position] == expected
