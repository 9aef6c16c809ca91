"""Signature Version 2: presigned URLs as aws-cli v1 (`aws s3 presign`) and boto3
(`generate_presigned_url`) make them by default, fetched with curl; boto3 and s3cmd signing
every request with it; and `[auth] sigv2 = false` refusing it as AWS does."""

import hashlib
import os
import subprocess
import time

import boto3
from botocore.config import Config

from conftest import ACCESS_KEY, REGION, SECRET_KEY, Aws, Server, s3cmd_runner

MIB = 1024 * 1024


def v2_client(server, style: str):
    """boto3 signing every request with Signature Version 2."""
    kwargs = {"proxies": {"http": server.endpoint}} if style == "virtual" else {}
    return boto3.client(
        "s3",
        endpoint_url=server.vhost_endpoint if style == "virtual" else server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(signature_version="s3", s3={"addressing_style": style}, **kwargs),
    )


def default_client(server):
    """boto3 with a default configuration (what a user's script has)."""
    return boto3.client(
        "s3", endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    )


def curl(*args):
    p = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    body, _, status = p.stdout.rpartition(b"\n")
    return int(status), body


def test_default_presigned_urls_of_boto3_and_aws_cli(server, tmp_path):
    s3 = default_client(server)
    s3.create_bucket(Bucket="shared")
    body = os.urandom(3 * MIB)
    s3.put_object(Bucket="shared", Key="report 2026+.pdf", Body=body)

    url = s3.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "report 2026+.pdf"}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in url and "Signature=" in url, url
    status, got = curl(url)
    assert status == 200 and got == body

    # Response overrides are part of what is signed.
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": "shared", "Key": "report 2026+.pdf", "ResponseContentType": "application/x-report"},
        ExpiresIn=300,
    )
    p = subprocess.run(["curl", "-sS", "-D", "-", "-o", os.devnull, url], capture_output=True, text=True, timeout=60)
    assert "content-type: application/x-report" in p.stdout.lower(), p.stdout
    status, err = curl(url.replace("x-report", "x-other"))
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in err, err

    # A presigned PUT, then aws-cli v1's presign of what it wrote.
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "shared", "Key": "upload.bin"}, ExpiresIn=300)
    src = tmp_path / "upload.bin"
    src.write_bytes(os.urandom(MIB + 5))
    status, err = curl("-T", str(src), put_url)
    assert status == 200, err
    # Metadata signed into a presigned PUT travels in its query string and is stored.
    meta_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": "shared", "Key": "tagged.bin", "Metadata": {"colour": "red"}}, ExpiresIn=300,
    )
    status, err = curl("-T", str(src), meta_url)
    assert status == 200, err
    assert s3.head_object(Bucket="shared", Key="tagged.bin")["Metadata"] == {"colour": "red"}
    for style in ("path", "virtual"):
        aws = Aws(server, tmp_path, style)
        url = aws.run("s3", "presign", "s3://shared/upload.bin", "--expires-in", "300").stdout.strip()
        assert "AWSAccessKeyId=" in url, url
        if style == "virtual":
            status, got = curl("--proxy", server.endpoint, url)
        else:
            status, got = curl(url)
        assert status == 200 and hashlib.sha256(got).digest() == hashlib.sha256(src.read_bytes()).digest()

    # Expired, tampered with, or for another key: refused.
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "upload.bin"}, ExpiresIn=1)
    time.sleep(2)
    status, err = curl(expired)
    assert status == 403 and b"Request has expired" in err, err
    status, err = curl(url.replace("upload.bin", "report%202026%2B.pdf"))
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in err, err


def test_boto3_signing_every_request_with_sigv2(server):
    for style in ("path", "virtual"):
        s3 = v2_client(server, style)
        bucket = f"v2-{style}"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="dir/a b.txt", Body=b"hello", Metadata={"colour": "blue"}, ContentType="text/plain")
        got = s3.get_object(Bucket=bucket, Key="dir/a b.txt")
        assert got["Body"].read() == b"hello" and got["Metadata"] == {"colour": "blue"}
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")
        assert [o["Key"] for o in listed["Contents"]] == ["dir/a b.txt"]
        # Multipart: sub-resources (uploads, uploadId, partNumber) are signed.
        up = s3.create_multipart_upload(Bucket=bucket, Key="big")
        parts = []
        data = os.urandom(5 * MIB)
        for n, chunk in ((1, data), (2, b"tail")):
            r = s3.upload_part(Bucket=bucket, Key="big", UploadId=up["UploadId"], PartNumber=n, Body=chunk)
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
        assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == data + b"tail"
        s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "big"})
        deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in ("dir/a b.txt", "big", "copy")]})
        assert len(deleted["Deleted"]) == 3
        s3.delete_bucket(Bucket=bucket)


def test_s3cmd_with_signature_v2(server, tmp_path):
    s3cmd = s3cmd_runner(server, tmp_path, signature_v2=True)

    src = tmp_path / "file.bin"
    src.write_bytes(os.urandom(20 * MIB))
    s3cmd("mb", "s3://v2-s3cmd")
    s3cmd("put", str(src), "s3://v2-s3cmd/a file.bin")
    assert "a file.bin" in s3cmd("ls", "s3://v2-s3cmd/")
    down = tmp_path / "down.bin"
    s3cmd("get", "s3://v2-s3cmd/a file.bin", str(down))
    assert down.read_bytes() == src.read_bytes()
    s3cmd("del", "s3://v2-s3cmd/a file.bin")
    s3cmd("rb", "s3://v2-s3cmd")


def test_sigv2_can_be_turned_off(tmp_path, certs):
    (tmp_path / "off").mkdir()
    server = Server(tmp_path / "off", certs, extra="[auth]\nsigv2 = false\n")
    server.start()
    try:
        s3 = default_client(server)
        v4 = boto3.client(
            "s3", endpoint_url=server.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(signature_version="s3v4"),
        )
        v4.create_bucket(Bucket="off")
        v4.put_object(Bucket="off", Key="k", Body=b"x")
        status, err = curl(s3.generate_presigned_url("get_object", Params={"Bucket": "off", "Key": "k"}))
        assert status == 400 and b"<Code>InvalidRequest</Code>" in err, err
        assert b"Please use AWS4-HMAC-SHA256" in err
        status, got = curl(v4.generate_presigned_url("get_object", Params={"Bucket": "off", "Key": "k"}))
        assert status == 200 and got == b"x"
    finally:
        server.stop()
