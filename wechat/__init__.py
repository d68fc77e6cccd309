"""The WeChat mini-program API: login (jscode2session), access tokens, subscribe messages, and
the user data WeChat encrypts with a member's session key."""
