"""The waiting page outlives its server: the process dies, the page says it is reconnecting,
a new process starts on the same port, and the page catches up to the result."""
import uuid

from playwright.sync_api import expect

from tests.pages.browser import NO_WECHAT, Site
from tests.servers import ServerProcess, uri_with_db


def test_the_waiting_page_survives_a_server_restart(engine_uri, people):
    uri = uri_with_db(engine_uri, "pages_" + uuid.uuid4().hex[:12])
    first = ServerProcess(uri, NO_WECHAT, "--dev", "--sweep_seconds=0.5").start()
    second = None
    try:
        site = Site(first)
        order_id = site.create_gift(method="full", open_number=2, items=[{"name": "保温杯"}])
        erin = people(site, "小艾").open(f"/gift/{order_id}")
        erin.page.click(".btn-join")
        # A fresh server process on a loaded machine may take longer than the default 5 s.
        expect(erin.page.locator("#progress")).to_have_text("1/2 人已参与", timeout=30000)
        expect(erin.page.locator("#conn")).to_have_attribute("data-state", "open")
        erin.mark_document()

        # While nothing listens, the browser logs its refused connection attempts (and a load the
        # kill cut short, reset).
        erin.allow_errors(r"ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|WebSocket connection to .* failed")
        first.kill()
        conn = erin.page.locator("#conn")
        expect(conn).to_have_attribute("data-state", "reconnecting")
        expect(conn).to_be_visible()
        expect(conn).to_contain_text("正在重连")
        erin.screenshot("wait-reconnecting")

        second = ServerProcess(uri, NO_WECHAT, "--dev", "--sweep_seconds=0.5", port=first.port).start()
        # The second seat is taken while the page is (re)connecting to the new process.
        site.join(site.sign_in("小飞"), order_id)
        expect(erin.page.locator("#outcome[data-outcome=won], #outcome[data-outcome=lost]")).to_be_visible(
            timeout=30000)
        expect(conn).to_have_attribute("data-state", "open")
        assert erin.same_document()
    finally:
        first.stop()
        if second is not None:
            second.stop()
