"""Scripted real-client tests: a started s3d binary driven by aws-cli, boto3, s3cmd, rclone and curl.

Every test gets its own server (fresh data directory, port chosen by the OS). Virtual-host
requests reach it through an HTTP proxy setting pointing at s3d itself: clients then send
absolute-form requests with the `<bucket>.s3.localhost` Host, and no DNS is needed.
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading

import boto3
import pytest
from botocore.config import Config

ACCESS_KEY = "s3d-client-test"
SECRET_KEY = "s3d-client-test-secret"
REGION = "us-east-1"
DOMAIN = "s3.localhost"
REGIONAL_DOMAIN = f"s3.{REGION}.jcloudcs.com"
S3D_BIN = os.environ.get("S3D_BIN") or str(pathlib.Path(__file__).resolve().parents[2] / "target" / "debug" / "s3d")
BIN_DIR = pathlib.Path(sys.executable).parent


def make_certs(d: pathlib.Path) -> dict:
    """A throwaway CA and a localhost leaf (rustls refuses a self-signed CA as end entity)."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "leaf.ext").write_text(
        "subjectAltName=DNS:localhost,DNS:s3.localhost,DNS:*.s3.localhost,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for args in (
        ["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=s3d client-test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.pem",
         "-days", "2", "-extfile", "leaf.ext"],
    ):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    return {"ca": d / "ca.pem", "cert": d / "leaf.pem", "key": d / "leaf.key"}


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


class Server:
    def __init__(self, root: pathlib.Path, certs: dict, extra: str = "", listen: str = "127.0.0.1:0"):
        self.root = root
        self.data_dir = root / "data"
        self.config = root / "s3d.toml"
        self.ca = certs["ca"]
        self.config.write_text(
            f"""
listen = "{listen}"
data_dir = "{self.data_dir}"
region = "{REGION}"
domains = ["{DOMAIN}", "{REGIONAL_DOMAIN}"]
[tls]
listen = "127.0.0.1:0"
cert = "{certs['cert']}"
key = "{certs['key']}"
[[users]]
id = "client-test-user"
name = "client-test"
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"
{extra}"""
        )
        self.proc = None
        self.port = None
        self.tls_port = None
        self.log = []

    def start(self):
        self.proc = subprocess.Popen(
            [S3D_BIN, "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "RUST_LOG": "info"},
        )
        ready = threading.Event()

        def drain():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"serving TLS at 127\.0\.0\.1:(\d+)", line)
                if m:
                    self.tls_port = int(m.group(1))
                    ready.set()
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise RuntimeError("s3d did not start:\n" + "".join(self.log))

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode if self.proc else None
        self.proc = None
        return code

    def restart(self):
        assert self.stop() == 0, "graceful stop exits 0"
        self.start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def vhost_endpoint(self):
        return f"http://{DOMAIN}:{self.port}"

    @property
    def tls_endpoint(self):
        return f"https://localhost:{self.tls_port}"


@pytest.fixture
def server(tmp_path, certs):
    s = Server(tmp_path, certs)
    s.start()
    yield s
    s.stop(signal.SIGKILL)


class Aws:
    """Runs the aws-cli (`aws`) against a server, in path or virtual-host style."""

    def __init__(self, server: Server, tmp: pathlib.Path, style: str, tls: bool = False):
        self.server = server
        self.style = style
        self.tls = tls
        self.config = tmp / f"aws-config-{style}"
        self.config.write_text(f"[default]\nregion = {REGION}\ns3 =\n  addressing_style = {style}\n")

    def env(self):
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(self.config),
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "",
            "no_proxy": "",
        }
        for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "AWS_CA_BUNDLE"):
            env.pop(k, None)
        if self.tls:
            env["AWS_CA_BUNDLE"] = str(self.server.ca)
        if self.style == "virtual":
            env["HTTP_PROXY"] = self.server.endpoint
        return env

    def endpoint(self):
        if self.tls:
            return self.server.tls_endpoint
        return self.server.vhost_endpoint if self.style == "virtual" else self.server.endpoint

    def run(self, *args, check=True):
        cmd = [str(BIN_DIR / "aws"), "--endpoint-url", self.endpoint(), "--output", "json", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({p.returncode}):\n{p.stderr}")
        return p

    def json(self, *args):
        out = self.run(*args).stdout
        return json.loads(out) if out.strip() else {}


@pytest.fixture(params=["path", "virtual"])
def aws(request, server, tmp_path):
    return Aws(server, tmp_path, request.param)


def boto3_client(server: Server, style: str):
    """A boto3 client in its current default settings, in path or virtual-host style."""
    kwargs = {}
    if style == "virtual":
        kwargs["proxies"] = {"http": server.endpoint}
        endpoint = server.vhost_endpoint
    else:
        endpoint = server.endpoint
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(s3={"addressing_style": style}, **kwargs),
    )


@pytest.fixture(params=["path", "virtual"])
def s3(request, server):
    return boto3_client(server, request.param)


def rclone_runner(server: Server, tmp: pathlib.Path):
    """Runs rclone with an `s3d:` remote pointing at the server (path style)."""
    env = {
        **os.environ,
        "RCLONE_CONFIG": str(tmp / "rclone.conf"),
        "RCLONE_CONFIG_S3D_TYPE": "s3",
        "RCLONE_CONFIG_S3D_PROVIDER": "Other",
        "RCLONE_CONFIG_S3D_ACCESS_KEY_ID": ACCESS_KEY,
        "RCLONE_CONFIG_S3D_SECRET_ACCESS_KEY": SECRET_KEY,
        "RCLONE_CONFIG_S3D_ENDPOINT": server.endpoint,
        "RCLONE_CONFIG_S3D_REGION": REGION,
        "RCLONE_CONFIG_S3D_FORCE_PATH_STYLE": "true",
    }
    env.pop("AWS_CA_BUNDLE", None)  # this rclone refuses a custom CA bundle over plain HTTP
    (tmp / "rclone.conf").write_text("")

    def rclone(*args):
        p = subprocess.run(["rclone", *args], capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, f"rclone {args}: {p.stdout}\n{p.stderr}"
        return p.stdout

    return rclone


def s3cmd_runner(server: Server, tmp: pathlib.Path, signature_v2: bool = False):
    """Runs s3cmd against the server (path style), signing with SigV4 or, if asked, SigV2."""
    cfg = tmp / "s3cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {ACCESS_KEY}\n"
        f"secret_key = {SECRET_KEY}\n"
        f"host_base = 127.0.0.1:{server.port}\n"
        f"host_bucket = 127.0.0.1:{server.port}\n"
        "use_https = False\n"
        f"signature_v2 = {signature_v2}\n"
        f"bucket_location = {REGION}\n"
    )

    def s3cmd(*args):
        p = subprocess.run(["s3cmd", "-c", str(cfg), *args], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"s3cmd {args}: {p.stdout}\n{p.stderr}"
        return p.stdout

    return s3cmd


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A throwaway PostgreSQL server from the distribution's binaries, in a temporary
    directory on 127.0.0.1 and a port of its own (run as the postgres user under root, which
    PostgreSQL refuses); stopped by PID."""

    def __init__(self):
        versions = sorted(
            (int(p.parent.parent.name), p.parent)
            for p in pathlib.Path("/usr/lib/postgresql").glob("*/bin/postgres")
            if p.parent.parent.name.isdigit()
        )
        if not versions:
            pytest.fail("PostgreSQL is not installed: run the suite through scripts/test, which installs it")
        self.bin = versions[-1][1]
        # Its own directory under /tmp: the postgres user cannot enter pytest's (mode 0700).
        import tempfile

        root = self.root = pathlib.Path(tempfile.mkdtemp(prefix="s3d-test-pg-"))
        self.data = root / "pgdata"
        self.port = free_port()
        self.proc = None
        self.as_postgres = []
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(root, pw.pw_uid, pw.pw_gid)
            self.as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        subprocess.run(
            [*self.as_postgres, str(self.bin / "initdb"), "-D", str(self.data), "-U", "s3d", "-A", "trust", "-E", "UTF8",
             "--no-sync"],
            check=True, capture_output=True,
        )

    def start(self):
        self.proc = subprocess.Popen(
            [*self.as_postgres, str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
             "-c", "max_connections=200", "-c", "fsync=off", "-c", "synchronous_commit=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        pid_file = self.data / "postmaster.pid"
        import time

        deadline = time.monotonic() + 60
        while not (pid_file.exists() and "ready" in pid_file.read_text()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.05)

    def create_database(self, name: str) -> str:
        subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "s3d", "-d", "postgres",
             "-qc", f"CREATE DATABASE {name}"],
            check=True, capture_output=True,
        )
        return f"postgres://s3d@127.0.0.1:{self.port}/{name}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)
