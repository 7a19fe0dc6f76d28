"""Browser-test support: the running rental manager a test talks to, and one browser profile per person."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page

ADMIN_PASSWORD = "admin password 123"


@dataclass
class RentalServer:
    """A running `rental-manager all` and its configured admin."""

    base: str
    admin_email: str
    log: Path


@dataclass
class Browsers:
    """Separate browser profiles (cookie jars) for the people of one test."""

    browser: Browser
    base: str
    contexts: list[BrowserContext] = field(default_factory=list)
    pages: dict[str, Page] = field(default_factory=dict)

    def page(self, name: str) -> Page:
        """The page of the profile `name`, opened on first use."""
        if name not in self.pages:
            context = self.browser.new_context(base_url=self.base, viewport={"width": 1280, "height": 900})
            context.set_default_timeout(20_000)
            self.contexts.append(context)
            self.pages[name] = context.new_page()
        return self.pages[name]
