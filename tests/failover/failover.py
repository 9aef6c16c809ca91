"""A PostgreSQL failover under load: etcd, three PostgreSQL members managed by Patroni in
synchronous mode, two s3d nodes on a multi-host URL with target_session_attrs=read-write,
and writers through both nodes. The leader (Patroni and its postmaster) gets SIGKILL, as a
machine that dies would; s3d must answer 503 while the election runs, serve again through
the new leader without a restart, and have lost no acknowledged write.

usage: failover.py S3D_BINARY   (run by scripts/failover, which installs what it needs)
"""

import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import boto3
from botocore.config import Config

S3D = sys.argv[1]
ACCESS_KEY, SECRET_KEY = "failover-access", "failover-secret"
PROCS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args, log, **kw):
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **kw)
    PROCS.append(p)
    return p


def wait_until(what, check, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"FAILED: {what} within {timeout} s")
        time.sleep(0.2)


def http_status(url):
    try:
        return urllib.request.urlopen(url, timeout=2).status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    root = pathlib.Path(tempfile.mkdtemp(prefix="s3d-failover-"))
    as_postgres = []
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
    bin_dir = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/postgres"))[-1].parent
    logs = root / "logs"
    logs.mkdir()
    os.chmod(logs, 0o777)
    try:
        run(root, bin_dir, as_postgres, logs)
    except BaseException as e:
        if isinstance(e, SystemExit) and e.code == 0:
            raise
        for log in sorted(logs.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            print(f"--- {log.name} (last lines)", *lines[-15:], sep="\n")
        raise
    finally:
        for p in reversed(PROCS):
            if p.poll() is None:
                p.kill()
                p.wait()
        # Postmasters of members whose Patroni was killed outlive it: stop them by PID.
        for pid_file in root.glob("pg*/postmaster.pid"):
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        time.sleep(0.5)
        shutil.rmtree(root, ignore_errors=True)


def run(root, bin_dir, as_postgres, logs):
    etcd_client, etcd_peer = free_port(), free_port()
    spawn(["etcd", "--name", "e1", "--data-dir", str(root / "etcd"),
           "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
           "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
           "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
           "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
           "--initial-cluster", f"e1=http://127.0.0.1:{etcd_peer}"], open(logs / "etcd.log", "w"))
    wait_until("etcd answering", lambda: http_status(f"http://127.0.0.1:{etcd_client}/health") == 200)

    members = []
    for i in range(1, 4):
        pg_port, api_port = free_port(), free_port()
        cfg = root / f"patroni{i}.yml"
        cfg.write_text(f"""
scope: s3d-failover
name: pg{i}
restapi:
  listen: 127.0.0.1:{api_port}
  connect_address: 127.0.0.1:{api_port}
etcd3:
  hosts: 127.0.0.1:{etcd_client}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 8
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: false
      parameters:
        max_connections: 200
        wal_level: replica
        hot_standby: "on"
  initdb:
    - encoding: UTF8
  pg_hba:
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:{pg_port}
  connect_address: 127.0.0.1:{pg_port}
  data_dir: {root}/pg{i}
  bin_dir: {bin_dir}
  pgpass: {root}/pgpass{i}
  authentication:
    superuser: {{username: postgres, password: failover}}
    replication: {{username: replicator, password: failover}}
  parameters:
    unix_socket_directories: {root}
""")
        os.chmod(cfg, 0o644)
        proc = spawn([*as_postgres, "patroni", str(cfg)], open(logs / f"patroni{i}.log", "w"))
        members.append({"name": f"pg{i}", "pg": pg_port, "api": api_port, "proc": proc, "data": root / f"pg{i}"})
        if i == 1:
            def leading():
                if proc.poll() is not None:
                    raise SystemExit("FAILED: patroni exited")
                return http_status(f"http://127.0.0.1:{api_port}/leader") == 200

            wait_until("the first member leading", leading)

    def sync_standby_streaming():
        return any(http_status(f"http://127.0.0.1:{m['api']}/sync") == 200 for m in members)

    wait_until("a synchronous standby", sync_standby_streaming, 180)
    leader = next(m for m in members if http_status(f"http://127.0.0.1:{m['api']}/leader") == 200)
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(leader["pg"]), "-U", "postgres", "-d", "postgres", "-q",
                    "-c", "CREATE ROLE s3d LOGIN", "-c", "CREATE DATABASE s3d OWNER s3d"], check=True,
                   capture_output=True, env={**os.environ, "PGPASSWORD": "failover"})
    hosts = ",".join(f"127.0.0.1:{m['pg']}" for m in members)
    url = f"postgres://s3d@{hosts}/s3d?target_session_attrs=read-write&connect_timeout=2"

    blobs = root / "blobs"
    nodes = []
    for n in range(2):
        port = free_port()
        cfg = root / f"s3d{n}.toml"
        cfg.write_text(f"""
listen = "127.0.0.1:{port}"
data_dir = "{root}/s3d{n}"
[metadata]
backend = "postgres"
url = "{url}"
[blobs]
dir = "{blobs}"
[[users]]
id = "failover"
name = "failover"
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"
admin = true
""")
        spawn([S3D, "--config", str(cfg)], open(logs / f"s3d{n}.log", "w"), env={**os.environ, "RUST_LOG": "warn"})
        nodes.append(port)
    for port in nodes:
        wait_until(f"s3d on {port} healthy", lambda p=port: http_status(f"http://127.0.0.1:{p}/-/health") == 200)

    def client(port):
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                          connect_timeout=5, read_timeout=60))

    client(nodes[0]).create_bucket(Bucket="failover")
    acked, lock, stop = {}, threading.Lock(), threading.Event()
    outcomes = []  # (time, status or error code)

    def writer(w):
        s3 = client(nodes[w % 2])
        n = 0
        while not stop.is_set():
            body = os.urandom(1024 + n % 4096)
            key = f"w{w}/{n}"
            n += 1
            try:
                s3.put_object(Bucket="failover", Key=key, Body=body)
            except s3.exceptions.ClientError as e:
                outcomes.append((time.monotonic(), e.response["ResponseMetadata"]["HTTPStatusCode"]))
                time.sleep(0.05)
                continue
            except Exception as e:  # noqa: BLE001 - a transport failure is an outcome too
                outcomes.append((time.monotonic(), type(e).__name__))
                continue
            outcomes.append((time.monotonic(), 200))
            with lock:
                acked[key] = hashlib.sha256(body).hexdigest()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(5)
    leader = next(m for m in members if http_status(f"http://127.0.0.1:{m['api']}/leader") == 200)
    postmaster = int((leader["data"] / "postmaster.pid").read_text().split()[0])
    killed_at = time.monotonic()
    leader["proc"].send_signal(signal.SIGKILL)
    os.kill(postmaster, signal.SIGKILL)
    print(f"killed the leader {leader['name']} (patroni and postmaster {postmaster})")
    others = [m for m in members if m is not leader]
    wait_until("a new leader", lambda: any(http_status(f"http://127.0.0.1:{m['api']}/leader") == 200 for m in others),
               180)
    new_leader = next(m for m in others if http_status(f"http://127.0.0.1:{m['api']}/leader") == 200)
    elected_at = time.monotonic()
    # Serving again: a write acknowledged through each node after the election.
    def served_after(t):
        return sum(1 for at, s in outcomes if at > t and s == 200)

    wait_until("writes succeeding again", lambda: served_after(elected_at) > 20, 120)
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join()

    failures = [(round(at - killed_at, 1), s) for at, s in outcomes if s != 200 and at >= killed_at]
    before = [s for at, s in outcomes if s != 200 and at < killed_at]
    unavailable = [at for at, s in outcomes if s == 503]
    other = sorted({str(s) for _, s in failures if s != 503})
    first_ok = min((at for at, s in outcomes if at > killed_at and s == 200 and at > (max(unavailable) if unavailable else 0)),
                   default=None)
    # Every acknowledged write is there, through both nodes.
    missing = []
    for port in nodes:
        s3 = client(port)
        for key, digest in acked.items():
            try:
                body = s3.get_object(Bucket="failover", Key=key)["Body"].read()
            except Exception as e:  # noqa: BLE001
                missing.append((port, key, repr(e)[:100]))
                continue
            if hashlib.sha256(body).hexdigest() != digest:
                missing.append((port, key, "wrong bytes"))
    report = {
        "acknowledged_writes": len(acked),
        "failed_before_kill": len(before),
        "answers_503": len(unavailable),
        "other_failures": other,
        "election_seconds": round(elected_at - killed_at, 1),
        "unavailable_seconds": round((max(unavailable) - killed_at), 1) if unavailable else 0,
        "serving_again_after_seconds": round(first_ok - killed_at, 1) if first_ok else None,
        "new_leader": new_leader["name"],
        "missing_after_failover": len(missing),
    }
    print(json.dumps(report, indent=2))
    ok = not missing and not before and first_ok is not None and not other
    if missing:
        print("missing:", missing[:10])
    print("PASSED" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
