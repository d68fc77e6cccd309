// @ts-check
// The seed's join page (pages/gift/join/join, its red card and round 抽 button), on the v1
// API. Before showing the card it checks the member's state: already joined -> the waiting page,
// opened -> the result page. The 抽 tap asks for the result message first (only a tap may),
// then joins; a refusal changes nothing else. Old shares (?token=) keep working.
const { pageBehavior, ctx } = require('../../../behaviors/page');
const { giftBehavior } = require('../../../behaviors/gift');
const { openingText } = require('../../../utils/format');
const { askSubscribe } = require('../../../utils/wxp');

// Where each state goes: the card is shown only for can_join (and, greyed, full or closed).
const NOTICE = { full: '参与人数已满', closed: '参与时间已过' };

Component({
  behaviors: [pageBehavior, giftBehavior],
  data: {
    inited: false,
    gift: /** @type {any} */ (null),
    avatar: '',
    uname: '',
    openInfo: '',
    wish: '',
    notice: '',
    busy: false,
  },
  methods: {
    /** @param {{order_id?: string, token?: string}} query */
    onLoad(query) {
      const state = ctx(this).state;
      state.orderId = query.order_id || query.token || '';
      this.load(async () => {
        const answer = await ctx(this).services.api.get(`/api/v1/gifts/${encodeURIComponent(state.orderId)}`);
        if (this.route(answer.gift, answer.me)) return;
        const { gift, me } = answer;
        this.setData({
          gift, inited: true, avatar: gift.sender.avatar || '', uname: gift.sender.name,
          openInfo: `发起一个抽奖，${openingText(gift)}`, wish: gift.wish,
          notice: /** @type {Record<string, string>} */ (NOTICE)[me.state] || '',
        });
      });
    },

    /** Leave for the page the member's state belongs on; true if it did.
     * @param {any} gift
     * @param {{state: string}} me */
    route(gift, me) {
      const { wx } = ctx(this).services;
      const id = encodeURIComponent(gift.order_id);
      if (gift.status === 'finished' || me.state === 'won' || me.state === 'lost') {
        wx.redirectTo({ url: `/pages/gift/result?order_id=${id}` });
        return true;
      }
      if (me.state === 'joined_waiting' || me.state === 'own_gift') {
        wx.redirectTo({ url: `/pages/gift/wait/wait?order_id=${id}` });
        return true;
      }
      return false;
    },

    /** The 抽 tap. */
    join() {
      if (this.data.busy || this.data.notice) return;
      const record = ctx(this);
      const { wx, api, config } = record.services;
      // Inside the tap, before anything asynchronous: WeChat refuses the prompt anywhere else.
      const direct = this.data.gift && this.data.gift.method === 'direct';
      const subscribed = askSubscribe(wx, direct ? config.templates.received : config.templates.join);
      this.setData({ busy: true });
      wx.showLoading({ title: '疯狂抢礼包中' });
      subscribed
        .then((ids) => api.post(`/api/v1/gifts/${encodeURIComponent(record.state.orderId)}/join`, { subscribed: ids }))
        .then((answer) => {
          wx.hideLoading();
          // The signed receipt stays on this phone: the proof page holds the server to it.
          if (answer.me.receipt) wx.setStorageSync(`receipt:${record.state.orderId}`, answer.me.receipt);
          wx.showToast({ title: '参与成功', icon: 'none', duration: 2000 });
          this.route({ ...this.data.gift, status: answer.gift.status }, answer.me);
        })
        .catch((err) => {
          wx.hideLoading();
          this.setData({ busy: false });
          if (err.code === 'already_joined') {
            this.route(this.data.gift, { state: 'joined_waiting' });
            return;
          }
          this.toast(err);
          if (err.code === 'full' || err.code === 'closed' || err.code === 'no_items_left' || err.code === 'opened') {
            this.setData({ notice: err.message });
          }
        });
    },
  },
});
