// Small DOM helpers shared by the till's modules.

export const $ = (selector) => document.querySelector(selector);

/** el('div', {class: 'x', dataset: {a: 1}}, 'text', child). */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name === 'class') element.className = value;
    else element.setAttribute(name, value === true ? '' : value);
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

/**
 * `node.textContent = text`, unless it already reads so: the setter replaces the
 * text node even with the same text, and the till would lay the screen out again
 * for nothing on every change (a scan's answer draws the sell screen twice or three times).
 */
export function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

/**
 * `container`'s children made `nodes`, in order, moving only what moved: a node
 * already in its place is left alone (laid out again only if it changed).
 */
export function place(container, nodes) {
  const wanted = new Set(nodes);
  let at = container.firstChild;
  for (const node of nodes) {
    while (at && !wanted.has(at)) { // gone (or drawn anew): out, so the rows after stay put
      const next = at.nextSibling;
      at.remove();
      at = next;
    }
    if (at === node) at = at.nextSibling;
    else container.insertBefore(node, at);
  }
  while (at) {
    const next = at.nextSibling;
    at.remove();
    at = next;
  }
}

const inputKey = (input) => input.id || JSON.stringify({ ...input.dataset });

/**
 * container.replaceChildren(...children), keeping what the cashier had typed in
 * inputs that are drawn again (same id, or same data- attributes) and where the
 * caret was: a screen redrawn when the node's answer arrives must not wipe an
 * amount typed meanwhile.
 */
export function redraw(container, children) {
  const typed = new Map();
  for (const input of container.querySelectorAll('input')) typed.set(inputKey(input), input.value);
  const focused = container.contains(document.activeElement) && document.activeElement.tagName === 'INPUT'
    ? { key: inputKey(document.activeElement), start: document.activeElement.selectionStart, end: document.activeElement.selectionEnd }
    : null;
  container.replaceChildren(...children);
  for (const input of container.querySelectorAll('input')) {
    const key = inputKey(input);
    if (typed.has(key)) input.value = typed.get(key);
    if (focused?.key === key) {
      input.focus();
      if (focused.start !== null) input.setSelectionRange(focused.start, focused.end);
    }
  }
}
