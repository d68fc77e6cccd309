// @ts-check
// Everything a page uses to reach the outside, made once per mini-program from `wx` and the
// config: app.js makes it with the real `wx`, the tests with their stand-in. Pages reach it
// through getApp().services.
const { createApi } = require('./api');
const { createSocket } = require('./socket');

/**
 * @typedef {{baseUrl: string, templates: {join: string[], received: string[], sender: string[], claim: string[]},
 *   socket?: {minDelay?: number, maxDelay?: number, pingEvery?: number}}} Config
 */

/** @param {WechatMiniprogram.Wx} wx
 * @param {Config} config */
function createServices(wx, config) {
  const api = createApi(wx, config);
  const socket = createSocket(wx, {
    url: `${api.base.replace(/^http/, 'ws')}/ws`, // https -> wss, http -> ws
    loginKey: api.loginKey,
    renewLogin: api.renewLogin,
    ...(config.socket || {}),
  });
  return { wx, config, api, socket };
}

/** @typedef {ReturnType<typeof createServices>} Services */

module.exports = { createServices };
