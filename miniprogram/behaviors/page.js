// @ts-check
// What every page shares: its services (taken from getApp() once, when the page is created, so
// a page keeps talking through the `wx` it was made with), loading and error states, and a
// load that, when the server is briefly away (503, no network), says so and tries again later
// by itself.
const { ApiError } = require('../utils/api');

/** @typedef {import('../utils/services').Services} Services */

/** @type {WeakMap<object, {services: Services, timers: Set<any>, loader: (() => Promise<void>) | null, attempt: number, state: Record<string, any>}>} */
const pages = new WeakMap();

/** The page's own runtime record (services, timers, anything not rendered).
 * @param {object} page */
function ctx(page) {
  let record = pages.get(page);
  if (!record) {
    record = { services: getApp().services, timers: new Set(), loader: null, attempt: 0, state: {} };
    pages.set(page, record);
  }
  return record;
}

/** @param {unknown} err */
const messageOf = (err) => (err instanceof Error && err.message) || '出错了，请稍后再试';

const pageBehavior = Behavior({
  data: { loading: true, error: '', retrying: false },
  lifetimes: {
    attached() {
      ctx(this);
    },
    detached() {
      const record = ctx(this);
      record.timers.forEach((t) => { clearTimeout(t); clearInterval(t); });
      record.timers.clear();
    },
  },
  methods: {
    /** Run `loader` with the loading state; a temporary failure shows its message and retries by
     * itself (after the server's Retry-After, backing off to 30 s); another shows the message
     * and a 重试 button.
     * @param {() => Promise<void>} loader */
    async load(loader) {
      const record = ctx(this);
      record.loader = loader;
      this.setData({ loading: true, error: '', retrying: false });
      try {
        await loader();
        record.attempt = 0;
        this.setData({ loading: false });
      } catch (err) {
        const temporary = err instanceof ApiError && err.temporary;
        this.setData({ loading: false, error: messageOf(err), retrying: temporary });
        if (temporary) {
          record.attempt += 1;
          const wait = Math.min(30, Math.max(/** @type {ApiError} */ (err).retryAfter || 2, 2 ** record.attempt));
          this.later(() => { if (record.loader === loader) this.load(loader); }, wait * 1000);
        }
      }
    },

    /** The 重试 button. */
    retry() {
      const record = ctx(this);
      if (record.loader) this.load(record.loader);
    },

    /** A timer that dies with the page. @param {() => void} fn @param {number} ms */
    later(fn, ms) {
      const record = ctx(this);
      const timer = setTimeout(() => { record.timers.delete(timer); fn(); }, ms);
      record.timers.add(timer);
      return timer;
    },

    /** @param {unknown} err */
    toast(err) {
      ctx(this).services.wx.showToast({ title: typeof err === 'string' ? err : messageOf(err), icon: 'none', duration: 2500 });
    },

    /** Navigate, from a tap's data-url. @param {any} event */
    go(event) {
      ctx(this).services.wx.navigateTo({ url: event.currentTarget.dataset.url });
    },
  },
});

module.exports = { pageBehavior, ctx, messageOf };
