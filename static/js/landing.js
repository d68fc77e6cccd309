// The landing page: in demo mode, links to the demo gifts.
import { auth, site } from './api.js';
import { h } from './ui.js';

async function start() {
  const name = auth.name();
  if (name) document.getElementById('who').textContent = name;
  let info;
  try {
    info = await site();
  } catch (err) {
    return;
  }
  if (!info.demo_gifts.length) return;
  document.getElementById('demo-sender').textContent = info.demo_sender;
  document.getElementById('demo-links').replaceChildren(...info.demo_gifts.map((demo) => h('li', {},
    h('a.demo-link', { href: `/gift/${demo.order_id}`, 'data-method': demo.method },
      h('span.demo-link__label', {}, demo.label), h('span.demo-link__go', {}, '去参与 ›')))));
  document.getElementById('demo').hidden = false;
}

start();
