// @ts-check
// The WeChat calls a page makes for the member (payment, subscribe messages, address), as
// promises over the injected `wx`, each turning WeChat's errMsg into what the page needs.

/** Pay with the server's parameters (exactly what `wx.requestPayment` takes). Resolves 'paid' or
 * 'cancelled' (the order stays payable until it expires); rejects with a Chinese message otherwise.
 * @param {WechatMiniprogram.Wx} wx
 * @param {{timeStamp: string, nonceStr: string, package: string, signType: string, paySign: string}} pay
 * @returns {Promise<'paid' | 'cancelled'>} */
function requestPayment(wx, pay) {
  return new Promise((resolve, reject) => {
    wx.requestPayment({
      timeStamp: pay.timeStamp,
      nonceStr: pay.nonceStr,
      package: pay.package,
      signType: /** @type {any} */ (pay.signType),
      paySign: pay.paySign,
      success: () => resolve('paid'),
      fail: (err) => {
        if (/cancel/.test(err.errMsg || '')) resolve('cancelled');
        else reject(new Error('支付没有完成，请稍后再试'));
      },
    });
  });
}

/** Ask to subscribe to `templateIds`. Must be called synchronously inside a tap handler (WeChat
 * refuses it anywhere else). Resolves the ids the member accepted; a refusal, "always refuse"
 * or any failure is [] and changes nothing else.
 * @param {WechatMiniprogram.Wx} wx
 * @param {string[]} templateIds
 * @returns {Promise<string[]>} */
function askSubscribe(wx, templateIds) {
  const ids = (templateIds || []).filter(Boolean).slice(0, 3); // WeChat takes at most 3 at once
  if (!ids.length) return Promise.resolve([]);
  return new Promise((resolve) => {
    wx.requestSubscribeMessage({
      tmplIds: ids,
      success: (res) => resolve(ids.filter((id) => /** @type {any} */ (res)[id] === 'accept')),
      fail: () => resolve([]),
    });
  });
}

/**
 * @typedef {{userName: string, telNumber: string, provinceName: string, cityName: string,
 *   countyName: string, detailInfo: string, postalCode?: string}} Address
 */

/** `wx.chooseAddress` (declared in app.json's requiredPrivateInfos). Resolves the address, or
 * null when the member closed the picker; rejects with a Chinese message when not allowed.
 * @param {WechatMiniprogram.Wx} wx
 * @returns {Promise<Address | null>} */
function chooseAddress(wx) {
  return new Promise((resolve, reject) => {
    wx.chooseAddress({
      success: (res) => resolve({
        userName: res.userName, telNumber: res.telNumber, provinceName: res.provinceName, cityName: res.cityName,
        countyName: res.countyName, detailInfo: res.detailInfo, postalCode: res.postalCode || undefined,
      }),
      fail: (err) => {
        if (/cancel/.test(err.errMsg || '')) resolve(null);
        else reject(new Error('无法读取收货地址，请在设置中允许使用通讯地址'));
      },
    });
  });
}

/** The group chat this page was opened from: `wx.getGroupEnterInfo`'s `{iv, encryptedData}` (the
 * server decrypts it with the member's session key; outside a group it holds no opengid), or
 * null when WeChat refused (not opened from a chat, base library too old).
 * @param {WechatMiniprogram.Wx} wx
 * @returns {Promise<{iv: string, encryptedData: string} | null>} */
function groupEnterInfo(wx) {
  return new Promise((resolve) => {
    wx.getGroupEnterInfo({
      success: (res) => resolve({ iv: res.iv, encryptedData: res.encryptedData }),
      fail: () => resolve(null),
    });
  });
}

module.exports = { requestPayment, askSubscribe, chooseAddress, groupEnterInfo };
