// @ts-check
// Waiting, live: "1/2 人已参与", a timed gift's countdown, the connection's state. Follows the
// gift over the shared socket from the version it read; when the gift opens (an `opened`
// frame, or a snapshot of a finished gift after a reconnect or a return from the background)
// it goes to the result page, once.
const { pageBehavior, ctx } = require('../../../behaviors/page');
const { giftBehavior } = require('../../../behaviors/gift');
const { openingText, countdown, METHOD_TEXT, lookup } = require('../../../utils/format');

Component({
  behaviors: [pageBehavior, giftBehavior],
  data: {
    gift: /** @type {any} */ (null),
    me: /** @type {any} */ (null),
    openInfo: '',
    progress: '',
    countdown: '',
    mine: false,
  },
  methods: {
    /** @param {{order_id?: string}} query */
    onLoad(query) {
      const state = ctx(this).state;
      state.orderId = query.order_id || '';
      this.load(async () => {
        const answer = await ctx(this).services.api.get(`/api/v1/gifts/${encodeURIComponent(state.orderId)}`);
        if (!this.show(answer.gift, answer.me)) return;
        this.followGift(state.orderId, answer.gift.version, (frame) => this.receive(frame));
        this.tick();
      });
    },

    /** @param {any} frame */
    receive(frame) {
      if (frame.type === 'snapshot' || frame.type === 'opened') this.show(frame.gift, frame.me);
      else if (frame.type === 'progress') {
        this.show({ ...this.data.gift, joined_count: frame.joined_count, status: frame.status, version: frame.version }, this.data.me);
      } else if (frame.type === 'error' && frame.code === 'gift_not_found') this.setData({ error: frame.message });
    },

    /** Render the gift, or leave for the result once it is drawn; false when it left.
     * @param {any} gift
     * @param {any} me */
    show(gift, me) {
      const state = ctx(this).state;
      if (state.left) return false;
      if (gift.status === 'finished') {
        state.left = true;
        ctx(this).services.wx.redirectTo({ url: `/pages/gift/result?order_id=${encodeURIComponent(gift.order_id)}` });
        return false;
      }
      const seats = gift.method === 'full' ? `${gift.joined_count}/${gift.open_number} 人已参与` : `${gift.joined_count} 人已参与`;
      this.setData({
        gift, me, mine: me.state === 'own_gift', openInfo: openingText(gift),
        progress: gift.method === 'direct' ? `${lookup(METHOD_TEXT, gift.method)}，还剩 ${gift.items_left} 份` : seats,
      });
      return true;
    },

    /** The timed gift's countdown, each second while the page lives. */
    tick() {
      const gift = this.data.gift;
      if (!gift || gift.method !== 'timed') return;
      this.setData({ countdown: countdown(gift.open_at, Date.now()) || '即将开奖' });
      this.later(() => this.tick(), 1000);
    },
  },
});
