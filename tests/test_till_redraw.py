"""A screen redrawn when the node's answer arrives keeps what the cashier typed.

The shift screen drew itself, then again once shift/x answered: a cash-out
amount typed in between was wiped, and the cash-out did nothing (CI caught
it in test_fiscal_day).
"""

from __future__ import annotations

from test_pricing_vectors import served_web_page


async def test_a_redraw_keeps_typed_values_and_the_caret() -> None:
    async with served_web_page() as page:
        kept = await page.evaluate("""async () => {
            const { el, redraw } = await import('/dom.js');
            const draw = () => [
                el('input', { id: 'amount', value: '' }),
                el('input', { dataset: { count: 'cash' } }),
                el('input', { id: 'reason' }),
            ];
            const box = el('div');
            document.body.append(box);
            redraw(box, draw());
            box.querySelector('#amount').value = '20,50';
            box.querySelector('[data-count="cash"]').value = '82,40';
            const reason = box.querySelector('#reason');
            reason.value = 'dépôt';
            reason.focus();
            reason.setSelectionRange(2, 2);
            redraw(box, draw());
            const now = box.querySelector('#reason');
            const first = [box.querySelector('#amount').value,
                           box.querySelector('[data-count="cash"]').value, now.value,
                           document.activeElement === now, now.selectionStart];
            redraw(box, [el('input', { id: 'other' })]);  // a field not drawn before: as drawn
            return [first, box.querySelector('#other').value];
        }""")
    assert kept == [["20,50", "82,40", "dépôt", True, 2], ""]
