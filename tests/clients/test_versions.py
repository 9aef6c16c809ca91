"""Versioning, lifecycle, tagging and object attributes with real clients: aws-cli (s3api),
boto3 in its current defaults, and rclone's `--s3-versions`.
"""

import hashlib
import json
import os
import signal
import time

import pytest

from conftest import Aws, Server, boto3_client, rclone_runner

MIB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blobs(server: Server) -> list:
    """Stored blobs (temp files being written are not blobs yet)."""
    root = server.data_dir / "blobs"
    return [p for p in root.rglob("*") if p.is_file() and "tmp" not in p.relative_to(root).parts]


def eventually(what: str, check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def test_aws_cli_versioning_flow(aws, tmp_path):
    """Three overwrites and a delete keep every version readable by id; removing the delete
    marker brings the last one back."""
    aws.run("s3api", "create-bucket", "--bucket", "vers")
    assert aws.json("s3api", "get-bucket-versioning", "--bucket", "vers").get("Status") is None
    aws.run("s3api", "put-bucket-versioning", "--bucket", "vers", "--versioning-configuration", "Status=Enabled")
    assert aws.json("s3api", "get-bucket-versioning", "--bucket", "vers")["Status"] == "Enabled"

    contents, ids = [], []
    for i in range(3):
        body = os.urandom(1000 + i) if i != 1 else os.urandom(6 * MIB)
        path = tmp_path / f"v{i}"
        path.write_bytes(body)
        out = aws.json("s3api", "put-object", "--bucket", "vers", "--key", "doc.txt", "--body", str(path))
        assert out["VersionId"] and out["VersionId"] not in ids
        contents.append(body)
        ids.append(out["VersionId"])

    deleted = aws.json("s3api", "delete-object", "--bucket", "vers", "--key", "doc.txt")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    missing = aws.run("s3api", "head-object", "--bucket", "vers", "--key", "doc.txt", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr

    listed = aws.json("s3api", "list-object-versions", "--bucket", "vers")
    versions = listed["Versions"]
    assert [v["VersionId"] for v in versions] == ids[::-1], "newest first"
    assert [v["Size"] for v in versions] == [len(c) for c in contents[::-1]]
    assert not any(v["IsLatest"] for v in versions)
    assert [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]] == [(marker, True)]

    for version, body in zip(ids, contents):
        out = tmp_path / "out"
        got = aws.json("s3api", "get-object", "--bucket", "vers", "--key", "doc.txt", "--version-id", version, str(out))
        assert got["VersionId"] == version
        assert sha256(out.read_bytes()) == sha256(body)

    # Paging through versions with max-items/page-size visits every one exactly once.
    paged = aws.json("s3api", "list-object-versions", "--bucket", "vers", "--page-size", "1")
    assert [v["VersionId"] for v in paged["Versions"]] == ids[::-1]

    gone = aws.json("s3api", "delete-object", "--bucket", "vers", "--key", "doc.txt", "--version-id", marker)
    assert gone["VersionId"] == marker and gone["DeleteMarker"] is True
    out = tmp_path / "latest"
    aws.run("s3", "cp", "s3://vers/doc.txt", str(out))
    assert sha256(out.read_bytes()) == sha256(contents[-1])

    # Suspended: new writes get the "null" version, older versions stay.
    aws.run("s3api", "put-bucket-versioning", "--bucket", "vers", "--versioning-configuration", "Status=Suspended")
    path = tmp_path / "null"
    path.write_bytes(b"null version")
    out = aws.json("s3api", "put-object", "--bucket", "vers", "--key", "doc.txt", "--body", str(path))
    assert out.get("VersionId", "null") == "null"
    listed = aws.json("s3api", "list-object-versions", "--bucket", "vers")
    assert [v["VersionId"] for v in listed["Versions"]] == ["null", *ids[::-1]]


@pytest.fixture
def lifecycle_server(tmp_path, certs):
    """A server whose lifecycle "day" lasts two seconds, reclaiming blobs a second later."""
    extra = """
[gc]
grace_secs = 1
interval_secs = 1
sweep_interval_secs = 3600
[lifecycle]
day_secs = 2
interval_secs = 1
"""
    s = Server(tmp_path, certs, extra)
    s.start()
    yield s
    s.stop(signal.SIGKILL)


def test_aws_cli_lifecycle_aborts_uploads_and_expires_objects(lifecycle_server, tmp_path):
    aws = Aws(lifecycle_server, tmp_path, "path")
    aws.run("s3api", "create-bucket", "--bucket", "life")
    rules = {
        "Rules": [
            {
                "ID": "abort-stale-uploads",
                "Filter": {"Prefix": ""},
                "Status": "Enabled",
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            },
            {"ID": "expire-tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
        ]
    }
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    aws.run(
        "s3api", "put-bucket-lifecycle-configuration", "--bucket", "life",
        "--lifecycle-configuration", f"file://{tmp_path / 'rules.json'}",
    )
    got = aws.json("s3api", "get-bucket-lifecycle-configuration", "--bucket", "life")
    assert [r["ID"] for r in got["Rules"]] == ["abort-stale-uploads", "expire-tmp"]
    assert got["Rules"][0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert got["Rules"][1]["Expiration"] == {"Days": 1}

    created = aws.json("s3api", "create-multipart-upload", "--bucket", "life", "--key", "stale.bin")
    assert created["AbortRuleId"] == "abort-stale-uploads" and created["AbortDate"]
    part = tmp_path / "part"
    part.write_bytes(os.urandom(MIB))
    aws.run(
        "s3api", "upload-part", "--bucket", "life", "--key", "stale.bin", "--upload-id", created["UploadId"],
        "--part-number", "1", "--body", str(part),
    )
    # Larger than [blobs] inline_max, so that each object has a file of its own.
    (tmp_path / "keep").write_bytes(os.urandom(100 * 1024))
    aws.run("s3api", "put-object", "--bucket", "life", "--key", "keep", "--body", str(tmp_path / "keep"))
    aws.run("s3api", "put-object", "--bucket", "life", "--key", "tmp/scratch", "--body", str(tmp_path / "keep"))
    head = aws.json("s3api", "head-object", "--bucket", "life", "--key", "tmp/scratch")
    assert 'rule-id="expire-tmp"' in head["Expiration"], head
    assert "Expiration" not in aws.json("s3api", "head-object", "--bucket", "life", "--key", "keep")

    eventually("the stale upload to be aborted",
               lambda: not aws.json("s3api", "list-multipart-uploads", "--bucket", "life").get("Uploads"))
    eventually("tmp/ to expire",
               lambda: [o["Key"] for o in aws.json("s3api", "list-objects-v2", "--bucket", "life").get("Contents", [])]
               == ["keep"])
    # The part and the expired object's bytes are reclaimed; only "keep" stays on disk.
    eventually("blobs to be reclaimed", lambda: len(blobs(lifecycle_server)) == 1)
    err = aws.run("s3api", "list-parts", "--bucket", "life", "--key", "stale.bin", "--upload-id", created["UploadId"],
                  check=False)
    assert err.returncode != 0 and "NoSuchUpload" in err.stderr

    aws.run("s3api", "delete-bucket-lifecycle", "--bucket", "life")
    err = aws.run("s3api", "get-bucket-lifecycle-configuration", "--bucket", "life", check=False)
    assert err.returncode != 0 and "NoSuchLifecycleConfiguration" in err.stderr


def test_rclone_lists_and_reads_old_versions(server, s3, tmp_path):
    s3.create_bucket(Bucket="rcv")
    s3.put_bucket_versioning(Bucket="rcv", VersioningConfiguration={"Status": "Enabled"})
    rclone = rclone_runner(server, tmp_path)
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_bytes(b"first contents\n")
    second.write_bytes(b"second, longer contents\n")
    rclone("copyto", str(first), "s3d:rcv/notes.txt")
    time.sleep(1.1)  # rclone names old versions by their modification time, to the millisecond
    rclone("copyto", str(second), "s3d:rcv/notes.txt")

    assert rclone("lsf", "s3d:rcv").split() == ["notes.txt"]
    listed = rclone("lsf", "--s3-versions", "s3d:rcv").split()
    assert len(listed) == 2 and "notes.txt" in listed, listed
    old = next(name for name in listed if name != "notes.txt")
    assert old.startswith("notes-v") and old.endswith(".txt"), old
    assert rclone("cat", "--s3-versions", f"s3d:rcv/{old}").encode() == first.read_bytes()
    assert rclone("cat", "s3d:rcv/notes.txt").encode() == second.read_bytes()


def test_boto3_attributes_tagging_and_awkward_names(s3, tmp_path):
    from boto3.s3.transfer import TransferConfig

    s3.create_bucket(Bucket="attrs")
    data = os.urandom(11 * MIB)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_file(str(path), "attrs", "three", Config=cfg)

    attrs = s3.get_object_attributes(
        Bucket="attrs", Key="three", ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    )
    assert attrs["ObjectSize"] == len(data)
    assert attrs["StorageClass"] == "STANDARD"
    assert attrs["ETag"].endswith("-3") and not attrs["ETag"].startswith('"')
    assert attrs["ObjectParts"]["TotalPartsCount"] == 3
    head = s3.head_object(Bucket="attrs", Key="three")
    assert head["ETag"] == f'"{attrs["ETag"]}"'

    s3.put_object_tagging(
        Bucket="attrs", Key="three", Tagging={"TagSet": [{"Key": "team", "Value": "storage"}, {"Key": "tier", "Value": "a b"}]}
    )
    tags = s3.get_object_tagging(Bucket="attrs", Key="three")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("team", "storage"), ("tier", "a b")]
    assert s3.head_object(Bucket="attrs", Key="three").get("ResponseMetadata", {})["HTTPHeaders"].get(
        "x-amz-tagging-count") == "2"
    s3.delete_object_tagging(Bucket="attrs", Key="three")
    assert s3.get_object_tagging(Bucket="attrs", Key="three")["TagSet"] == []

    # Keys XML 1.0 cannot carry travel as encoding-type=url, which boto3 asks for and decodes.
    awkward = ["line\nbreak/a", "line\nbreak/b", "tab\there", "caf\u00e9/\u65e5\u672c"]
    for key in awkward:
        s3.put_object(Bucket="attrs", Key=key, Body=key.encode())
    listed = s3.list_objects_v2(Bucket="attrs", Prefix="line\n", Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["line\nbreak/"]
    listed = s3.list_objects_v2(Bucket="attrs", Prefix="line\nbreak/")
    assert [o["Key"] for o in listed["Contents"]] == awkward[:2]
    every = [o["Key"] for o in s3.list_objects(Bucket="attrs")["Contents"]]
    assert sorted(every) == sorted(awkward + ["three"])
    versions = [v["Key"] for v in s3.list_object_versions(Bucket="attrs")["Versions"]]
    assert sorted(versions) == sorted(awkward + ["three"])
    for key in awkward:
        assert s3.get_object(Bucket="attrs", Key=key)["Body"].read() == key.encode()

    # boto3 allows only ASCII metadata; encoded words and punctuation come back unchanged.
    meta = {"name": "=?UTF-8?B?Y2Fmw6k=?=", "plain": "a=b; c, \"d\"  e"}
    s3.put_object(Bucket="attrs", Key="meta", Body=b"m", Metadata=meta)
    assert s3.head_object(Bucket="attrs", Key="meta")["Metadata"] == meta


def test_boto3_delete_objects_in_a_versioned_bucket(server):
    s3 = boto3_client(server, "path")
    s3.create_bucket(Bucket="delvers")
    s3.put_bucket_versioning(Bucket="delvers", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="delvers", Key="a", Body=b"1")["VersionId"]
    s3.put_object(Bucket="delvers", Key="a", Body=b"2")
    out = s3.delete_objects(Bucket="delvers", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "a", "VersionId": v1}]})
    by = {(d["Key"], d.get("VersionId")): d for d in out["Deleted"]}
    assert by[("a", v1)].get("DeleteMarker") is None
    markers = [d for d in out["Deleted"] if d.get("DeleteMarker")]
    assert sorted(d["Key"] for d in markers) == ["a", "b"]
    assert all(d["DeleteMarkerVersionId"] for d in markers)
    listed = s3.list_object_versions(Bucket="delvers")
    assert [v["Key"] for v in listed["Versions"]] == ["a"]
    assert sorted(m["Key"] for m in listed["DeleteMarkers"]) == ["a", "b"]
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.get_object(Bucket="delvers", Key="a")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
