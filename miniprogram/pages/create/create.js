// @ts-check
// Create a gift: products and quantities, how it opens (直接送礼 / 满人开奖 with 人数 / 定时开奖
// with a Beijing time), a wish; then pay. The tap asks for the sender's subscribe messages
// first (WeChat allows it only inside a tap), creates the order (one Idempotency-Key per form,
// so a double tap or a retry is one order) and calls wx.requestPayment with the server's
// parameters. A refused subscription changes nothing else.
const { pageBehavior, ctx } = require('../../behaviors/page');
const { price, beijing, beijingIso } = require('../../utils/format');
const { askSubscribe, requestPayment } = require('../../utils/wxp');

const MAX_QUANTITY = 1000; // the most items one gift holds
const MAX_SEATS = 10000;
const MIN_LEAD_MS = 20 * 60 * 1000; // the server's rule: a timed gift opens at least 20 minutes ahead
const DEFAULT_LEAD_MS = 60 * 60 * 1000;
const PRODUCT_PAGES = 5; // the picker offers the first 100 products on sale
const METHODS = [
  { value: 'direct', title: '直接送礼', desc: '先到先得，每人一份，送完为止' },
  { value: 'full', title: '满人开奖', desc: '参与人数达到设定人数时开奖' },
  { value: 'timed', title: '定时开奖', desc: '到设定的时间开奖，人数不限' },
];

/** 32 hex characters; Math.random is enough for an idempotency key (not a secret). */
function newKey() {
  let key = '';
  for (let i = 0; i < 32; i += 1) key += Math.floor(Math.random() * 16).toString(16);
  return key;
}

Component({
  behaviors: [pageBehavior],
  data: {
    methods: METHODS,
    products: /** @type {any[]} */ ([]),
    choices: /** @type {{product_id: string, label: string}[]} */ ([]),
    lines: /** @type {{product_id: string, name: string, price: number, priceText: string, image: string, quantity: number}[]} */ ([]),
    method: 'direct',
    openNumber: '2',
    openDate: '',
    openTime: '',
    minDate: '',
    wish: '',
    totalText: '¥0.00',
    count: 0,
    busy: false,
    formError: '',
  },
  methods: {
    /** @param {{product_id?: string}} query */
    onLoad(query) {
      ctx(this).state.key = newKey();
      const at = beijing(Math.ceil((Date.now() + DEFAULT_LEAD_MS) / 300000) * 300000);
      const min = beijing(Date.now() + MIN_LEAD_MS);
      this.setData({ openDate: `${at.year}-${at.month}-${at.day}`, openTime: `${at.hour}:${at.minute}`, minDate: `${min.year}-${min.month}-${min.day}` });
      this.load(async () => {
        const { api } = ctx(this).services;
        /** @type {any[]} */
        let products = [];
        let cursor = '';
        for (let page = 0; page < PRODUCT_PAGES; page += 1) {
          const answer = await api.get('/api/v1/products', { auth: false, query: { cursor } });
          products = products.concat(answer.products);
          cursor = answer.next_cursor;
          if (!cursor) break;
        }
        const wanted = query.product_id;
        if (wanted && !products.some((p) => p.product_id === wanted)) {
          products.push(await api.get(`/api/v1/products/${encodeURIComponent(wanted)}`, { auth: false }));
        }
        this.setData({ products });
        if (wanted) this.addLine(wanted);
        else this.refresh();
      });
    },

    /** @param {string} productId */
    addLine(productId) {
      const p = this.data.products.find((x) => x.product_id === productId);
      if (!p || this.data.lines.some((l) => l.product_id === productId)) return;
      this.setData({ lines: [...this.data.lines, {
        product_id: p.product_id, name: p.name, price: p.price, priceText: price(p.price), image: ctx(this).services.api.asset((p.images || [])[0] || ''), quantity: 1,
      }] });
      this.refresh();
    },

    /** The picker's choices and the total, from the lines. */
    refresh() {
      const chosen = new Set(this.data.lines.map((l) => l.product_id));
      const choices = this.data.products.filter((p) => !chosen.has(p.product_id) && p.stock > 0)
        .map((p) => ({ product_id: p.product_id, label: `${p.name}  ${price(p.price)}` }));
      const total = this.data.lines.reduce((sum, l) => sum + l.price * l.quantity, 0);
      const count = this.data.lines.reduce((sum, l) => sum + l.quantity, 0);
      this.setData({ choices, totalText: price(total), count });
    },

    /** @param {any} event */
    pickProduct(event) {
      const choice = this.data.choices[Number(event.detail.value)];
      if (choice) this.addLine(choice.product_id);
    },

    /** @param {any} event */
    changeQuantity(event) {
      const { index, step } = event.currentTarget.dataset;
      const lines = this.data.lines.slice();
      const quantity = lines[index].quantity + Number(step);
      if (quantity <= 0) lines.splice(index, 1);
      else lines[index] = { ...lines[index], quantity: Math.min(quantity, MAX_QUANTITY) };
      this.setData({ lines });
      this.refresh();
    },

    /** @param {any} event */
    chooseMethod(event) {
      this.setData({ method: event.detail.value || event.currentTarget.dataset.method, formError: '' });
    },

    /** @param {any} event */
    inputOpenNumber(event) { this.setData({ openNumber: event.detail.value }); },
    /** @param {any} event */
    pickDate(event) { this.setData({ openDate: event.detail.value }); },
    /** @param {any} event */
    pickTime(event) { this.setData({ openTime: event.detail.value }); },
    /** @param {any} event */
    inputWish(event) { this.setData({ wish: event.detail.value }); },

    /** The order's body, or a reason it cannot be sent (checked as the server checks it). */
    spec() {
      const d = this.data;
      if (!d.lines.length) return { error: '请先选择礼物' };
      /** @type {Record<string, any>} */
      const body = { items: d.lines.map((l) => ({ product_id: l.product_id, quantity: l.quantity })), method: d.method };
      if (d.method === 'full') {
        const n = Number(d.openNumber);
        if (!Number.isInteger(n) || n < 1 || n > MAX_SEATS) return { error: `开奖人数须为 1-${MAX_SEATS} 的整数` };
        body.open_number = n;
      }
      if (d.method === 'timed') {
        const at = beijingIso(d.openDate, d.openTime);
        if (!(Date.parse(at) - Date.now() >= MIN_LEAD_MS)) return { error: '开奖时间须在 20 分钟以后' };
        body.open_at = at;
      }
      if (d.wish.trim()) body.wish = d.wish.trim();
      return { body };
    },

    /** The 去支付 tap. */
    submit() {
      if (this.data.busy) return;
      const { body, error } = this.spec();
      if (!body) {
        this.setData({ formError: error || '' });
        return;
      }
      const record = ctx(this);
      const { wx, api, config } = record.services;
      // Inside the tap, before anything asynchronous: WeChat refuses the prompt anywhere else.
      const subscribed = askSubscribe(wx, config.templates.sender);
      this.setData({ busy: true, formError: '' });
      subscribed.then(async (ids) => {
        const order = await api.post('/api/v1/orders', { ...body, sender_subscribed: ids },
          { headers: { 'Idempotency-Key': record.state.key } });
        const outcome = await requestPayment(wx, order.pay);
        // Paid or not, the pay-result page asks the server: it alone knows (the notify may come later).
        wx.redirectTo({ url: `/pages/payresult/payresult?order_id=${encodeURIComponent(order.order_id)}&paid=${outcome === 'paid' ? 1 : 0}` });
      }).catch((err) => {
        this.setData({ busy: false, formError: err.message || '下单失败，请稍后再试' });
      });
    },
  },
});
