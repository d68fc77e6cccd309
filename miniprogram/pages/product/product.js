// @ts-check
// One product; 送给好友抽奖 opens the create-gift form with it.
const { pageBehavior, ctx } = require('../../behaviors/page');
const { price } = require('../../utils/format');

Component({
  behaviors: [pageBehavior],
  data: { product: /** @type {any} */ (null) },
  methods: {
    /** @param {{product_id?: string}} query */
    onLoad(query) {
      const id = query.product_id || '';
      this.load(async () => {
        const { api } = ctx(this).services;
        const p = await api.get(`/api/v1/products/${encodeURIComponent(id)}`, { auth: false });
        this.setData({ product: { ...p, images: (p.images || []).map(api.asset), priceText: price(p.price), soldOut: p.stock <= 0 } });
      });
    },

    give() {
      const p = this.data.product;
      if (p) ctx(this).services.wx.navigateTo({ url: `/pages/create/create?product_id=${encodeURIComponent(p.product_id)}` });
    },

    onShareAppMessage() {
      const p = this.data.product;
      return p ? { title: p.name, path: `/pages/product/product?product_id=${encodeURIComponent(p.product_id)}` } : {};
    },
  },
});
