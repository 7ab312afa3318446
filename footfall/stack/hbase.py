"""Apache HBase standalone (ZooKeeper, master and region server in one JVM) plus Thrift1.

Everything comes from Maven Central as jars and runs with the machine's JDK 17 (or 11):

* ``org.apache.hadoop.hbase.master.HMaster start`` with ``hbase.cluster.distributed=false``
  starts an embedded ZooKeeper, the master and one region server in one JVM, storing its
  data on the local filesystem under ``<state_dir>/hbase/data``.
* ``org.apache.hadoop.hbase.thrift.ThriftServer start`` serves the Thrift1 API that
  ``happybase`` speaks (binary protocol, buffered transport, port ``settings.hbase_port``).

Jars: the ``-hadoop3`` builds of the HBase modules (the plain builds carry Hadoop 2). The
registry reachable here serves no ``-hadoop3`` build of ``hbase-thrift`` (only the plain
one), so the Thrift module comes in its plain build of the same release: its code is the
same and it only calls HBase and Hadoop through APIs that both builds share. Its Hadoop 2
client jars are excluded, and every HBase module is pinned to the ``-hadoop3`` build, so
one Hadoop (3.x) ends up on the classpath.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.sax.saxutils import escape

import happybase

from footfall.settings import Settings
from footfall.stack import maven
from footfall.stack.base import ProcessSpec, Service, StackError

HOST = "127.0.0.1"
"""Every HBase socket (ZooKeeper, RPC, web UIs, Thrift) binds to loopback only."""

ZOOKEEPER_PORT = 2181
THRIFT_INFO_PORT = 9095
CHECK_TIMEOUT_MS = 5000
SUPPORTED_JDKS = (17, 11)
"""JDK majors HBase 2.6 supports that accept the module flags below, preferred first."""
JVM_DIR = Path("/usr/lib/jvm")

LOG4J_VERSION = "2.17.2"  # what HBase 2.6.1 itself builds and ships with
JACKSON_VERSION = "2.17.2"  # hbase-http's jackson-core; Hadoop 3.3 would drag databind 2.12

# The modules hbase-thrift pulls, named explicitly so that every one is the -hadoop3 build
# and none comes in through hbase-thrift's plain (Hadoop 2) POM.
HBASE_MODULES = (
    "hbase-common",
    "hbase-logging",
    "hbase-protocol",
    "hbase-protocol-shaded",
    "hbase-client",
    "hbase-zookeeper",
    "hbase-procedure",
    "hbase-replication",
    "hbase-metrics-api",
    "hbase-metrics",
    "hbase-hadoop-compat",
    "hbase-hadoop2-compat",
    "hbase-asyncfs",
    "hbase-http",
    "hbase-server",
)

EXCLUSIONS = (
    # Hadoop 2 client jars (MapReduce and YARN 2.10) that only the plain hbase-thrift POM asks for.
    "org.apache.hadoop:hadoop-client",
    # Logging backends competing with log4j2 (HBase's own tarball ships log4j2 only).
    "ch.qos.reload4j:reload4j",
    "org.slf4j:slf4j-reload4j",
    "org.slf4j:slf4j-log4j12",
    "log4j:log4j",
    # Hadoop-hdfs's all-in-one netty 4.1.77 duplicates the split netty 4.1.105 jars that
    # ZooKeeper uses; HBase itself uses its relocated copy (hbase-shaded-netty).
    "io.netty:netty-all",
)

# What HBase's bin/hbase adds on JDK 11+ (and its build passes to its tests).
JDK11_FLAGS = (
    "-Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true",
    "--add-modules=jdk.unsupported",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "--add-exports=java.base/sun.net.dns=ALL-UNNAMED",
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
)

LOG4J2_PROPERTIES = """\
# Written by footfall.stack.hbase; rewritten on every start.
status = warn
dest = err
name = footfall-hbase

appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_OUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} %-5p [%t] %c{2}: %.1000m%n

rootLogger = INFO,console

logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = WARN
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = WARN
logger.hbase.name = org.apache.hadoop.hbase
logger.hbase.level = INFO
# Chatty at INFO and of no use for a one-node dev stack.
logger.metrics.name = org.apache.hadoop.metrics2
logger.metrics.level = ERROR
logger.hbase_zk.name = org.apache.hadoop.hbase.zookeeper
logger.hbase_zk.level = WARN
logger.hbase_http.name = org.apache.hadoop.hbase.http
logger.hbase_http.level = WARN
"""


def _java_major(java_home: Path) -> int | None:
    """The feature version of the JDK at java_home, from its `release` file."""
    try:
        text = (java_home / "release").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("JAVA_VERSION="):
            version = line.split("=", 1)[1].strip().strip('"')
            head = version.split(".")[0].split("-")[0]
            if head == "1":  # 1.8.0_x
                head = version.split(".")[1]
            return int(head) if head.isdigit() else None
    return None


def find_java(settings: Settings) -> Path:
    """The java binary for HBase: FOOTFALL_JAVA_HOME, else a JDK 17 (or 11) on this machine.

    HBase 2.6 supports JDK 11 and 17; newer JDKs (25 is on some machines) are refused.
    Without FOOTFALL_JAVA_HOME, PATH's java and the JDKs under /usr/lib/jvm are candidates,
    chosen by the version in their `release` file, 17 first.
    """
    if settings.java_home is not None:
        major = _java_major(settings.java_home)
        if major not in SUPPORTED_JDKS:
            raise StackError(
                f"hbase: FOOTFALL_JAVA_HOME={settings.java_home} is JDK {major}; "
                "HBase 2.6 needs JDK 17 (or 11)"
            )
        return settings.java_home / "bin" / "java"
    homes: list[Path] = []
    on_path = shutil.which("java")
    if on_path is not None:
        homes.append(Path(on_path).resolve().parent.parent)
    if JVM_DIR.is_dir():
        homes += sorted({path.resolve() for path in JVM_DIR.iterdir() if path.is_dir()})
    for wanted in SUPPORTED_JDKS:
        for home in homes:
            if _java_major(home) == wanted and (home / "bin" / "java").is_file():
                return home / "bin" / "java"
    raise StackError(
        f"hbase: no JDK 17 or 11 (java on PATH or under {JVM_DIR}); set FOOTFALL_JAVA_HOME"
    )


def _site_xml(properties: dict[str, str]) -> str:
    body = "".join(
        f"  <property><name>{escape(key)}</name><value>{escape(value)}</value></property>\n"
        for key, value in properties.items()
    )
    return (
        '<?xml version="1.0"?>\n'
        "<!-- Written by footfall.stack.hbase; rewritten on every start. -->\n"
        f"<configuration>\n{body}</configuration>\n"
    )


class HBase(Service):
    """HBase standalone on the local filesystem, reached through its Thrift1 server."""

    name = "hbase"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.conf_dir = self.home / "conf"
        self.data_dir = self.home / "data"
        self.tmp_dir = self.home / "tmp"

    # --- coordinates ----------------------------------------------------------------
    @property
    def thrift_version(self) -> str:
        """hbase-thrift's version: the plain build of settings.hbase_version's release."""
        return self.settings.hbase_version.removesuffix("-hadoop3")

    def coordinates(self) -> list[str]:
        version = self.settings.hbase_version
        return [
            *(f"org.apache.hbase:{module}:{version}" for module in HBASE_MODULES),
            # After the modules: at equal depth Maven keeps the first declaration, so the
            # Hadoop 3 jars of the -hadoop3 modules win over hbase-thrift's Hadoop 2 ones.
            f"org.apache.hbase:hbase-thrift:{self.thrift_version}",
            f"com.fasterxml.jackson.core:jackson-databind:{JACKSON_VERSION}",
            f"com.fasterxml.jackson.core:jackson-annotations:{JACKSON_VERSION}",
            f"org.apache.logging.log4j:log4j-api:{LOG4J_VERSION}",
            f"org.apache.logging.log4j:log4j-core:{LOG4J_VERSION}",
            f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
            # Hadoop 3.3 still calls the log4j 1 API in places; HBase ships this bridge too.
            f"org.apache.logging.log4j:log4j-1.2-api:{LOG4J_VERSION}",
        ]

    def lib_dir(self) -> Path:
        """The resolved jars (resolving them first if needed; cached after that)."""
        return maven.resolve(
            self.cache, f"hbase-{self.settings.hbase_version}", self.coordinates(), EXCLUSIONS
        )

    # --- Service --------------------------------------------------------------------
    def address(self) -> str:
        return f"{HOST}:{self.settings.hbase_port} (thrift)"

    def check(self) -> str | None:
        connection = happybase.Connection(
            host=HOST, port=self.settings.hbase_port, timeout=CHECK_TIMEOUT_MS, autoconnect=False
        )
        try:
            connection.open()
            connection.tables()
        except Exception as exc:  # thriftpy2 transport/protocol errors, socket errors, IOError
            detail = str(exc).strip().splitlines()
            reason = detail[0] if detail else "no detail"
            return f"thrift {HOST}:{self.settings.hbase_port}: {type(exc).__name__}: {reason}"
        finally:
            connection.close()
        return None

    def prepare(self) -> None:
        self.lib_dir()
        for path in (self.conf_dir, self.data_dir, self.tmp_dir, self.home / "logs"):
            path.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "hbase-site.xml").write_text(_site_xml(self.site_properties()))
        (self.conf_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)

    def site_properties(self) -> dict[str, str]:
        return {
            # Standalone: ZooKeeper, master and region server in the HMaster JVM.
            "hbase.cluster.distributed": "false",
            "hbase.rootdir": (self.data_dir / "hbase").as_uri(),
            "hbase.zookeeper.property.dataDir": str(self.data_dir / "zookeeper"),
            "hbase.tmp.dir": str(self.tmp_dir),
            # The local filesystem has no hflush/hsync; HBase refuses to write WALs without
            # this (what HBase's own standalone conf sets).
            "hbase.unsafe.stream.capability.enforce": "false",
            # Loopback only, and register under 127.0.0.1 so no name lookup is involved.
            "hbase.zookeeper.quorum": HOST,
            "hbase.zookeeper.property.clientPort": str(ZOOKEEPER_PORT),
            "hbase.zookeeper.property.clientPortAddress": HOST,
            "hbase.master.hostname": HOST,
            "hbase.unsafe.regionserver.hostname": HOST,
            "hbase.master.ipc.address": HOST,
            "hbase.regionserver.ipc.address": HOST,
            "hbase.master.info.bindAddress": HOST,
            "hbase.regionserver.info.bindAddress": HOST,
            # Thrift1 server: happybase's defaults (binary protocol, buffered transport).
            "hbase.regionserver.thrift.ipaddress": HOST,
            "hbase.regionserver.thrift.port": str(self.settings.hbase_port),
            "hbase.regionserver.thrift.framed": "false",
            "hbase.regionserver.thrift.compact": "false",
            "hbase.thrift.info.bindAddress": HOST,
            "hbase.thrift.info.port": str(THRIFT_INFO_PORT),
            # On SIGTERM the master stops first and takes the in-JVM ZooKeeper with it; the
            # region server (regions already flushed and closed) then retries ZooKeeper
            # before it exits: about 18 s with the defaults (3 retries, 90 s sessions).
            "zookeeper.session.timeout": "10000",
            "zookeeper.recovery.retry": "1",
            "zookeeper.recovery.retry.intervalmill": "200",
            # Small: one developer machine (2 cores) shared with Kafka, InfluxDB and Spark.
            "hbase.regionserver.handler.count": "10",
            "hbase.thrift.minWorkerThreads": "4",
            "hbase.master.procedure.threads": "4",
        }

    def processes(self) -> list[ProcessSpec]:
        java = str(find_java(self.settings))
        jars = sorted(str(jar) for jar in self.lib_dir().glob("*.jar"))
        if not jars:
            raise StackError(f"hbase: no jars in {self.lib_dir()}")
        classpath = ":".join([str(self.conf_dir), *jars])

        def jvm(role: str, heap: str, min_heap: str, main: str) -> list[str]:
            return [
                java,
                f"-Dproc_{role}",  # what bin/hbase tags its JVMs with; `ps` shows the role
                "-Dfootfall.stack=hbase",
                f"-Xms{min_heap}",
                f"-Xmx{heap}",
                "-XX:+UseG1GC",
                "-XX:OnOutOfMemoryError=kill -9 %p",
                "-Djava.net.preferIPv4Stack=true",
                f"-Djava.io.tmpdir={self.tmp_dir}",
                f"-Dhbase.log.dir={self.home / 'logs'}",
                f"-Dhbase.log.file={role}.out",
                f"-Dhbase.home.dir={self.home}",
                f"-Dlog4j2.configurationFile={self.conf_dir / 'log4j2.properties'}",
                *JDK11_FLAGS,
                "-cp",
                classpath,
                main,
                "start",
            ]

        return [
            ProcessSpec(
                "master",
                jvm("master", "1g", "256m", "org.apache.hadoop.hbase.master.HMaster"),
                self.home,
            ),
            ProcessSpec(
                "thrift",
                jvm("thrift", "256m", "64m", "org.apache.hadoop.hbase.thrift.ThriftServer"),
                self.home,
            ),
        ]
