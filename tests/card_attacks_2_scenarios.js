// Scenarios of the browser till's card payment logic (web/card-terminal.js) against a
// fake node and a clock that moves only when told, for tests/test_card_attacks_2.py:
// the page evaluates this function; what the till made of each scenario comes back.
(async () => {
  const { CardTerminal, phaseOf, cardTender } = await import('/card-terminal.js');
  const { CommandError } = await import('/client.js');
  const make = (answer) => {
    const clock = { t: 0, timers: new Map(), id: 0,
      now() { return this.t; },
      setTimeout(fn) { this.id += 1; this.timers.set(this.id, fn); return this.id; },
      clearTimeout(id) { this.timers.delete(id); } };
    const cards = new CardTerminal({ call: async (type, args) => answer(type, args), clock, newId: () => 'p1' });
    const tick = async () => {
      const due = [...clock.timers.values()];
      clock.timers.clear();
      for (const fn of due) await fn();
    };
    return { cards, clock, tick };
  };
  const fail = (code) => { throw new CommandError(code, code); };
  const approved = { payment_id: 'p1', status: 'approved', amount: 500, authorised: 500, authorisation: 'A1', last4: '1234' };
  const out = {};
  const attempt = async (name, body) => {
    try { out[name] = await body(); } catch (error) { out[name] = `threw ${error.code ?? error}`; }
  };

  // The till moved to a node that does not have the payment yet: after 30 s it asks the
  // slip. The node then learns the payment was approved (a late answer).
  await attempt('late', async () => {
    let known = false;
    const { cards, clock, tick } = make((type) => {
      if (type === 'payment/card') return { payment: { payment_id: 'p1', status: 'requested', amount: 500 } };
      if (type === 'payment/card_status') return known ? { payment: approved } : fail('unknown_payment');
      if (type === 'payment/card_settle') return fail('payment_not_unknown');
    });
    cards.onAuthed();
    const record = await cards.start({ basketId: 'b1', amount: 500 });
    await cards.refresh('p1');
    clock.t += 31000;
    await cards.refresh('p1');
    const gaveUp = phaseOf(record);
    known = true;
    await tick(); // still asked: the node's word replaces the till's guess
    const polled = phaseOf(record);
    return { gaveUp, polled, tender: polled === 'approved' ? cardTender(record) : null };
  });

  // Same, but the cashier answers the slip question first: the node's answer decides.
  await attempt('settledLate', async () => {
    let known = false;
    const { cards, clock } = make((type) => {
      if (type === 'payment/card') return { payment: { payment_id: 'p1', status: 'requested', amount: 500 } };
      if (type === 'payment/card_status') return known ? { payment: approved } : fail('unknown_payment');
      if (type === 'payment/card_settle') return fail('payment_not_unknown');
    });
    cards.onAuthed();
    const record = await cards.start({ basketId: 'b1', amount: 500 });
    clock.t += 1000;
    await cards.refresh('p1');
    clock.t += 31000;
    await cards.refresh('p1');
    known = true;
    await cards.settle('p1', false);
    return phaseOf(record);
  });

  // The request never reached any node that still answers: the slip is all there is,
  // and what the cashier reads of it is recorded by the till, not refused for ever.
  for (const approvedSlip of [false, true]) {
    await attempt(approvedSlip ? 'neverKnownYes' : 'neverKnownNo', async () => {
      let sent = 0;
      const { cards } = make((type) => {
        if (type === 'payment/card') return (sent++ === 0) ? fail('disconnected') : fail('terminal_unreachable');
        return fail('unknown_payment');
      });
      const record = await cards.start({ basketId: 'b1', amount: 500 });
      cards.onAuthed();
      await new Promise((resolve) => setTimeout(resolve, 0));
      const asked = phaseOf(record);
      await cards.settle('p1', approvedSlip, approvedSlip ? 'SLIP42' : '');
      return { asked, phase: phaseOf(record), tender: approvedSlip ? cardTender(record) : null };
    });
  }

  // The node said "not taken within 30 s" and its terminal's node started it after all.
  await attempt('notTaken', async () => {
    const { cards } = make(() => ({ payment: { payment_id: 'p1', status: 'requested', amount: 500 } }));
    cards.onAuthed();
    const record = await cards.start({ basketId: 'b1', amount: 500 });
    const push = (payment) => cards.onPush({ type: 'card_payment', payment: { amount: 500, ...payment } });
    push({ payment_id: 'p1', status: 'unreachable', code: 'not_taken' });
    const first = phaseOf(record);
    push({ payment_id: 'p1', status: 'started' });
    const then = phaseOf(record);
    push(approved);
    return [first, then, phaseOf(record)];
  });

  // A sale refused for a payment of its basket the till had forgotten: followed again.
  await attempt('adopt', async () => {
    const { cards } = make((type) => (type === 'payment/card_status' ? { payment: { ...approved, authorised: 300 } } : fail('nope')));
    cards.onAuthed();
    await cards.adopt('p1', 'b1');
    return cards.of({ basketId: 'b1' }).map((record) => [phaseOf(record), cardTender(record)]);
  });
  return out;
})
