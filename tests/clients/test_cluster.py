"""Several s3d nodes behind a load balancer: PostgreSQL, three nodes on 127.0.0.1 sharing one
blob directory, and haproxy round-robining in front (health-checking /-/health). Real clients
go through the balancer; objects and uploads cross nodes; a node is killed with SIGKILL under
load and restarted, and nothing acknowledged is lost.
"""

import concurrent.futures
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config

from conftest import (ACCESS_KEY, REGION, S3D_BIN, SECRET_KEY, Aws, Postgres, Server, boto3_client, free_port,
                      rclone_runner)

MIB = 1024 * 1024


class Balancer:
    """haproxy in front of the nodes; looks like a Server to the client helpers."""

    def __init__(self, root, ports):
        self.port = free_port()
        self.config = root / "haproxy.cfg"
        servers = "\n".join(f"    server n{i} 127.0.0.1:{p} check" for i, p in enumerate(ports, 1))
        self.config.write_text(f"""
global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch
frontend s3
    bind 127.0.0.1:{self.port}
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /-/health
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
{servers}
""")
        self.proc = subprocess.Popen(["haproxy", "-f", str(self.config), "-db"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                import socket

                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.proc.kill()
                    raise RuntimeError("haproxy did not start: " + self.proc.communicate()[1])
                time.sleep(0.05)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def vhost_endpoint(self):
        return f"http://s3.localhost:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Cluster:
    def __init__(self, root, certs):
        self.root = root
        self.certs = certs
        self.pg, self.nodes, self.balancer = None, [], None
        try:
            self.pg = Postgres()
            self.pg.start()
            self.url = self.pg.create_database("s3d")
            self.blobs = root / "shared-blobs"
            self.ports = [free_port() for _ in range(3)]
            for i in range(3):
                self.nodes.append(self.node(i))
                self.nodes[-1].start()
            self.balancer = Balancer(root, self.ports)
            self.wait_all_healthy()
        except BaseException:
            self.stop()  # nothing started stays behind
            raise

    def node(self, i):
        extra = f"""
[metadata]
backend = "postgres"
url = "{self.url}"
pool_size = 8
[blobs]
dir = "{self.blobs}"
[metrics]
node = "n{i + 1}"
"""
        (self.root / f"n{i + 1}").mkdir(exist_ok=True)
        return Server(self.root / f"n{i + 1}", self.certs, extra, listen=f"127.0.0.1:{self.ports[i]}")

    def wait_all_healthy(self):
        deadline = time.monotonic() + 30
        for port in self.ports:
            while True:
                try:
                    if urllib.request.urlopen(f"http://127.0.0.1:{port}/-/health", timeout=2).status == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"node on {port} not healthy"
                time.sleep(0.1)
        time.sleep(1)  # haproxy's checks (every 300 ms, 2 to rise) see them up

    def client(self, i, style="path"):
        return boto3_client(self.nodes[i], style)

    def stop(self):
        if self.balancer:
            self.balancer.stop()
        for n in self.nodes:
            n.stop(signal.SIGKILL)
        if self.pg:
            self.pg.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, certs):
    c = Cluster(tmp_path_factory.mktemp("cluster"), certs)
    yield c
    c.stop()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_real_clients_through_the_balancer(cluster, tmp_path):
    lb = cluster.balancer
    for style in ("path", "virtual"):
        aws = Aws(lb, tmp_path, style)
        bucket = f"lb-cli-{style}"
        aws.run("s3", "mb", f"s3://{bucket}")
        src = tmp_path / f"big-{style}"
        src.write_bytes(os.urandom(20 * MIB))
        aws.run("s3", "cp", str(src), f"s3://{bucket}/big")  # multipart: parts land on every node
        back = tmp_path / f"back-{style}"
        aws.run("s3", "cp", f"s3://{bucket}/big", str(back))
        assert sha(back.read_bytes()) == sha(src.read_bytes())

    s3 = boto3_client(lb, "path")
    s3.create_bucket(Bucket="lb-boto")
    for i in range(12):
        body = os.urandom(1000 + i)
        s3.put_object(Bucket="lb-boto", Key=f"k{i}", Body=body)
        assert s3.get_object(Bucket="lb-boto", Key=f"k{i}")["Body"].read() == body
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lb-boto")["Contents"]]
    assert keys == sorted(f"k{i}" for i in range(12))

    rclone = rclone_runner(lb, tmp_path)
    tree = tmp_path / "tree"
    for i in range(20):
        (tree / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 3}" / f"f{i}.bin").write_bytes(os.urandom(5000 * i + 1))
    rclone("mkdir", "s3d:lb-rclone")
    rclone("copy", str(tree), "s3d:lb-rclone/tree")
    rclone("check", str(tree), "s3d:lb-rclone/tree")


def test_a_write_on_one_node_is_read_at_once_on_the_others(cluster):
    clients = [cluster.client(i) for i in range(3)]
    clients[0].create_bucket(Bucket="xnode")
    for writer in range(3):
        for n in range(5):
            body = os.urandom(300 + n)
            key = f"w{writer}-{n}"
            clients[writer].put_object(Bucket="xnode", Key=key, Body=body)
            for reader in range(3):
                assert clients[reader].get_object(Bucket="xnode", Key=key)["Body"].read() == body, (writer, reader)
    listed = clients[2].list_objects_v2(Bucket="xnode")["Contents"]
    assert len(listed) == 15


def test_a_multipart_upload_spreads_over_all_nodes(cluster):
    clients = [cluster.client(i, "virtual" if i == 1 else "path") for i in range(3)]
    clients[0].create_bucket(Bucket="spread")
    upload = clients[0].create_multipart_upload(Bucket="spread", Key="obj")["UploadId"]
    parts, data = [], b""
    for n in range(1, 4):
        body = os.urandom(5 * MIB if n < 3 else 12345)
        out = clients[n - 1].upload_part(Bucket="spread", Key="obj", UploadId=upload, PartNumber=n, Body=body)
        parts.append({"PartNumber": n, "ETag": out["ETag"]})
        data += body
    listed = clients[2].list_parts(Bucket="spread", Key="obj", UploadId=upload)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3]
    clients[1].complete_multipart_upload(Bucket="spread", Key="obj", UploadId=upload,
                                         MultipartUpload={"Parts": parts})
    got = boto3_client(cluster.balancer, "path").get_object(Bucket="spread", Key="obj")
    assert got["ETag"].endswith('-3"')
    assert sha(got["Body"].read()) == sha(data)


def test_users_added_while_the_nodes_run(cluster, tmp_path):
    config = cluster.nodes[0].config
    out = subprocess.run([S3D_BIN, "--config", str(config), "user", "add", "--id", "cluster-app", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    user = json.loads(out.stdout)
    s3 = boto3.client("s3", endpoint_url=cluster.balancer.endpoint, aws_access_key_id=user["access_key"],
                      aws_secret_access_key=user["secret_key"], region_name=REGION,
                      config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    deadline = time.monotonic() + 10
    streak = 0
    while streak < 6:  # six in a row through a round-robin balancer: twice on every node
        try:
            s3.list_buckets()
            streak += 1
        except s3.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidAccessKeyId", e
            assert time.monotonic() < deadline, "the new user was not accepted by every node within 10 s"
            streak = 0
            time.sleep(0.2)


def test_kill_9_of_a_node_under_load_loses_nothing(cluster):
    lb = cluster.balancer
    setup = boto3_client(lb, "path")
    setup.create_bucket(Bucket="load")
    acked, lock, stop = {}, threading.Lock(), threading.Event()
    failures = []

    def writer(w):
        s3 = boto3.client("s3", endpoint_url=lb.endpoint, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name=REGION,
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                        connect_timeout=5, read_timeout=30))
        n = 0
        while not stop.is_set():
            body = os.urandom(2000 + (n % 7) * 50_000)
            key = f"w{w}/{n}"
            n += 1
            try:
                s3.put_object(Bucket="load", Key=key, Body=body)
            except Exception as e:  # a request the killed node had: not acknowledged
                failures.append((time.monotonic(), repr(e)[:200]))
                continue
            with lock:
                acked[key] = (time.monotonic(), sha(body))

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(writer, w) for w in range(6)]
        time.sleep(3)
        victim = cluster.nodes[1]
        victim.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        time.sleep(4)
        cluster.nodes[1] = cluster.node(1)
        cluster.nodes[1].start()
        time.sleep(3)
        stop.set()
        for f in futures:
            f.result()

    after_kill = [k for k, (t, _) in acked.items() if t > killed_at + 1]
    print(f"cluster load: {len(acked)} writes acknowledged, {len(after_kill)} of them after the kill, "
          f"{len(failures)} failed (in flight on the killed node)")
    assert len(after_kill) > 20, f"the load did not continue through the other nodes ({len(after_kill)} writes)"
    assert len(acked) > 50, len(acked)
    # Every acknowledged write reads back whole from every node; every listed object too.
    clients = [cluster.client(i) for i in range(3)]
    for i, s3 in enumerate(clients):
        listed = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="load"):
            listed.update(o["Key"] for o in page.get("Contents", []))
        assert set(acked) <= listed, f"node {i + 1} lists {len(listed)} of {len(acked)}"
        for key in listed:
            body = s3.get_object(Bucket="load", Key=key)["Body"].read()  # no listed key without its bytes
            if key in acked:
                assert sha(body) == acked[key][1], key
    text = urllib.request.urlopen(f"http://127.0.0.1:{cluster.ports[1]}/-/metrics").read().decode()
    assert 'node="n2"' in text
