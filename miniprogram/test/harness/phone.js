// A phone without a phone: a `wx` stand-in whose request goes over HTTP to the real server,
// whose connectSocket wraps the `ws` package against the real /ws, whose requestPayment has
// the server's WeChat Pay stand-in pay (and send its signed notify), and whose login gives the
// code the WeChat API stand-in turns into openid `o_<code>`. Pages are rendered with
// miniprogram-simulate and driven through their lifecycle as WeChat would.
const http = require('http');
const path = require('path');
const WebSocket = require('ws');
const simulate = require('miniprogram-simulate');
const { createServices } = require('../../utils/services');

const MP = path.resolve(__dirname, '../..');
const stack = JSON.parse(process.env.MP_STACK || '{}');

const TEMPLATES = { join: ['tpl_won', 'tpl_lost'], received: ['tpl_received'], sender: ['tpl_opened', 'tpl_refund'], claim: ['tpl_shipped'] };
const ADDRESS = {
  userName: '张三', telNumber: '13800138000', provinceName: '广东省', cityName: '广州市', countyName: '海珠区',
  detailInfo: '新港中路397号', postalCode: '510000', nationalCode: '440105', errMsg: 'chooseAddress:ok',
};

/** One HTTP call; resolves {status, headers, body (parsed JSON when it is)}. */
function httpCall(method, url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(url, {
      method,
      headers: { ...headers, ...(payload ? { 'content-type': headers['content-type'] || 'application/json', 'content-length': payload.length } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text;
        try { parsed = JSON.parse(text); } catch (err) { /* not JSON: keep the text, as wx.request does */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** The operator's admin API (bearer ADMIN_TOKEN). */
async function admin(method, apiPath, body) {
  const res = await httpCall(method, stack.server + apiPath, body, { Authorization: `Bearer ${stack.admin_token}` });
  if (res.status >= 300) throw new Error(`${method} ${apiPath}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function until(check, { timeout = 20000, every = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function parseQuery(qs) {
  const query = {};
  for (const part of (qs || '').split('&').filter(Boolean)) {
    const [k, v = ''] = part.split('=');
    query[decodeURIComponent(k)] = decodeURIComponent(v);
  }
  return query;
}

let serial = 0;
const loaded = new Map(); // page file -> its simulate id

class Phone {
  /** @param {string} name unique per run: the wx.login code, so the openid is `o_<name>`
   * @param {{socket?: {minDelay?: number, maxDelay?: number, pingEvery?: number}}} [options] */
  constructor(name, { socket } = {}) {
    serial += 1;
    Phone.all.push(this);
    this.name = `${name}_${process.pid}_${serial}`;
    this.storage = new Map();
    this.requests = []; // {method, path, body, status}
    this.navigations = []; // {kind, url}
    this.toasts = [];
    this.prompts = []; // subscribe prompts shown: {tmplIds}
    this.refusedPrompts = []; // prompts asked outside a tap: WeChat refuses them
    this.payments = []; // {orderId, outcome}
    this.payAnswer = 'pay'; // or 'cancel'
    this.subscribeAnswer = 'accept'; // or 'reject'
    this.address = ADDRESS;
    this.gesture = false;
    // Where the mini-program was opened from: undefined outside any chat (getGroupEnterInfo
    // fails), null a one-to-one chat, else the group's opengid.
    this.chat = undefined;
    this.sockets = new Set();
    this.socketsOpened = 0;
    this.maxSockets = 0;
    this.prepays = new Map(); // the `package` of a payment -> its order id, as WeChat Pay knows it
    this.pages = [];
    this.wx = this.makeWx();
    // The stand-in has the calls the mini-program makes, not all 500 of the wx API.
    const services = createServices(/** @type {WechatMiniprogram.Wx} */ (/** @type {unknown} */ (this.wx)), { baseUrl: stack.server, templates: TEMPLATES, socket: socket || {} });
    // As app.js: the socket closes in the background and reopens in the foreground.
    this.app = {
      services,
      onShow: () => services.socket.resume(),
      onHide: () => services.socket.suspend(),
    };
  }

  get loginKey() {
    return this.storage.get('login_key') || '';
  }

  later(fn) {
    setTimeout(fn, 5);
  }

  makeWx() {
    const phone = this;
    const ok = (name, extra = {}) => ({ errMsg: `${name}:ok`, ...extra });
    const done = (options, name, result) => phone.later(() => {
      if (options.success) options.success(result || ok(name));
      if (options.complete) options.complete(result || ok(name));
    });
    const failed = (options, errMsg) => phone.later(() => {
      if (options.fail) options.fail({ errMsg });
      if (options.complete) options.complete({ errMsg });
    });
    const navigate = (kind) => (options) => {
      phone.navigations.push({ kind, url: options.url });
      done(options, kind);
    };
    return {
      request(options) {
        const method = (options.method || 'GET').toUpperCase();
        const url = new URL(options.url);
        const entry = { method, path: url.pathname + url.search, body: options.data, status: 0 };
        phone.requests.push(entry);
        const body = method === 'GET' ? undefined : options.data;
        httpCall(method, url, body, options.header || {}).then((res) => {
          entry.status = res.status;
          phone.notePrepay(method, url.pathname, res);
          const result = { statusCode: res.status, data: res.body, header: res.headers, errMsg: 'request:ok' };
          if (options.success) options.success(result);
          if (options.complete) options.complete(result);
        }, (err) => failed(options, `request:fail ${err.message}`));
        return { abort() {} };
      },
      login(options) { done(options, 'login', ok('login', { code: phone.name })); },
      getStorageSync(key) { return phone.storage.has(key) ? phone.storage.get(key) : ''; },
      setStorageSync(key, value) { phone.storage.set(key, value); },
      removeStorageSync(key) { phone.storage.delete(key); },
      connectSocket(options) { return phone.connectSocket(options); },
      requestPayment(options) { phone.requestPayment(options); },
      requestSubscribeMessage(options) {
        if (!phone.gesture) {
          // WeChat's own refusal outside a tap (or a payment's success callback).
          phone.refusedPrompts.push(options.tmplIds);
          failed(options, 'requestSubscribeMessage:fail can only be invoked by user TAP gesture.');
          return;
        }
        phone.prompts.push({ tmplIds: options.tmplIds });
        const answer = {};
        options.tmplIds.forEach((id) => { answer[id] = phone.subscribeAnswer; });
        done(options, 'requestSubscribeMessage', ok('requestSubscribeMessage', answer));
      },
      getGroupEnterInfo(options) {
        if (phone.chat === undefined) {
          failed(options, 'getGroupEnterInfo:fail not in a chat');
          return;
        }
        const query = `code=${encodeURIComponent(phone.name)}${phone.chat ? `&opengid=${encodeURIComponent(phone.chat)}` : ''}`;
        httpCall('POST', `${stack.control}/group-enter-info?${query}`).then(
          (res) => done(options, 'getGroupEnterInfo', ok('getGroupEnterInfo', res.body)),
          (err) => failed(options, `getGroupEnterInfo:fail ${err.message}`));
      },
      chooseAddress(options) {
        if (!phone.address) failed(options, 'chooseAddress:fail cancel');
        else done(options, 'chooseAddress', { ...phone.address });
      },
      showToast(options) { phone.toasts.push(options.title); done(options, 'showToast'); },
      showLoading(options) { done(options, 'showLoading'); },
      hideLoading(options = {}) { done(options, 'hideLoading'); },
      showModal(options) { done(options, 'showModal', ok('showModal', { confirm: true, cancel: false })); },
      stopPullDownRefresh(options = {}) { done(options, 'stopPullDownRefresh'); },
      navigateTo: navigate('navigateTo'),
      redirectTo: navigate('redirectTo'),
      reLaunch: navigate('reLaunch'),
      navigateBack: navigate('navigateBack'),
    };
  }

  /** WeChat Pay knows which order a prepay belongs to; the stand-in learns it from the answers. */
  notePrepay(method, pathname, res) {
    if (method !== 'POST' || res.status >= 300 || !res.body || !res.body.pay) return;
    const match = pathname.match(/^\/api\/v1\/orders(?:\/([^/]+)\/pay)?$/);
    if (match) this.prepays.set(res.body.pay.package, match[1] || res.body.order_id);
  }

  requestPayment(options) {
    const orderId = this.prepays.get(options.package);
    const finish = (outcome, errMsg) => {
      this.payments.push({ orderId, outcome });
      const result = { errMsg };
      if (outcome === 'paid') {
        // WeChat allows a subscribe prompt inside a payment's success callback.
        this.gesture = true;
        try {
          if (options.success) options.success(result);
        } finally {
          this.gesture = false;
        }
      } else if (options.fail) options.fail(result);
      if (options.complete) options.complete(result);
    };
    if (!orderId || !options.paySign || !options.timeStamp || !options.nonceStr) {
      this.later(() => finish('failed', 'requestPayment:fail parameter error'));
      return;
    }
    if (this.payAnswer === 'cancel') {
      this.later(() => finish('cancelled', 'requestPayment:fail cancel'));
      return;
    }
    // The member pays: the server's WeChat Pay stand-in records it and sends its signed notify.
    httpCall('POST', `${stack.server}/api/dev/pay/${encodeURIComponent(orderId)}`, {}, { Authorization: `Bearer ${this.loginKey}` })
      .then((res) => finish(res.status === 200 ? 'paid' : 'failed', res.status === 200 ? 'requestPayment:ok' : 'requestPayment:fail'),
        () => finish('failed', 'requestPayment:fail'));
  }

  connectSocket(options) {
    const phone = this;
    const handlers = { open: [], message: [], close: [], error: [] };
    const ws = new WebSocket(options.url);
    phone.sockets.add(ws);
    phone.socketsOpened += 1;
    phone.maxSockets = Math.max(phone.maxSockets, phone.sockets.size);
    let closed = false;
    ws.on('open', () => handlers.open.forEach((fn) => fn({ header: {} })));
    ws.on('message', (data) => handlers.message.forEach((fn) => fn({ data: data.toString() })));
    ws.on('error', (err) => handlers.error.forEach((fn) => fn({ errMsg: err.message })));
    ws.on('close', (code, reason) => {
      phone.sockets.delete(ws);
      if (closed) return;
      closed = true;
      handlers.close.forEach((fn) => fn({ code, reason: reason.toString() }));
    });
    return {
      send({ data }) { if (ws.readyState === WebSocket.OPEN) ws.send(data); },
      close({ code = 1000, reason = '' } = {}) {
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close(code, reason);
      },
      onOpen(fn) { handlers.open.push(fn); },
      onMessage(fn) { handlers.message.push(fn); },
      onClose(fn) { handlers.close.push(fn); },
      onError(fn) { handlers.error.push(fn); },
    };
  }

  /** The network goes: every socket is cut without a close frame (1006 on this side). */
  dropSockets() {
    for (const ws of this.sockets) ws.terminate();
  }

  /** Render a page (an app path with its query) and run its onLoad and onShow, as WeChat does. */
  open(url) {
    const [pagePath, qs] = url.split('?');
    /** @type {any} */ (global).getApp = () => this.app;
    // Loaded once per path (jest keeps the page's module, so a second load would not run its
    // Component() again); every open renders a new instance of it.
    const file = path.join(MP, pagePath.replace(/^\//, ''));
    if (!loaded.has(file)) loaded.set(file, simulate.load(file, { compiler: 'simulate', rootPath: MP }));
    const id = loaded.get(file);
    const comp = simulate.render(id);
    comp.attach(document.createElement('page-root'));
    const page = new Page(this, comp, pagePath);
    this.pages.push(page);
    if (comp.instance.onLoad) comp.instance.onLoad(parseQuery(qs));
    if (comp.instance.onShow) comp.instance.onShow();
    return page;
  }

  /** Where the last navigation of `kind` (any, if omitted) went. */
  lastNavigation(kind) {
    const list = this.navigations.filter((n) => !kind || n.kind === kind);
    return list.length ? list[list.length - 1].url : '';
  }

  /** Wait for a navigation to a page starting with `prefix`; returns its url. */
  waitNavigation(prefix, timeout = 20000) {
    return until(() => { const hit = this.navigations.find((n) => n.url.startsWith(prefix)); return hit && hit.url; },
      { timeout, what: `navigation to ${prefix}` });
  }

  navigationsTo(prefix) {
    return this.navigations.filter((n) => n.url.startsWith(prefix));
  }

  /** The mini-program goes to the background (its pages' onHide, then the app's). */
  hide() {
    for (const page of this.pages) if (page.comp.instance.onHide) page.comp.instance.onHide();
    this.app.onHide();
  }

  /** Back to the foreground (the app's onShow, then its pages'). */
  show() {
    this.app.onShow();
    for (const page of this.pages) if (page.comp.instance.onShow) page.comp.instance.onShow();
  }

  /** Close every page (onUnload / detached), and with them their follows. */
  closeAll() {
    for (const page of this.pages) page.close();
    this.pages = [];
  }
}

Phone.all = [];

class Page {
  constructor(phone, comp, pagePath) {
    this.phone = phone;
    this.comp = comp;
    this.path = pagePath;
    this.closed = false;
  }

  get data() {
    return this.comp.instance.data;
  }

  get instance() {
    return this.comp.instance;
  }

  find(selector) {
    return this.comp.querySelector(selector);
  }

  text(selector) {
    const node = selector ? this.comp.querySelector(selector) : this.comp;
    return node ? node.dom.textContent.replace(/\s+/g, ' ').trim() : '';
  }

  /** A member's tap: WeChat treats everything the handler does synchronously as inside the tap. */
  tap(selector, detail) {
    const node = this.comp.querySelector(selector);
    if (!node) throw new Error(`${this.path}: nothing matches ${selector}\n${this.text()}`);
    // j-component dispatches in a microtask: the tap's window closes in the one queued after it,
    // so only what the handler does synchronously counts as inside the tap.
    this.phone.gesture = true;
    node.dispatchEvent('tap', { detail: detail || {} });
    return Promise.resolve().then(() => { this.phone.gesture = false; });
  }

  /** Wait until the page's text contains `words`. */
  waitText(words, timeout = 20000) {
    return until(() => this.text().includes(words), { timeout, what: `"${words}" on ${this.path} (has: ${this.text().slice(0, 200)})` });
  }

  /** Wait until the page has loaded (no spinner, no error) or shows an error. */
  waitLoaded(timeout = 20000) {
    return until(() => !this.data.loading, { timeout, what: `${this.path} to load` });
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    if (this.comp.instance.onUnload) this.comp.instance.onUnload();
    this.comp.detach();
  }
}

module.exports = { Phone, admin, httpCall, until, sleep, stack, TEMPLATES, ADDRESS, MP };
