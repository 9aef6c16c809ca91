"""aws-cli (v1, current) against s3d."""

import os


def test_multipart_upload_lifecycle_survives_restart(aws, server):
    bucket = f"cli-{aws.style}"
    aws.run("s3api", "create-bucket", "--bucket", bucket)
    key = "dir/my file+1 ✓.bin"
    created = aws.json(
        "s3api", "create-multipart-upload",
        "--bucket", bucket, "--key", key,
        "--storage-class", "REDUCED_REDUNDANCY",
        "--content-type", "video/mp4",
        "--metadata", "color=blue,size=big",
    )
    assert created["Bucket"] == bucket
    assert created["Key"] == key
    upload_id = created["UploadId"]
    assert len(upload_id) >= 22

    def listed():
        return aws.json("s3api", "list-multipart-uploads", "--bucket", bucket).get("Uploads", [])

    uploads = listed()
    assert [(u["Key"], u["UploadId"], u["StorageClass"]) for u in uploads] == [(key, upload_id, "REDUCED_REDUNDANCY")]
    assert uploads[0]["Initiator"]["ID"] == "client-test-user"
    assert uploads[0]["Owner"]["DisplayName"] == "client-test"

    server.restart()
    assert [u["UploadId"] for u in listed()] == [upload_id], "the upload survives a restart"

    aws.run("s3api", "abort-multipart-upload", "--bucket", bucket, "--key", key, "--upload-id", upload_id)
    assert listed() == []
    p = aws.run("s3api", "abort-multipart-upload", "--bucket", bucket, "--key", key, "--upload-id", upload_id, check=False)
    assert p.returncode != 0 and "NoSuchUpload" in p.stderr
    aws.run("s3api", "delete-bucket", "--bucket", bucket)


def test_errors_reach_the_cli_with_their_codes(aws):
    p = aws.run("s3api", "create-multipart-upload", "--bucket", "no-such-bucket", "--key", "k", check=False)
    assert p.returncode != 0 and "NoSuchBucket" in p.stderr, p.stderr
    aws.run("s3api", "create-bucket", "--bucket", f"err-{aws.style}")
    p = aws.run("s3api", "create-multipart-upload", "--bucket", f"err-{aws.style}", "--key", "k", "--storage-class", "DEEP_FREEZE", check=False)
    assert p.returncode != 0 and "InvalidStorageClass" in p.stderr, p.stderr
    listed = aws.json("s3api", "list-multipart-uploads", "--bucket", f"err-{aws.style}")
    assert listed.get("Uploads", []) == []


def test_buckets(aws):
    for b in ("alpha-" + aws.style, "beta-" + aws.style):
        aws.run("s3api", "create-bucket", "--bucket", b)
    names = [b["Name"] for b in aws.json("s3api", "list-buckets")["Buckets"]]
    assert names == sorted(["alpha-" + aws.style, "beta-" + aws.style])
    head = aws.json("s3api", "head-bucket", "--bucket", "alpha-" + aws.style)
    assert head.get("BucketRegion") == "us-east-1"
    aws.run("s3api", "delete-bucket", "--bucket", "alpha-" + aws.style)
    p = aws.run("s3api", "head-bucket", "--bucket", "alpha-" + aws.style, check=False)
    assert p.returncode != 0 and "404" in p.stderr


def blob_files(server) -> int:
    root = server.data_dir / "blobs"
    return sum(1 for p in root.rglob("*") if p.is_file() and "tmp" not in p.relative_to(root).parts)


def test_server_side_copies_share_files(aws, server, tmp_path):
    """`aws s3 cp s3://… s3://…` copies without copying bytes: a multipart copy whose 8 MiB
    ranges line up with the source's parts, and a CopyObject of a single-part object, share
    the source's files."""
    bucket = f"share-{aws.style}"
    aws.run("s3api", "create-bucket", "--bucket", bucket)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024))
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(1024 * 1024))
    aws.run("s3", "cp", str(big), f"s3://{bucket}/big")
    aws.run("s3", "cp", str(small), f"s3://{bucket}/small")
    files = blob_files(server)
    assert files == 4, "three 8/8/4 MiB parts and one object"
    aws.run("s3", "cp", f"s3://{bucket}/big", f"s3://{bucket}/big-copy")
    aws.run("s3", "cp", f"s3://{bucket}/small", f"s3://{bucket}/small-copy")
    assert blob_files(server) == files, "the copies share the files"
    for key, source in (("big-copy", big), ("small-copy", small)):
        out = tmp_path / f"{key}.out"
        aws.run("s3", "cp", f"s3://{bucket}/{key}", str(out))
        assert out.read_bytes() == source.read_bytes()
    aws.run("s3", "rm", f"s3://{bucket}/big")
    out = tmp_path / "after.out"
    aws.run("s3", "cp", f"s3://{bucket}/big-copy", str(out))
    assert out.read_bytes() == big.read_bytes()
    aws.run("s3", "rm", "--recursive", f"s3://{bucket}")
    aws.run("s3api", "delete-bucket", "--bucket", bucket)
