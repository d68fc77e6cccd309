"""One way for every handler, HTTP and websocket alike, to reach every service: a typed
property each over the `Services` the app was built with (services.py)."""
from typing import Any

from lottery.accounts import Accounts
from lottery.admin_actions import AdminActions
from lottery.audit import AuditLog
from lottery.catalogue import Catalogue
from lottery.claims import Claims
from lottery.dashboard import Dashboard
from lottery.draw import Draws
from lottery.gifts import Gifts
from lottery.health import Health
from lottery.live.hub import LiveHub
from lottery.notifications import Notifications
from lottery.operators import Operators
from lottery.orders import Orders
from lottery.profiles import Profiles
from lottery.reconciliation import Reconciliation
from lottery.refunds import Refunds
from lottery.roster import Roster
from lottery.storage.backup import Backups


class ServiceAccess:
    """Every service the app was built with (server.make_app), one typed property each."""

    settings: dict[str, Any]

    @property
    def accounts(self) -> Accounts:
        return self.settings["accounts"]

    @property
    def gifts(self) -> Gifts:
        return self.settings["gifts"]

    @property
    def draws(self) -> Draws:
        return self.settings["draws"]

    @property
    def profiles(self) -> Profiles:
        return self.settings["profiles"]

    @property
    def roster(self) -> Roster:
        return self.settings["roster"]

    @property
    def notifications(self) -> Notifications:
        return self.settings["notifications"]

    @property
    def hub(self) -> LiveHub:
        return self.settings["hub"]

    @property
    def health(self) -> Health:
        return self.settings["health"]

    @property
    def backups(self) -> Backups:
        return self.settings["backups"]

    @property
    def catalogue(self) -> Catalogue:
        return self.settings["catalogue"]

    @property
    def orders(self) -> Orders:
        return self.settings["orders"]

    @property
    def claims(self) -> Claims:
        return self.settings["claims"]

    @property
    def refunds(self) -> Refunds:
        return self.settings["refunds"]

    @property
    def reconciliation(self) -> Reconciliation:
        return self.settings["reconciliation"]

    @property
    def operators(self) -> Operators:
        return self.settings["operators"]

    @property
    def audit(self) -> AuditLog:
        return self.settings["audit"]

    @property
    def admin_actions(self) -> AdminActions:
        return self.settings["admin_actions"]

    @property
    def dashboard(self) -> Dashboard:
        return self.settings["dashboard"]
