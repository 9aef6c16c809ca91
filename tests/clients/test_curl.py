"""curl --aws-sigv4 against s3d, sending the CreateMultipartUpload specification's example request
virtual-host style.

curl 7.88 signs a bare `?uploads` as `uploads` instead of `uploads=` and sends no
x-amz-content-sha256, so the requests use `?uploads=` and add the header.
"""

import re
import subprocess

from conftest import ACCESS_KEY, REGION, SECRET_KEY, REGIONAL_DOMAIN

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def curl(*args):
    cmd = [
        "curl", "-sS", "-i",
        "--aws-sigv4", f"aws:amz:{REGION}:s3",
        "--user", f"{ACCESS_KEY}:{SECRET_KEY}",
        *args,
    ]
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body.decode()


def test_specification_request_virtual_host(server):
    status, _, body = curl("-X", "PUT", "-H", f"x-amz-content-sha256: {EMPTY_SHA256}", f"{server.endpoint}/oss-example")
    assert status == 200, body

    host = f"oss-example.{REGIONAL_DOMAIN}"
    status, headers, body = curl(
        "-X", "POST",
        "-H", f"x-amz-content-sha256: {EMPTY_SHA256}",
        "--resolve", f"{host}:{server.port}:127.0.0.1",
        f"http://{host}:{server.port}/example-object?uploads=",
    )
    assert status == 200, body
    assert headers["server"] == "s3d"
    assert re.fullmatch(r"[0-9A-F]{16}", headers["x-amz-request-id"])
    assert headers["content-type"] == "application/xml"
    assert int(headers["content-length"]) == len(body.encode())
    m = re.fullmatch(
        r'<\?xml version="1.0" encoding="UTF-8"\?>\n'
        r'<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        r"<Bucket>oss-example</Bucket><Key>example-object</Key><UploadId>([A-Za-z0-9_-]{32})</UploadId>"
        r"</InitiateMultipartUploadResult>",
        body,
    )
    assert m, body

    status, _, body = curl("-H", f"x-amz-content-sha256: {EMPTY_SHA256}", f"{server.endpoint}/oss-example?uploads=")
    assert status == 200
    assert f"<UploadId>{m.group(1)}</UploadId>" in body
    assert "<StorageClass>STANDARD</StorageClass>" in body


def test_missing_payload_hash_is_refused(server):
    status, _, body = curl("-X", "PUT", f"{server.endpoint}/no-hash-bucket")
    assert status == 400, body
    assert "<Code>InvalidRequest</Code>" in body
    assert "x-amz-content-sha256" in body
