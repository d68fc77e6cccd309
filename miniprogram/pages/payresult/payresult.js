// @ts-check
// After wx.requestPayment: asks the server until the order is paid (the payment may land
// before or after WeChat Pay's notify: while unpaid the server asks WeChat Pay itself), then
// offers sharing. A cancelled payment leaves the order payable until it expires: 去支付 again.
const { pageBehavior, ctx } = require('../../behaviors/page');
const { giftBehavior } = require('../../behaviors/gift');
const { price, time, ORDER_STATUS_TEXT, lookup } = require('../../utils/format');
const { requestPayment } = require('../../utils/wxp');

const POLL_MS = 1500;
const POLL_LIMIT_MS = 3 * 60 * 1000;

Component({
  behaviors: [pageBehavior, giftBehavior],
  data: {
    order: /** @type {any} */ (null),
    gift: /** @type {any} */ (null),
    waiting: false,
    paying: false,
    statusText: '',
  },
  methods: {
    /** @param {{order_id?: string, paid?: string}} query */
    onLoad(query) {
      const state = ctx(this).state;
      state.orderId = query.order_id || '';
      this.load(() => this.check(query.paid === '1'));
    },

    /** Read the order; while a payment is expected and it is unpaid, ask again shortly.
     * @param {boolean} expectPayment */
    async check(expectPayment) {
      const record = ctx(this);
      if (expectPayment && !record.state.since) record.state.since = Date.now();
      const order = await record.services.api.get(`/api/v1/orders/${encodeURIComponent(record.state.orderId)}`);
      const waiting = expectPayment && order.status === 'unpaid' && Date.now() - record.state.since < POLL_LIMIT_MS;
      this.setData({
        order: { ...order, amountText: price(order.amount_total), expiresText: time(order.expires_at) },
        gift: order.gift ? { order_id: order.order_id, wish: order.wish } : null,
        statusText: lookup(ORDER_STATUS_TEXT, order.status),
        waiting,
      });
      if (waiting) this.later(() => this.check(true).catch(() => this.check(true).catch((err) => this.toast(err))), POLL_MS);
      else record.state.since = 0;
    },

    /** 去支付: the same order's payment parameters again, then WeChat Pay. */
    pay() {
      if (this.data.paying) return;
      const record = ctx(this);
      const { wx, api } = record.services;
      this.setData({ paying: true });
      api.post(`/api/v1/orders/${encodeURIComponent(record.state.orderId)}/pay`, {})
        .then((answer) => requestPayment(wx, answer.pay))
        .then((outcome) => {
          this.setData({ paying: false });
          if (outcome === 'paid') return this.check(true);
          this.toast('支付已取消');
          return undefined;
        })
        .catch((err) => {
          this.setData({ paying: false });
          this.toast(err);
          return this.check(false).catch(() => {});
        });
    },

    viewGift() {
      ctx(this).services.wx.redirectTo({ url: `/pages/gift/wait/wait?order_id=${encodeURIComponent(ctx(this).state.orderId)}` });
    },

    toShop() {
      ctx(this).services.wx.reLaunch({ url: '/pages/shop/shop' });
    },
  },
});
