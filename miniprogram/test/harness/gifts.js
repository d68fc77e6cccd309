// Gifts made quickly through the operator's admin API, for tests that start past the shop.
const { admin } = require('./phone');

/** A gift from a sender (`o_<name>`), e.g. {method: 'full', open_number: 2}; returns its id. */
async function adminGift(sender, spec) {
  const answer = await admin('POST', '/api/admin/gifts', {
    sender_openid: `o_${sender.name}`, items: [{ name: '月饼礼盒' }], wish: '中秋快乐', ...spec,
  });
  return answer.order_id;
}

/** A member joins through the v1 API (not a page): the other friends in a scenario. */
function joinByApi(phone, orderId) {
  return phone.app.services.api.post(`/api/v1/gifts/${encodeURIComponent(orderId)}/join`, { subscribed: [] });
}

/** The gift as anyone sees it, straight from the server. */
function giftOf(phone, orderId) {
  return phone.app.services.api.get(`/api/v1/gifts/${encodeURIComponent(orderId)}`);
}

module.exports = { adminGift, joinByApi, giftOf };
