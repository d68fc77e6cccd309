// @ts-check
// The words and numbers pages show: prices in ¥ from fen, Beijing time, statuses. One place,
// so every page says the same (the browser pages' static/js/status-text.js in WXML terms).

const METHOD_TEXT = { direct: '直接送礼', full: '满人开奖', timed: '定时开奖' };
const ORDER_STATUS_TEXT = {
  unpaid: '待支付', paid: '已支付', closed: '已关闭', refunding: '退款中', refunded: '已退款', partially_refunded: '部分退款',
};
const CLAIM_STATUS_TEXT = {
  unclaimed: '待填写地址', claimed: '已填写地址', shipped: '已发货', delivered: '已送达', expired: '已过期', refunded: '已退款',
};
const CONNECTION_TEXT = {
  idle: '', connecting: '正在连接…', open: '', reconnecting: '网络不稳定，正在重新连接…', suspended: '', closed: '连接已断开，请重新进入',
};

/** "¥12.50" from fen. @param {number} fen */
function price(fen) {
  const n = Math.round(Number(fen) || 0);
  return `¥${Math.floor(n / 100)}.${String(n % 100).padStart(2, '0')}`;
}

const SHANGHAI_MS = 8 * 3600 * 1000; // China has one zone and no daylight saving

/** Parts of an instant in Beijing time. @param {string | number} at */
function beijing(at) {
  const d = new Date((typeof at === 'number' ? at : Date.parse(at)) + SHANGHAI_MS);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return {
    year: d.getUTCFullYear(), month: pad(d.getUTCMonth() + 1), day: pad(d.getUTCDate()),
    hour: pad(d.getUTCHours()), minute: pad(d.getUTCMinutes()),
  };
}

/** "11月28日 16:05" (Beijing time), '' for none. @param {string | null | undefined} iso */
function time(iso) {
  if (!iso || Number.isNaN(Date.parse(iso))) return '';
  const t = beijing(iso);
  return `${t.month}月${t.day}日 ${t.hour}:${t.minute}`;
}

/** A Beijing date "2026-11-28" and time "16:05" -> ISO instant with +08:00.
 * @param {string} date
 * @param {string} clock */
function beijingIso(date, clock) {
  return `${date}T${clock}:00+08:00`;
}

/** "1小时02分05秒" until `iso` from `now` (ms), '' once passed.
 * @param {string} iso
 * @param {number} now */
function countdown(iso, now) {
  const left = Math.floor((Date.parse(iso) - now) / 1000);
  if (!(left > 0)) return '';
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return h ? `${h}小时${pad(m)}分${pad(s)}秒` : `${m}分${pad(s)}秒`;
}

/** "满3人开奖" / "11月28日 16:05开奖" / "直接送礼", as the seed's join card says it.
 * @param {{method: string, open_number?: number | null, open_at?: string | null}} gift */
function openingText(gift) {
  if (gift.method === 'full') return `满${gift.open_number}人开奖`;
  if (gift.method === 'timed') return `${time(gift.open_at)}开奖`;
  return '直接送礼';
}

/** "顺丰速运 运单号 SF123" once shipped, '' before.
 * @param {{carrier?: string | null, tracking_no?: string | null}} claim */
function shipping(claim) {
  return claim.carrier ? `${claim.carrier} 运单号 ${claim.tracking_no}` : '';
}

/** An item as pages name it: with its prize tier (一等奖：口红) on a tiered gift.
 * @param {{name: string, tier?: {rank: number, name: string}} | null | undefined} item */
function prizeName(item) {
  if (!item) return '';
  return item.tier ? `${item.tier.name}：${item.name}` : item.name;
}

/** A tiered gift's prizes, first tier first, equal neighbours counted: [{tier, name, count}];
 * [] for a gift without tiers.
 * @param {{name: string, tier?: {rank: number, name: string}}[]} items */
function tierRows(items) {
  /** @type {{tier: string, name: string, count: number}[]} */
  const rows = [];
  for (const item of items || []) {
    if (!item.tier) return [];
    const last = rows[rows.length - 1];
    if (last && last.tier === item.tier.name && last.name === item.name) last.count += 1;
    else rows.push({ tier: item.tier.name, name: item.name, count: 1 });
  }
  return rows;
}

/** @param {Record<string, string>} table @param {string} key */
const lookup = (table, key) => table[key] || key;

module.exports = {
  METHOD_TEXT, ORDER_STATUS_TEXT, CLAIM_STATUS_TEXT, CONNECTION_TEXT,
  price, time, beijing, beijingIso, countdown, openingText, shipping, lookup, prizeName, tierRows,
};
