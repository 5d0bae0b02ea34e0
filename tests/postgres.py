"""A throwaway PostgreSQL server for the database tests, from the Debian binaries.

``PostgresServer`` runs initdb into a temporary directory, starts the server listening on
127.0.0.1 only (on a free port, its unix socket inside that directory, a random password) and
creates one database per test. initdb and postgres refuse to run as root: as root they run as
the ``postgres`` system user. ``postgres_binaries`` finds initdb and pg_ctl (the newest
``/usr/lib/postgresql/*/bin``, else the PATH); the fixtures in tests/knowledge/conftest.py skip
when they are missing, or fail when ``KDESK_REQUIRE_POSTGRES=1`` (CI) says they must run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL

REQUIRE_ENV = "KDESK_REQUIRE_POSTGRES"
DEBIAN_BINARIES = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"  # the system user initdb and postgres run as when we are root
SUPERUSER = "kdesk"
START_TIMEOUT_S = 60
# Not UTC (and far from it, +12/+13 h), so that a test fails when a value depends on the
# server's time zone instead of being UTC as the app promises.
SERVER_TIME_ZONE = "Pacific/Auckland"
# A test server: nothing needs to survive a crash, so skip every flush to disk.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be run here (binaries or driver missing)."""


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


def _version(bindir: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name)) or (0,)


def postgres_binaries() -> Path:
    """The directory holding initdb and pg_ctl, or PostgresUnavailable saying what is missing."""
    found = sorted(
        (p for p in Path("/").glob(DEBIAN_BINARIES.lstrip("/")) if (p / "initdb").is_file()),
        key=_version,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise PostgresUnavailable(
        f"PostgreSQL binaries not found (no initdb in {DEBIAN_BINARIES} or on PATH): "
        "install them with `apt-get install postgresql`"
    )


def check_driver() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailable(
            "the psycopg driver is not installed: `pip install -e '.[dev]'`"
        ) from None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    bindir: Path
    root: Path  # the temporary directory: data/, the log, the socket
    port: int = 0
    password: str = ""
    _as_user: str | None = None
    _databases: int = 0
    _admin_engine: Engine | None = None

    @classmethod
    def start(cls, bindir: Path | None = None) -> PostgresServer:
        """initdb, then start; on any failure everything made so far is removed again."""
        bindir = bindir or postgres_binaries()
        as_user = SERVER_USER if os.geteuid() == 0 else None
        if as_user is not None:
            try:
                owner = pwd.getpwnam(as_user)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root, and there is no {as_user!r} system user to run "
                    "PostgreSQL as (the postgresql package creates it)"
                ) from None
        root = Path(tempfile.mkdtemp(prefix="kdesk-pg-", dir=_world_traversable_tmp()))
        if as_user is not None:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        server = cls(bindir, root, password=secrets.token_urlsafe(18), _as_user=as_user)
        try:
            server._initdb()
            server._start()
        except BaseException:
            server.stop()
            raise
        return server

    # Running the binaries ----------------------------------------------------------------

    def _run(self, program: str, args: Sequence[str]) -> None:
        command = [str(self.bindir / program), *args]
        if self._as_user is not None:
            command = ["runuser", "-u", self._as_user, "--", *command]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env |= {"LC_ALL": "C", "TZ": "UTC"}
        done = subprocess.run(
            command,
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 10,
            check=False,
        )
        if done.returncode != 0:
            log = self.log_tail()
            raise RuntimeError(
                f"{program} failed ({done.returncode}): {done.stderr.strip() or done.stdout}"
                + (f"\nserver log:\n{log}" if log else "")
            )

    def _write(self, name: str, content: str) -> Path:
        path = self.root / name
        path.write_text(content)
        if self._as_user is not None:
            owner = pwd.getpwnam(self._as_user)
            os.chown(path, owner.pw_uid, owner.pw_gid)
        path.chmod(0o600)
        return path

    def _initdb(self) -> None:
        pwfile = self._write("pwfile", self.password + "\n")
        self._run(
            "initdb",
            [
                *("-D", str(self.data_dir), "-U", SUPERUSER, "--pwfile", str(pwfile)),
                *("--auth", "scram-sha-256", "--encoding", "UTF8", "--locale", "C"),
                "--no-sync",
            ],
        )
        pwfile.unlink()

    def _start(self) -> None:
        options = [
            *("-c", "listen_addresses=127.0.0.1"),
            *("-c", f"timezone={SERVER_TIME_ZONE}"),
            *("-c", f"unix_socket_directories={self.root}"),
            *(part for setting in FAST_SETTINGS for part in ("-c", setting)),
        ]
        for attempt in range(3):  # the free port may be taken before the server binds it
            self.port = free_port()
            server_options = " ".join([*options, "-p", str(self.port)])
            args = ["-D", str(self.data_dir), "-l", str(self.log_path), "-o", server_options]
            try:
                self._run("pg_ctl", [*args, "-w", "-t", str(START_TIMEOUT_S), "start"])
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def stop(self) -> None:
        """Stop the server (if it runs) and remove its directory; safe to call twice."""
        if self._admin_engine is not None:
            self._admin_engine.dispose()
            self._admin_engine = None
        try:
            if (self.data_dir / "postmaster.pid").exists():
                with contextlib.suppress(Exception):
                    self._run("pg_ctl", ["-D", str(self.data_dir), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # Where things are ----------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql+psycopg://`` URL of one of the server's databases, over TCP."""
        return URL.create(
            "postgresql+psycopg",
            username=SUPERUSER,
            password=self.password,
            host="127.0.0.1",
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    # Databases -------------------------------------------------------------------------------

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        self._databases += 1
        name = f"kdesk_test_{self._databases}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by ``create_database``, closing its open connections."""
        name = url.rsplit("/", 1)[-1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        if self._admin_engine is None:
            self._admin_engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with self._admin_engine.connect() as connection:
            connection.execute(text(statement))


def _world_traversable_tmp() -> str:
    """The temp dir, when the postgres user can reach into it (a private TMPDIR it cannot)."""
    candidate = tempfile.gettempdir()
    if os.geteuid() != 0 or os.stat(candidate).st_mode & 0o001:
        return candidate
    return "/tmp"
