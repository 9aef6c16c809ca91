"""The client compatibility matrix: every client, in its default settings (and the variants
AWS users run), uploads and downloads a 20 MiB multipart object and a small one through
s3d, over plain HTTP and HTTPS where the client supports it. Contents are compared.
The Rust SDK's rows (file bodies over HTTP and HTTPS) are in tests/it (checksum.rs, tls.rs).
"""

import hashlib
import json
import os
import pathlib
import subprocess

import boto3
import pytest
from botocore.config import Config

from conftest import ACCESS_KEY, REGION, SECRET_KEY, Aws

MIB = 1024 * 1024
HERE = pathlib.Path(__file__).parent


def venv_python(var: str) -> str:
    path = os.environ.get(var)
    if not path:
        pytest.fail(f"{var} is not set: run the suite through scripts/test, which installs it")
    return str(pathlib.Path(path) / "bin" / "python")


def roundtrip(python: str, endpoint: str, ca, bucket: str, algorithm: str = "-") -> dict:
    p = subprocess.run(
        [python, str(HERE / "roundtrip.py"), endpoint, str(ca) if ca else "-", bucket, algorithm, ACCESS_KEY, SECRET_KEY],
        capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY")},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_boto3_latest_default_settings(server, scheme):
    import sys
    endpoint = server.endpoint if scheme == "http" else server.tls_endpoint
    r = roundtrip(sys.executable, endpoint, server.ca if scheme == "https" else None, f"boto-{scheme}")
    assert int(r["boto3"].split(".")[1]) >= 36


@pytest.mark.parametrize("algorithm", ["CRC32C", "CRC64NVME"])
def test_boto3_with_awscrt(server, algorithm):
    r = roundtrip(venv_python("CLIENT_VENV_CRT"), server.tls_endpoint, server.ca, f"crt-{algorithm.lower()}", algorithm)
    assert f"Checksum{algorithm}" in r["small"]["checksums"], r


def test_boto3_before_checksums(server):
    r = roundtrip(venv_python("CLIENT_VENV_OLD"), server.tls_endpoint, server.ca, "boto-old")
    assert r["boto3"].startswith("1.35."), r
    roundtrip(venv_python("CLIENT_VENV_OLD"), server.endpoint, None, "boto-old-http")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_aws_cli_cp(server, tmp_path, scheme):
    aws = Aws(server, tmp_path, "path", tls=scheme == "https")
    aws.run("s3", "mb", f"s3://cli-{scheme}")
    for name, size in (("big", 20 * MIB), ("small", 1024)):
        src = tmp_path / name
        src.write_bytes(os.urandom(size))
        aws.run("s3", "cp", str(src), f"s3://cli-{scheme}/{name}")
        back = tmp_path / f"{name}.back"
        aws.run("s3", "cp", f"s3://cli-{scheme}/{name}", str(back))
        assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()
    head = aws.json("s3api", "head-object", "--bucket", f"cli-{scheme}", "--key", "big")
    assert head["ETag"].endswith('-3"')


def test_gzip_content_encoding_over_https(server):
    s3 = boto3.client(
        "s3", endpoint_url=server.tls_endpoint, verify=str(server.ca), region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}),
    )
    s3.create_bucket(Bucket="gzip-bucket")
    payload = os.urandom(300_000)
    # boto3 sends Content-Encoding: gzip,aws-chunked; only gzip belongs to the object.
    s3.put_object(Bucket="gzip-bucket", Key="k", Body=payload, ContentEncoding="gzip")
    got = s3.get_object(Bucket="gzip-bucket", Key="k")
    assert got["ResponseMetadata"]["HTTPHeaders"]["content-encoding"] == "gzip"
    assert got["ContentEncoding"] == "gzip"
    assert got["Body"].read() == payload


def test_presigned_get_and_put_with_curl(server, tmp_path):
    s3 = boto3.client(
        "s3", endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
    s3.create_bucket(Bucket="presigned")
    for name, size in (("big", 20 * MIB), ("small", 1024)):
        src = tmp_path / name
        src.write_bytes(os.urandom(size))
        put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "presigned", "Key": name}, ExpiresIn=300)
        p = subprocess.run(["curl", "-sS", "-f", "-T", str(src), put_url], capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
        get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": name}, ExpiresIn=300)
        back = tmp_path / f"{name}.back"
        p = subprocess.run(["curl", "-sS", "-f", "-o", str(back), get_url], capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()
    # An expired URL is refused.
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "small"}, ExpiresIn=1)
    import time
    time.sleep(2)
    p = subprocess.run(["curl", "-sS", expired], capture_output=True, text=True, timeout=60)
    assert "<Code>AccessDenied</Code>" in p.stdout and "Request has expired" in p.stdout, p.stdout
