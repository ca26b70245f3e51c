"""How long the live feed may stay quiet: WARN after two minutes, FAIL after five."""

WARN_AFTER_SECONDS = 120
FAIL_AFTER_SECONDS = 300
