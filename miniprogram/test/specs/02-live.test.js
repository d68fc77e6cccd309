// The waiting page's socket through what a phone does to it: hidden while the gift opens,
// the network cut during the draw. A page never misses a result and never shows one twice.
const { Phone, until, sleep } = require('../harness/phone');
const { adminGift, joinByApi, giftOf } = require('../harness/gifts');

afterEach(() => {
  for (const phone of Phone.all) phone.closeAll();
});

/** A member on the waiting page of a fresh 满2人开奖 gift, connected. */
async function waitingMember(name) {
  const sender = new Phone(`${name}_sender`);
  await sender.app.services.api.login();
  const orderId = await adminGift(sender, { method: 'full', open_number: 2 });
  const member = new Phone(name);
  const join = member.open(`/pages/gift/join/join?order_id=${orderId}`);
  await join.waitText('满2人开奖');
  await join.tap('#join');
  const wait = member.open(await member.waitNavigation('/pages/gift/wait/wait'));
  await wait.waitText('1/2 人已参与');
  await until(() => member.app.services.socket.state === 'open', { what: 'the socket to open' });
  return { orderId, member, wait };
}

test('a page hidden while the gift opens shows the result once when it comes back', async () => {
  const { orderId, member, wait } = await waitingMember('hidden');
  member.hide();
  await until(() => member.sockets.size === 0, { what: 'the socket to close in onHide' });
  expect(member.app.services.socket.state).toBe('suspended');

  // The draw happens while hidden. What matters is that the socket is closed and the result
  // comes while it is: how long the phone stays away (60 s, 30 minutes) changes nothing on
  // the server, which resyncs from the version the page had, so a short real wait is the same case.
  await joinByApi(new Phone('hidden_friend'), orderId);
  await until(async () => (await giftOf(member, orderId)).gift.status === 'finished', { what: 'the draw' });
  await sleep(500);
  expect(member.navigationsTo('/pages/gift/result')).toHaveLength(0);
  expect(member.sockets.size).toBe(0);

  member.show();
  await member.waitNavigation('/pages/gift/result');
  await sleep(1000); // a second frame (snapshot and opened both) would show it twice
  expect(member.navigationsTo('/pages/gift/result')).toHaveLength(1);
  expect(wait.data.gift.status).not.toBe('finished'); // it left instead of rendering the result itself
  expect(member.maxSockets).toBe(1);
});

test('a socket cut during the draw reconnects and still brings the result, once', async () => {
  const { orderId, member, wait } = await waitingMember('dropped');
  const friend = new Phone('dropped_friend');
  await friend.app.services.api.login();

  member.dropSockets(); // the network goes (no close frame) ...
  await joinByApi(friend, orderId); // ... while the last seat is taken and the gift is drawn
  await until(() => wait.data.connection.includes('重新连接'), { what: 'the reconnecting notice' });
  await member.waitNavigation('/pages/gift/result');
  await sleep(1000);
  expect(member.navigationsTo('/pages/gift/result')).toHaveLength(1);
  expect(member.socketsOpened).toBe(2);
  expect(member.maxSockets).toBe(1);

  const result = member.open(`/pages/gift/result?order_id=${orderId}`);
  await result.waitLoaded();
  expect(['won', 'lost']).toContain(result.data.me.state);
});

test('the shared socket follows several gifts on one connection and drops what no page shows', async () => {
  const a = await waitingMember('multi');
  const sender = new Phone('multi_sender2');
  await sender.app.services.api.login();
  const second = await adminGift(sender, { method: 'full', open_number: 2 });
  await joinByApi(a.member, second);
  const wait2 = a.member.open(`/pages/gift/wait/wait?order_id=${second}`);
  await wait2.waitText('1/2 人已参与');
  expect(a.member.socketsOpened).toBe(1);
  wait2.close();
  a.wait.close();
  await until(() => a.member.sockets.size === 0, { what: 'the idle socket to close' });
});
