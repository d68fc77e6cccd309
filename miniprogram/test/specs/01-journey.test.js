// The whole path on the real stack: shop -> create gift -> pay -> share -> three members join a
// 满人开奖 gift -> the waiting pages receive the result live -> the winner claims with an
// address -> the operator ships through the admin API -> my prizes shows the tracking number.
const { Phone, admin, until } = require('../harness/phone');
const { catalogue } = require('../harness/shop');

afterEach(() => {
  for (const phone of Phone.all || []) phone.closeAll();
});

test('a gift goes from the shop to a shipped prize, live, on the real server', async () => {
  const { productIds: [earphones] } = await catalogue([{ name: '蓝牙耳机', price: 19900, stock: 20 }]);
  const buyer = new Phone('buyer');

  // The shop lists the product; its page offers it as a gift.
  const shop = buyer.open('/pages/shop/shop');
  await shop.waitText('蓝牙耳机');
  expect(shop.text()).toContain('¥199.00');
  const productUrl = shop.data.products.find((p) => p.product_id === earphones) && `/pages/product/product?product_id=${earphones}`;
  const product = buyer.open(productUrl);
  await product.waitText('送给好友抽奖');
  product.tap('#give');
  const createUrl = await buyer.waitNavigation('/pages/create/create');

  // Create: 满人开奖 with 3 people, a wish; the tap asks for the sender's messages, then pays.
  const create = buyer.open(createUrl);
  await create.waitText('去支付');
  expect(create.data.lines.map((l) => l.product_id)).toEqual([earphones]);
  expect(create.text()).toContain('¥199.00');
  create.instance.chooseMethod({ detail: { value: 'full' }, currentTarget: { dataset: {} } });
  create.instance.inputOpenNumber({ detail: { value: '3' } });
  create.instance.inputWish({ detail: { value: '周末快乐' } });
  create.tap('#submit');
  const payResultUrl = await buyer.waitNavigation('/pages/payresult/payresult');
  expect(buyer.prompts).toEqual([{ tmplIds: ['tpl_opened', 'tpl_refund'] }]);
  expect(buyer.refusedPrompts).toEqual([]);
  expect(buyer.payments.map((p) => p.outcome)).toEqual(['paid']);

  // The pay result asks the server until the order is paid, then offers sharing.
  const payResult = buyer.open(payResultUrl);
  await payResult.waitText('支付成功');
  const orderId = payResult.data.order.order_id;
  expect(payResult.find('#share')).toBeTruthy();
  const share = payResult.instance.onShareAppMessage();
  expect(share).toEqual({ title: '周末快乐', path: `/pages/gift/join/join?order_id=${orderId}` });

  // The sender's own view is the live waiting page.
  payResult.tap('#view-gift');
  const senderWait = buyer.open(await buyer.waitNavigation('/pages/gift/wait/wait'));
  await senderWait.waitText('0/3 人已参与');

  // Three friends open the shared path and join; each lands on the waiting page.
  const members = [new Phone('amy'), new Phone('bob'), new Phone('cat')];
  const waits = [];
  for (const [i, member] of members.entries()) {
    const join = member.open(share.path);
    await join.waitText('抽');
    expect(join.text()).toContain('满3人开奖');
    expect(join.text()).toContain('周末快乐');
    join.tap('#join');
    const waitUrl = await member.waitNavigation('/pages/gift/wait/wait');
    expect(member.prompts).toEqual([{ tmplIds: ['tpl_won', 'tpl_lost'] }]);
    if (i < 2) {
      const wait = member.open(waitUrl);
      await wait.waitText(`${i + 1}/3 人已参与`);
      waits.push(wait);
    }
  }
  expect(members[0].requests.find((r) => r.path.endsWith('/join')).body).toEqual({ subscribed: ['tpl_won', 'tpl_lost'] });

  // The third join fills it: the draw runs, and every waiting page goes to the result, once.
  for (const phone of [buyer, members[0], members[1]]) await phone.waitNavigation('/pages/gift/result');
  for (const phone of [buyer, members[0], members[1]]) expect(phone.navigationsTo('/pages/gift/result')).toHaveLength(1);
  for (const phone of [buyer, ...members]) expect(phone.maxSockets).toBeLessThanOrEqual(1);

  const results = members.map((m) => m.open(`/pages/gift/result?order_id=${orderId}`));
  await Promise.all(results.map((r) => r.waitLoaded()));
  const states = results.map((r) => r.data.me.state);
  expect(states.filter((s) => s === 'won')).toHaveLength(1);
  expect(states.filter((s) => s === 'lost')).toHaveLength(2);
  const w = states.indexOf('won');
  const winner = members[w];
  const result = results[w];
  expect(result.text()).toContain('恭喜你，中奖了！');
  expect(result.text()).toContain('蓝牙耳机');
  expect(results[(w + 1) % 3].text()).toContain('很遗憾，没有抽中');

  // The winner claims with an address from wx.chooseAddress.
  result.tap('#claim');
  const claim = winner.open(await winner.waitNavigation('/pages/gift/claim/claim'));
  await claim.waitText('选择收货地址');
  claim.tap('#choose-address');
  await claim.waitText('已填写地址');
  expect(claim.text()).toContain('张三');
  expect(winner.prompts).toContainEqual({ tmplIds: ['tpl_shipped'] });

  // The operator ships it; my prizes shows the tracking number.
  const list = await admin('GET', '/api/admin/claims?status=claimed');
  const mine = list.claims.find((c) => c.order_id === orderId);
  await admin('POST', `/api/admin/claims/${mine.claim_id}/ship`, { carrier: '顺丰速运', tracking_no: 'SF1234567890' });
  const prizes = winner.open('/pages/prizes/prizes');
  await prizes.waitText('SF1234567890');
  expect(prizes.text()).toContain('已发货');
  expect(prizes.text()).toContain('顺丰速运');

  // And the buyer's orders list the paid order.
  const orders = buyer.open('/pages/orders/orders');
  await orders.waitText('已支付');
  expect(orders.text()).toContain('¥199.00');
});
