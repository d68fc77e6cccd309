// Small DOM helpers shared by the pages. Text always goes in as text nodes, never as HTML,
// so nicknames and wishes cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split('.');
  const node = document.createElement(name || 'div');
  if (classes.length) node.className = classes.join(' ');
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = `${node.className} ${value}`.trim();
    // Through the CSSOM: the pages' Content-Security-Policy refuses style attributes.
    else if (key === 'style') for (const [prop, v] of Object.entries(value)) node.style.setProperty(prop, v);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// An avatar picture, or a coloured circle with the name's first character.
export function avatar(person, extraClass = '') {
  const name = (person && person.name) || '微';
  if (person && person.avatar) {
    return h(`img.avatar${extraClass}`, { src: person.avatar, alt: name, referrerpolicy: 'no-referrer' });
  }
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) % 360;
  return h(`span.avatar.avatar--letter${extraClass}`, { style: { '--hue': hash }, 'aria-hidden': 'true' }, Array.from(name)[0]);
}

const shanghai = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false,
});

// "11月25日 20:00" in Beijing time, as the mini-program shows times.
export function formatTime(iso) {
  if (!iso) return '';
  const parts = Object.fromEntries(shanghai.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${Number(parts.month)}月${Number(parts.day)}日 ${parts.hour}:${parts.minute}`;
}

// "01:02:03" (or "02:03" under an hour) for a number of milliseconds.
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const pad = (n) => String(n).padStart(2, '0');
  const hours = Math.floor(total / 3600);
  const rest = `${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
  if (hours >= 24) return `${Math.floor(hours / 24)}天 ${pad(hours % 24)}:${rest}`;
  return hours ? `${pad(hours)}:${rest}` : rest;
}

// How a gift opens, in the seed's words: 直接送礼 / 满N人开奖 / <time>开奖.
export function openInfo(gift) {
  if (gift.method === 'direct') return '直接送礼';
  if (gift.method === 'full') return `满${gift.open_number}人开奖`;
  return `${formatTime(gift.open_at)}开奖`;
}

// "¥328.00" for an amount in fen (integers only: no floating-point rounding).
export function formatPrice(fen) {
  const sign = fen < 0 ? '-' : '';
  const abs = Math.abs(fen);
  return `${sign}¥${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

// Show a view in the page's <main id="app">: its content, the document's title, and
// `body[data-view]` (which the styles and tests read).
export function showView(view, title, ...content) {
  document.body.dataset.view = view;
  document.title = title ? `${title} · 礼物抽奖` : '礼物抽奖';
  document.getElementById('app').replaceChildren(...content.flat().filter(Boolean));
}

let toastTimer = null;
export function toast(message) {
  let node = document.getElementById('toast');
  if (!node) {
    node = h('div.toast', { id: 'toast', role: 'status' });
    document.body.append(node);
  }
  node.textContent = message;
  node.classList.add('toast--shown');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => node.classList.remove('toast--shown'), 1800);
}
