"""`supermarket up`: the whole local system (moto, ingest, Lambda runtime, feed, Dagster) on one
machine, supervised by one process. Config from the environment, child processes, AWS
provisioning, the lake snapshot that keeps state between runs, and the status line each live
in their own module; `up.py` puts them together."""
