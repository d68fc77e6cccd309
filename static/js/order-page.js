// An order after the form: /orders/{order_id}/pay (the pay step) and /orders/{order_id} (the
// pay result: it waits for the payment, then gives the share link to the gift).
//
// In the mini-program the pay step calls wx.requestPayment with the order's `pay` parameters
// and then opens the result page, which asks until the payment is confirmed (WeChat Pay's
// notify may arrive after the payer's success). A browser cannot pay; in development mode its
// "模拟支付" button has the local WeChat Pay fake pay the order, which sends this server the
// same signed notify WeChat Pay would.
import { api, ApiError, auth, site } from './api.js';
import { productImage, showFailure } from './shop-catalogue.js';
import { showSignIn } from './signin.js';
import { ORDER_STATUS_TEXT } from './status-text.js';
import { formatPrice, formatTime, h, showView, toast } from './ui.js';

const METHOD_TEXT = { direct: '直接送礼', full: '满人开奖', timed: '定时开奖' };
const POLL_MS = 1500;
const POLL_FOR_MS = 3 * 60 * 1000;

// The order (its buyer only), or null once a failure is shown; a sign-in first when needed.
async function loadOrder(orderId, retry) {
  if (!auth.key()) {
    await signIn(retry);
    return null;
  }
  try {
    return await api('GET', `/api/v1/orders/${orderId}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) await signIn(retry);
    else if (err instanceof ApiError && err.status === 404) showFailure('订单不存在', '没有找到这个订单（只有下单的人能查看）');
    else showFailure('加载失败', err.message);
    return null;
  }
}

function signIn(retry) {
  return showSignIn({
    show: (card) => showView('signin', '登录', card),
    prompt: '登录后查看订单',
    inWeChat: '网页版登录即将上线。现在请在微信小程序中查看订单。',
    onSignedIn: retry,
  });
}

const itemCount = (order) => order.lines.reduce((sum, line) => sum + line.quantity, 0);

// The order's lines, total and facts, under the card.
function orderPanel(order) {
  return h('section.panel', { id: 'order' },
    h('h2.panel__title', {}, '订单详情', h('small', { id: 'order-status' }, ORDER_STATUS_TEXT[order.status] || order.status)),
    h('ul.lines', {}, order.lines.map((line) => h('li.line', { 'data-product': line.product_id },
      h('img.line__image', { src: productImage(line), alt: '' }),
      h('span.line__info', {},
        h('span.line__name', {}, line.name),
        h('span.line__price', {}, `${formatPrice(line.price)} × ${line.quantity}`)),
      h('span.line__sum', {}, formatPrice(line.price * line.quantity))))),
    h('div.order__total', {}, h('span', {}, `共 ${itemCount(order)} 份`), h('span', {}, '合计 ', h('strong', { id: 'order-total' }, formatPrice(order.amount_total)))),
    h('dl.order__facts', {},
      h('dt', {}, '开奖方式'), h('dd', {}, METHOD_TEXT[order.method] || order.method),
      h('dt', {}, '祝福语'), h('dd', {}, order.wish),
      h('dt', {}, '下单时间'), h('dd', {}, formatTime(order.created_at)),
      order.paid_at ? [h('dt', {}, '支付时间'), h('dd', {}, formatTime(order.paid_at))] : null,
      h('dt', {}, '订单号'), h('dd.mono', {}, order.order_id)));
}

// ---- the pay step -----------------------------------------------------------------------

export async function showPayStep(orderId) {
  const order = await loadOrder(orderId, () => showPayStep(orderId));
  if (!order) return;
  if (order.status !== 'unpaid') {
    location.replace(`/orders/${orderId}`);
    return;
  }
  const info = await site().catch(() => ({ dev: false }));
  const resultLink = h('a.card__link', { href: `/orders/${orderId}`, id: 'result-link' }, '已完成支付？查看支付结果 ›');
  let action;
  if (info.dev) {
    const button = h('button.btn', { type: 'button', id: 'dev-pay' }, '模拟支付');
    button.addEventListener('click', async () => {
      button.disabled = true;
      button.textContent = '支付中…';
      try {
        await api('POST', `/api/dev/pay/${orderId}`, {});
      } catch (err) {
        // 409: no longer unpaid (paid meanwhile, or closed): the result page says which.
        if (!(err instanceof ApiError && err.status === 409)) {
          toast(err.message);
          button.disabled = false;
          button.textContent = '模拟支付';
          return;
        }
      }
      location.assign(`/orders/${orderId}`);
    });
    action = [button, h('p.pay__note', {}, '开发模式：由本地的微信支付模拟器付款，它向服务器发送与微信支付相同的签名支付通知。')];
  } else {
    action = h('p.pay__note', {}, '请在微信小程序中完成支付。');
  }
  showView('pay', '支付订单',
    h('section.card.card--result.card--pay', {},
      h('div.card__arc'),
      h('div.pay__label', {}, '需支付'),
      h('div.pay__amount', { id: 'pay-amount' }, formatPrice(order.amount_total)),
      h('div.card__info', {}, `${METHOD_TEXT[order.method]} · 共 ${itemCount(order)} 份礼物`),
      h('div.pay__expires', {}, `请在 ${formatTime(order.expires_at)} 前完成支付，逾期订单自动关闭`),
      action,
      resultLink),
    orderPanel(order));
}

// ---- the pay result ---------------------------------------------------------------------

export async function showPayResult(orderId) {
  const started = Date.now();
  let shown = null;
  const poll = async () => {
    const order = await loadOrder(orderId, () => showPayResult(orderId));
    if (!order) return;
    let state;
    if (order.gift) state = 'paid';
    else if (order.status === 'closed') state = 'closed';
    else if (Date.now() - started > POLL_FOR_MS) state = 'unknown';
    else state = 'waiting';
    // While waiting nothing changes on screen; each answer is drawn once.
    if (state !== shown || state !== 'waiting') renderResult(state, order);
    shown = state;
    if (state === 'waiting') setTimeout(poll, POLL_MS);
  };
  await poll();
}

function renderResult(state, order) {
  const status = (title, text, modifier = '') => [
    h(`div.result__title${modifier}`, { id: 'pay-status', 'data-status': state }, title),
    h('p.result__text', {}, text)];
  let body;
  if (state === 'paid') {
    body = [...status(order.status === 'paid' ? '支付成功' : ORDER_STATUS_TEXT[order.status] || '已支付',
      '礼物已创建，把链接分享给好友来参与吧', '.result__title--won'), shareBox(order),
    h('a.btn', { id: 'mine-link', href: `${order.gift.url}/mine` }, '查看我的礼物')];
  } else if (state === 'closed') {
    body = [...status('订单已关闭', order.paid_after_close
      ? '付款在订单关闭之后才到账，款项将原路退回'
      : '超时未支付，订单已关闭，库存已退回'), h('a.btn', { href: '/shop' }, '重新选购')];
  } else if (state === 'unknown') {
    const again = h('button.btn', { type: 'button', onclick: () => location.reload() }, '刷新');
    body = [...status('暂未收到支付结果', '如果已经付款，请稍后刷新；没有付款可以继续支付'), again,
      h('a.card__link', { href: `/orders/${order.order_id}/pay` }, '继续支付 ›')];
  } else {
    body = [h('div.result__title', { id: 'pay-status', 'data-status': state }, h('span.spinner'), '正在确认支付结果…'),
      h('p.result__text', {}, '微信支付的通知到达后，这里会自动更新')];
  }
  showView(state === 'paid' ? 'paid' : 'result', state === 'paid' ? '支付成功' : '支付结果',
    h('section.card.card--result', {}, h('div.card__arc'), h('div.pay__amount.pay__amount--small', {}, formatPrice(order.amount_total)), body),
    orderPanel(order));
}

// The gift's link: visible, and in a field with a copy button.
function shareBox(order) {
  const url = `${location.origin}${order.gift.url}`;
  const field = h('input.share__link', { id: 'share-field', value: url, readonly: true, 'aria-label': '分享链接', onfocus: (e) => e.target.select() });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(url);
      toast('链接已复制');
    } catch (err) {
      field.focus();
      field.select();
      toast(document.execCommand('copy') ? '链接已复制' : '请长按链接复制');
    }
  };
  return h('div.share', {},
    h('span', {}, '分享链接（好友点开即可参与）'),
    h('a.share__url', { id: 'share-link', href: order.gift.url }, url),
    h('span.share__copy', {}, field, h('button.share__button', { type: 'button', id: 'copy-link', onclick: copy }, '复制')));
}
