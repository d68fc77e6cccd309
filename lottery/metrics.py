"""The process's Prometheus metrics (prometheus-client). They are process-wide by nature (one
scrape per process), so they are module-level, the library's own idiom; counters only grow, so
tests that build several apps in one process compare before and after."""
from prometheus_client import Histogram

RESULT_PUSH_SECONDS = Histogram(
    "gift_lottery_result_push_seconds",
    "Seconds from a draw's commit until this process had queued the result to every watcher",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
