// The catalogue: /shop (categories, then the products on sale a page at a time) and
// /shop/product/{id} (one product, and the way to give it). Prices are fen.
import { api, ApiError } from './api.js';
import { formatPrice, h, showView } from './ui.js';

const FALLBACK_IMAGE = '/static/img/icon.svg';

// A product's (or an order line's) picture, or the site's icon.
export function productImage(entry) {
  if (entry.images) return entry.images[0] || FALLBACK_IMAGE;
  return entry.image || FALLBACK_IMAGE;
}

// Every product on sale, page after page (at most `maxPages` pages of 20).
export async function allProducts(maxPages = 25) {
  const products = [];
  let cursor = '';
  for (let page = 0; page < maxPages; page += 1) {
    const answer = await api('GET', `/api/v1/products${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
    products.push(...answer.products);
    if (!answer.next_cursor) break;
    cursor = answer.next_cursor;
  }
  return products;
}

// A page that could not load: what went wrong, and the way back to the shop.
export function showFailure(title, message) {
  showView('missing', title, h('section.card.card--result', {},
    h('div.result__title', { id: 'failure' }, title),
    h('p.result__text', {}, message),
    h('a.btn', { href: '/shop' }, '返回商城')));
}

function stockText(product) {
  return product.stock > 0 ? `库存 ${product.stock}` : '已售罄';
}

function productTile(product) {
  return h('li.product', { 'data-product': product.product_id },
    h('a.product__link', { href: `/shop/product/${product.product_id}` },
      h('img.product__image', { src: productImage(product), alt: '' }),
      h('span.product__name', {}, product.name),
      h('span.product__meta', {},
        h('span.product__price', {}, formatPrice(product.price)),
        h('span.product__stock', {}, stockText(product)))));
}

export async function showShop() {
  let categories;
  try {
    ({ categories } = await api('GET', '/api/v1/categories'));
  } catch (err) {
    showFailure('加载失败', err.message);
    return;
  }
  const grid = h('ul.products', { id: 'products' });
  const more = h('button.more', { type: 'button', id: 'more', hidden: true }, '加载更多');
  const tabs = h('nav.tabs', { id: 'categories', 'aria-label': '商品分类' });
  const state = { category: new URLSearchParams(location.search).get('category') || '', cursor: null, request: 0 };
  if (state.category && !categories.some((c) => c.category_id === state.category)) state.category = '';

  const renderTabs = () => tabs.replaceChildren(...[{ category_id: '', name: '全部' }, ...categories].map((c) => h('button.tab', {
    type: 'button', 'data-category': c.category_id, 'aria-pressed': String(c.category_id === state.category),
    onclick: () => choose(c.category_id),
  }, c.name)));

  // One page of the chosen category; an answer for a category no longer chosen is dropped.
  async function loadPage() {
    const request = ++state.request;
    const query = new URLSearchParams();
    if (state.category) query.set('category', state.category);
    if (state.cursor) query.set('cursor', state.cursor);
    more.disabled = true;
    let answer;
    try {
      answer = await api('GET', `/api/v1/products${query.toString() ? `?${query}` : ''}`);
    } catch (err) {
      if (request !== state.request) return;
      grid.replaceChildren(h('li.empty', {}, err.message));
      more.hidden = true;
      return;
    }
    if (request !== state.request) return;
    if (!state.cursor && !answer.products.length) grid.replaceChildren(h('li.empty', {}, '这个分类还没有商品'));
    else grid.append(...answer.products.map(productTile));
    state.cursor = answer.next_cursor;
    more.hidden = !state.cursor;
    more.disabled = false;
  }

  function choose(categoryId) {
    state.category = categoryId;
    state.cursor = null;
    history.replaceState(null, '', categoryId ? `/shop?category=${encodeURIComponent(categoryId)}` : '/shop');
    renderTabs();
    grid.replaceChildren();
    loadPage();
  }

  more.addEventListener('click', loadPage);
  renderTabs();
  showView('shop', '礼物商城',
    h('section.card.card--shop', {},
      h('div.card__arc'),
      h('h1.shop__title', {}, '挑一份礼物，分享给好友来抽'),
      h('p.shop__text', {}, '付款后把链接发给好友：直接送礼、满人开奖或定时开奖。'),
      h('a.btn', { href: '/shop/new', id: 'new-gift' }, '创建礼物')),
    tabs, grid, more);
  await loadPage();
}

export async function showProduct(productId) {
  let product;
  try {
    product = await api('GET', `/api/v1/products/${productId}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) showFailure('商品不存在', '这件商品不存在或已下架');
    else showFailure('加载失败', err.message);
    return;
  }
  const soldOut = product.stock <= 0;
  showView('product', product.name,
    h('section.panel.detail', { 'data-product': product.product_id },
      h('img.detail__image', { src: productImage(product), alt: product.name }),
      h('h1.detail__name', { id: 'product-name' }, product.name),
      h('div.detail__price', { id: 'product-price' }, formatPrice(product.price)),
      h('div.detail__stock', {}, soldOut ? '已售罄' : `库存 ${product.stock} 件`),
      product.description ? h('p.detail__text', {}, product.description) : null),
    h('section.panel', {},
      h('h2.panel__title', {}, '怎么送'),
      h('p.panel__text', {}, '选好数量和开奖方式并付款，把链接分享给好友，好友点开就能参与，开奖后中奖的人领走礼物。')),
    h('div.actionbar', {},
      h('span.actionbar__price', {}, formatPrice(product.price)),
      soldOut
        ? h('button.btn.btn--primary', { type: 'button', disabled: true }, '已售罄')
        : h('a.btn.btn--primary', { id: 'give', href: `/shop/new?product=${encodeURIComponent(product.product_id)}` }, '送给好友抽奖')));
}
