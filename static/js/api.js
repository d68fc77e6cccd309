// The pages' one way to reach the server: JSON over fetch, the login key kept in
// localStorage, and the server's clock (from the Date header) for countdowns.

const KEY = 'giftLottery.loginKey';
const NAME = 'giftLottery.name';

export const auth = {
  key: () => localStorage.getItem(KEY),
  name: () => localStorage.getItem(NAME) || '',
  save(loginKey, name) {
    localStorage.setItem(KEY, loginKey);
    localStorage.setItem(NAME, name);
  },
  clear() {
    localStorage.removeItem(KEY);
    localStorage.removeItem(NAME);
  },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Milliseconds to add to Date.now() to get the server's time (one-second resolution).
let clockOffset = 0;
export const serverNow = () => Date.now() + clockOffset;

function learnClock(response) {
  const date = Date.parse(response.headers.get('Date') || '');
  // A gap under 1.5 s is the header's own rounding, not skew.
  if (!Number.isNaN(date) && Math.abs(date - Date.now()) > 1500) clockOffset = date - Date.now();
}

// `api('GET', '/api/v1/gifts/x')` -> the parsed answer, or throws ApiError (the server's
// Chinese message; status 0 when the network failed). `headers`: extra request headers
// (an Idempotency-Key).
export async function api(method, path, body, { headers: extra = {} } = {}) {
  const headers = { ...extra };
  const key = auth.key();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'network', '网络不给力，请稍后再试');
  }
  learnClock(response);
  let answer = null;
  try {
    answer = await response.json();
  } catch (err) {
    answer = null;
  }
  if (!response.ok) {
    const error = (answer && answer.error) || {};
    if (response.status === 401) auth.clear();
    throw new ApiError(response.status, error.code || 'http', error.message || '服务器开小差了，请稍后再试');
  }
  return answer;
}

export const site = () => api('GET', '/api/site');

export async function devSignIn(name) {
  const answer = await api('POST', '/api/dev/login', { name });
  auth.save(answer.login_key, answer.name);
  return answer.name;
}
