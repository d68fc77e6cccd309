// A small catalogue made through the operator's admin API, one per test file.
const { admin } = require('./phone');

let made = 0;

/** A category with products ({name, price (fen), stock}); returns their ids. */
async function catalogue(products = [{ name: '蓝牙耳机', price: 19900, stock: 50 }]) {
  made += 1;
  const { category_id: categoryId } = await admin('POST', '/api/admin/categories', { name: `好物${made}`, sort: made });
  const ids = [];
  for (const p of products) {
    const { product_id: id } = await admin('POST', '/api/admin/products', {
      ...p, category_id: categoryId, images: ['/static/img/products/coffee.svg'], description: `${p.name}，送给好友`,
    });
    ids.push(id);
  }
  return { categoryId, productIds: ids };
}

module.exports = { catalogue };
