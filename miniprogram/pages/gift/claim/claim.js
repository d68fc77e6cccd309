// @ts-check
// The winner's claim: the address from wx.chooseAddress (the tap asks for the shipping message
// first, since only a tap may), then where it stands: 已填写地址 (修改地址 until it ships),
// 已发货 with the carrier and tracking number, 已送达, or 已过期. Asks again every few seconds
// while the next step is the operator's.
const { pageBehavior, ctx } = require('../../../behaviors/page');
const { time, shipping, CLAIM_STATUS_TEXT, lookup } = require('../../../utils/format');
const { askSubscribe, chooseAddress } = require('../../../utils/wxp');

const REFRESH_MS = 4000;
const OPERATOR_NEXT = new Set(['claimed', 'shipped']);

Component({
  behaviors: [pageBehavior],
  data: {
    claim: /** @type {any} */ (null),
    statusText: '',
    deadlineText: '',
    shippingText: '',
    addressText: '',
    editable: false,
    busy: false,
  },
  methods: {
    /** @param {{order_id?: string}} query */
    onLoad(query) {
      ctx(this).state.orderId = query.order_id || '';
      this.load(() => this.refresh());
    },

    async refresh() {
      const record = ctx(this);
      const claim = await record.services.api.get(`/api/v1/gifts/${encodeURIComponent(record.state.orderId)}/claim`);
      this.show(claim);
    },

    /** @param {any} claim */
    show(claim) {
      const expired = claim.status === 'unclaimed' && Date.parse(claim.deadline_at) <= Date.now();
      const status = expired ? 'expired' : claim.status;
      const a = claim.address;
      this.setData({
        claim: { ...claim, item: { ...claim.item, image: ctx(this).services.api.asset(claim.item.image) } },
        statusText: lookup(CLAIM_STATUS_TEXT, status),
        deadlineText: time(claim.deadline_at),
        shippingText: shipping(claim),
        addressText: a ? `${a.userName} ${a.telNumber}\n${a.provinceName}${a.cityName}${a.countyName}${a.detailInfo}` : '',
        editable: status === 'unclaimed' || status === 'claimed',
      });
      if (OPERATOR_NEXT.has(status)) this.later(() => this.refresh().catch(() => {}), REFRESH_MS);
    },

    /** 选择收货地址 / 修改地址. */
    chooseAddress() {
      if (this.data.busy) return;
      const record = ctx(this);
      const { wx, api, config } = record.services;
      // Inside the tap, before anything asynchronous: WeChat refuses the prompt anywhere else.
      const subscribed = askSubscribe(wx, config.templates.claim);
      this.setData({ busy: true });
      subscribed.then(async (ids) => {
        const address = await chooseAddress(wx);
        if (!address) {
          this.setData({ busy: false });
          return;
        }
        const claim = await api.post(`/api/v1/gifts/${encodeURIComponent(record.state.orderId)}/claim`, { ...address, subscribed: ids });
        this.setData({ busy: false });
        wx.showToast({ title: '地址已提交', icon: 'success' });
        this.show(claim);
      }).catch((err) => {
        this.setData({ busy: false });
        this.toast(err);
      });
    },
  },
});
