// /shop/new: the create-gift form. Products and quantities from the catalogue (one preselected
// by ?product=), how the gift opens, a wish, and the total from the catalogue's prices (the
// server prices the order; the page only displays). The form has one Idempotency-Key, so a
// double tap, or a second tap after an answer was lost, is one order.
import { api, ApiError, auth, serverNow } from './api.js';
import { allProducts, productImage, showFailure } from './shop-catalogue.js';
import { showSignIn } from './signin.js';
import { formatPrice, formatTime, h, showView } from './ui.js';

const MAX_QUANTITY = 1000; // the most items one gift holds
const MAX_SEATS = 10000;
// A timed gift opens after the order's payment window (15 minutes) and five more; the server
// says so if its window differs.
const MIN_LEAD_MS = 20 * 60 * 1000;
const DEFAULT_LEAD_MS = 60 * 60 * 1000;
const DEFAULT_WISH = '恭喜发财，大吉大利';
const METHODS = [
  { value: 'direct', title: '直接送礼', desc: '先到先得，每位参与者立刻拿到一份，送完为止。' },
  { value: 'full', title: '满人开奖', desc: '参与人数达到设定人数时开奖；24 小时内未满员，在已参与的人中开奖。' },
  { value: 'timed', title: '定时开奖', desc: '到了设定的时间开奖，参与人数不限。' },
];

function newKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

// "2026-11-28T16:05" in the browser's time zone, as <input type=datetime-local> reads it.
function localInputValue(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// What the buyer has chosen so far; the form is drawn from it (again after a sign-in).
const form = {
  key: newKey(),
  products: new Map(), // product_id -> product, from the catalogue
  categories: [],
  lines: [], // [{ productId, quantity }], in the order chosen
  method: 'direct',
  openNumber: '2',
  openAt: '',
  wish: '',
  busy: false,
};
let dom = null;

export async function showGiftForm(preselected) {
  if (!auth.key()) {
    await signIn();
    return;
  }
  let notice = '';
  try {
    const [answer, products] = await Promise.all([api('GET', '/api/v1/categories'), allProducts()]);
    form.categories = answer.categories;
    for (const product of products) form.products.set(product.product_id, product);
  } catch (err) {
    showFailure('加载失败', err.message);
    return;
  }
  if (preselected && !form.products.has(preselected)) {
    try {
      const product = await api('GET', `/api/v1/products/${encodeURIComponent(preselected)}`);
      form.products.set(product.product_id, product);
    } catch (err) {
      notice = err instanceof ApiError && err.status === 404 ? '这件商品不存在或已下架，请另选礼物' : err.message;
    }
  }
  if (preselected && form.products.has(preselected)) form.lines.push({ productId: preselected, quantity: 1 });
  form.openAt = localInputValue(Math.ceil((serverNow() + DEFAULT_LEAD_MS) / 300000) * 300000);
  render();
  showError(notice);
}

function signIn() {
  return showSignIn({
    show: (card) => showView('signin', '登录', card),
    prompt: '登录后创建礼物',
    inWeChat: '网页版登录即将上线。现在请在微信小程序中创建礼物。',
    onSignedIn: () => (form.products.size ? render() : showGiftForm(new URLSearchParams(location.search).get('product'))),
  });
}

function render() {
  dom = {
    lines: h('ul.lines', { id: 'lines' }),
    picker: h('select.picker', { id: 'add-product', 'aria-label': '添加礼物', onchange: (e) => add(e.target.value) }),
    total: h('strong.checkout__total', { id: 'total' }),
    count: h('span.checkout__count', { id: 'count' }),
    submit: h('button.btn.btn--primary', { type: 'submit', id: 'submit' }, '去支付'),
    error: h('div.form-error', { id: 'form-error', role: 'alert', hidden: true }),
    openAtHint: h('span.choice__hint', { id: 'open-at-hint' }),
  };
  const openNumber = h('input.field.field--number', {
    type: 'number', id: 'open-number', name: 'open_number', min: 1, max: MAX_SEATS, step: 1, inputmode: 'numeric',
    required: true, value: form.openNumber, oninput: (e) => { form.openNumber = e.target.value; },
  });
  const openAt = h('input.field', {
    type: 'datetime-local', id: 'open-at', name: 'open_at', required: true, value: form.openAt,
    min: localInputValue(serverNow() + MIN_LEAD_MS),
    oninput: (e) => { form.openAt = e.target.value; showOpenAt(); },
  });
  const fields = { full: openNumber, timed: openAt };
  const choices = METHODS.map((m) => h('label.choice', { 'data-method': m.value },
    h('input', {
      type: 'radio', name: 'method', value: m.value, checked: form.method === m.value,
      onchange: () => { form.method = m.value; enableFields(fields); },
    }),
    h('span.choice__text', {},
      h('span.choice__title', {}, m.title),
      h('span.choice__desc', {}, m.desc),
      m.value === 'full' ? h('span.choice__field', {}, '开奖人数', openNumber, '人') : null,
      m.value === 'timed' ? h('span.choice__field', {}, '开奖时间', openAt) : null,
      m.value === 'timed' ? dom.openAtHint : null)));
  const wish = h('input.field.field--wide', {
    id: 'wish', name: 'wish', maxlength: 100, placeholder: DEFAULT_WISH, value: form.wish,
    oninput: (e) => { form.wish = e.target.value; },
  });
  showView('new', '创建礼物', h('form.gift-form', { id: 'gift-form', onsubmit: submit },
    h('section.panel', {}, h('h2.panel__title', {}, '礼物清单', h('small', {}, '中奖的人每人得一份')), dom.lines, dom.picker),
    h('section.panel', {}, h('h2.panel__title', {}, '开奖方式'), h('fieldset.choices', {}, h('legend.sr-only', {}, '开奖方式'), choices)),
    h('section.panel', {}, h('h2.panel__title', {}, h('label', { for: 'wish' }, '祝福语')), wish),
    dom.error,
    h('div.actionbar', {},
      h('span.checkout__sum', {}, h('span', {}, '合计 ', dom.total), dom.count),
      dom.submit)));
  renderLines();
  enableFields(fields);
  showOpenAt();
}

// Only the chosen method's field is enabled, so only it is checked and sent.
function enableFields(fields) {
  for (const [method, input] of Object.entries(fields)) input.disabled = form.method !== method;
}

function showOpenAt() {
  const at = new Date(form.openAt);
  dom.openAtHint.textContent = Number.isNaN(at.getTime()) ? '请选择开奖时间' : `北京时间 ${formatTime(at.toISOString())} 开奖`;
}

function renderLines() {
  dom.lines.replaceChildren(...(form.lines.length ? form.lines.map(lineItem)
    : [h('li.line.line--empty', {}, '还没有选礼物，从下面添加')]));
  const chosen = new Set(form.lines.map((l) => l.productId));
  const known = new Set(form.categories.map((c) => c.category_id));
  const groupOf = (p) => (known.has(p.category_id) ? p.category_id : null);
  const groups = [...form.categories, { category_id: null, name: '其他' }].map((c) => {
    const options = [...form.products.values()]
      .filter((p) => !chosen.has(p.product_id) && groupOf(p) === c.category_id)
      .map((p) => h('option', { value: p.product_id }, `${p.name}  ${formatPrice(p.price)}`));
    return options.length ? h('optgroup', { label: c.name }, options) : null;
  });
  dom.picker.replaceChildren(h('option', { value: '' }, '＋ 添加礼物'), ...groups.filter(Boolean));
  dom.picker.value = '';
  dom.picker.hidden = form.products.size === chosen.size;
  updateTotal();
}

function lineItem(line) {
  const product = form.products.get(line.productId);
  const input = h('input.stepper__input', {
    type: 'number', min: 1, max: MAX_QUANTITY, step: 1, required: true, inputmode: 'numeric',
    name: `quantity-${line.productId}`, 'aria-label': `${product.name} 数量`, value: line.quantity,
    oninput: () => setQuantity(line, input.value),
  });
  const step = (delta) => {
    const next = Math.min(MAX_QUANTITY, Math.max(1, (Number.parseInt(input.value, 10) || 0) + delta));
    input.value = String(next);
    setQuantity(line, next);
  };
  return h('li.line', { 'data-product': line.productId },
    h('img.line__image', { src: productImage(product), alt: '' }),
    h('span.line__info', {},
      h('span.line__name', {}, product.name),
      h('span.line__price', {}, formatPrice(product.price))),
    h('span.stepper', {},
      h('button', { type: 'button', 'aria-label': '减少', onclick: () => step(-1) }, '−'),
      input,
      h('button', { type: 'button', 'aria-label': '增加', onclick: () => step(1) }, '+')),
    h('button.line__remove', { type: 'button', 'aria-label': `移除${product.name}`, onclick: () => remove(line) }, '×'));
}

function setQuantity(line, value) {
  const n = Number(value);
  line.quantity = Number.isInteger(n) && n > 0 ? n : 0;
  updateTotal();
}

function add(productId) {
  if (productId && form.products.has(productId)) form.lines.push({ productId, quantity: 1 });
  renderLines();
  showError('');
}

function remove(line) {
  form.lines = form.lines.filter((l) => l !== line);
  renderLines();
}

function updateTotal() {
  let total = 0;
  let count = 0;
  for (const line of form.lines) {
    total += form.products.get(line.productId).price * line.quantity;
    count += line.quantity;
  }
  dom.total.textContent = formatPrice(total);
  dom.count.textContent = `共 ${count} 份`;
}

function showError(message) {
  dom.error.textContent = message || '';
  dom.error.hidden = !message;
  if (message) dom.error.scrollIntoView({ block: 'nearest' });
}

function orderBody() {
  const body = {
    items: form.lines.map((l) => ({ product_id: l.productId, quantity: l.quantity })),
    method: form.method,
  };
  if (form.method === 'full') body.open_number = Number(form.openNumber);
  if (form.method === 'timed') body.open_at = new Date(form.openAt).toISOString();
  if (form.wish.trim()) body.wish = form.wish.trim();
  return body;
}

function setBusy(busy) {
  form.busy = busy;
  dom.submit.disabled = busy;
  dom.submit.textContent = busy ? '正在下单…' : '去支付';
}

async function submit(event) {
  event.preventDefault();
  if (form.busy) return;
  if (!form.lines.length) {
    showError('请至少选择一件礼物');
    return;
  }
  setBusy(true);
  showError('');
  let answer;
  try {
    answer = await api('POST', '/api/v1/orders', orderBody(), { headers: { 'Idempotency-Key': form.key } });
  } catch (err) {
    setBusy(false);
    if (err instanceof ApiError && err.status === 401) await signIn();
    else showError(err.message);
    return;
  }
  // In the mini-program the pay step calls wx.requestPayment(answer.pay); the page stays
  // busy while it leaves.
  location.assign(`/orders/${answer.order_id}/pay`);
}

// Back from the pay step, the browser may show this page as it was left (busy).
window.addEventListener('pageshow', (event) => {
  if (event.persisted && dom) setBusy(false);
});
