"""What a cashier types on the weight and price keypad, read as she means it.

h41 typed "1kg" on a kilo product and sold one gram for a cent: the unit
typed after the number is the one that counts, whatever the keypad's.
"""

from __future__ import annotations

from test_pricing_vectors import served_web_page

WEIGHTS = [  # (typed, the keypad's unit, grams)
    ("450", "g", 450), ("450 g", "kg", 450), ("1kg", "g", 1000), ("1 kg", "g", 1000),
    ("1,5kg", "g", 1500), ("0,450", "g", 450), ("0.45", "g", 450), ("2", "kg", 2000),
    ("", "g", None), ("abc", "g", None), ("0", "g", None), ("1000 kg", "g", None),
]
PRICES = [("3,50", 350), ("3.5", 350), ("3 €", 300), ("12", 1200), ("3,505", None), ("", None)]


async def test_weights_and_prices_are_read_as_typed() -> None:
    async with served_web_page() as page:
        read = await page.evaluate("""async ([weights, prices]) => {
            const keypad = await import('/screen-sell-keypad.js');
            return [weights.map(([typed, unit]) => keypad.parseWeight(typed, unit)),
                    prices.map(([typed]) => keypad.parsePrice(typed))];
        }""", [WEIGHTS, PRICES])
    assert read == [[grams for *_, grams in WEIGHTS], [cents for _, cents in PRICES]]
