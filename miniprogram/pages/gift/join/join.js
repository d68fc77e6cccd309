// @ts-check
// The seed's join page (pages/gift/join/join, its red card and round 抽 button), on the v1
// API. Before showing the card it checks the member's state: already joined -> the waiting page,
// opened -> the result page. The 抽 tap asks for the result message first (only a tap may),
// then joins; a refusal changes nothing else. Old shares (?token=) keep working.
const { pageBehavior, ctx } = require('../../../behaviors/page');
const { giftBehavior } = require('../../../behaviors/gift');
const { openingText, tierRows } = require('../../../utils/format');
const { askSubscribe, groupEnterInfo } = require('../../../utils/wxp');

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
    tiers: /** @type {{tier: string, name: string, count: number}[]} */ ([]),
    needPhrase: false, // a pass-phrase gift: the card asks for it before the tap
    phrase: '',
  },
  methods: {
    /** @param {{order_id?: string, token?: string}} query */
    onLoad(query) {
      const state = ctx(this).state;
      state.orderId = query.order_id || query.token || '';
      this.load(async () => {
        const { api, wx } = ctx(this).services;
        const path = `/api/v1/gifts/${encodeURIComponent(state.orderId)}`;
        const answer = await api.get(path);
        const entry = answer.gift.entry || {};
        // A group-only gift: the group this card was opened from. Its sender, opening it in the
        // group they shared it to, binds it to that group.
        state.group = entry.group_only ? await groupEnterInfo(wx) : null;
        if (entry.group_only && !entry.group_bound && answer.me.state === 'own_gift' && state.group) {
          await api.post(`${path}/group`, state.group);
        }
        if (this.route(answer.gift, answer.me)) return;
        const { gift, me } = answer;
        let notice = /** @type {Record<string, string>} */ (NOTICE)[me.state] || '';
        if (!notice && entry.group_only && !state.group) notice = '仅限指定群的成员参与，请从群聊中打开';
        this.setData({
          gift, inited: true, avatar: gift.sender.avatar || '', uname: gift.sender.name,
          openInfo: `发起一个抽奖，${openingText(gift)}`, wish: gift.wish, notice,
          tiers: tierRows(gift.items), needPhrase: Boolean(entry.pass_phrase),
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

    /** The phrase as typed. @param {{detail: {value: string}}} event */
    onPhrase(event) {
      this.setData({ phrase: event.detail.value });
    },

    /** The 抽 tap. */
    join() {
      if (this.data.busy || this.data.notice) return;
      const record = ctx(this);
      const { wx, api, config } = record.services;
      if (this.data.needPhrase && !this.data.phrase.trim()) {
        wx.showToast({ title: '请输入口令', icon: 'none', duration: 2000 });
        return;
      }
      // What the gift's entry conditions ask for: the phrase, the group's encrypted data.
      const entry = {
        ...(this.data.needPhrase ? { pass_phrase: this.data.phrase } : {}),
        ...(record.state.group || {}),
      };
      // Inside the tap, before anything asynchronous: WeChat refuses the prompt anywhere else.
      const direct = this.data.gift && this.data.gift.method === 'direct';
      const subscribed = askSubscribe(wx, direct ? config.templates.received : config.templates.join);
      this.setData({ busy: true });
      wx.showLoading({ title: '疯狂抢礼包中' });
      subscribed
        .then((ids) => api.post(`/api/v1/gifts/${encodeURIComponent(record.state.orderId)}/join`, { subscribed: ids, ...entry }))
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
