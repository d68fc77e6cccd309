// @ts-check
// The catalogue: category tabs and products, a page at a time.
const { pageBehavior, ctx } = require('../../behaviors/page');
const { price } = require('../../utils/format');

/** @param {any} p @param {(url: string) => string} asset */
const card = (p, asset) => ({
  product_id: p.product_id, name: p.name, priceText: price(p.price), image: asset((p.images || [])[0] || ''),
  soldOut: p.stock <= 0,
});

Component({
  behaviors: [pageBehavior],
  data: {
    categories: /** @type {{category_id: string, name: string}[]} */ ([]),
    active: '',
    products: /** @type {any[]} */ ([]),
    nextCursor: '',
    more: false,
  },
  methods: {
    onLoad() {
      this.load(async () => {
        const { api } = ctx(this).services;
        const answer = await api.get('/api/v1/categories', { auth: false });
        this.setData({ categories: [{ category_id: '', name: '全部' }, ...answer.categories] });
        await this.fetchProducts(true);
      });
    },

    onPullDownRefresh() {
      this.load(() => this.fetchProducts(true)).then(() => ctx(this).services.wx.stopPullDownRefresh());
    },

    onReachBottom() {
      if (this.data.more) this.fetchProducts(false).catch((err) => this.toast(err));
    },

    /** @param {boolean} fresh */
    async fetchProducts(fresh) {
      const { api } = ctx(this).services;
      const answer = await api.get('/api/v1/products', {
        auth: false, query: { category: this.data.active, cursor: fresh ? '' : this.data.nextCursor },
      });
      const cards = answer.products.map((/** @type {any} */ p) => card(p, api.asset));
      this.setData({
        products: fresh ? cards : [...this.data.products, ...cards],
        nextCursor: answer.next_cursor || '', more: Boolean(answer.next_cursor),
      });
    },

    /** @param {any} event */
    chooseCategory(event) {
      const id = event.currentTarget.dataset.id;
      if (id === this.data.active) return;
      this.setData({ active: id, products: [] });
      this.load(() => this.fetchProducts(true));
    },

    loadMore() {
      this.fetchProducts(false).catch((err) => this.toast(err));
    },
  },
});
