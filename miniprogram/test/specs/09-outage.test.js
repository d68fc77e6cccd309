// The server answering 503 (its database gone for a few seconds): pages say so clearly and
// try again later by themselves; a waiting page's socket, closed with 1013, comes back and
// still brings the result. Last in the run: the whole server is affected.
const { Phone, until, httpCall, stack } = require('../harness/phone');
const { adminGift, joinByApi, giftOf } = require('../harness/gifts');
const { catalogue } = require('../harness/shop');

afterEach(() => {
  for (const phone of Phone.all) phone.closeAll();
});

test('a 503 shows a clear message, the page retries later, and the waiting page still gets its result', async () => {
  await catalogue([{ name: '香薰蜡烛', price: 5900, stock: 3 }]);
  const sender = new Phone('outage_sender');
  await sender.app.services.api.login();
  const orderId = await adminGift(sender, { method: 'full', open_number: 2 });
  // Its socket backs off to 5 s at most, not the app's 30 s: after the outage a loaded machine
  // then still sees the page come back within the wait below (a fresh-clone run missed 60 s).
  const member = new Phone('outage_member', { socket: { maxDelay: 5000 } });
  const friend = new Phone('outage_friend');
  await friend.app.services.api.login();
  const join = member.open(`/pages/gift/join/join?order_id=${orderId}`);
  await join.waitText('抽');
  await join.tap('#join');
  const wait = member.open(await member.waitNavigation('/pages/gift/wait/wait'));
  await wait.waitText('1/2 人已参与');

  // Long enough for the page to meet it, and for the server to notice it on a loaded machine
  // (its change stream fails, then it closes the sockets with 1013; 12 s missed on loaded runs),
  // short enough for the shop's retries (2, 4, 8, 16 s apart) to find it over in time.
  await httpCall('POST', `${stack.control}/outage?seconds=15`);
  await until(async () => (await httpCall('GET', `${stack.server}/readyz`)).status === 503, { what: 'the outage' });

  const shop = member.open('/pages/shop/shop');
  // The first request after the loss waits for the driver to notice it (a few seconds).
  await shop.waitText('服务暂时不可用，请稍后再试', 30000);
  expect(shop.text()).toContain('稍后自动重试');
  await until(() => wait.data.connection.includes('重新连接'), { timeout: 40000, what: 'the socket closed with 1013' });

  // Once the database is back, the shop loads by itself and the result still arrives.
  await shop.waitText('香薰蜡烛', 70000);
  await until(async () => {
    try {
      await joinByApi(friend, orderId);
      return true;
    } catch (err) {
      return false;
    }
  }, { timeout: 30000, every: 300, what: 'the join after the outage' });
  // Both joins survived the engine's death (the outage journals what came before), so the gift
  // is full and draws: the server's side first, then the page.
  await until(async () => (await giftOf(friend, orderId)).gift.status === 'finished', { timeout: 60000, what: 'the draw' });
  // The waiting page comes back on its own reconnect schedule (backing off through the outage),
  // which a loaded machine stretches.
  await member.waitNavigation('/pages/gift/result', 90000);
  expect(member.navigationsTo('/pages/gift/result')).toHaveLength(1);
}, 180000);
