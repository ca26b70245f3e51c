"""The Lambda: S3 notifications -> the one transform -> lake rows, quarantine, audit records.

Deployed with lake_contract; imports only the standard library, boto3 and pyarrow.
"""
