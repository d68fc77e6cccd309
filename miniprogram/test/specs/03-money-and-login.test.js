// Payment cancelled then paid, a direct gift, subscribe declined, an expired login key.
const { Phone, until } = require('../harness/phone');
const { catalogue } = require('../harness/shop');
const { adminGift } = require('../harness/gifts');

afterEach(() => {
  for (const phone of Phone.all) phone.closeAll();
});

test('a cancelled payment leaves the order payable, and paying it later opens the gift', async () => {
  const { productIds: [cup] } = await catalogue([{ name: '保温杯', price: 8800, stock: 5 }]);
  const buyer = new Phone('canceller');
  buyer.payAnswer = 'cancel';
  const create = buyer.open(`/pages/create/create?product_id=${cup}`);
  await create.waitText('去支付');
  create.instance.changeQuantity({ currentTarget: { dataset: { index: 0, step: 1 } } });
  expect(create.text()).toContain('¥176.00');
  await create.tap('#submit');
  const url = await buyer.waitNavigation('/pages/payresult/payresult');
  expect(url).toContain('paid=0');
  expect(buyer.payments.map((p) => p.outcome)).toEqual(['cancelled']);

  const payResult = buyer.open(url);
  await payResult.waitText('待支付');
  expect(payResult.find('#pay')).toBeTruthy();

  buyer.payAnswer = 'pay';
  await payResult.tap('#pay');
  await payResult.waitText('支付成功');
  expect(payResult.data.order.amount_total).toBe(17600);
  // One order: the second payment was the same order's, asked again.
  const orders = await buyer.app.services.api.get('/api/v1/orders');
  expect(orders.orders.filter((o) => o.lines[0].product_id === cup)).toHaveLength(1);
  expect(buyer.payments.map((p) => p.outcome)).toEqual(['cancelled', 'paid']);
});

test('a refused subscription changes nothing else: the member joins and gets a direct gift', async () => {
  const sender = new Phone('direct_sender');
  await sender.app.services.api.login();
  const orderId = await adminGift(sender, { method: 'direct', items: [{ name: '咖啡券' }, { name: '咖啡券' }] });
  const member = new Phone('refuser');
  member.subscribeAnswer = 'reject';
  const join = member.open(`/pages/gift/join/join?order_id=${orderId}`);
  await join.waitText('直接送礼');
  expect(member.prompts).toEqual([]); // never on page load
  await join.tap('#join');
  const url = await member.waitNavigation('/pages/gift/result');
  expect(member.prompts).toEqual([{ tmplIds: ['tpl_received'] }]);
  expect(member.refusedPrompts).toEqual([]);
  expect(member.requests.find((r) => r.path.endsWith('/join')).body).toEqual({ subscribed: [] });
  const result = member.open(url);
  await result.waitText('恭喜你，中奖了！');
  expect(result.text()).toContain('咖啡券');
  expect(result.find('#proof')).toBeFalsy(); // a direct gift has no draw to prove

  // Coming back through the shared link goes straight to the result.
  const again = member.open(`/pages/gift/join/join?token=${orderId}`);
  await until(() => member.navigationsTo('/pages/gift/result').length === 2, { what: 'the second redirect' });
  expect(again.data.inited).toBe(false);
});

test('an expired login key is renewed once through wx.login, and the page loads', async () => {
  const member = new Phone('expired');
  await member.app.services.api.login();
  member.storage.set('login_key', 'a-key-the-server-no-longer-knows');
  const prizes = member.open('/pages/prizes/prizes');
  await prizes.waitText('还没有奖品');
  const calls = member.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
  expect(calls.filter((c) => c.startsWith('GET /api/v1/me/prizes'))).toEqual(['GET /api/v1/me/prizes 401', 'GET /api/v1/me/prizes 200']);
  expect(calls.filter((c) => c.startsWith('POST /api/member/code/login'))).toHaveLength(2); // the first sign-in, and the one renewal
  expect(member.loginKey).not.toBe('a-key-the-server-no-longer-knows');
});

test('an unknown gift says so in Chinese with a retry button', async () => {
  const member = new Phone('lost_link');
  const join = member.open('/pages/gift/join/join?order_id=nosuchgift');
  await join.waitText('礼物不存在');
  expect(join.find('#retry')).toBeTruthy();
});
