// @ts-check
// My orders, newest first, a page at a time: amount, status, what was bought; a tap opens its
// pay result (去支付 while unpaid, sharing once paid).
const { pageBehavior, ctx } = require('../../behaviors/page');
const { price, time, ORDER_STATUS_TEXT, METHOD_TEXT, lookup } = require('../../utils/format');

Component({
  behaviors: [pageBehavior],
  data: { orders: /** @type {any[]} */ ([]), nextCursor: '', more: false },
  methods: {
    onLoad() {
      this.load(() => this.fetch(true));
    },

    onPullDownRefresh() {
      this.load(() => this.fetch(true)).then(() => ctx(this).services.wx.stopPullDownRefresh());
    },

    onReachBottom() {
      if (this.data.more) this.fetch(false).catch((err) => this.toast(err));
    },

    /** @param {boolean} fresh */
    async fetch(fresh) {
      const { api } = ctx(this).services;
      const answer = await api.get('/api/v1/orders', { query: { cursor: fresh ? '' : this.data.nextCursor } });
      const rows = answer.orders.map((/** @type {any} */ o) => ({
        order_id: o.order_id, status: o.status, statusText: lookup(ORDER_STATUS_TEXT, o.status),
        amountText: price(o.amount_total), createdText: time(o.created_at), methodText: lookup(METHOD_TEXT, o.method),
        summary: o.lines.map((/** @type {any} */ l) => `${l.name}×${l.quantity}`).join('，'),
        url: `/pages/payresult/payresult?order_id=${encodeURIComponent(o.order_id)}`,
      }));
      this.setData({ orders: fresh ? rows : [...this.data.orders, ...rows], nextCursor: answer.next_cursor || '', more: Boolean(answer.next_cursor) });
    },
  },
});
