// The winner's claim, under the result card: the address form (the fields of wx.chooseAddress,
// checked here as lottery/claims.py checks them; a refusal from the server is shown as it words
// it), the deadline in Beijing time, then where the claim stands, with 修改地址 until it ships.
// While the operator has the next step (ship, deliver) it asks again every few seconds, so
// 已发货 appears by itself.
import { api, ApiError, serverNow } from './api.js';
import { Refresher } from './refresh.js';
import { CLAIM_WAITING, claimStatus, shippingText, statusTag } from './status-text.js';
import { formatTime, h, toast } from './ui.js';

const REFRESH_MS = 4000;
const FIELDS = [
  { name: 'userName', label: '收货人', max: 20, autocomplete: 'name', placeholder: '姓名' },
  { name: 'telNumber', label: '手机号', max: 20, autocomplete: 'tel', type: 'tel', inputmode: 'tel', placeholder: '11 位手机号' },
  { name: 'provinceName', label: '省', max: 20, autocomplete: 'address-level1', placeholder: '省份' },
  { name: 'cityName', label: '市', max: 20, autocomplete: 'address-level2', placeholder: '城市' },
  { name: 'countyName', label: '区', max: 20, autocomplete: 'address-level3', placeholder: '区县' },
  { name: 'detailInfo', label: '详细地址', max: 120, autocomplete: 'street-address', placeholder: '街道、门牌号' },
  { name: 'postalCode', label: '邮编', max: 6, autocomplete: 'postal-code', inputmode: 'numeric', placeholder: '选填', optional: true },
];
// The server's rules (lottery/claims.py clean_address).
const PHONE = /^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?)$/;
const POSTAL_CODE = /^\d{6}$/;
const CONTROL = /\p{C}/u;

// The address as it is sent (each value trimmed, as the server keeps it).
function cleaned(draft) {
  return Object.fromEntries(FIELDS.map((f) => [f.name, String(draft[f.name] || '').trim()]));
}

// The address's first problem, '' when it may be sent.
export function addressProblem(address) {
  for (const f of FIELDS) {
    const value = address[f.name];
    if (!value) {
      if (f.optional) continue;
      return `请填写${f.label}`;
    }
    if (CONTROL.test(value)) return `${f.label}含有非法字符`;
    if ([...value].length > f.max) return `${f.label}最多 ${f.max} 个字`;
  }
  if (!PHONE.test(address.telNumber)) return '手机号码格式不正确';
  if (address.postalCode && !POSTAL_CODE.test(address.postalCode)) return '邮政编码必须是 6 位数字';
  return '';
}

export class ClaimPanel {
  constructor(orderId) {
    this.orderId = orderId;
    this.claim = null;
    this.loadError = '';
    this.error = ''; // the last refusal, the page's or the server's
    this.editing = false; // changing a given address
    this.busy = false;
    this.draft = {};
    this.node = h('section.panel.claim', { id: 'claim' }, h('p.panel__empty', {}, '正在加载领奖信息…'));
    this.refresher = new Refresher(() => this.load(), REFRESH_MS);
    this.load();
  }

  async load() {
    try {
      this.claim = await api('GET', `/api/v1/gifts/${this.orderId}/claim`);
      this.loadError = '';
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        location.reload();
        return;
      }
      this.loadError = err.message;
    }
    const status = this.status();
    this.refresher.keep(CLAIM_WAITING.has(status));
    // What the winner is typing stays, unless the address can no longer change.
    if (this.editing && (status === 'claimed' || status === 'unclaimed')) return;
    this.editing = false;
    this.render();
  }

  status() {
    return this.claim ? claimStatus(this.claim, serverNow()) : null;
  }

  render() {
    const claim = this.claim;
    const status = this.status();
    let body;
    if (!claim) {
      body = [h('p.panel__empty', {}, this.loadError || '正在加载领奖信息…'),
        this.loadError ? h('button.btn.btn--primary', { type: 'button', onclick: () => this.load() }, '重试') : null];
    } else if (status === 'unclaimed' || this.editing) {
      body = this.form();
    } else {
      body = this.where(status);
    }
    this.node.replaceChildren(
      h('h2.panel__title', {}, '领取奖品', claim ? h('small', {}, statusTag('claim', status, { id: 'claim-status' })) : null),
      ...[body].flat().filter(Boolean));
  }

  // Where the claim stands: the address it goes to, how it was shipped.
  where(status) {
    const { claim } = this;
    const parts = [];
    if (status === 'expired') {
      parts.push(h('p.panel__text', { id: 'claim-note' }, `领奖已过期：需在北京时间 ${formatTime(claim.deadline_at)} 前填写收货地址。`));
    } else if (status === 'claimed') {
      parts.push(h('p.panel__text', { id: 'claim-note' }, '地址已提交，等待发货。发货前可以修改地址。'));
    } else {
      parts.push(h('p.panel__text', { id: 'claim-note' },
        status === 'delivered' ? '礼物已送达，祝你开心！' : '礼物已发出，请留意查收。'));
      parts.push(h('p.shipping', { id: 'shipping' }, shippingText(claim)));
    }
    if (claim.address) parts.push(addressCard(claim.address));
    if (this.error) parts.push(h('div.form-error', { id: 'claim-error', role: 'alert' }, this.error));
    if (status === 'claimed') {
      parts.push(h('button.btn.btn--primary', { type: 'button', id: 'claim-edit', onclick: () => this.edit() }, '修改地址'));
    }
    return parts;
  }

  edit() {
    this.draft = { ...(this.claim.address || {}) };
    this.editing = true;
    this.error = '';
    this.render();
    this.node.querySelector('input').focus();
  }

  form() {
    const input = (f) => h('input.field', {
      id: `claim-${f.name}`, name: f.name, type: f.type || 'text', inputmode: f.inputmode, maxlength: f.max,
      autocomplete: f.autocomplete, placeholder: f.placeholder, required: !f.optional, value: this.draft[f.name] || '',
      oninput: (e) => { this.draft[f.name] = e.target.value; },
    });
    const field = Object.fromEntries(FIELDS.map((f) => [f.name,
      h('label.address__field', { for: `claim-${f.name}` }, h('span', {}, f.label), input(f))]));
    const submit = h('button.btn.btn--primary', { type: 'submit', id: 'claim-submit', disabled: this.busy },
      this.busy ? '正在提交…' : '提交地址');
    return h('form.address', { id: 'claim-form', novalidate: true, onsubmit: (e) => this.submit(e) },
      h('p.panel__text', { id: 'claim-deadline' }, `请在北京时间 ${formatTime(this.claim.deadline_at)} 前填写收货地址，逾期视为放弃。`),
      field.userName, field.telNumber,
      h('div.address__region', {}, field.provinceName, field.cityName, field.countyName),
      field.detailInfo, field.postalCode,
      this.error ? h('div.form-error', { id: 'claim-error', role: 'alert' }, this.error) : null,
      h('div.address__actions', {},
        this.editing ? h('button.btn', { type: 'button', onclick: () => this.cancel() }, '取消') : null,
        submit));
  }

  cancel() {
    this.editing = false;
    this.error = '';
    this.render();
  }

  async submit(event) {
    event.preventDefault();
    if (this.busy) return;
    const address = cleaned(this.draft);
    this.error = addressProblem(address);
    if (this.error) {
      this.render();
      return;
    }
    this.busy = true;
    this.render();
    let refusal = null;
    try {
      this.claim = await api('POST', `/api/v1/gifts/${this.orderId}/claim`, address);
      this.editing = false;
      toast('地址已提交');
    } catch (err) {
      refusal = err;
      this.error = err.message;
    }
    this.busy = false;
    if (refusal instanceof ApiError && refusal.status === 401) {
      location.reload();
    } else if (refusal instanceof ApiError && (refusal.status === 409 || refusal.status === 410)) {
      // Shipped or expired meanwhile: where the claim stands now, under the server's words.
      this.editing = false;
      await this.load();
    } else {
      this.refresher.keep(CLAIM_WAITING.has(this.status()));
      this.render();
    }
  }
}

// The address the prize goes to: shown to its winner only.
function addressCard(address) {
  return h('div.address-card', { id: 'claim-address' },
    h('div', {}, h('strong', {}, address.userName), ' ', address.telNumber),
    h('div', {}, `${address.provinceName} ${address.cityName} ${address.countyName} ${address.detailInfo}`),
    address.postalCode ? h('div', {}, `邮编 ${address.postalCode}`) : null);
}
