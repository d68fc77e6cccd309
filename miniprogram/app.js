// @ts-check
// The mini-program: one set of services (API, shared socket) made from the real `wx` and the
// shop's config. The socket is closed while the mini-program is in the background (WeChat
// suspends it after about 5 s and cuts a socket still open with "interrupted") and reopened,
// with every followed gift resynced from its version, when it comes back.
const config = require('./config');
const { createServices } = require('./utils/services');

App({
  services: createServices(wx, config),
  onShow() {
    this.services.socket.resume();
  },
  onHide() {
    this.services.socket.suspend();
  },
});
