"""Moving real bytes with real clients: aws s3 cp/sync/ls/rm, s3cmd, rclone and boto3.

Content is compared by SHA-256 after a round trip through s3d.
"""

import hashlib
import os
import pathlib

from conftest import rclone_runner, s3cmd_runner

MIB = 1024 * 1024


def sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def random_file(path: pathlib.Path, size: int) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MIB)
            f.write(os.urandom(n))
            left -= n
    return path


def tree_digest(root: pathlib.Path) -> dict:
    return {str(p.relative_to(root)): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_aws_s3_cp_large_small_and_empty(aws, tmp_path):
    bucket = f"cp-{aws.style}"
    aws.run("s3", "mb", f"s3://{bucket}")
    files = {
        "big.bin": random_file(tmp_path / "up" / "big.bin", 100 * MIB),
        "one.bin": random_file(tmp_path / "up" / "one.bin", 1),
        "empty.bin": random_file(tmp_path / "up" / "empty.bin", 0),
    }
    for name, path in files.items():
        aws.run("s3", "cp", str(path), f"s3://{bucket}/dir/{name}")
    head = aws.json("s3api", "head-object", "--bucket", bucket, "--key", "dir/big.bin")
    assert head["ContentLength"] == 100 * MIB
    assert head["ETag"].endswith('-13"'), head["ETag"]  # 8 MiB parts: multipart upload
    for name, path in files.items():
        down = tmp_path / "down" / name
        aws.run("s3", "cp", f"s3://{bucket}/dir/{name}", str(down))
        assert sha256(down) == sha256(path), name
    assert aws.json("s3api", "list-multipart-uploads", "--bucket", bucket).get("Uploads", []) == []


def make_tree(root: pathlib.Path) -> None:
    names = ["plain", "with space", "plus+sign", "percent%25", "percent%", "ünïcødé", "日本語", "a=b&c", "semi;colon"]
    count = 0
    for d in ["", "dir one/", "nested/deeper/", "ü/"]:
        for n in names:
            for i in range(8):
                size = 0 if i == 0 else (i * 997) % 5000
                random_file(root / f"{d}{n}-{i}.dat", size)
                count += 1
    assert count > 250


def test_aws_s3_sync_tree_ls_and_rm(aws, tmp_path):
    bucket = f"sync-{aws.style}"
    aws.run("s3", "mb", f"s3://{bucket}")
    src, back = tmp_path / "src", tmp_path / "back"
    make_tree(src)
    aws.run("s3", "sync", str(src), f"s3://{bucket}/tree")
    aws.run("s3", "sync", f"s3://{bucket}/tree", str(back))
    assert tree_digest(back) == tree_digest(src)
    # A second sync has nothing to do.
    again = aws.run("s3", "sync", str(src), f"s3://{bucket}/tree")
    assert "upload:" not in again.stdout
    listing = aws.run("s3", "ls", "--recursive", f"s3://{bucket}/").stdout.splitlines()
    assert len(listing) == len(tree_digest(src))
    aws.run("s3", "rm", "--recursive", f"s3://{bucket}/tree")
    assert aws.run("s3", "ls", "--recursive", f"s3://{bucket}/").stdout.strip() == ""
    aws.run("s3", "rb", f"s3://{bucket}")


def test_s3cmd_put_get_ls_del(server, tmp_path):
    s3cmd = s3cmd_runner(server, tmp_path)

    big = random_file(tmp_path / "big.bin", 40 * MIB)
    s3cmd("mb", "s3://s3cmd-bucket")
    s3cmd("put", str(big), "s3://s3cmd-bucket/big file.bin")
    listing = s3cmd("ls", "s3://s3cmd-bucket/")
    assert "big file.bin" in listing
    down = tmp_path / "down.bin"
    s3cmd("get", "s3://s3cmd-bucket/big file.bin", str(down))
    assert sha256(down) == sha256(big)
    s3cmd("del", "s3://s3cmd-bucket/big file.bin")
    assert "big file.bin" not in s3cmd("ls", "s3://s3cmd-bucket/")
    s3cmd("rb", "s3://s3cmd-bucket")


def test_rclone_copy_check_sync(server, tmp_path):
    rclone = rclone_runner(server, tmp_path)

    src = tmp_path / "src"
    make_tree(src)
    random_file(src / "large.bin", 12 * MIB)
    rclone("mkdir", "s3d:rclone-bucket")
    # A low cutoff makes rclone use multipart uploads (5 MiB parts) for the large file.
    rclone("copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", str(src), "s3d:rclone-bucket/tree")
    rclone("check", str(src), "s3d:rclone-bucket/tree")
    (src / "plain-1.dat").unlink()
    random_file(src / "new file.dat", 777)
    rclone("sync", str(src), "s3d:rclone-bucket/tree")
    rclone("check", str(src), "s3d:rclone-bucket/tree")
    back = tmp_path / "back"
    rclone("copy", "s3d:rclone-bucket/tree", str(back))
    assert tree_digest(back) == tree_digest(src)


def test_boto3_ranged_and_part_number_gets(s3, tmp_path):
    s3.create_bucket(Bucket="boto")
    data = os.urandom(12 * MIB + 123)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    from boto3.s3.transfer import TransferConfig

    s3.upload_file(str(path), "boto", "multi", Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB))
    head = s3.head_object(Bucket="boto", Key="multi")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"')
    r = s3.get_object(Bucket="boto", Key="multi", Range=f"bytes={5 * MIB - 3}-{5 * MIB + 2}")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == data[5 * MIB - 3 : 5 * MIB + 3]
    p2 = s3.get_object(Bucket="boto", Key="multi", PartNumber=2)
    assert p2["PartsCount"] == 3
    assert p2["Body"].read() == data[5 * MIB : 10 * MIB]
    whole = s3.get_object(Bucket="boto", Key="multi")["Body"].read()
    assert hashlib.sha256(whole).digest() == hashlib.sha256(data).digest()
    s3.put_object(Bucket="boto", Key="small", Body=b"hello")
    assert s3.get_object(Bucket="boto", Key="small", Range="bytes=-3")["Body"].read() == b"llo"
    deleted = s3.delete_objects(Bucket="boto", Delete={"Objects": [{"Key": "multi"}, {"Key": "small"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["multi", "small"]
