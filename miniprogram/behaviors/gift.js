// @ts-check
// What the gift's pages share: sharing (the join path and the gift's wish), and following the
// gift live over the shared socket until the page goes away.
const { ctx } = require('./page');
const { CONNECTION_TEXT } = require('../utils/format');

/** The join page's path for a gift (the seed's page, so old shares keep working). @param {string} orderId */
const joinPath = (orderId) => `/pages/gift/join/join?order_id=${encodeURIComponent(orderId)}`;

const giftBehavior = Behavior({
  data: { connection: '' },
  lifetimes: {
    detached() {
      const state = ctx(this).state;
      if (state.unfollow) state.unfollow();
      if (state.unwatch) state.unwatch();
      state.unfollow = null;
      state.unwatch = null;
    },
  },
  methods: {
    /** Follow `orderId` from `version` (what the page shows); `onFrame` gets each newer frame.
     * @param {string} orderId
     * @param {number} version
     * @param {(frame: any) => void} onFrame */
    followGift(orderId, version, onFrame) {
      const record = ctx(this);
      const socket = record.services.socket;
      if (record.state.unfollow) record.state.unfollow();
      if (!record.state.unwatch) {
        record.state.unwatch = socket.onState((state) => {
          this.setData({ connection: /** @type {Record<string, string>} */ (CONNECTION_TEXT)[state] || '' });
        });
      }
      record.state.unfollow = socket.follow(orderId, version, onFrame);
    },

    onShareAppMessage() {
      const gift = /** @type {any} */ (this.data).gift || {};
      const orderId = gift.order_id || ctx(this).state.orderId;
      return { title: gift.wish || '送你一份礼物，快来抽奖', path: joinPath(orderId) };
    },
  },
});

module.exports = { giftBehavior, joinPath };
