"""One signed S3 request with boto3, for onc-pipe's integration tests (tests/it/s3.rs).

Argument: a JSON object
    {"endpoint", "access_key_id", "secret_access_key", "op", "bucket", "key"?, "body"?,
     "if_match"?, "if_none_match"?}
with op one of create_bucket, put, get, head, delete, list. Prints one JSON object:
    {"status": HTTP status, "code": S3 error code or null, "etag": ETag or null,
     "body": object text (get) or null, "keys": [keys] (list) or null,
     "seconds": time of the request itself, without Python's and boto3's start-up}

boto3 is an independent SigV4 signer: the tests use it to show that the server checks
signatures (and honours conditional writes) whoever signs, not only for our own client.
"""

import json
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def main():
    req = json.loads(sys.argv[1])
    s3 = boto3.client(
        "s3",
        endpoint_url=req["endpoint"],
        region_name="us-east-1",
        aws_access_key_id=req["access_key_id"],
        aws_secret_access_key=req["secret_access_key"],
        # A refused request is the answer under test: no retries to wait through.
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    op, bucket, key = req["op"], req["bucket"], req.get("key")
    out = {"status": None, "code": None, "etag": None, "body": None, "keys": None}
    # Builds the operation's model now, so that "seconds" times the request alone.
    s3.meta.service_model.operation_names
    started = time.perf_counter()
    try:
        if op == "create_bucket":
            r = s3.create_bucket(Bucket=bucket)
        elif op == "put":
            kwargs = {}
            if req.get("if_match") is not None:
                kwargs["IfMatch"] = req["if_match"]
            if req.get("if_none_match") is not None:
                kwargs["IfNoneMatch"] = req["if_none_match"]
            r = s3.put_object(
                Bucket=bucket, Key=key, Body=req.get("body", "").encode(), **kwargs
            )
        elif op == "get":
            r = s3.get_object(Bucket=bucket, Key=key)
            out["body"] = r["Body"].read().decode()
        elif op == "head":
            r = s3.head_object(Bucket=bucket, Key=key)
        elif op == "delete":
            r = s3.delete_object(Bucket=bucket, Key=key)
        elif op == "list":
            r = s3.list_objects_v2(Bucket=bucket, Prefix=key or "")
            out["keys"] = [o["Key"] for o in r.get("Contents", [])]
        else:
            raise SystemExit(f"unknown op {op!r}")
        out["status"] = r["ResponseMetadata"]["HTTPStatusCode"]
        out["etag"] = r.get("ETag")
    except ClientError as e:
        out["status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
        out["code"] = e.response.get("Error", {}).get("Code")
    out["seconds"] = time.perf_counter() - started
    print(json.dumps(out))


if __name__ == "__main__":
    main()
