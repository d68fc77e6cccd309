"""`/metrics` in Prometheus' text format, served by its own application on `--metrics_port`
(never on the public port: it names routes, queues and rates an outsider has no business with)."""
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from tornado import web


class MetricsHandler(web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(REGISTRY))


def metrics_app() -> web.Application:
    return web.Application([(r"/metrics", MetricsHandler)])
