// @ts-check
// One shared wx.connectSocket for every page (a mini-program may hold at most 5 sockets).
// Pages follow gifts with the version they show; the hub keeps the newest version of each and
// resubscribes with it after any reconnect, so the server sends exactly what was missed and
// nothing older is passed on (docs/realtime.md). Closed when the mini-program goes to the
// background (WeChat would cut it with "interrupted" anyway) and reopened when it comes back.

const CLOSE_NORMAL = 1000;
const CLOSE_BAD_KEY = 4401; // renew the login key, then reconnect (once in a row)
const CLOSE_SILENT = 4000; // ours: the connection stayed silent past the heartbeat

/**
 * @typedef {{type: string, order_id?: string, version?: number, code?: string, message?: string,
 *   gift?: any, me?: any, joined_count?: number, open_number?: number, status?: string}} Frame
 * @typedef {(frame: Frame) => void} Listener
 * @typedef {'idle' | 'connecting' | 'open' | 'reconnecting' | 'suspended' | 'closed'} State
 */

/**
 * @param {WechatMiniprogram.Wx} wx
 * @param {{url: string, loginKey: () => Promise<string>, renewLogin: () => Promise<string>,
 *   minDelay?: number, maxDelay?: number, pingEvery?: number, random?: () => number}} options
 */
function createSocket(wx, options) {
  const { url, minDelay = 500, maxDelay = 30000, pingEvery = 20000, random = Math.random } = options;
  /** @type {Map<string, {version: number, listeners: Set<Listener>}>} */
  const gifts = new Map();
  /** @type {Set<(state: State) => void>} */
  const stateListeners = new Set();
  /** @type {WechatMiniprogram.SocketTask | null} */
  let task = null;
  let open = false;
  /** @type {State} */
  let state = 'idle';
  let attempt = 0;
  let suspended = false;
  let renewedKey = false;
  let lastHeard = 0;
  /** @type {any} */
  let retryTimer = null;
  /** @type {any} */
  let pingTimer = null;

  /** @param {State} next */
  function setState(next) {
    if (state === next) return;
    state = next;
    stateListeners.forEach((fn) => fn(next));
  }

  /** @param {object} frame */
  function send(frame) {
    if (task && open) task.send({ data: JSON.stringify(frame) });
  }

  /** @param {string} orderId */
  function subscription(orderId) {
    const entry = gifts.get(orderId);
    return entry && entry.version ? { type: 'subscribe', order_id: orderId, version: entry.version }
      : { type: 'subscribe', order_id: orderId };
  }

  function stopTimers() {
    clearTimeout(retryTimer);
    clearInterval(pingTimer);
    retryTimer = null;
    pingTimer = null;
  }

  /** @param {number} code */
  function closeTask(code) {
    const old = task;
    task = null;
    open = false;
    clearInterval(pingTimer);
    if (old) old.close({ code, fail: () => {} });
  }

  async function connect() {
    if (suspended || !gifts.size || task) return;
    setState(attempt === 0 ? 'connecting' : 'reconnecting');
    let key;
    try {
      key = await options.loginKey();
    } catch (err) {
      retry();
      return;
    }
    if (suspended || !gifts.size || task) return;
    const current = wx.connectSocket({ url, fail: () => {} });
    task = current;
    current.onOpen(() => {
      if (task !== current) return;
      open = true;
      lastHeard = Date.now();
      // The key goes in the first frame, not the URL, so no proxy logs it.
      send({ type: 'auth', login_key: key });
      gifts.forEach((_, orderId) => send(subscription(orderId)));
      setState('open');
      clearInterval(pingTimer);
      pingTimer = setInterval(heartbeat, pingEvery);
    });
    current.onMessage((message) => {
      if (task === current) receive(message.data);
    });
    current.onClose((event) => {
      if (task !== current) return; // one we replaced or closed ourselves
      task = null;
      open = false;
      clearInterval(pingTimer);
      if (suspended) return;
      if (event.code === CLOSE_BAD_KEY) {
        if (renewedKey) {
          setState('closed');
          return;
        }
        renewedKey = true;
        options.renewLogin().then(() => retry(), () => retry());
        return;
      }
      // 1001 going away, 1011 server error, 1013 try again later, 4429 too slow, a cut network:
      // all the same here, back with backoff; the resubscribe brings what was missed.
      retry();
    });
    current.onError(() => {}); // onClose follows and decides
  }

  function retry() {
    if (suspended || !gifts.size) return;
    attempt += 1;
    setState('reconnecting');
    // Exponential backoff with equal jitter, so a restarted server is not hit by everyone at once.
    const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.min(attempt - 1, 10));
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => { retryTimer = null; connect(); }, ceiling / 2 + (random() * ceiling) / 2);
  }

  function heartbeat() {
    // A connection silent for 2.5 pings is presumed dead (a phone that changed networks) and replaced.
    if (Date.now() - lastHeard > 2.5 * pingEvery) {
      closeTask(CLOSE_SILENT);
      retry();
      return;
    }
    send({ type: 'ping' });
  }

  /** @param {any} data */
  function receive(data) {
    lastHeard = Date.now();
    /** @type {Frame} */
    let frame;
    try {
      frame = JSON.parse(String(data));
    } catch (err) {
      return;
    }
    if (!frame || typeof frame.type !== 'string' || frame.type === 'pong') return;
    const entry = frame.order_id ? gifts.get(frame.order_id) : undefined;
    if (frame.type === 'error') {
      if (entry) entry.listeners.forEach((fn) => fn(frame));
      return;
    }
    if (!entry || typeof frame.version !== 'number') return;
    // A snapshot may repeat the version shown (a first subscribe); anything else must be newer.
    if (frame.version < entry.version || (frame.version === entry.version && frame.type !== 'snapshot')) return;
    entry.version = frame.version;
    attempt = 0;
    renewedKey = false;
    entry.listeners.forEach((fn) => fn(frame));
  }

  return {
    /** Follow a gift from `version` (what the page shows; 0 for a snapshot). Returns the unfollow.
     * @param {string} orderId
     * @param {number} version
     * @param {Listener} listener */
    follow(orderId, version, listener) {
      let entry = gifts.get(orderId);
      if (!entry) {
        entry = { version: 0, listeners: new Set() };
        gifts.set(orderId, entry);
      }
      entry.version = Math.max(entry.version, version || 0);
      entry.listeners.add(listener);
      if (task && open) send(subscription(orderId));
      else if (!task && !retryTimer) connect();
      const followed = entry;
      return () => {
        followed.listeners.delete(listener);
        if (followed.listeners.size || gifts.get(orderId) !== followed) return;
        gifts.delete(orderId);
        send({ type: 'unsubscribe', order_id: orderId });
        if (!gifts.size) {
          stopTimers();
          closeTask(CLOSE_NORMAL);
          attempt = 0;
          setState('idle');
        }
      };
    },

    /** The newest version seen of a gift (0: none). @param {string} orderId */
    version(orderId) {
      const entry = gifts.get(orderId);
      return entry ? entry.version : 0;
    },

    /** The mini-program went to the background: close now, remember the versions. */
    suspend() {
      suspended = true;
      stopTimers();
      closeTask(CLOSE_NORMAL);
      setState('suspended');
    },

    /** Back in the foreground: reconnect at once and resync every followed gift from its version. */
    resume() {
      if (!suspended) return;
      suspended = false;
      attempt = 0;
      setState('idle');
      connect();
    },

    /** @param {(state: State) => void} fn */
    onState(fn) {
      stateListeners.add(fn);
      return () => { stateListeners.delete(fn); };
    },

    get state() {
      return state;
    },
  };
}

module.exports = { createSocket };
