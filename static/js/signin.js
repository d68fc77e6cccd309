// Who is signed in (the bar's corner) and the sign-in card a page shows when it needs a
// member: the development sign-in by name (--dev), or "open it in WeChat" otherwise.
import { auth, devSignIn, site } from './api.js';
import { h, toast } from './ui.js';

export function showWho() {
  const who = document.getElementById('who');
  const name = auth.name();
  who.replaceChildren(...(name ? [h('span', {}, name), h('button.bar__switch', {
    type: 'button',
    onclick: () => { auth.clear(); location.reload(); },
  }, '切换')] : []));
}

// Shows the sign-in card through `show(card)`: `prompt` above the name field in development
// mode, `inWeChat` without it. `onSignedIn()` runs once the member signed in.
export async function showSignIn({ show, prompt, inWeChat, onSignedIn }) {
  const info = await site().catch(() => ({ dev: false }));
  if (!info.dev) {
    show(h('section.card.card--result', {},
      h('div.result__title', {}, '请在微信中打开'),
      h('p.result__text', {}, inWeChat)));
    return;
  }
  const input = h('input.signin__input', { id: 'name', name: 'name', maxlength: 20, placeholder: '你的昵称', autocomplete: 'nickname', required: true });
  const form = h('form.signin', {
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await devSignIn(input.value);
        showWho();
        await onSignedIn();
      } catch (err) {
        toast(err.message);
      }
    },
  }, input, h('button.btn', { type: 'submit' }, '进入'));
  show(h('section.card.card--result', {},
    h('div.card__arc'),
    h('div.signin__title', {}, prompt),
    h('p.signin__note', {}, '开发模式：输入任意昵称即可登录，无需微信授权。'),
    form));
  input.focus();
}
