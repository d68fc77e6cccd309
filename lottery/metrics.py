"""The process's Prometheus metrics (prometheus-client). They are process-wide by nature (one
scrape per process), so they are module-level, the library's own idiom; counters only grow, so
tests that build several apps in one process compare before and after.

Labels are bounded sets (route names, methods, outcome codes, command names): never a path,
an id or a member."""
from prometheus_client import Counter, Gauge, Histogram

PREFIX = "gift_lottery_"
FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SLOW = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# HTTP and websockets (handlers/)
REQUEST_SECONDS = Histogram(PREFIX + "http_request_duration_seconds",
                            "HTTP request latency by route name, method and status",
                            ["route", "method", "status"], buckets=FAST)
WS_CONNECTIONS = Gauge(PREFIX + "ws_connections", "Open /ws connections")
WS_SUBSCRIPTIONS = Gauge(PREFIX + "ws_subscriptions", "Gifts followed over /ws, all connections together")
WS_FRAMES_SENT = Counter(PREFIX + "ws_frames_sent_total", "Frames sent on /ws by type", ["type"])
WS_SEND_DROPS = Counter(PREFIX + "ws_send_buffer_drops_total",
                        "Connections closed because their send buffer was full (a slow reader)")
RESULT_PUSH_SECONDS = Histogram(
    PREFIX + "result_push_seconds",
    "Seconds from a draw's commit until this process had queued the result to every watcher",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
RESULT_FANOUT_SECONDS = Histogram(
    PREFIX + "result_fanout_seconds",
    "Seconds this process spent writing one result to its watchers, first frame to last (turns of the loop included)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
CHANGE_STREAM_RESTARTS = Counter(PREFIX + "change_stream_restarts_total",
                                 "Times the live feed's change stream was opened again after an error")
LIVE_POLLING = Gauge(PREFIX + "live_polling", "1 while the live feed polls instead of following a change stream")

# The rules (lottery/)
JOINS = Counter(PREFIX + "joins_total", "Join attempts by opening method and outcome (joined or the refusal's code)",
                ["method", "outcome"])
JOIN_STEP_SIZE = Histogram(PREFIX + "join_step_size", "Joins of one gift admitted together in one step (group commit)",
                           buckets=(1, 2, 4, 8, 16))
DRAWS = Counter(PREFIX + "draws_total", "Gifts opened by this process, by opening method", ["method"])
DRAW_SECONDS = Histogram(PREFIX + "draw_duration_seconds", "Seconds one draw batch took, from taking to finishing",
                         buckets=SLOW)
OPEN_LATENESS_SECONDS = Histogram(PREFIX + "timed_open_lateness_seconds",
                                  "Seconds a timed gift opened after its open time", buckets=SLOW)
ORDERS = Counter(PREFIX + "orders_total", "Order requests by outcome (created, repeated or the refusal's code)",
                 ["outcome"])
PAYMENT_NOTIFIES = Counter(PREFIX + "payment_notifies_total",
                           "WeChat Pay notifies by kind (transaction, refund) and outcome", ["kind", "outcome"])
PAYMENTS = Counter(PREFIX + "payments_total",
                   "Payments applied to orders by outcome (paid, already_paid, paid_after_close, ...)", ["outcome"])
REFUNDS = Counter(PREFIX + "refunds_total", "Refund attempts and endings by outcome", ["outcome"])
RECONCILIATION_MISMATCHES = Gauge(PREFIX + "reconciliation_mismatches",
                                  "Mismatches with WeChat Pay's bill in the last day reconciled, by kind",
                                  ["kind"])
RECONCILIATION_SETTLED = Counter(PREFIX + "reconciliation_settled_total",
                                 "Orders paid at WeChat Pay that reconciliation settled (no notify had)")
RECONCILIATION_RUNS = Counter(PREFIX + "reconciliation_runs_total",
                              "Reconciliation runs by outcome (done, waiting, failed)", ["outcome"])
CLAIMS = Counter(PREFIX + "claims_total", "Claim transitions (claimed, shipped, delivered, expired)", ["transition"])

# Notifications (notify/)
NOTIFICATIONS = Counter(PREFIX + "notifications_total",
                        "Subscribe message attempts by outcome and WeChat errcode class", ["outcome", "errcode_class"])
CONTENT_CHECKS = Counter(PREFIX + "content_checks_total",
                         "User text checked by WeChat's msg_sec_check, by kind (wish, pass_phrase, nickname) "
                         "and verdict (pass, review, risky, unreachable)", ["kind", "verdict"])
RISK_REFUSALS = Counter(PREFIX + "risk_refusals_total",
                        "Joins refused because WeChat's user risk rank was at or above --risk_rank_refuse_at")
ACCESS_TOKEN_REFRESHES = Counter(PREFIX + "access_token_refreshes_total",
                                 "WeChat access tokens fetched from WeChat by this process, by outcome", ["outcome"])

# Backlogs: refreshed in the background by cheap index-served counts, never on a scrape.
BACKLOG = Gauge(PREFIX + "backlog", "Work waiting, by queue (counted up to a cap)", ["queue"])

# MongoDB (PyMongo command monitoring)
MONGO_COMMAND_SECONDS = Histogram(PREFIX + "mongodb_command_seconds", "MongoDB command latency by command name",
                                  ["command"], buckets=FAST)
MONGO_COMMAND_FAILURES = Counter(PREFIX + "mongodb_command_failures_total", "MongoDB commands that failed",
                                 ["command"])
