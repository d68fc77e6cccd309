// @ts-check
// The result: won (the item, the way to claim it) or not, the winners with masked names, and
// the proof. This page lives at pages/gift/result (not in a folder of its own) because that is
// the page the server's subscribe messages open by default (notify/templates.py).
const { pageBehavior, ctx } = require('../../behaviors/page');
const { giftBehavior } = require('../../behaviors/gift');
const { openingText, prizeName, time } = require('../../utils/format');

const HEADLINE = {
  won: '恭喜你，中奖了！',
  lost: '很遗憾，没有抽中',
  own_gift: '你的礼物已开奖',
  closed: '礼物已开奖',
  joined_waiting: '还没有开奖',
  can_join: '还没有开奖',
  full: '参与人数已满',
};

Component({
  behaviors: [pageBehavior, giftBehavior],
  data: {
    gift: /** @type {any} */ (null),
    me: /** @type {any} */ (null),
    headline: '',
    openInfo: '',
    openedText: '',
    winners: /** @type {any[]} */ ([]),
    hasProof: false,
  },
  methods: {
    /** @param {{order_id?: string}} query */
    onLoad(query) {
      const state = ctx(this).state;
      state.orderId = query.order_id || '';
      this.load(async () => {
        const { api, wx } = ctx(this).services;
        const id = encodeURIComponent(state.orderId);
        const { gift, me } = await api.get(`/api/v1/gifts/${id}`);
        if (gift.status !== 'finished' && me.state === 'joined_waiting' && gift.method !== 'direct') {
          wx.redirectTo({ url: `/pages/gift/wait/wait?order_id=${id}` });
          return;
        }
        if (me.state === 'can_join') {
          wx.redirectTo({ url: `/pages/gift/join/join?order_id=${id}` });
          return;
        }
        const answer = await api.get(`/api/v1/gifts/${id}/winners`, { auth: false });
        this.setData({
          gift, me: me.item ? { ...me, item: { ...me.item, name: prizeName(me.item), image: api.asset(me.item.image) } } : me, headline: /** @type {Record<string, string>} */ (HEADLINE)[me.state] || '礼物已开奖',
          openInfo: openingText(gift), openedText: time(gift.opened_at),
          winners: (answer.winners || []).map((/** @type {any} */ w) => ({ ...w, item: { ...w.item, name: prizeName(w.item) } })), hasProof: gift.method !== 'direct' && gift.status === 'finished',
        });
      });
    },

    claim() {
      ctx(this).services.wx.navigateTo({ url: `/pages/gift/claim/claim?order_id=${encodeURIComponent(ctx(this).state.orderId)}` });
    },

    proof() {
      ctx(this).services.wx.navigateTo({ url: `/pages/gift/proof/proof?order_id=${encodeURIComponent(ctx(this).state.orderId)}` });
    },
  },
});
