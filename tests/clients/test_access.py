"""Access control with real clients: CORS rules set with boto3, a browser-style preflight and a
cross-origin GET with curl."""

import subprocess

from conftest import boto3_client


def curl_headers(*args):
    p = subprocess.run(["curl", "-sS", "-D", "-", "-o", "/dev/null", *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.replace("\r", "").split("\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return status, headers


def test_cors_preflight_and_cross_origin_get(server):
    s3 = boto3_client(server, "path")
    s3.create_bucket(Bucket="site")
    s3.put_bucket_cors(
        Bucket="site",
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": ["https://app.example.com"],
                    "AllowedMethods": ["GET", "PUT"],
                    "AllowedHeaders": ["content-type", "x-amz-*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 300,
                }
            ]
        },
    )
    assert s3.get_bucket_cors(Bucket="site")["CORSRules"][0]["MaxAgeSeconds"] == 300
    s3.put_object(Bucket="site", Key="index.html", Body=b"<p>hi</p>")
    url = f"{server.endpoint}/site/index.html"

    # What a browser sends before a cross-origin PUT with custom headers: no credentials.
    status, h = curl_headers(
        "-X", "OPTIONS", url,
        "-H", "Origin: https://app.example.com",
        "-H", "Access-Control-Request-Method: PUT",
        "-H", "Access-Control-Request-Headers: content-type,x-amz-date",
    )
    assert status == 200
    assert h["access-control-allow-origin"] == "https://app.example.com"
    assert h["access-control-allow-methods"] == "GET, PUT"
    assert h["access-control-allow-headers"] == "content-type, x-amz-date"
    assert h["access-control-max-age"] == "300"
    status, _ = curl_headers(
        "-X", "OPTIONS", url, "-H", "Origin: https://evil.test", "-H", "Access-Control-Request-Method: GET",
    )
    assert status == 403

    # The cross-origin GET itself (signed in its URL) carries the rule's headers.
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "site", "Key": "index.html"}, ExpiresIn=300)
    status, h = curl_headers(get_url, "-H", "Origin: https://app.example.com")
    assert status == 200
    assert h["access-control-allow-origin"] == "https://app.example.com"
    assert h["access-control-expose-headers"] == "ETag"
    assert "Origin" in h["vary"]
    s3.delete_bucket_cors(Bucket="site")
