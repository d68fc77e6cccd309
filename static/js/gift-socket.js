// GiftSocket: the browser client of the realtime channel (`/ws`, docs/realtime.md).
// Dependency-free; a classic script that defines `window.GiftSocket`.
//
//   const s = new GiftSocket({ url: 'wss://host/ws', loginKey });
//   s.on('opened', (m) => show(m.gift, m.me));   // also 'snapshot', 'progress', 'state', 'error'
//   s.subscribe(orderId);
//
// It reconnects by itself (exponential backoff with jitter), then re-authenticates and
// resubscribes with the newest version it has of each gift, so the server sends exactly what
// was missed. Messages older than what it already has are dropped.
(function (root) {
  'use strict';

  const CLOSE_BAD_KEY = 4401; // do not retry with the same key

  class GiftSocket {
    constructor({ url, loginKey, minDelay = 500, maxDelay = 30000, pingEvery = 20000, WebSocketImpl } = {}) {
      this.url = url;
      this.loginKey = loginKey;
      this.minDelay = minDelay;
      this.maxDelay = maxDelay;
      this.pingEvery = pingEvery;
      this.WebSocketImpl = WebSocketImpl || root.WebSocket;
      this.handlers = {};
      this.gifts = new Map(); // order id -> newest version seen (0: none yet)
      this.state = 'closed';
      this.attempt = 0;
      this.ws = null;
      this.retryTimer = null;
      this.pingTimer = null;
      this.lastHeard = 0;
      this.stopped = false;
      this._online = () => this.state === 'reconnecting' && this._connectNow();
      if (root.addEventListener) root.addEventListener('online', this._online);
      this._connect();
    }

    // Listen: 'snapshot', 'progress', 'opened', 'error' get the server's message; 'state' gets
    // 'connecting' | 'open' | 'reconnecting' | 'closed'. Returns a function that stops listening.
    on(event, fn) {
      (this.handlers[event] = this.handlers[event] || []).push(fn);
      return () => this.off(event, fn);
    }

    off(event, fn) {
      this.handlers[event] = (this.handlers[event] || []).filter((h) => h !== fn);
    }

    // Follow a gift. `version`: the newest one the caller already shows (from the HTTP API),
    // so only what is newer comes; without it the server answers with a snapshot.
    subscribe(orderId, version) {
      const known = this.gifts.get(orderId) || 0;
      this.gifts.set(orderId, Math.max(known, version || 0));
      this._send(this._subscription(orderId));
    }

    unsubscribe(orderId) {
      this.gifts.delete(orderId);
      this._send({ type: 'unsubscribe', order_id: orderId });
    }

    // Stop for good.
    close() {
      this.stopped = true;
      clearTimeout(this.retryTimer);
      clearInterval(this.pingTimer);
      if (root.removeEventListener) root.removeEventListener('online', this._online);
      if (this.ws) this.ws.close(1000, 'bye');
      this._setState('closed');
    }

    // ---- internals ----

    _emit(event, payload) {
      for (const fn of this.handlers[event] || []) {
        try {
          fn(payload);
        } catch (err) {
          setTimeout(() => { throw err; }); // a listener's bug must not break the socket
        }
      }
    }

    _setState(state) {
      if (this.state === state) return;
      this.state = state;
      this._emit('state', state);
    }

    _subscription(orderId) {
      const version = this.gifts.get(orderId);
      return version ? { type: 'subscribe', order_id: orderId, version } : { type: 'subscribe', order_id: orderId };
    }

    _send(message) {
      if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(message));
    }

    _connect() {
      if (this.stopped) return;
      this._setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
      let ws;
      try {
        ws = new this.WebSocketImpl(this.url);
      } catch (err) {
        this._retry();
        return;
      }
      this.ws = ws;
      ws.onopen = () => {
        this.lastHeard = Date.now();
        // The key goes in the first frame, not the URL, so no proxy logs it.
        ws.send(JSON.stringify({ type: 'auth', login_key: this.loginKey }));
        for (const orderId of this.gifts.keys()) ws.send(JSON.stringify(this._subscription(orderId)));
        this._setState('open');
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => this._heartbeat(), this.pingEvery);
      };
      ws.onmessage = (event) => this._receive(event.data);
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        this.ws = null;
        clearInterval(this.pingTimer);
        if (this.stopped) return;
        if (event.code === CLOSE_BAD_KEY) {
          this.stopped = true;
          this._setState('closed');
          return;
        }
        this._retry();
      };
      ws.onerror = () => {}; // onclose follows and decides
    }

    _connectNow() {
      clearTimeout(this.retryTimer);
      this._connect();
    }

    _retry() {
      this.attempt += 1;
      this._setState('reconnecting');
      // Exponential backoff with equal jitter (half the ceiling, plus up to the other half at
      // random), so a restarted server is not hit by everyone at once.
      const ceiling = Math.min(this.maxDelay, this.minDelay * 2 ** Math.min(this.attempt - 1, 10));
      const delay = ceiling / 2 + Math.random() * ceiling / 2;
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this._connect(), delay);
    }

    _heartbeat() {
      // Browsers cannot see protocol pings: a silent connection is presumed dead and replaced.
      if (Date.now() - this.lastHeard > 2.5 * this.pingEvery) {
        if (this.ws) this.ws.close(4000, 'no answer');
        return;
      }
      this._send({ type: 'ping' });
    }

    _receive(data) {
      this.lastHeard = Date.now();
      let message;
      try {
        message = JSON.parse(data);
      } catch (err) {
        return;
      }
      if (!message || typeof message.type !== 'string') return;
      if (message.type === 'pong') return;
      if (message.type === 'error') {
        this._emit('error', message);
        return;
      }
      const orderId = message.order_id;
      if (!this.gifts.has(orderId)) return; // unsubscribed meanwhile
      const known = this.gifts.get(orderId);
      // A snapshot may repeat the current version (a first subscribe); anything else must be newer.
      if (message.version < known || (message.version === known && message.type === 'progress')) return;
      this.gifts.set(orderId, message.version);
      this.attempt = 0; // a working connection: the next outage starts the backoff afresh
      if (message.type === 'snapshot' || message.type === 'progress' || message.type === 'opened') {
        this._emit(message.type, message);
      }
    }
  }

  root.GiftSocket = GiftSocket;
  if (typeof module === 'object' && module.exports) module.exports = GiftSocket;
})(typeof window !== 'undefined' ? window : globalThis);
