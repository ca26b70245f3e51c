"""Playwright drives Debian's chromium (scripts/test.sh installs it); it never downloads one."""

import pytest

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium's own connections are refused by the
# closed network here, and startup waits on them.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}}  # a laptop
