"""How long the live feed may be quiet: the freshness policy's windows, shared by every reader."""

# The feed lands a file every second or so: two quiet minutes is odd, five is a stalled feed.
WARN_AFTER_SECONDS = 120
FAIL_AFTER_SECONDS = 300
