// Prize tiers and entry conditions on the join page, against the real server: the tiers on the
// card and the tier won, the pass phrase asked before the tap, and a gift only for one WeChat
// group (wx.getGroupEnterInfo's data, encrypted as WeChat does, decrypted by the server).
const { Phone, until } = require('../harness/phone');
const { adminGift, giftOf } = require('../harness/gifts');

afterEach(() => {
  for (const phone of Phone.all || []) phone.closeAll();
});

const joinRequests = (phone) => phone.requests.filter((r) => r.path.endsWith('/join'));

test('a tiered gift shows its tiers, asks for its pass phrase, and the winner sees the tier won', async () => {
  const sender = new Phone('tier_sender');
  const orderId = await adminGift(sender, {
    method: 'full', open_number: 1, pass_phrase: '芝麻开门 ABC',
    items: [{ name: '保温杯', tier: 2 }, { name: '空气净化器', tier: 1 }],
  });
  const member = new Phone('tier_member');
  const join = member.open(`/pages/gift/join/join?order_id=${orderId}`);
  await join.waitText('抽');
  expect(join.data.tiers).toEqual([{ tier: '一等奖', name: '空气净化器', count: 1 }, { tier: '二等奖', name: '保温杯', count: 1 }]);
  expect(join.text()).toContain('一等奖');
  expect(join.data.needPhrase).toBe(true);

  join.tap('#join'); // no phrase yet: asked for, nothing sent
  await until(() => member.toasts.includes('请输入口令'), { what: 'the phrase prompt' });
  expect(joinRequests(member)).toHaveLength(0);

  join.instance.onPhrase({ detail: { value: '芝麻关门' } });
  join.tap('#join');
  await until(() => member.toasts.includes('口令不正确'), { what: 'the wrong phrase refused' });

  join.instance.onPhrase({ detail: { value: ' 芝麻开门 ａｂｃ ' } }); // full width, other case, spaces
  join.tap('#join');
  await member.waitNavigation('/pages/gift/wait/wait');
  expect(joinRequests(member).map((r) => r.body.pass_phrase)).toEqual(['芝麻关门', ' 芝麻开门 ａｂｃ ']);
  // The one seat is taken: the gift opens, its one participant wins the first tier's item.
  await until(async () => (await giftOf(member, orderId)).gift.status === 'finished', { what: 'the draw' });
  const result = member.open(`/pages/gift/result?order_id=${orderId}`);
  await result.waitText('一等奖：空气净化器');
});

test('a group-only gift is bound by its sender in the group and joined only from inside it', async () => {
  const sender = new Phone('grp_sender');
  const orderId = await adminGift(sender, { method: 'full', open_number: 5, group_only: true });
  const path = `/pages/gift/join/join?order_id=${orderId}`;

  // The sender opens the shared card in the group: the gift is bound to it.
  sender.chat = 'G_family';
  sender.open(path);
  await sender.waitNavigation('/pages/gift/wait/wait');
  expect(sender.requests.filter((r) => r.path.endsWith('/group')).map((r) => r.status)).toEqual([200]);

  const insider = new Phone('grp_insider');
  insider.chat = 'G_family';
  const inside = insider.open(path);
  await inside.waitText('抽');
  inside.tap('#join');
  await insider.waitNavigation('/pages/gift/wait/wait');
  expect(Object.keys(joinRequests(insider)[0].body).sort()).toEqual(['encryptedData', 'iv', 'subscribed']);

  const outsider = new Phone('grp_outsider');
  outsider.chat = null; // the card forwarded into a one-to-one chat
  const outside = outsider.open(path);
  await outside.waitText('抽');
  outside.tap('#join');
  await until(() => outsider.toasts.includes('这个礼物仅限指定群的成员参与'), { what: 'the outsider refused' });

  const stranger = new Phone('grp_stranger'); // not opened from any chat
  const card = stranger.open(path);
  await card.waitText('仅限指定群的成员参与，请从群聊中打开');
  expect(card.find('#join')).toBeFalsy();
});
