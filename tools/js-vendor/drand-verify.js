// What the proof pages need from elliptic curves: does a drand round's signature (unchained, on
// G1 of BLS12-381, scheme bls-unchained-g1-rfc9380) verify against a chain's public key, and does
// a join receipt's Ed25519 signature verify against the server's receipt key? Bundled with
// esbuild (build.mjs) into static/js/vendor/ (ESM) and miniprogram/utils/vendor/ (CommonJS).
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';

const DST = 'BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_';
const bls = bls12_381.shortSignatures;

const fromHex = (hex) => {
  if (typeof hex !== 'string' || hex.length % 2 || /[^0-9a-f]/.test(hex)) throw new Error('not lowercase hex');
  return new Uint8Array(hex.match(/../g).map((pair) => parseInt(pair, 16)));
};

// The message of round r: SHA-256 of r as an 8-byte big-endian integer.
export function roundMessage(round) {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(round), false);
  return sha256(bytes);
}

// Whether signatureHex is the chain's (publicKeyHex, compressed G2) signature of `round`.
export function verifyRound(publicKeyHex, round, signatureHex) {
  if (!Number.isSafeInteger(round) || round < 1) return false;
  try {
    const signature = bls12_381.G1.Point.fromBytes(fromHex(signatureHex));
    const publicKey = bls12_381.G2.Point.fromBytes(fromHex(publicKeyHex));
    return bls.verify(signature, bls.hash(roundMessage(round), DST), publicKey);
  } catch (err) {
    return false; // not a point of the group: not a signature
  }
}

// SHA-256 (hex), for the randomness of a round (SHA-256 of its signature) where WebCrypto is absent.
export function sha256Hex(hex) {
  return Array.from(sha256(fromHex(hex)), (b) => b.toString(16).padStart(2, '0')).join('');
}

const fromBase64 = (text) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const clean = String(text).replace(/=+$/, '');
  const bytes = [];
  let bits = 0;
  let value = 0;
  for (const char of clean) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error('not base64');
    value = (value << 6) | index;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >> bits) & 0xff);
    }
  }
  return new Uint8Array(bytes);
};

// Whether a join receipt {gift, participant, sequence, signature (base64)} is signed by the
// receipt key publicKeyHex (Ed25519), over "gift-lottery/receipt/v1|<gift>|<participant>|<sequence>".
export function verifyReceipt(publicKeyHex, receipt) {
  try {
    const text = `gift-lottery/receipt/v1|${receipt.gift}|${receipt.participant}|${receipt.sequence}`;
    if (/[^\x20-\x7e]/.test(text)) return false; // ids and pseudonyms are ASCII
    const message = Uint8Array.from(text, (char) => char.charCodeAt(0));
    return ed25519.verify(fromBase64(receipt.signature), message, fromHex(publicKeyHex));
  } catch (err) {
    return false;
  }
}
