"""The PostgreSQL the tests run against (scripts/with-postgres starts it):
a fresh database per test, and stopping and starting the server."""
import os
import subprocess
import uuid
from urllib.parse import urlparse

import pytest

URL = os.environ.get("PROMPTQ_TEST_POSTGRES")
BIN = os.environ.get("PROMPTQ_TEST_POSTGRES_BIN")
DIR = os.environ.get("PROMPTQ_TEST_POSTGRES_DIR")


def require():
    """Nothing is skipped where PostgreSQL is installed: run under scripts/with-postgres."""
    if URL:
        return
    installed = any(os.path.exists(f"/usr/lib/postgresql/{v}/bin/initdb") for v in os.listdir("/usr/lib/postgresql")) \
        if os.path.isdir("/usr/lib/postgresql") else False
    if installed:
        pytest.fail("PostgreSQL is installed but PROMPTQ_TEST_POSTGRES is not set: run under scripts/with-postgres")
    pytest.skip("no PostgreSQL server installed")


def fresh_database():
    require()
    u = urlparse(URL)
    name = "t_" + uuid.uuid4().hex[:12]
    subprocess.run([os.path.join(BIN, "createdb"), "-h", u.hostname, "-p", str(u.port), "-U", u.username, name],
                   check=True, capture_output=True)
    return f"postgres://{u.username}@{u.hostname}:{u.port}/{name}", (u.hostname, u.port, u.username, name)


def query(url, sql):
    """One value from the database at url (psql), as text."""
    u = urlparse(url)
    r = subprocess.run([os.path.join(BIN, "psql"), "-h", u.hostname, "-p", str(u.port), "-U", u.username,
                        "-d", u.path.lstrip("/"), "-qAt", "-c", sql], check=True, capture_output=True, text=True)
    return r.stdout.strip()


def _pg_ctl(*args):
    cmd = [os.path.join(BIN, "pg_ctl"), "-D", os.path.join(DIR, "data"), *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def stop_server():
    _pg_ctl("stop", "-m", "immediate", "-w")


def start_server():
    """Starts the server stopped by stop_server, with the options scripts/with-postgres gave it."""
    _pg_ctl("start", "-w", "-t", "30", "-l", os.path.join(DIR, "server.log"),
            "-o", os.environ["PROMPTQ_TEST_POSTGRES_OPTS"])
