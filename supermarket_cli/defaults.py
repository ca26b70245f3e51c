"""The default names of the AWS resources the CLI and the local stack use, the same on moto and
in an account, and the local Lambda runtime's polling. Each is written once, here; standard
library only, so `supermarket --help` stays light."""

DEFAULT_BUCKET = "supermarket-lake"  # LAKE_BUCKET
DEFAULT_QUEUE = "supermarket-ingest"  # INGEST_QUEUE, and its -dlq
DEFAULT_ALERT_TOPIC = "supermarket-alerts"  # ALERT_TOPIC

DEFAULT_BATCH_SIZE = 10  # SQS messages per invocation: SQS's own limit
DEFAULT_WAIT_SECONDS = 1  # SQS long poll
DEFAULT_CONCURRENCY = 2  # batches in flight: a large file never holds small ones behind it, and
# few committers take turns at the commit lock (each waits for the others' commits)
# The local queue's visibility timeout (seconds): the runtime's heartbeat extends a batch still
# running every third of it, so a batch whose runtime died is retried within this long. In AWS
# the event source mapping extends nothing: the template's queue needs at least 6x the
# function's Timeout instead (AWS's guidance), and a crashed batch waits that long.
DEFAULT_VISIBILITY_TIMEOUT = 10

DEFAULT_DASHBOARD_PORT = 8050  # SUPERMARKET_DASHBOARD_PORT, and `supermarket dashboard --port`
