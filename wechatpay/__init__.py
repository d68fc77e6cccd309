"""WeChat Pay API v3: the client (JSAPI payments, queries, closes, refunds, notifies) and its
cryptography."""
