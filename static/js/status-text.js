// The words the pages use for where an order, a prize's claim and a refund stand, and the
// small tag that shows one. One place, so every page says the same.
import { h } from './ui.js';

export const ORDER_STATUS_TEXT = {
  unpaid: '待支付', paid: '已支付', closed: '已关闭', refunding: '退款中', refunded: '已退款', partially_refunded: '部分退款',
};

export const CLAIM_STATUS_TEXT = {
  unclaimed: '待填写地址', claimed: '已填写地址', shipped: '已发货', delivered: '已送达', expired: '已过期', refunded: '已退款',
};

// The refund's own states (lottery/refunds.py) in the buyer's words: WeChat Pay closing a refund
// means it failed too.
export const REFUND_STATUS_TEXT = {
  pending: '退款中', sending: '退款中', processing: '退款中', success: '已退款', closed: '退款失败', failed: '退款失败',
  abnormal: '退款异常',
};

// Claims whose next step is the operator's (ship, confirm delivery): a page showing one asks again.
export const CLAIM_WAITING = new Set(['claimed', 'shipped']);
export const REFUND_UNDER_WAY = new Set(['pending', 'sending', 'processing']);

// A claim's status as it stands now: an unclaimed prize past its deadline is expired already
// (the server marks it on its next sweep). `now`: the server's clock, in ms.
export function claimStatus(claim, now) {
  return claim.status === 'unclaimed' && Date.parse(claim.deadline_at) <= now ? 'expired' : claim.status;
}

// `<span class="tag tag--claim-shipped">已发货</span>`, for `kind` claim or refund.
export function statusTag(kind, status, extra = {}) {
  const words = kind === 'claim' ? CLAIM_STATUS_TEXT : REFUND_STATUS_TEXT;
  return h(`span.tag.tag--${kind}-${status}`, { 'data-status': status, ...extra }, words[status] || status);
}

// "顺丰速运 运单号 SF123" for a shipped prize, '' before.
export function shippingText(claim) {
  if (!claim.carrier) return '';
  return `${claim.carrier} 运单号 ${claim.tracking_no}`;
}
