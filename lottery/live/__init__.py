"""Live gift state for waiting pages. `feed.GiftFeed` turns the gifts collection into typed
changes (a change stream, or polling where there is none); `hub.LiveHub` keeps the
subscriptions, coalesces progress, reads a gift once for all its watchers and sends each its
frame; `frames` encodes them. The protocol is in docs/realtime.md."""
