// @ts-check
// My prizes: each item, its claim's status, the deadline or the tracking number; a tap opens
// the claim.
const { pageBehavior, ctx } = require('../../behaviors/page');
const { time, shipping, CLAIM_STATUS_TEXT, lookup } = require('../../utils/format');

Component({
  behaviors: [pageBehavior],
  data: { prizes: /** @type {any[]} */ ([]) },
  methods: {
    onLoad() {
      this.load(() => this.fetch());
    },

    onShow() {
      // Back from a claim: its status may have changed.
      if (!this.data.loading) this.fetch().catch((err) => this.toast(err));
    },

    onPullDownRefresh() {
      this.load(() => this.fetch()).then(() => ctx(this).services.wx.stopPullDownRefresh());
    },

    async fetch() {
      const { api } = ctx(this).services;
      const answer = await api.get('/api/v1/me/prizes');
      const now = Date.now();
      this.setData({
        prizes: answer.prizes.map((/** @type {any} */ p) => {
          const status = p.status === 'unclaimed' && Date.parse(p.deadline_at) <= now ? 'expired' : p.status;
          return {
            ...p, status, image: api.asset(p.item.image), statusText: lookup(CLAIM_STATUS_TEXT, status),
            detail: shipping(p) || (status === 'unclaimed' ? `${time(p.deadline_at)} 前填写地址` : ''),
            url: `/pages/gift/claim/claim?order_id=${encodeURIComponent(p.order_id)}`,
          };
        }),
      });
    },
  },
});
