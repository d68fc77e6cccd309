// The shop's pages, one document routed by its path as gift.html is: /shop (the catalogue),
// /shop/product/{id}, /shop/new (the create-gift form), /orders/{order_id}/pay (the pay
// step), /orders/{order_id} (the pay result, then the share link) and /me/prizes (my prizes).
import { showGiftForm } from './gift-form.js';
import { showPayResult, showPayStep } from './order-page.js';
import { showPrizes } from './prizes-page.js';
import { showProduct, showShop } from './shop-catalogue.js';
import { showWho } from './signin.js';

// The server serves this page only at the paths above, so the path is well formed.
const [, section, part, view] = location.pathname.replace(/\/$/, '').split('/');

function bar(title, back) {
  document.getElementById('bar-title').textContent = title;
  document.getElementById('back').setAttribute('href', back);
}

function start() {
  showWho();
  const preselected = new URLSearchParams(location.search).get('product');
  if (section === 'me') {
    bar('我的奖品', '/');
    showPrizes();
  } else if (section === 'orders' && view === 'pay') {
    bar('支付订单', '/shop');
    showPayStep(part);
  } else if (section === 'orders') {
    bar('支付结果', '/shop');
    showPayResult(part);
  } else if (part === 'product') {
    bar('商品详情', '/shop');
    showProduct(view);
  } else if (part === 'new') {
    bar('创建礼物', preselected ? `/shop/product/${encodeURIComponent(preselected)}` : '/shop');
    showGiftForm(preselected);
  } else {
    bar('礼物商城', '/');
    showShop();
  }
}

start();
