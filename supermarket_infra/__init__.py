"""What deploys the lake to AWS: the generated part of infra/template.yaml, the Lambda's zip,
and the production Dagster instance."""
