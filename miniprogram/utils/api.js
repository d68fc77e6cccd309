// @ts-check
// The server's API as the mini-program uses it. `wx` comes in as a parameter (the tests pass
// a stand-in that talks to the real server). One base URL; `wx.login` -> the seed's login
// route for a login key, kept in storage and renewed once when the server answers 401; the v1
// routes with their error codes turned into Chinese messages.

const LOGIN_KEY = 'login_key'; // the seed's storage key, so a key it stored keeps working
const NETWORK = '网络不给力，请稍后再试';

// What a member reads for each of the server's error codes. Codes whose server message
// carries the detail (which product is short, which field is wrong) use the server's words.
const MESSAGES = {
  login_expired: '登录已过期，请重新进入小程序',
  forbidden: '没有权限',
  gift_not_found: '礼物不存在',
  own_gift: '不能参与自己发起的礼物',
  already_joined: '你已经参与过了',
  full: '参与人数已满',
  closed: '参与时间已过',
  opened: '已经开奖',
  no_items_left: '礼物已经送完了',
  not_openable: '直接送礼不能提前开奖',
  not_opened: '还没有开奖',
  database_unavailable: '服务暂时不可用，请稍后再试',
  join_outcome_unknown: '网络繁忙，暂时无法确认是否参与成功，请稍后刷新查看',
  upstream_error: '微信服务暂时不可用，请稍后再试',
  product_not_found: '商品不存在或已下架',
  category_not_found: '分类不存在',
  order_not_found: '订单不存在',
  order_closed: '订单已关闭，请重新下单',
  order_in_progress: '订单正在处理中，请稍后再试',
  payments_not_configured: '支付暂未开通',
  payment_mismatch: '支付信息与订单不符',
  not_winner: '你没有抽中这个礼物',
  claim_locked: '礼物已发货，地址不能再修改',
  claim_expired: '领奖已过期',
  claim_not_found: '领奖记录不存在',
  wrong_claim_state: '领奖记录的状态不允许这个操作',
  body_too_large: '内容太长了',
  pass_phrase_required: '请输入口令',
  wrong_pass_phrase: '口令不正确',
  too_many_guesses: '口令错误次数过多，请稍后再试',
  group_data_required: '这个礼物仅限指定群的成员参与，请从群聊中打开',
  group_data_stale: '群信息已过期，请从群聊中重新打开',
  not_in_group: '这个礼物仅限指定群的成员参与',
  group_not_bound: '发起人还没有把礼物分享到群里',
  group_already_bound: '这个礼物已经绑定了另一个群',
  no_session_key: '请重新进入小程序后再试',
  content_risky: '内容含有违规信息，请修改后再试',
  risk_refused: '当前账号存在风险，暂时无法参与',
};
const SERVER_WORDS = new Set(['invalid_input', 'missing_params', 'out_of_stock']);

class ApiError extends Error {
  /** @param {number} status HTTP status, 0 when the network failed
   * @param {string} code the server's error code
   * @param {string} message for people, Chinese
   * @param {number} [retryAfter] seconds, when the server said to try again later */
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter || 0;
  }

  /** Worth trying again by itself later (no answer, or the server is briefly away). */
  get temporary() {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

/** @param {Record<string, any>} header
 * @param {string} name */
function headerOf(header, name) {
  const key = Object.keys(header || {}).find((k) => k.toLowerCase() === name.toLowerCase());
  return key ? String(header[key]) : '';
}

/** @param {{statusCode: number, data: any, header: Record<string, any>}} res */
function errorOf(res) {
  const body = res.data && typeof res.data === 'object' ? res.data : {};
  const error = body.error || {};
  const code = error.code || (res.statusCode >= 500 ? 'server_error' : 'http_error');
  let message = SERVER_WORDS.has(code) && error.message ? error.message : /** @type {Record<string, string>} */ (MESSAGES)[code];
  if (!message) message = res.statusCode >= 500 ? '服务器开小差了，请稍后再试' : (error.message || '请求失败');
  const retryAfter = parseInt(headerOf(res.header, 'Retry-After'), 10);
  return new ApiError(res.statusCode, code, message, Number.isNaN(retryAfter) ? 0 : retryAfter);
}

/** @param {Record<string, string | number | null | undefined>} query */
function queryString(query) {
  const parts = Object.keys(query).filter((k) => query[k] !== undefined && query[k] !== null && query[k] !== '')
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(String(query[k]))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/**
 * @typedef {'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'} Method
 * @typedef {{auth?: boolean, headers?: Record<string, string>, query?: Record<string, any>}} CallOptions
 */

/** @param {WechatMiniprogram.Wx} wx
 * @param {{baseUrl: string}} config */
function createApi(wx, config) {
  const base = config.baseUrl.replace(/\/+$/, '');

  /** One wx.request as a promise; network failures become ApiError status 0.
   * @param {Method} method
   * @param {string} path
   * @param {any} body
   * @param {Record<string, string>} header
   * @returns {Promise<{statusCode: number, data: any, header: Record<string, any>}>} */
  function send(method, path, body, header) {
    return new Promise((resolve, reject) => {
      wx.request({
        url: base + path,
        method: /** @type {any} */ (method),
        data: body,
        header,
        dataType: 'json',
        success: (res) => resolve({ statusCode: res.statusCode, data: res.data, header: res.header || {} }),
        fail: () => reject(new ApiError(0, 'network', NETWORK)),
      });
    });
  }

  /** @type {Promise<string> | null} */
  let loggingIn = null;

  /** wx.login, then the login route: a fresh login key, stored. Concurrent callers share one. */
  function login() {
    if (!loggingIn) {
      loggingIn = new Promise((resolve, reject) => {
        wx.login({ success: (res) => resolve(res.code), fail: () => reject(new ApiError(0, 'network', '微信登录失败，请稍后再试')) });
      }).then(async (code) => {
        const res = await send('POST', '/api/member/code/login', { code }, { 'content-type': 'application/json' });
        const body = res.data || {};
        if (res.statusCode !== 200 || body.code !== 'success') {
          if (res.statusCode >= 500) throw errorOf(res);
          throw new ApiError(res.statusCode, 'login_failed', body.message || '登录失败，请稍后再试');
        }
        wx.setStorageSync(LOGIN_KEY, body.data.login_key);
        return /** @type {string} */ (body.data.login_key);
      }).finally(() => { loggingIn = null; });
    }
    return /** @type {Promise<string>} */ (loggingIn);
  }

  /** The stored login key, or a new one. */
  async function loginKey() {
    return wx.getStorageSync(LOGIN_KEY) || login();
  }

  /** Forget the stored key and sign in again (after the server refused it). */
  function renewLogin() {
    wx.removeStorageSync(LOGIN_KEY);
    return login();
  }

  /** A v1 call: the parsed answer, or throws ApiError with a Chinese message. A 401 renews the
   * login key once and tries again.
   * @param {Method} method
   * @param {string} path
   * @param {any} [body]
   * @param {CallOptions} [options]
   * @returns {Promise<any>} */
  async function request(method, path, body, options = {}) {
    const { auth = true, headers = {}, query = {} } = options;
    for (let attempt = 0; ; attempt += 1) {
      /** @type {Record<string, string>} */
      const header = { ...headers };
      if (body !== undefined) header['content-type'] = 'application/json';
      if (auth) header.Authorization = `Bearer ${await loginKey()}`;
      const res = await send(method, path + queryString(query), body, header);
      if (res.statusCode === 401 && auth && attempt === 0) {
        wx.removeStorageSync(LOGIN_KEY);
        continue;
      }
      if (res.statusCode >= 200 && res.statusCode < 300) return res.data;
      throw errorOf(res);
    }
  }

  /** An image the server names: its own `/static/...` paths are made absolute (in a
   * mini-program a bare path means a file of the package). @param {string} url */
  function asset(url) {
    return url && url.charAt(0) === '/' ? base + url : url || '';
  }

  /** @param {string} path @param {CallOptions} [options] */
  const get = (path, options) => request('GET', path, undefined, options);
  /** @param {string} path @param {any} [body] @param {CallOptions} [options] */
  const post = (path, body, options) => request('POST', path, body === undefined ? {} : body, options);

  return { base, asset, login, loginKey, renewLogin, request, get, post };
}

module.exports = { createApi, ApiError, MESSAGES, LOGIN_KEY };
