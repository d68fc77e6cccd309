"""Outbound WeChat calls: login sessions, access tokens, subscribe messages."""
