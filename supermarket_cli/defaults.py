"""The default names of the AWS resources the CLI and the local stack use, the same on moto and
in an account, and the local Lambda runtime's polling. Each is written once, here; standard
library only, so `supermarket --help` stays light."""

DEFAULT_BUCKET = "supermarket-lake"  # LAKE_BUCKET
DEFAULT_QUEUE = "supermarket-ingest"  # INGEST_QUEUE, and its -dlq
DEFAULT_ALERT_TOPIC = "supermarket-alerts"  # ALERT_TOPIC

DEFAULT_BATCH_SIZE = 10  # SQS messages per invocation: SQS's own limit
DEFAULT_WAIT_SECONDS = 1  # SQS long poll

DEFAULT_DASHBOARD_PORT = 8050  # SUPERMARKET_DASHBOARD_PORT, and `supermarket dashboard --port`
