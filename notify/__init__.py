"""Messages to members: WeChat subscribe messages, the access tokens they need, and the worker that
delivers the notification queue."""
