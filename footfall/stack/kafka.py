"""A real single-node KRaft Apache Kafka, run from Maven Central jars with the machine's Java.

One JVM plays broker and controller (``process.roles=broker,controller``): clients use
PLAINTEXT on 127.0.0.1:9092, the KRaft quorum talks on 127.0.0.1:9093. Storage is formatted
once with ``kafka.tools.StorageTool``; the cluster id is kept in ``<home>/cluster-id`` so a
restart (or a re-run of ``prepare``) reuses the same log directory.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import socket
import subprocess
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from footfall.stack import maven
from footfall.stack.base import ProcessSpec, Service, StackError, log_tail

HOST = "127.0.0.1"
PORT = 9092
CONTROLLER_PORT = 9093
NODE_ID = 1

#: Log4j 2 release matching the one kafka-server pulls in on 4.x (binding for slf4j 1.7.x).
LOG4J2_VERSION = "2.24.3"
#: Kafka 3.x logs through slf4j 1.7 + log4j 1 API; reload4j is the maintained log4j 1.
SLF4J_VERSION = "1.7.36"

HEAP_OPTS = ("-Xms256m", "-Xmx768m")
JVM_OPTS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxDirectMemorySize=256m",
    "-Djava.awt.headless=true",
)
CHECK_TIMEOUT_S = 5.0

T = TypeVar("T")


def _major(version: str) -> int:
    try:
        return int(version.split(".", 1)[0])
    except ValueError as exc:
        raise StackError(f"kafka: cannot read the major version of {version!r}") from exc


def _run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class Kafka(Service):
    """Apache Kafka ``settings.kafka_version`` (KRaft, broker+controller in one JVM)."""

    name = "kafka"

    # --- paths ---------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def cluster_id_file(self) -> Path:
        return self.home / "cluster-id"

    @property
    def log_config_file(self) -> Path:
        if _major(self.settings.kafka_version) >= 4:
            return self.home / "log4j2.properties"
        return self.home / "log4j.properties"

    @property
    def lib(self) -> Path:
        """Where the jars are; valid once `prepare` resolved them (cached, so cheap)."""
        return self._resolve()

    # --- Service -------------------------------------------------------------------
    def address(self) -> str:
        return f"{HOST}:{PORT}"

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        lib = self._resolve()
        self.config_file.write_text(self._server_properties())
        self.log_config_file.write_text(self._log_config())
        self._format_storage(lib)

    def processes(self) -> list[ProcessSpec]:
        return [
            ProcessSpec(
                name="kafka",
                argv=[*self._java_argv(self.lib), "kafka.Kafka", str(self.config_file)],
                cwd=self.home,
            )
        ]

    def check(self) -> str | None:
        # A cheap TCP probe first: it keeps aiokafka from logging connection errors
        # every second while the JVM boots.
        try:
            with socket.create_connection((HOST, PORT), timeout=1.0):
                pass
        except OSError as exc:
            return f"nothing accepts connections on {self.address()} ({exc.strerror or exc})"
        try:
            return _run_coroutine(asyncio.wait_for(self._metadata_check(), CHECK_TIMEOUT_S))
        except TimeoutError:
            return f"no metadata answer from {self.address()} within {CHECK_TIMEOUT_S:.0f}s"
        except Exception as exc:  # any client failure is a reason, not a crash
            return f"metadata request to {self.address()} failed: {type(exc).__name__}: {exc}"

    # --- helpers -------------------------------------------------------------------
    async def _metadata_check(self) -> str | None:
        from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

        client = AIOKafkaAdminClient(
            bootstrap_servers=self.address(),
            request_timeout_ms=int(CHECK_TIMEOUT_S * 1000),
            client_id="footfall-stack-check",
        )
        try:
            await client.start()
            cluster: dict[str, Any] = await client.describe_cluster()
        finally:
            await client.close()
        brokers = cluster.get("brokers") or []
        if not any(broker.get("node_id") == NODE_ID for broker in brokers):
            return f"broker {NODE_ID} is not in the cluster metadata yet ({brokers})"
        if cluster.get("controller_id", -1) < 0:
            return "the cluster has no active controller yet"
        return None

    def _resolve(self) -> Path:
        version = self.settings.kafka_version
        if _major(version) >= 4:
            # kafka-server brings log4j-api/core 2.x; add the slf4j 1.7 -> log4j2 binding.
            logging_jars = [f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J2_VERSION}"]
        else:
            # kafka 3.x: slf4j 1.7 + log4j 1 (reload4j) binding, as the 3.x tarball ships.
            logging_jars = [f"org.slf4j:slf4j-reload4j:{SLF4J_VERSION}"]
        return maven.resolve(
            self.cache,
            f"kafka-{version}",
            [f"org.apache.kafka:kafka_2.13:{version}", *logging_jars],
        )

    def _java_argv(self, lib: Path) -> list[str]:
        if _major(self.settings.kafka_version) >= 4:
            log_opt = f"-Dlog4j2.configurationFile={self.log_config_file}"
        else:
            log_opt = f"-Dlog4j.configuration={self.log_config_file.as_uri()}"
        return [
            maven.java_bin(self.settings.java_home),
            *HEAP_OPTS,
            *JVM_OPTS,
            log_opt,
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            f"{lib}/*",
        ]

    def _server_properties(self) -> str:
        props = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@{HOST}:{CONTROLLER_PORT}",
            "listeners": f"PLAINTEXT://{HOST}:{PORT},CONTROLLER://{HOST}:{CONTROLLER_PORT}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{PORT}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "true",
            "delete.topic.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "50",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "50",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Dev/CI: no 3 s wait before the first rebalance of a new group.
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "3",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.retention.hours": "168",
            "log.segment.bytes": str(256 * 1024 * 1024),
        }
        lines = [
            "# Written by footfall.stack.kafka on every `prepare`; edits here are overwritten.",
            *(f"{key}={value}" for key, value in props.items()),
        ]
        return "\n".join(lines) + "\n"

    def _log_config(self) -> str:
        server_log = self.home / "logs" / "server.log"
        if _major(self.settings.kafka_version) >= 4:
            # log4j2 .properties (the YAML config Kafka ships needs jackson-dataformat-yaml
            # wiring we do not rely on). Everything to a rolled file; WARN+ also to stdout,
            # which is the process log that start-up errors quote.
            return "\n".join(
                [
                    "status = warn",
                    "name = footfall-kafka",
                    # Kafka logs its own orderly shutdown; log4j's hook would close first.
                    "shutdownHook = disable",
                    "appender.console.type = Console",
                    "appender.console.name = STDOUT",
                    "appender.console.layout.type = PatternLayout",
                    "appender.console.layout.pattern = [%d] %p %m (%c)%n",
                    "appender.console.filter.threshold.type = ThresholdFilter",
                    "appender.console.filter.threshold.level = warn",
                    "appender.file.type = RollingFile",
                    "appender.file.name = FILE",
                    f"appender.file.fileName = {server_log}",
                    f"appender.file.filePattern = {server_log}.%i",
                    "appender.file.layout.type = PatternLayout",
                    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                    "appender.file.policies.type = Policies",
                    "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
                    "appender.file.policies.size.size = 20MB",
                    "appender.file.strategy.type = DefaultRolloverStrategy",
                    "appender.file.strategy.max = 3",
                    "rootLogger.level = info",
                    "rootLogger.appenderRef.console.ref = STDOUT",
                    "rootLogger.appenderRef.file.ref = FILE",
                    "logger.kafka.name = kafka",
                    "logger.kafka.level = info",
                    "logger.apache.name = org.apache.kafka",
                    "logger.apache.level = info",
                    "",
                ]
            )
        return "\n".join(
            [
                "log4j.rootLogger=INFO, stdout, file",
                "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
                "log4j.appender.stdout.Threshold=WARN",
                "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
                "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
                "log4j.appender.file=org.apache.log4j.RollingFileAppender",
                f"log4j.appender.file.File={server_log}",
                "log4j.appender.file.MaxFileSize=20MB",
                "log4j.appender.file.MaxBackupIndex=3",
                "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
                "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
                "",
            ]
        )

    def _cluster_id(self) -> str:
        """The id this node's storage is (or will be) formatted with; created once."""
        if self.cluster_id_file.exists():
            stored = self.cluster_id_file.read_text().strip()
            if stored:
                return stored
        # Recover it from formatted storage if the id file was lost.
        cluster_id = self._formatted_cluster_id() or _random_cluster_id()
        self.cluster_id_file.write_text(cluster_id + "\n")
        return cluster_id

    def _formatted_cluster_id(self) -> str | None:
        meta = self.data_dir / "meta.properties"
        if not meta.exists():
            return None
        for line in meta.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        return None

    def _format_storage(self, lib: Path) -> None:
        """Format the log directory once; a no-op when it already is (same cluster id)."""
        cluster_id = self._cluster_id()
        formatted = self._formatted_cluster_id()
        if formatted is not None:
            if formatted != cluster_id:
                raise StackError(
                    f"kafka: {self.data_dir} belongs to cluster {formatted}, but "
                    f"{self.cluster_id_file} says {cluster_id}; remove one of them"
                )
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.home / "logs" / "format.out"
        argv = [
            *self._java_argv(lib),
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            cluster_id,
            "--config",
            str(self.config_file),
            "--ignore-formatted",
        ]
        with log.open("ab") as out:
            result = subprocess.run(
                argv,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=120,
            )
        if result.returncode != 0 or self._formatted_cluster_id() != cluster_id:
            raise StackError(
                f"kafka: formatting {self.data_dir} failed (exit {result.returncode})\n"
                f"--- tail of {log} ---\n{log_tail(log)}"
            )


def _random_cluster_id() -> str:
    """What `kafka-storage.sh random-uuid` prints: 16 random bytes, base64url, no padding.

    Like Kafka's own `Uuid.randomUuid`, never one starting with '-' (it reads as an option).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
