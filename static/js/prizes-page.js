// /me/prizes: what I won and where each prize stands (GET /api/v1/me/prizes, newest first),
// each linking to its gift's result page, where it is claimed. No address is shown here.
import { api, ApiError, auth, serverNow } from './api.js';
import { productImage, showFailure } from './shop-catalogue.js';
import { showSignIn } from './signin.js';
import { claimStatus, shippingText, statusTag } from './status-text.js';
import { formatTime, h, showView } from './ui.js';

export async function showPrizes() {
  if (!auth.key()) {
    await signIn();
    return;
  }
  let answer;
  try {
    answer = await api('GET', '/api/v1/me/prizes');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) await signIn();
    else showFailure('加载失败', err.message);
    return;
  }
  const { prizes } = answer;
  showView('prizes', '我的奖品', h('section.panel', { id: 'prizes' },
    h('h2.panel__title', {}, '我的奖品', h('small', {}, `共 ${prizes.length} 件`)),
    prizes.length ? h('ul.lines', {}, prizes.map(prizeRow))
      : h('p.panel__empty', {}, '还没有奖品，去参与好友分享的礼物吧')));
}

function signIn() {
  return showSignIn({
    show: (card) => showView('signin', '登录', card),
    prompt: '登录后查看我的奖品',
    inWeChat: '网页版登录即将上线。现在请在微信小程序中查看奖品。',
    onSignedIn: showPrizes,
  });
}

function prizeRow(prize) {
  const status = claimStatus(prize, serverNow());
  let note = `${formatTime(prize.won_at)} 中奖`;
  if (status === 'unclaimed') note = `请在北京时间 ${formatTime(prize.deadline_at)} 前填写收货地址`;
  else if (prize.carrier) note = shippingText(prize);
  return h('li.line', { 'data-claim': prize.claim_id },
    h('img.line__image', { src: productImage(prize.item), alt: '' }),
    h('span.line__info', {},
      h('span.line__name', {}, prize.item.name),
      h('span.line__note', {}, note)),
    statusTag('claim', status),
    h('a.line__go', { href: `/gift/${prize.order_id}/result` }, status === 'unclaimed' ? '去领奖' : '查看'));
}
