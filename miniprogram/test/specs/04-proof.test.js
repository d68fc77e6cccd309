// The proof check on the phone: SHA-256 and HMAC against the standard vectors, the draw against
// docs/fairness.md's published vector, and the proof page against a real drawn gift.
const { Phone, until } = require('../harness/phone');
const { adminGift, joinByApi, giftOf } = require('../harness/gifts');
const { sha256Hex, hmacSha256, toHex, utf8 } = require('../../utils/sha256');
const fairness = require('../../utils/fairness');
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

// tests/proofs.py's forgeries, as the Python verifier's and the browser's tests get them:
// {name: [proof, the checks that must fail]}.
function forgeries() {
  const root = path.resolve(__dirname, '../../..');
  const venv = path.join(root, '.venv/bin/python');
  const python = process.env.PYTHON || (fs.existsSync(venv) ? venv : 'python3');
  const script = 'import json\nfrom tests.proofs import tampered\n'
    + 'print(json.dumps({n: [p, sorted(f)] for n, (p, f) in tampered().items()}))';
  return JSON.parse(execFileSync(python, ['-c', script], { cwd: root, encoding: 'utf8' }));
}

afterEach(() => {
  for (const phone of Phone.all) phone.closeAll();
});

test('SHA-256 and HMAC-SHA256 match the NIST and RFC 4231 vectors', () => {
  expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  expect(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))
    .toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  expect(sha256Hex('a'.repeat(1000000))).toBe('cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  expect(toHex(hmacSha256('Jefe', 'what do ya want for nothing?')))
    .toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  expect(toHex(hmacSha256(new Uint8Array(131).fill(0xaa), 'Test Using Larger Than Block-Size Key - Hash Key First')))
    .toBe('60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
  expect(Array.from(utf8('口😀'))).toEqual([0xe5, 0x8f, 0xa3, 0xf0, 0x9f, 0x98, 0x80]);
});

test('the draw matches the test vector published in docs/fairness.md', () => {
  const seed = '65aa35ff1ca8e2dcffcced88e4f399d9541a08c69f0b04dfe26893f0e7ab1401';
  const people = Array.from({ length: 100 }, (_, i) => `p${String(i).padStart(3, '0')}`);
  const items = Array.from({ length: 12 }, (_, i) => `item${i}`);
  expect(fairness.commitment(seed)).toBe('bd82825783bc19056ea4c2726ab42666a042ffa76f4cb004448492736345ddd2');
  expect(fairness.participantsHash(people)).toBe('6fce44d645f3ef0102f218b50026ebebfbe509a2f9ecfc89b4d1fa8a35fe3785');
  expect(fairness.itemsHash(items)).toBe('ba9518dd2cf76c91b7afcff30c13473af388f0d32b9a6bfa5b00d974f8244bf5');
  expect(fairness.draw(seed, 'order-kat', people, items)).toEqual([3, 78, 49, 74, 5, 71, 23, 18, 88, 73, 84, 92]);
  expect(fairness.draw(seed, 'order-kat', people.slice(0, 3), ['a', 'b', 'c', 'd'])).toEqual([1, 0, 2]);
  expect(fairness.itemsHash(['口红', '蓝牙耳机'])).toBe('fc84bf88d2a0551604e2a3e1d2df5acd6e8b9572081208a56a9801a27c3b9d0b');
  expect(sha256Hex('gift-lottery/participant/v1|order-kat|o_member_1').slice(0, 20)).toBe('c7098043b617e54da1f6');
  // Version 2, with drand quicknet's round 3.
  const beacon = { chain_hash: fairness.QUICKNET.chain_hash, round: 3, status: 'verified',
    randomness: '7ef4621ace1c6da4eb2eee7cd901f81385bca5b189771ec0f08d0d2566dd1a21' };
  expect(fairness.draw(seed, 'order-kat', people, items, beacon)).toEqual([13, 95, 55, 47, 96, 15, 11, 17, 18, 97, 45, 35]);
  expect(fairness.draw(seed, 'order-kat', people.slice(0, 3), ['a', 'b', 'c', 'd'], beacon)).toEqual([0, 2, 1]);
});

test('a tiered draw matches the tiered test vector published in docs/fairness.md', () => {
  const seed = '65aa35ff1ca8e2dcffcced88e4f399d9541a08c69f0b04dfe26893f0e7ab1401';
  const people = Array.from({ length: 100 }, (_, i) => `p${String(i).padStart(3, '0')}`);
  /** @type {Array<[number, string]>} */
  const tiers = [[1, '一等奖'], [2, '二等奖'], [2, '二等奖']];
  const items = ['手机', '耳机', '耳机'];
  expect(fairness.itemsHash(items, tiers)).toBe('2886b1cdb4a831bd065e9cbdae0e268b3c343ddfb3e31f801cb79d2683c0bd81');
  expect(fairness.draw(seed, 'order-kat', people, items, null, tiers)).toEqual([77, 49, 70]);
});

test('the phone refuses every forgery the Python verifier refuses, failing exactly the checks named for it', () => {
  const forged = forgeries();
  /** @type {Record<string, object>} */
  const wrong = {};
  for (const [name, [proof, failing]] of Object.entries(forged)) {
    const checks = fairness.verify(proof);
    const failed = checks.filter((c) => !c.ok).map((c) => c.name).sort();
    if (JSON.stringify(failed) !== JSON.stringify(failing)) wrong[name] = checks;
  }
  expect(wrong).toEqual({});
  expect(Object.keys(forged)).toContain('a participant listed twice, hashes and winners recomputed');
});

test('the proof page recomputes a real draw and finds it matches; a changed proof does not', async () => {
  const sender = new Phone('proof_sender');
  await sender.app.services.api.login();
  const orderId = await adminGift(sender, { method: 'full', open_number: 3, items: [{ name: '口红' }, { name: '蓝牙耳机' }] });
  const members = [new Phone('proof_a'), new Phone('proof_b'), new Phone('proof_c')];
  for (const m of members) await joinByApi(m, orderId);
  await until(async () => (await giftOf(sender, orderId)).gift.status === 'finished', { what: 'the draw' });

  const result = members[0].open(`/pages/gift/result?order_id=${orderId}`);
  await result.waitText('查看开奖证明');
  await result.tap('#proof');
  const proof = members[0].open(await members[0].waitNavigation('/pages/gift/proof/proof'));
  await proof.waitText('一致：开奖结果可以验证');
  expect(proof.data.checks.map((c) => c.ok)).toEqual(Array(9).fill(true)); // with the numbers' and the beacon's
  expect(proof.text()).toContain('（你）'.length && proof.data.mine);
  expect(proof.data.winners).toHaveLength(2);

  const published = proof.data.proof;
  const swapped = { ...published, winners: published.winners.map((w, i) => ({ ...w, item_index: 1 - i })) };
  expect(fairness.verify(swapped).find((c) => c.name === 'winners').ok).toBe(false);
  expect(fairness.verify({ ...published, seed: '00'.repeat(32) }).find((c) => c.name === 'commitment').ok).toBe(false);
});
