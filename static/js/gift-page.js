// The gift pages: /gift/{order_id} (join), /wait, /result, /mine (the sender's view) and
// /proof. One document serves them all, so the waiting page turns into the result without
// a reload: the view follows the member's state (`me.state`), from the API at load and
// from the realtime channel (static/js/gift-socket.js) afterwards.
import { api, ApiError, auth, serverNow } from './api.js';
import { ClaimPanel } from './claim-panel.js';
import { QUICKNET, verify } from './fairness.js';
import { verifyReceipt } from './vendor/drand-verify.js';
import { GiftClaims } from './gift-claims.js';
import { showSignIn, showWho } from './signin.js';
import { avatar, formatCountdown, formatTime, h, openInfo, showView, toast } from './ui.js';

// The server serves this page only at /gift/{order_id}[/{view}], so the path is well formed.
const [, , orderId, pathView] = location.pathname.split('/');
const requestedView = pathView || 'join';
const connection = document.getElementById('conn');

const page = {
  gift: null, // the public view of the gift (GET /api/v1/gifts/{id}), kept current
  me: null, // this member's state in it
  view: null,
  winners: null, // GET /winners, once the gift has some
  participants: null, // the sender's list
  claim: null, // the winner's claim (static/js/claim-panel.js), once they won
  claims: null, // the sender's view of where the items went (static/js/gift-claims.js)
  socket: null,
  ticker: null,
  refreshTimer: null,
  confirmOpen: false,
};

const TITLES = {
  join: '参与抽奖', wait: '等待开奖', result: '开奖结果', mine: '我发起的礼物', proof: '公平性证明',
  closed: '参与抽奖', signin: '登录', missing: '礼物不存在',
};

function show(view, ...content) {
  if (view !== 'proof') {
    const path = view === 'join' || view === 'closed' || view === 'signin' ? `/gift/${orderId}` : `/gift/${orderId}/${view}`;
    if (location.pathname !== path) history.replaceState(null, '', path);
  }
  page.view = view;
  showView(view, TITLES[view], ...content);
}

// The seed's three-way check: not joined -> join; opened -> result; joined -> waiting.
function viewFor(gift, me) {
  switch (me.state) {
    case 'can_join': return 'join';
    case 'joined_waiting': return 'wait';
    case 'won': case 'lost': return 'result';
    case 'own_gift': return 'mine';
    default: return gift.status === 'finished' ? 'result' : 'closed';
  }
}

function render() {
  clearInterval(page.ticker);
  page.ticker = null;
  const view = viewFor(page.gift, page.me);
  const hasWinners = page.gift.status === 'finished' || page.gift.method === 'direct';
  if ((view === 'result' || view === 'mine') && hasWinners && !page.winners) loadWinners();
  if (view === 'mine' && !page.participants) refreshParticipants();
  if (view === 'mine' && hasWinners && !page.claims) page.claims = new GiftClaims(orderId, () => page.gift);
  if (view === 'result' && page.me.state === 'won' && !page.claim) page.claim = new ClaimPanel(orderId);
  // A field kept across the redraw (the pass phrase, the claim's address) keeps its focus too:
  // moving it into the new view takes the focus away.
  const focused = document.activeElement;
  ({ join: renderJoin, wait: renderWait, result: renderResult, mine: renderMine, closed: renderClosed })[view]();
  if (focused && focused !== document.body && focused.isConnected && document.activeElement !== focused) focused.focus();
}

// A newer state of the gift (from the API or the socket). Older versions are ignored, so a
// late HTTP answer never undoes what the socket already showed.
function apply(gift, me) {
  if (page.gift && gift.version < page.gift.version) return;
  const changed = !page.gift || (gift.status === 'finished' && page.gift.status !== 'finished')
    || (gift.method === 'direct' && page.gift.joined_count !== gift.joined_count);
  page.gift = { ...(page.gift || {}), ...gift };
  // A win is final. The socket's frame for a direct gift's last item can be built before the
  // winner's join record is written (the hub reads the joins), so it may lack the win that the
  // join's own answer gave, at the same version.
  if (me && !(page.me && page.me.state === 'won' && me.state !== 'won')) page.me = me;
  if (changed) page.winners = null;
  if (page.view === 'mine') scheduleSenderLists();
  render();
}

function applyProgress(message) {
  if (!page.gift || message.version <= page.gift.version) return;
  if (page.gift.method === 'direct' && message.joined_count !== page.gift.joined_count) page.winners = null;
  page.gift = { ...page.gift, version: message.version, joined_count: message.joined_count };
  if (page.view === 'mine') scheduleSenderLists();
  render();
}

async function loadWinners() {
  page.winners = { loading: true, winners: [] };
  try {
    page.winners = await api('GET', `/api/v1/gifts/${orderId}/winners`);
  } catch (err) {
    page.winners = { error: err.message, winners: [] };
  }
  render();
}

// The gift changed: the sender's lists are asked again (at most one request each per 300 ms).
function scheduleSenderLists() {
  clearTimeout(page.refreshTimer);
  page.refreshTimer = setTimeout(() => {
    refreshParticipants();
    if (page.claims) page.claims.load();
  }, 300);
}

async function refreshParticipants() {
  if (!page.participants) page.participants = { loading: true, participants: [] };
  try {
    page.participants = await api('GET', `/api/v1/gifts/${orderId}/participants`);
  } catch (err) {
    page.participants = { error: err.message, participants: [] };
  }
  if (page.view === 'mine') render();
}

// ---- the realtime channel ----------------------------------------------------------------

const CONNECTION_TEXT = {
  connecting: '正在连接…',
  open: '实时更新中',
  reconnecting: '连接中断，正在重连…',
  closed: '连接已断开，请刷新页面',
  unavailable: '实时更新不可用，请刷新页面',
};

function setConnection(state) {
  connection.dataset.state = state;
  connection.textContent = CONNECTION_TEXT[state] || state;
}

function connect() {
  if (typeof window.GiftSocket !== 'function') {
    setConnection('unavailable');
    return;
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new window.GiftSocket({ url: `${scheme}://${location.host}/ws`, loginKey: auth.key() });
  socket.on('state', (state) => setConnection(typeof state === 'string' ? state : state.state));
  socket.on('snapshot', (m) => m.order_id === orderId && apply(m.gift, m.me));
  socket.on('opened', (m) => m.order_id === orderId && apply(m.gift, m.me));
  socket.on('progress', (m) => m.order_id === orderId && applyProgress(m));
  socket.on('error', (m) => {
    if (m && m.code === 'login_expired') {
      auth.clear();
      location.reload();
    }
  });
  socket.subscribe(orderId);
  page.socket = socket;
}

// ---- views ---------------------------------------------------------------------------------

// The red card every view shows: the sender, how the gift opens, the wish, then the view's own parts.
function giftCard(modifier, gift, ...parts) {
  return h(`section.card.card--${modifier}`, {},
    h('div.card__arc'),
    avatar(gift.sender, '.card__avatar'),
    h('div.card__name', {}, gift.sender.name),
    h('div.card__info', {}, `发起一个抽奖，${openInfo(gift)}`),
    h('div.card__wish', {}, gift.wish),
    ...parts);
}

// An item as the pages name it: with its prize tier (一等奖：口红) on a tiered gift.
const prizeName = (item) => (item && item.tier ? `${item.tier.name}：${item.name}` : (item ? item.name : ''));

// A tiered gift's prizes, first tier first: "一等奖 空气净化器 ×1".
function tierList(items) {
  if (!items.some((item) => item.tier)) return null;
  const rows = [];
  for (const item of items) {
    const last = rows[rows.length - 1];
    if (last && last.tier === item.tier.name && last.name === item.name) last.count += 1;
    else rows.push({ tier: item.tier.name, name: item.name, count: 1 });
  }
  return h('ul.tiers', { id: 'tiers' }, rows.map((r) => h('li.tiers__row', {},
    h('span.tiers__tier', {}, r.tier), h('span.tiers__name', {}, r.name), h('span.tiers__count', {}, `×${r.count}`))));
}

function renderJoin() {
  const gift = page.gift;
  const entry = gift.entry || {};
  const button = h('button.btn-join', { type: 'button', onclick: join, 'aria-label': '参与抽奖' }, '抽');
  // A pass-phrase gift asks for the phrase before the tap; a group-only one can be joined only
  // from the WeChat group, in the mini-program.
  // The view is drawn again on every update (others joining), so the phrase field is kept, not
  // made anew: what the member is typing survives the update.
  const phrase = entry.pass_phrase
    ? (document.getElementById('pass-phrase')
      || h('input.card__phrase', { id: 'pass-phrase', type: 'text', maxlength: '64', placeholder: '请输入口令', autocomplete: 'off' }))
    : null;
  const groupNote = entry.group_only ? h('div.card__note', { id: 'group-only' }, '仅限指定微信群的成员参与，请在群聊中打开小程序') : null;
  show('join', giftCard('join', gift,
    tierList(gift.items),
    h('div.card__items', {}, `共 ${gift.items_total} 份礼物 · 已有 ${gift.joined_count} 人参与`),
    groupNote, phrase, button));
}

async function join(event) {
  const button = event.currentTarget;
  const phrase = document.getElementById('pass-phrase');
  if (phrase && !phrase.value.trim()) {
    toast('请输入口令');
    phrase.focus();
    return;
  }
  button.disabled = true;
  button.classList.add('btn-join--busy');
  try {
    const answer = await api('POST', `/api/v1/gifts/${orderId}/join`, phrase ? { pass_phrase: phrase.value } : {});
    // The signed receipt stays on this device: the proof page holds the server to it.
    if (answer.me.receipt) localStorage.setItem(RECEIPT_KEY + orderId, JSON.stringify(answer.me.receipt));
    toast('参与成功');
    apply({ ...page.gift, ...answer.gift }, answer.me);
  } catch (err) {
    toast(err.message);
    await load();
  }
}

function renderWait() {
  const gift = page.gift;
  const drawing = gift.status !== 'open';
  const parts = [];
  if (drawing) {
    parts.push(h('div.wait__drawing', {}, h('span.spinner'), '正在开奖…'));
  } else if (gift.method === 'full') {
    const percent = Math.min(100, Math.round((100 * gift.joined_count) / gift.open_number));
    parts.push(
      h('div.wait__count', { id: 'progress' }, `${gift.joined_count}/${gift.open_number} 人已参与`),
      h('div.meter', {}, h('div.meter__bar', { style: { width: `${percent}%` } })),
      h('div.wait__hint', {}, `还差 ${Math.max(0, gift.open_number - gift.joined_count)} 人开奖`),
      gift.deadline_at ? h('div.wait__hint.wait__hint--small', {}, `${formatTime(gift.deadline_at)} 前未满员，将在已参与的人中开奖`) : null,
    );
  } else if (gift.method === 'timed') {
    const countdown = h('div.wait__countdown', { id: 'countdown' });
    parts.push(h('div.wait__label', {}, '距离开奖还有'), countdown,
      h('div.wait__hint', {}, `已有 ${gift.joined_count} 人参与`));
    tick(countdown, gift.open_at);
  }
  show('wait', giftCard('wait', gift,
    h('div.wait__status', {}, h('span.badge', {}, '你已参与'), ' 等待开奖'),
    ...parts));
}

// Counts down to `iso` on the server's clock; at zero it says the draw is under way (the
// scheduler opens the gift and the socket brings the result).
function tick(node, iso) {
  const due = Date.parse(iso);
  const update = () => {
    const left = due - serverNow();
    node.textContent = formatCountdown(left);
    if (left <= 0) {
      clearInterval(page.ticker);
      page.ticker = null;
      node.classList.add('wait__countdown--zero');
      node.after(h('div.wait__drawing', {}, h('span.spinner'), '正在开奖…'));
    }
  };
  update();
  if (due > serverNow()) page.ticker = setInterval(update, 250);
}

function winnerList() {
  const list = page.winners;
  if (!list || list.loading) return h('p.panel__empty', {}, '正在加载中奖名单…');
  if (list.error) return h('p.panel__empty', {}, list.error);
  if (!list.winners.length) return h('p.panel__empty', {}, '本次没有人中奖');
  return h('ul.people', { id: 'winners' }, list.winners.map((w) => h('li.person', {},
    avatar(w),
    h('span.person__name', {}, w.name),
    h('span.person__item', {}, prizeName(w.item)))));
}

function winnersPanel() {
  const gift = page.gift;
  const summary = page.winners && page.winners.participant_count !== undefined
    ? `${page.winners.participant_count} 人参与，${page.winners.winners.length} 人中奖` : '';
  return h('section.panel', {},
    h('h2.panel__title', {}, gift.method === 'direct' ? '领取名单' : '中奖名单', h('small', {}, summary)),
    winnerList(),
    gift.method !== 'direct' && gift.status === 'finished'
      ? h('a.panel__link', { href: `/gift/${orderId}/proof`, id: 'proof-link' }, '查看开奖公平性证明 ›') : null);
}

function renderResult() {
  const { gift, me } = page;
  let body;
  if (me.state === 'won') {
    body = [
      h('div.result__title.result__title--won', { id: 'outcome', 'data-outcome': 'won' }, '恭喜你中奖了！'),
      h('div.prize', {},
        me.item && me.item.image ? h('img.prize__image', { src: me.item.image, alt: '' }) : h('img.prize__image', { src: '/static/img/icon.svg', alt: '' }),
        h('span.prize__name', {}, prizeName(me.item))),
      h('p.result__text', {}, '在下方领取奖品'),
    ];
  } else if (me.state === 'lost') {
    body = [
      h('div.result__title.result__title--lost', { id: 'outcome', 'data-outcome': 'lost' }, '很遗憾，没有抽中'),
      h('p.result__text', {}, '感谢参与，下次好运！'),
    ];
  } else {
    body = [
      h('div.result__title', { id: 'outcome', 'data-outcome': 'absent' }, '已经开奖啦'),
      h('p.result__text', {}, '你没有参与这次抽奖，看看谁中奖了吧'),
    ];
  }
  show('result', giftCard('result', gift, ...body), me.state === 'won' ? page.claim.node : null, winnersPanel());
}

function renderClosed() {
  const { gift, me } = page;
  const full = me.state === 'full';
  show('closed', giftCard('result', gift,
    h('div.result__title', { id: 'outcome', 'data-outcome': me.state }, full ? '参与人数已满' : '参与时间已过'),
    h('p.result__text', {}, gift.status === 'open' ? '下次早点来哦' : '正在开奖，稍后可查看中奖名单')));
}

const STATUS_TEXT = { open: '进行中', ready: '已满员，即将开奖', drawing: '开奖中', finished: '已开奖' };

function renderMine() {
  const gift = page.gift;
  let count;
  if (gift.status === 'finished' && gift.method !== 'direct') count = `共 ${gift.joined_count} 人参与`;
  else if (gift.method === 'full') count = `${gift.joined_count}/${gift.open_number} 人已参与`;
  else if (gift.method === 'direct') count = `已送出 ${gift.items_total - gift.items_left}/${gift.items_total} 份`;
  else count = `已有 ${gift.joined_count} 人参与`;
  const status = gift.method === 'direct' && gift.status === 'finished' ? '已送完' : STATUS_TEXT[gift.status];
  const parts = [h('div.mine__status', {}, h('span.badge', { id: 'gift-status' }, status)),
    h('div.wait__count', { id: 'progress' }, count)];
  if (gift.method === 'timed' && gift.status === 'open') {
    const countdown = h('div.wait__countdown.wait__countdown--small', { id: 'countdown' });
    parts.push(countdown);
    tick(countdown, gift.open_at);
  }
  if (gift.method !== 'direct' && gift.status === 'open' && gift.joined_count > 0) {
    parts.push(h('button.btn', { type: 'button', id: 'open-early', onclick: openEarly },
      page.confirmOpen ? `确认现在开奖？（${gift.joined_count} 人参与）` : '提前开奖'));
  }
  const link = `${location.origin}/gift/${orderId}`;
  show('mine',
    giftCard('result', gift, ...parts,
      h('div.share', {}, h('span', {}, '分享链接'), h('input.share__link', { value: link, readonly: true, onfocus: (e) => e.target.select() }))),
    gift.status === 'finished' || gift.method === 'direct' ? winnersPanel() : null,
    page.claims ? page.claims.node : null,
    participantsPanel());
}

const OUTCOME_TEXT = { won: '中奖', lost: '未中奖' };

function participantsPanel() {
  const list = page.participants;
  let body;
  if (!list || list.loading) body = h('p.panel__empty', {}, '正在加载…');
  else if (list.error) body = h('p.panel__empty', {}, list.error);
  else if (!list.participants.length) body = h('p.panel__empty', {}, '还没有人参与，快把链接分享给好友吧');
  else {
    body = h('ul.people', { id: 'participants' }, list.participants.map((p) => h('li.person', {},
      avatar(p),
      h('span.person__name', {}, p.name),
      p.outcome ? h(`span.person__tag.person__tag--${p.outcome}`, {}, OUTCOME_TEXT[p.outcome]) : h('span.person__time', {}, formatTime(p.joined_at)))));
  }
  return h('section.panel', {}, h('h2.panel__title', {}, '参与名单',
    h('small', {}, list && list.participants.length < page.gift.joined_count ? `最近 ${list.participants.length} 人` : '')), body);
}

async function openEarly() {
  if (!page.confirmOpen) {
    page.confirmOpen = true;
    render();
    return;
  }
  page.confirmOpen = false;
  try {
    const answer = await api('POST', `/api/v1/gifts/${orderId}/open`, {});
    toast('已开奖');
    apply(answer.gift, answer.me);
  } catch (err) {
    toast(err.message);
    await load();
  }
}

// ---- the proof -----------------------------------------------------------------------------

const CHECK_TEXT = {
  algorithm: '开奖算法可识别',
  published: '证明中的承诺就是创建礼物时公布的那个',
  commitment: '公布的种子与其承诺（SHA-256）一致',
  canonical: '参与者名单为规范顺序（排序、无重复）',
  participants_hash: '参与者名单与其哈希一致',
  items_hash: '礼品清单与其哈希一致',
  sequences: '参与编号从 1 连续到总人数，无遗漏、无重复',
  receipt: '你保存的参与回执（服务器签名）与名单中你的编号一致',
  beacon_chain: '随机信标来自 drand quicknet 公共网络（公钥已内置在本页）',
  beacon_round: '信标轮次是参与者名单冻结之后的第一轮',
  beacon_signature: '信标签名经 BLS 验证属于该网络的该轮次',
  winners: '用种子和信标重新抽取，中奖者与公布结果完全一致',
};

// A proof drawn against the local beacon stand-in (--dev/--demo, tests) names another chain than
// quicknet; this page takes that chain from the server only when it is served from this very
// machine, as the server takes such a chain only from loopback relays.
const RECEIPT_KEY = 'gift-lottery/receipt/';

// This device's receipt of its join, held against the proof: signed by the server's receipt
// key, and listed under its number.
async function receiptCheck(proof) {
  const stored = localStorage.getItem(RECEIPT_KEY + orderId);
  if (!stored || proof.version !== 2) return null;
  const receipt = JSON.parse(stored);
  const key = await api('GET', '/api/v1/receipt-key');
  const at = proof.participants.indexOf(receipt.participant);
  const ok = verifyReceipt(key.public_key, receipt) && receipt.gift === proof.order_id && at >= 0
    && proof.sequences[at] === receipt.sequence;
  return { name: 'receipt', ok, detail: `第 ${receipt.sequence} 位参与` };
}

async function chainFor(proof) {
  const local = ['127.0.0.1', 'localhost', '[::1]'].includes(window.location.hostname);
  if (proof.version !== 2 || !proof.beacon || proof.beacon.chain_hash === QUICKNET.chain_hash || !local) return QUICKNET;
  const chain = await api('GET', '/api/v1/beacon');
  return chain.chain_hash === proof.beacon.chain_hash ? chain : QUICKNET;
}

async function showProof() {
  const verdict = h('div.verdict', { id: 'verdict', 'data-result': 'pending' }, '正在你的浏览器中验证…');
  const settle = (result, text) => {
    verdict.dataset.result = result;
    verdict.textContent = text;
  };
  const panel = h('section.panel.proof', {}, h('h2.panel__title', {}, '开奖公平性证明'), verdict);
  show('proof', panel);
  let winners;
  try {
    winners = await api('GET', `/api/v1/gifts/${orderId}/winners`);
  } catch (err) {
    settle('error', err.message);
    return;
  }
  if (winners.method === 'direct') {
    settle('not-drawn', '直接送礼没有抽奖环节，先到先得，无需验证');
    return;
  }
  if (winners.status !== 'finished') {
    settle('not-opened', '尚未开奖，开奖后可在这里验证结果');
    return;
  }
  let proof;
  try {
    proof = await api('GET', `/api/v1/gifts/${orderId}/proof`);
  } catch (err) {
    settle('error', err.message);
    return;
  }
  // Signed in, the page also has the gift as it was published (its commitment) and this
  // member's pseudonym.
  let mine = null;
  let published = null;
  if (auth.key()) {
    try {
      const answer = await api('GET', `/api/v1/gifts/${orderId}`);
      mine = answer.me.participant || null;
      published = answer.gift.seed_commitment;
    } catch (err) {
      mine = null;
    }
  }
  let checks;
  try {
    checks = await verify(proof, await chainFor(proof));
    const receipt = await receiptCheck(proof);
    if (receipt) checks.push(receipt);
  } catch (err) {
    checks = [{ name: 'winners', ok: false, detail: err.message }];
  }
  if (published) checks.unshift({ name: 'published', ok: published === proof.seed_commitment, detail: '' });
  const ok = checks.length > 0 && checks.every((c) => c.ok);
  settle(ok ? 'match' : 'mismatch',
    ok ? '✓ 验证通过：中奖结果与公开数据完全一致' : '✗ 验证失败：中奖结果与公开数据不一致');
  const names = new Map(winners.winners.map((w, i) => [i, w.name]));
  panel.append(
    h('p.proof__intro', {}, '创建礼物时，服务器先公布随机种子的 SHA-256 承诺；开奖后再公布种子本身。'
      + '你的浏览器已用 WebCrypto 按公开算法重新计算了一遍，不需要信任服务器。'),
    h('ul.checks', {}, checks.map((c) => h(`li.check.check--${c.ok ? 'ok' : 'fail'}`, { 'data-check': c.name },
      h('span.check__mark', {}, c.ok ? '✓' : '✗'), CHECK_TEXT[c.name] || c.name, c.detail ? ` (${c.detail})` : ''))),
    h('h3.proof__subtitle', {}, '中奖结果'),
    h('table.proof__winners', {},
      h('thead', {}, h('tr', {}, h('th', {}, '礼品'), h('th', {}, '中奖者编号'), h('th', {}, '昵称'))),
      h('tbody', {}, proof.winners.map((w) => h(`tr${w.participant === mine ? '.proof__mine' : ''}`, {},
        h('td', {}, proof.tiers ? `${proof.tiers[w.item_index][1]}：${proof.items[w.item_index]}` : proof.items[w.item_index]),
        h('td.mono', {}, w.participant),
        h('td', {}, w.participant === mine ? '你' : names.get(w.item_index) || ''))))),
    h('dl.proof__data', {},
      h('dt', {}, '算法'), h('dd', {}, `${proof.algorithm} v${proof.version}`),
      h('dt', {}, '订单号'), h('dd.mono', {}, proof.order_id),
      h('dt', {}, '种子承诺'), h('dd.mono', {}, proof.seed_commitment),
      h('dt', {}, '种子'), h('dd.mono', {}, proof.seed),
      h('dt', {}, '参与者哈希'), h('dd.mono', {}, proof.participants_hash),
      h('dt', {}, '礼品清单哈希'), h('dd.mono', {}, proof.items_hash),
      ...(proof.beacon ? [
        h('dt', {}, '名单冻结时间'), h('dd.mono', {}, proof.frozen_at),
        h('dt', {}, '信标网络'), h('dd.mono', {}, proof.beacon.chain_hash),
        h('dt', {}, '信标轮次'), h('dd.mono', {}, String(proof.beacon.round)),
        h('dt', {}, '信标签名'), h('dd.mono', {}, proof.beacon.signature || proof.beacon.status),
        h('dt', {}, '信标随机数'), h('dd.mono', {}, proof.beacon.randomness || proof.beacon.policy)] : [])),
    h('details.proof__all', {},
      h('summary', {}, `全部 ${proof.participants.length} 位参与者编号${mine ? '（含你的编号）' : ''}`),
      h('ol.mono', {}, proof.participants.map((p) => h(p === mine ? 'li.proof__mine' : 'li', {}, p)))),
    h('p.proof__intro', {}, '也可以自行验证：保存 ', h('a', { href: `/api/v1/gifts/${orderId}/proof`, download: `proof-${orderId}.json` }, '证明数据'),
      ' 后运行 ', h('code', {}, 'python -m lottery.verify proof.json')));
}

// ---- sign-in and start -----------------------------------------------------------------------

function showSignInCard() {
  return showSignIn({
    show: (card) => show('signin', card),
    prompt: '选择一个昵称参与抽奖',
    inWeChat: '网页版登录即将上线。现在请在微信小程序中打开这个礼物链接。',
    onSignedIn: load,
  });
}

// Ask the gift state, then show the page it calls for.
async function load() {
  if (!auth.key()) {
    await showSignInCard();
    return;
  }
  try {
    const answer = await api('GET', `/api/v1/gifts/${orderId}`);
    apply(answer.gift, answer.me);
    if (!page.socket) connect();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showWho();
      await showSignInCard();
    } else if (err instanceof ApiError && err.status === 404) {
      show('missing', h('section.card.card--result', {}, h('div.result__title', {}, '礼物不存在'),
        h('p.result__text', {}, '请检查链接是否完整')));
    } else {
      show('missing', h('section.card.card--result', {}, h('div.result__title', {}, '加载失败'),
        h('p.result__text', {}, err.message)));
    }
  }
}

function start() {
  showWho();
  if (!orderId) return;
  if (requestedView === 'proof') showProof();
  else load();
}

start();
