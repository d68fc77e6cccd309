// The sender's view of where a gift's items went (/gift/{id}/mine, once items are given or
// drawn): per item who won it (masked, as the API gives it) and its claim's status, never an
// address; then the order's refunds in ¥ and where its refunding stands. It asks again every
// few seconds while something is under way (a refund, a prize waiting on the operator), and
// whenever the page says the gift changed (`load()`).
import { api } from './api.js';
import { Refresher } from './refresh.js';
import { CLAIM_WAITING, ORDER_STATUS_TEXT, REFUND_UNDER_WAY, statusTag } from './status-text.js';
import { formatPrice, h } from './ui.js';

const REFRESH_MS = 4000;

export class GiftClaims {
  // `giftOf()`: the gift as the page has it now (its items, status, method).
  constructor(orderId, giftOf) {
    this.orderId = orderId;
    this.giftOf = giftOf;
    this.answer = null;
    this.error = '';
    this.node = h('section.panel', { id: 'claims' });
    this.refresher = new Refresher(() => this.load(), REFRESH_MS);
    this.render();
    this.load();
  }

  async load() {
    try {
      this.answer = await api('GET', `/api/v1/gifts/${this.orderId}/claims`);
      this.error = '';
    } catch (err) {
      this.error = err.message;
    }
    const { claims = [], refunds = [], order = null } = this.answer || {};
    this.refresher.keep(claims.some((c) => CLAIM_WAITING.has(c.status))
      || refunds.some((r) => REFUND_UNDER_WAY.has(r.status)) || (order && order.amount_to_refund > 0));
    this.render();
  }

  render() {
    const title = h('h2.panel__title', {}, '礼物去向');
    if (!this.answer) {
      this.node.replaceChildren(title, h('p.panel__empty', {}, this.error || '正在加载…'));
      return;
    }
    const { claims, refunds, order } = this.answer;
    const refundsShown = order && (refunds.length || order.amount_to_refund || order.amount_refunded);
    this.node.replaceChildren(...[title,
      this.error ? h('p.panel__empty', {}, this.error) : null,
      h('ul.people', { id: 'items' }, this.giftOf().items.map((item, index) => itemRow(
        this.giftOf(), item, index, claims.find((c) => c.item_index === index),
        refunds.find((r) => r.items.includes(index))))),
      refundsShown ? refundPart(order, refunds) : null].filter(Boolean));
  }
}

// One item: who won it and where its claim stands; or, nobody's, its refund.
function itemRow(gift, item, index, claim, refund) {
  let who;
  let tags;
  if (claim) {
    who = h('span.person__name', {}, claim.winner);
    tags = [statusTag('claim', claim.status)];
    if (claim.carrier) tags.push(h('span.item__carrier', {}, claim.carrier));
  } else {
    const open = gift.method === 'direct' && gift.status !== 'finished';
    who = h('span.person__name.item__nobody', {}, refund ? '无人领取' : open ? '等待领取' : '未送出');
    tags = [];
  }
  if (refund) tags.push(statusTag('refund', refund.status));
  return h('li.person.item', { 'data-item': index },
    h('span.item__name', {}, item.name), who, h('span.item__tags', {}, tags));
}

// The order's refunds: each one's amount, reason and state, and the order's totals.
function refundPart(order, refunds) {
  const amounts = [];
  if (order.amount_refunded) amounts.push(`已退 ${formatPrice(order.amount_refunded)}`);
  if (order.amount_refunding) amounts.push(`退款中 ${formatPrice(order.amount_refunding)}`);
  if (order.amount_to_refund) amounts.push(`待退 ${formatPrice(order.amount_to_refund)}`);
  return h('div.refunds', {},
    h('h3.refunds__title', {}, '退款',
      h('small', { id: 'refund-status', 'data-status': order.status },
        `${ORDER_STATUS_TEXT[order.status] || order.status} · 实付 ${formatPrice(order.amount_total)}`)),
    h('p.panel__text', { id: 'refund-amounts' }, amounts.join('，')),
    h('ul.refunds__list', {}, refunds.map((r) => h('li.refund', { 'data-refund': r.refund_no },
      h('span.refund__amount', {}, formatPrice(r.amount)),
      h('span.refund__reason', {}, `${r.items.length} 份 · ${r.reason}`),
      statusTag('refund', r.status)))));
}
