// @ts-check
// The shop's settings: its server, and its subscribe-message templates (from the mini-program
// admin console, 订阅消息). Set these before uploading; see docs/miniprogram.md.
module.exports = {
  // The server's https origin; it must be a request legal domain (and wss the socket one).
  baseUrl: 'https://gift.example.com',
  // Template ids the member is asked to accept, at most three each. Empty: nothing is asked.
  templates: {
    // Joining: the result (won / not won) or, for a direct gift, 礼物已到.
    join: /** @type {string[]} */ ([]),
    // Creating a gift: the sender's summary when it opens, and a refund.
    sender: /** @type {string[]} */ ([]),
    // Giving an address: 奖品已发货.
    claim: /** @type {string[]} */ ([]),
  },
};
