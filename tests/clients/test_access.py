"""Access control with real clients: CORS rules set with boto3, a browser-style preflight and a
cross-origin GET with curl; public and read-only access; HTML form uploads signed by boto3 and
posted with curl."""

import subprocess

import pytest

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


def test_public_read_bucket_and_read_only_user(tmp_path, certs):
    """A public-read bucket policy lets curl without credentials GET an object but not list or
    write; a second user with a read-only policy can GET but gets AccessDenied on PUT."""
    import json

    import boto3
    import botocore
    from botocore.config import Config

    from conftest import ACCESS_KEY, REGION, SECRET_KEY, Server

    extra = '[[users]]\nid = "reader"\nname = "Read-only reader"\naccess_key = "reader-key"\nsecret_key = "reader-secret"\n'
    (tmp_path / "srv").mkdir()
    server = Server(tmp_path / "srv", certs, extra=extra)
    server.start()
    try:
        def client(key, secret):
            return boto3.client(
                "s3", endpoint_url=server.endpoint, region_name=REGION,
                aws_access_key_id=key, aws_secret_access_key=secret,
                config=Config(s3={"addressing_style": "path"}),
            )

        owner = client(ACCESS_KEY, SECRET_KEY)
        owner.create_bucket(Bucket="assets")
        owner.put_object(Bucket="assets", Key="logo.svg", Body=b"<svg/>")
        url = f"{server.endpoint}/assets/logo.svg"

        def curl(*args):
            p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            return int(p.stdout)

        assert curl(url) == 403
        owner.delete_public_access_block(Bucket="assets")  # new buckets block public policies
        owner.put_bucket_policy(Bucket="assets", Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::assets/*"},
                {"Sid": "Reader", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/reader"},
                 "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::assets", "arn:aws:s3:::assets/*"]},
            ],
        }))
        assert owner.get_bucket_policy_status(Bucket="assets")["PolicyStatus"]["IsPublic"] is True
        assert curl(url) == 200
        assert curl(f"{server.endpoint}/assets") == 403, "no anonymous listing"
        assert curl("-X", "PUT", "--data-binary", "x", f"{server.endpoint}/assets/new.txt") == 403

        reader = client("reader-key", "reader-secret")
        assert reader.get_object(Bucket="assets", Key="logo.svg")["Body"].read() == b"<svg/>"
        assert [o["Key"] for o in reader.list_objects_v2(Bucket="assets")["Contents"]] == ["logo.svg"]
        try:
            reader.put_object(Bucket="assets", Key="new.txt", Body=b"x")
            raise AssertionError("the reader wrote")
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "AccessDenied"
    finally:
        server.stop()


def curl_form(url, fields, file_path, *extra):
    """POSTs an HTML form with curl -F, the file last as a browser sends it; returns (status, body)."""
    args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", url, *extra]
    for k, v in fields.items():
        # --form-string sends the value as is (no @file or <file interpretation).
        args += ["--form-string", f"{k}={v}"]
    args += ["-F", f"file=@{file_path};type=text/plain"]
    p = subprocess.run(args, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    body, _, status = p.stdout.rpartition(b"\n")
    return int(status), body


@pytest.mark.parametrize("signature_version", [None, "s3v4", "s3"])
def test_upload_form_signed_by_boto3(server, tmp_path, signature_version):
    """An HTML form upload: boto3's generate_presigned_post (default settings, SigV4 and SigV2)
    signs a policy; curl -F posts it with a file, which s3d stores under the policy's key."""
    import botocore
    from botocore.config import Config

    from conftest import ACCESS_KEY, REGION, SECRET_KEY

    import boto3

    config = Config(s3={"addressing_style": "path"})
    if signature_version:
        config = Config(signature_version=signature_version, s3={"addressing_style": "path"})
    s3 = boto3.client(
        "s3", endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, config=config,
    )
    s3.create_bucket(Bucket="uploads")
    post = s3.generate_presigned_post(
        Bucket="uploads",
        Key="incoming/${filename}",
        Fields={"Content-Type": "text/plain", "success_action_status": "201", "x-amz-meta-source": "form"},
        Conditions=[
            ["starts-with", "$Content-Type", "text/"],
            {"success_action_status": "201"},
            {"x-amz-meta-source": "form"},
            ["content-length-range", 1, 1024 * 1024],
        ],
        ExpiresIn=300,
    )
    f = tmp_path / "hello.txt"
    f.write_bytes(b"hello from a browser form\n")
    status, body = curl_form(post["url"], post["fields"], f)
    assert status == 201, body
    assert b"<Key>incoming/hello.txt</Key>" in body and b"<Bucket>uploads</Bucket>" in body
    got = s3.get_object(Bucket="uploads", Key="incoming/hello.txt")
    assert got["Body"].read() == b"hello from a browser form\n"
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"source": "form"}

    # Outside the policy: too large a file, and a field the policy does not name.
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    status, body = curl_form(post["url"], post["fields"], big)
    assert status == 400 and b"<Code>EntityTooLarge</Code>" in body, body
    status, body = curl_form(post["url"], {**post["fields"], "x-amz-meta-extra": "1"}, f)
    assert status == 403 and b"Extra input fields: x-amz-meta-extra" in body, body
    try:
        s3.head_object(Bucket="uploads", Key="incoming/big.bin")
        raise AssertionError("a refused upload was stored")
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "404"


def test_acls_with_aws_cli_s3cmd_and_boto3(aws, server, tmp_path):
    """A bucket whose ACLs are enabled (ObjectWriter): aws-cli uploads with a canned ACL,
    s3cmd makes an object public with setacl (GetObjectAcl then PutObjectAcl with its XML),
    boto3 reads the ACLs back; curl without credentials reads exactly the public objects."""
    from conftest import s3cmd_runner

    def status(url):
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return int(p.stdout)

    aws.run("s3api", "create-bucket", "--bucket", "shared", "--object-ownership", "ObjectWriter")
    assert aws.json("s3api", "get-bucket-ownership-controls", "--bucket", "shared")["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "ObjectWriter"}
    ]
    aws.run("s3api", "delete-public-access-block", "--bucket", "shared")
    f = tmp_path / "page.html"
    f.write_bytes(b"<p>public</p>")
    aws.run("s3", "cp", str(f), "s3://shared/page.html", "--acl", "public-read")
    aws.run("s3", "cp", str(f), "s3://shared/later.html")
    aws.run("s3", "cp", str(f), "s3://shared/private.html")
    base = f"{server.endpoint}/shared"
    assert status(f"{base}/page.html") == 200
    assert status(f"{base}/later.html") == 403
    s3cmd = s3cmd_runner(server, tmp_path)
    s3cmd("setacl", "--acl-public", "s3://shared/later.html")
    assert status(f"{base}/later.html") == 200
    assert status(f"{base}/private.html") == 403
    assert status(base) == 403, "public objects do not make the bucket listable"

    s3 = boto3_client(server, aws.style)
    grants = s3.get_object_acl(Bucket="shared", Key="later.html")["Grants"]
    assert {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"} in [g["Grantee"] for g in grants]
    s3.put_object_acl(Bucket="shared", Key="later.html", ACL="private")
    assert status(f"{base}/later.html") == 403
    s3.put_bucket_acl(Bucket="shared", ACL="public-read")
    assert status(base) == 200, "a public-read bucket ACL lets anyone list"
    assert status(f"{base}/private.html") == 403, "but not read objects their ACLs keep private"
    acl = s3.get_bucket_acl(Bucket="shared")
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL", "READ"]
