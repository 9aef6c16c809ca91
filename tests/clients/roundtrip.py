"""Uploads a 20 MiB object (multipart) and a 1 KiB one with boto3, downloads both and
compares them; prints what was used. Run by test_matrix.py under several boto3 installs.

usage: roundtrip.py ENDPOINT CA_FILE|- BUCKET ALGORITHM|- ACCESS_KEY SECRET_KEY
"""

import hashlib
import io
import json
import os
import sys

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MIB = 1024 * 1024

endpoint, ca, bucket, algorithm, access_key, secret_key = sys.argv[1:7]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=access_key,
    aws_secret_access_key=secret_key,
    region_name="us-east-1",
    verify=None if ca == "-" else ca,
    config=Config(s3={"addressing_style": "path"}),
)
extra = {} if algorithm == "-" else {"ChecksumAlgorithm": algorithm}
s3.create_bucket(Bucket=bucket)
big, small = os.urandom(20 * MIB), os.urandom(1024)
transfer = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB)
s3.upload_fileobj(io.BytesIO(big), bucket, "big", ExtraArgs=extra, Config=transfer)
s3.put_object(Bucket=bucket, Key="small", Body=small, **extra)
result = {"boto3": boto3.__version__, "botocore": botocore.__version__}
for key, data in (("big", big), ("small", small)):
    out = io.BytesIO()
    s3.download_fileobj(bucket, key, out, Config=transfer)
    assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(data).digest(), key
    head = s3.head_object(Bucket=bucket, Key=key, **({"ChecksumMode": "ENABLED"} if algorithm != "-" else {}))
    result[key] = {"etag": head["ETag"], "checksums": {k: v for k, v in head.items() if k.startswith("Checksum")}}
assert result["big"]["etag"].endswith('-3"'), result
print(json.dumps(result))
