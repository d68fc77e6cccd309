// @ts-check
// The shop's settings: its server, and its subscribe-message templates (from the mini-program
// admin console, 订阅消息). Set these before uploading; see docs/miniprogram.md.
module.exports = {
  // The server's https origin; it must be a request legal domain (and wss the socket one).
  baseUrl: 'https://gift.example.com',
  // Template ids the member is asked to accept, at most three each. Empty: nothing is asked.
  templates: {
    // Joining a gift that is drawn: 中奖 and 未中奖 (the server's gift_won and gift_lost), since
    // the member cannot know yet which one will come.
    join: /** @type {string[]} */ ([]),
    // Joining a direct gift: 礼物已到 (gift_received).
    received: /** @type {string[]} */ ([]),
    // Creating a gift: the sender's summary when it opens (gift_summary), and a refund (gift_refunded).
    sender: /** @type {string[]} */ ([]),
    // Giving an address: 奖品已发货 (prize_shipped) and the claim's reminder (claim_reminder).
    claim: /** @type {string[]} */ ([]),
  },
};
