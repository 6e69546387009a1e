"""The server's lifecycle: start the sink, ventilator and workers; supervise; shut down gracefully.

    client -PUSH-> ventilator -ROUTER-> workers -PUSH-> sink -XPUB-> client

The ventilator and sink are threads of this process (each the single owner of
its sockets and state); workers are processes, one engine each. A worker that
dies is restarted and its batches re-run. Shutdown (SIGINT, SIGTERM or a
TERMINATION message) stops intake, lets in-flight requests finish within a
bound, then stops everything.

Liveness tells the truth: if the ventilator or sink thread has died, or every
worker keeps dying as it starts, `is_alive()` turns false (the gateway's
/health answers 503) and `serve_forever` shuts down and returns a non-zero
exit code, so a supervisor restarts the process instead of it serving timeouts.

Usage::

    server = BertServer(parse_server_config(argv))
    server.start()          # returns once every worker is ready, or shutdown is asked for
    sys.exit(server.serve_forever())  # until shut down; non-zero if a part died
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess

import zmq
from zmq.auth.thread import ThreadAuthenticator

from bert_serving.client import BertClient
from bert_serving.proto.internal import Control, encode_control

from .access import start_authenticator
from .config import (
    IGNORED_FLAGS,
    EngineOptions,
    ServerConfig,
    batch_token_budget,
    show_config,
)
from .errors import BertServingError, ConfigError
from .http import Drain, GatewaySettings, HttpGateway, create_app
from .http.served_model import native_embedding_notes, served_model
from .model.chunking import Reduction, reduction_for
from .model.cpu_features import cpu_flags, describe_cpu_flags
from .model.engine import build_tokenizer, open_runner
from .model.graph_contract import PreparedGraph
from .model.head import ModelHead
from .model.pooling import PoolingStrategy
from .model.precision import Running, resolve_inference
from .model.quantization import PrecisionRule, ranges_for
from .model.runtime import usable_gpu_count
from .model.served_graph import ServedGraph
from .model.tokenization import TextTokenizer
from .pipeline.internal_endpoints import InternalEndpoints
from .pipeline.sink import ReplyView, Sink
from .pipeline.ventilator import Ventilator
from .pipeline.worker import WorkerSpec, run_worker

__all__ = ["BertServer", "ServerStartError", "assign_devices", "threads_per_worker"]

_NO_RANGE_INSTEAD = ("ask for binary or ubinary, which need no range (or, from a server that "
                     "pools the model's own normalized embedding beside its own, for that one: "
                     "encode_inputs(..., native=True))")
"""What a BertClient asking int8/uint8 of vectors without a range can do instead."""

log = logging.getLogger(__name__)
WORKER_START_TIMEOUT_S = 600.0
STOP_BUDGET_S = 40.0
"""SIGTERM to exit, at most: one deadline that the HTTP drain, the pipeline's drain and
the joins of the loops and workers all share, so no wait starts afresh after another
timed out. It must fit the tighter of what the deployments give before SIGKILL:
deploy/compose.yaml's stop_grace_period (45 s) and deploy/k8s/deployment.yaml's
terminationGracePeriodSeconds (55 s) less its preStop sleep (10 s), i.e. 45 s, with 5 s
left for the interpreter to exit (tests/unit/test_deploy.py checks both)."""
DRAIN_TIMEOUT_S = 30.0
"""Of STOP_BUDGET_S, what requests in flight (HTTP and ZeroMQ) get to be answered; the
other 10 s end the gateway (1 s), the ventilator and sink loops, and the workers."""
KILL_RESERVE_S = 1.0
"""Of STOP_BUDGET_S, kept for SIGKILL of workers that ignored STOP and SIGTERM (a hung one)."""
EXIT_PART_DIED = 3
"""The exit code when the ventilator, the sink or every worker died."""
CRASH_LOOP_RESTARTS, CRASH_LOOP_WINDOW_S = 5, 60.0
"""A worker restarted this often within the window is given up on (it cannot start)."""


def _left(deadline: float, cap: float = float("inf")) -> float:
    """Seconds until `deadline` (monotonic), at most `cap`, never negative."""
    return max(0.0, min(cap, deadline - time.monotonic()))


class ServerStartError(BertServingError):
    """The server could not start; the message is the one-line reason."""


def assign_devices(config: ServerConfig, *, gpu_count: int) -> list[str]:
    """One device per worker: `cpu`, or GPUs from -device_map (else all visible) in turn.

    More workers than GPUs share them, as in the original: two workers on one GPU
    keep it busy while each tokenizes its next batch and copies results back.
    """
    if config.cpu:
        return ["cpu"] * config.num_worker
    if gpu_count == 0:
        if config.device_map:
            raise ConfigError(
                f"-device_map {list(config.device_map)} given but no CUDA GPU is usable here "
                "(onnxruntime-gpu and the NVIDIA driver are needed): drop it or add -cpu"
            )
        log.warning("no CUDA GPU is usable here: running on CPU (pass -cpu to say so)")
        return ["cpu"] * config.num_worker
    missing = [gpu for gpu in config.device_map if not 0 <= gpu < gpu_count]
    if missing:
        raise ConfigError(
            f"-device_map names GPU {missing[0]} but {gpu_count} GPU(s) are visible here "
            f"(ids 0 to {gpu_count - 1}, after CUDA_VISIBLE_DEVICES): fix -device_map"
        )
    gpus = list(config.device_map) or list(range(gpu_count))
    if config.num_worker > len(gpus):
        log.info("%d workers share %d GPU(s)", config.num_worker, len(gpus))
    return [f"cuda:{gpus[i % len(gpus)]}" for i in range(config.num_worker)]


def _check_head_flags(config: ServerConfig, head: ModelHead, max_tokens: int) -> None:
    """Refuse flags that mean nothing for the served head, in one line; note a short window."""
    if head is not ModelHead.CLASSIFIER:
        return
    if config.truncation == "chunk":
        raise ConfigError("-truncation chunk does not apply to a classifier or cross-encoder: "
                          "its windows' logits have no agreed join (no mean or max of them is "
                          "the model's score of the whole text); use -truncation truncate or "
                          "error with this model")
    max_len = config.engine.max_seq_len
    if max_len is not None and max_len < max_tokens:
        log.warning("this classifier reads up to %d tokens but -max_seq_len %d cuts each text "
                    "or (query, text) pair there: start with -max_seq_len %d to score them "
                    "whole", max_tokens, max_len, max_tokens)


def threads_per_worker(config: ServerConfig, device: str) -> int:
    """-intra_op_threads if given; else the usable cores shared out on CPU, and 1 on a GPU.

    On a GPU the forward pass runs on the device and onnxruntime's CPU pool has
    next to nothing to do, but its threads spin after each run and take the cores
    that tokenizing and messaging need: with a near-free model (a GPU's view of
    the pipeline), one worker served 1.5x more texts/s with 1 thread than with 2
    (scripts/benchmark_pipeline.py, docs/benchmarks.md).
    """
    if config.intra_op_threads:
        return config.intra_op_threads
    if device != "cpu":
        return 1
    return max(1, _usable_cores() // config.num_worker)


def _usable_cores() -> int:
    """Cores this process may run on (taskset, cpusets), not the host's total."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass
class _WorkerProcess:
    spec: WorkerSpec
    process: BaseProcess
    generation: int
    restarts: deque[float] = field(default_factory=deque)
    given_up: bool = False


class BertServer:
    """Owns the sockets' threads and the worker processes."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.shutdown_event = threading.Event()
        self.context = zmq.Context()
        self.workers: list[_WorkerProcess] = []
        self._spawn = multiprocessing.get_context("spawn")
        self.ready = False
        self.gateway: HttpGateway | None = None
        self.authenticator: ThreadAuthenticator | None = None
        self.endpoints: InternalEndpoints | None = None  # the workers' sockets, made in _bind

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        for name in self.config.ignored_flags:
            log.warning("-%s is accepted but has no effect: %s", name, IGNORED_FLAGS[name])
        gpu_count = 0 if self.config.cpu else usable_gpu_count()
        self.devices = assign_devices(self.config, gpu_count=gpu_count)
        budget = batch_token_budget(self.config, self.devices)  # decided once, for all workers
        self.config = dataclasses.replace(self.config, max_batch_tokens=budget,
                                          engine=self._resolved_engine())
        engine = self.config.engine_for(self.devices[0], None)
        # The one place serving converts; imported here so that importing this module
        # (the CLI does, for --help too) does not load onnx and the checkpoint readers.
        from .convert.prepare import prepare_engine_graph

        graph = prepare_engine_graph(engine)  # convert once, here; workers hit the cache
        self.graph = graph
        self.served = ServedGraph.of(graph.metadata, normalize=self.config.engine.normalize,
                                     native=self.config.native_embedding)
        self.running = self._read_back_running(graph)
        _check_head_flags(self.config, graph.metadata.head, graph.metadata.max_tokens)
        tokenizer = build_tokenizer(graph, engine)
        padder = tokenizer.padder
        self.padder = padder if self.config.show_tokens_to_client else padder.without_tokens()
        self._bind(tokenizer)
        # Before the workers load, so a taken -http_port fails fast and /ready says 503 meanwhile.
        self._start_gateway(tokenizer)
        for index in range(self.config.num_worker):
            self._start_worker(index)
        self.ready = self._wait_for_workers()

    def _resolved_engine(self) -> EngineOptions:
        """-dtype and -runtime decided once for the workers' device (`auto` resolved), or a
        ConfigError saying why this machine cannot run what was asked."""
        engine = self.config.engine
        inference = resolve_inference(engine.dtype, engine.runtime, self.devices[0])
        log.info("-dtype %s -runtime %s: %s on %s (CPU: %s)", engine.dtype, engine.runtime,
                 inference.dtype, inference.runtime, describe_cpu_flags(cpu_flags()))
        return dataclasses.replace(engine, dtype=inference.dtype, runtime=inference.runtime)

    def _read_back_running(self, graph: PreparedGraph) -> Running:
        """What the workers' runtime computes in, as it reports it once loaded.

        onnxruntime runs the graph's own precision. OpenVINO's is read from a model
        compiled here with a worker's settings (it also fills OpenVINO's cache, so the
        workers load compiled blobs); a compile that fails fails the start, in one line.
        """
        if self.config.engine.runtime != "openvino":
            return Running("onnxruntime", graph.metadata.precision)
        device = self.devices[0]
        runner = open_runner(graph, self.config.engine_for(
            device, threads_per_worker(self.config, device)))
        return Running(runner.runtime, runner.precision)

    def is_ready(self) -> bool:
        """Workers up and not shutting down: what the gateway's /ready reports."""
        return self.ready and not self.shutdown_event.is_set()

    def is_alive(self) -> bool:
        """The ventilator and sink threads run and some worker is not given up on (/health)."""
        if not hasattr(self, "ventilator_thread"):
            return True  # still starting: /ready, not /health, says so
        return not self.dead_parts()

    def dead_parts(self) -> list[str]:
        dead = [name for name, thread in (("ventilator", self.ventilator_thread),
                                          ("sink", self.sink_thread)) if not thread.is_alive()]
        if self.workers and all(w.given_up for w in self.workers):
            dead.append("every worker")
        return dead

    def _bind(self, tokenizer: TextTokenizer) -> None:
        self.authenticator = start_authenticator(self.context, self.config.access)
        self.endpoints = endpoints = InternalEndpoints()
        try:
            self.sink = Sink(self.context, bind_ip=self.config.bind_ip,
                             port_out=self.config.port_out, job_timeout=self.config.job_timeout,
                             endpoints=endpoints,
                             access=self.config.access, fault=self.config.fault,
                             view=self._reply_view(), native_view=self._native_reply_view(),
                             min_tokens=self._token_rows())
            self.ventilator = Ventilator(
                self.config, self.context, tokenizer=tokenizer,
                sink_control_address=self.sink.control_address,
                endpoints=endpoints,
                server_info=show_config(self.config, self.devices, self.graph, self.running),
                shutdown=self.shutdown_event,
                graph=self.served,
                check_precision=self.sink.check_precision,
            )
        except zmq.ZMQError as error:
            raise ServerStartError(
                f"cannot bind {self.config.bind_ip} ports {self.config.port}/"
                f"{self.config.port_out}: {error} (is another server running? pick -port/-port_out)"
            ) from None
        self.sink.connect_ventilator(self.ventilator.control_address)
        self.sink_thread = threading.Thread(target=self.sink.serve, name="sink", daemon=True)
        self.ventilator_thread = threading.Thread(target=self.ventilator.serve,
                                                  name="ventilator", daemon=True)
        self.sink_thread.start()
        self.ventilator_thread.start()

    def _token_rows(self) -> int:
        """Token-level replies are -max_seq_len long, as the original's (0: as long as needed)."""
        return (self.config.engine.max_seq_len or 0) if self.served.token_level else 0

    def _reply_view(self) -> ReplyView:
        """The server's pooling: the first `output_width` columns of the graph's rows."""
        metadata = self.graph.metadata
        columns = slice(0, metadata.output_width) if metadata.native else slice(None)
        normalize = self.served.normalize
        return ReplyView(columns, self._chunk_reduction(metadata.pooling.strategy),
                         normalize, self._precision_rule(
                             metadata.output_width, normalize, served=metadata.native is None,
                             token_level=self.served.token_level))

    def _native_reply_view(self) -> ReplyView | None:
        """The model's own embedding, in the columns after the server's pooling, if pooled."""
        metadata = self.graph.metadata
        if metadata.native is None:
            return None
        return ReplyView(slice(metadata.output_width, metadata.row_width),
                         self._chunk_reduction(metadata.native.pooling.strategy),
                         metadata.native.normalize,
                         self._precision_rule(metadata.native_width, metadata.native.normalize,
                                              served=True))

    def _precision_rule(self, width: int, normalize: bool, *, served: bool,
                        token_level: bool = False) -> PrecisionRule:
        """What a view's replies may be quantized to (a BertClient's `precision`).

        -embedding_ranges calibrates the vectors the HTTP routes serve (`served`: the
        model's own embedding where the graph pools it beside the server's pooling);
        other vectors get the unit-vector default if they are unit length, else no range.
        """
        head = self.graph.metadata.head
        if head is not ModelHead.EMBEDDING or token_level:
            what = "token vectors (-pooling_strategy NONE)" if token_level else f"{head} rows"
            return PrecisionRule(refusal=f"this server answers {what}, and a precision "
                                 "quantizes one embedding per text")
        configured = self.config.loaded_ranges if served else None
        try:
            ranges = ranges_for(width, unit_vectors=normalize, configured=configured)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        return PrecisionRule(ranges, instead=_NO_RANGE_INSTEAD)

    def _chunk_reduction(self, strategy: PoolingStrategy) -> Reduction:
        if self.config.truncation != "chunk":
            return "mean"  # unused: no request is chunked
        if self.served.sparse:
            return "max"  # SPLADE's own pooling is a max over tokens (model.chunking)
        return reduction_for(strategy)

    def _start_gateway(self, tokenizer: TextTokenizer) -> None:
        """Serve HTTP (-http_port) through a BertClient of this server, in a thread."""
        if self.config.http_port is None:
            return
        if not self.config.access.admits(self._local_ip()):
            raise ServerStartError(
                f"-allow_ip does not admit {self._local_ip()}, where the HTTP gateway connects "
                f"to this server from: add it to -allow_ip, or drop -http_port"
            )
        for note in native_embedding_notes(self.config, self.served):
            log.warning("%s", note)
        settings = GatewaySettings.from_config(self.config)
        drain = Drain()
        app = create_app(settings, self._local_client, is_ready=self.is_ready,
                         is_alive=self.is_alive,
                         model=served_model(self.config, tokenizer, self.served,
                                            self.running),
                         drain=drain)
        self.gateway = HttpGateway(app, host=settings.host, port=settings.port,
                                   grace_s=DRAIN_TIMEOUT_S, drain=drain)
        self.gateway.start()

    def _local_ip(self) -> str:
        return "127.0.0.1" if self.config.bind_ip in ("*", "0.0.0.0") else self.config.bind_ip

    def _local_client(self) -> BertClient:
        ip = self._local_ip()
        # The client's over-long-text warning is meant for a person, not for every HTTP request.
        return BertClient(ip=ip, port=self.config.port, port_out=self.config.port_out,
                          check_length=False, curve_server_key=self.config.access.curve_public_key)

    def _start_worker(self, index: int, generation: int = 0) -> None:
        device = self.devices[index]
        spec = WorkerSpec(
            worker_id=self.ventilator.worker_identities.issue(index, generation),
            engine=self.config.engine_for(device, threads_per_worker(self.config, device)),
            graph=self.graph,
            padder=self.padder,
            ventilator_address=self.ventilator.backend_address,
            sink_address=self.sink.results_address,
            prefetch_size=self.config.prefetch_size,
            max_batch_tokens=self.config.batch_tokens,
            max_batch_size=self.config.max_batch_size,
            fp16_replies=self.config.fp16,
            show_tokens=self.config.show_tokens_to_client,
            fault=self.config.fault,
        )
        process = self._spawn.Process(target=run_worker, args=(spec,), name=f"bert-worker-{index}",
                                      daemon=True)
        process.start()
        worker = _WorkerProcess(spec, process, generation)
        if index < len(self.workers):
            self.workers[index] = worker
        else:
            self.workers.append(worker)

    def _wait_for_workers(self) -> bool:
        """True once every worker is ready; False if shutdown is asked for first (SIGTERM
        while a large model loads: the process stops now, not after the load)."""
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while len(self.ventilator.workers) < self.config.num_worker:
            if self.shutdown_event.is_set():
                log.info("shutdown asked for while the workers load: not serving")
                return False
            dead = [w for w in self.workers if not w.process.is_alive()]
            if dead:
                raise ServerStartError(
                    f"worker {dead[0].spec.worker_id.decode()} exited with code "
                    f"{dead[0].process.exitcode} while loading the model (see its log above)"
                )
            if time.monotonic() > deadline:
                raise ServerStartError("workers did not become ready in time")
            time.sleep(0.05)
        return True

    # -- run --------------------------------------------------------------------------------

    def serve_forever(self) -> int:
        """Supervise until shutdown is asked for or a part dies; the process's exit code."""
        while not self.shutdown_event.wait(0.2):
            self._restart_dead_workers()
            dead = self.dead_parts()
            if dead:
                log.error("%s died: bert-serving exits (code %d) so that it can be restarted",
                          " and ".join(dead), EXIT_PART_DIED)
                self.stop()
                return EXIT_PART_DIED
        self.stop()
        return 0

    def _restart_dead_workers(self) -> None:
        for index, worker in enumerate(self.workers):
            if worker.given_up or worker.process.is_alive():
                continue
            log.warning("worker %s exited (code %s): restarting",
                        worker.spec.worker_id.decode(), worker.process.exitcode)
            self._tell_ventilator(encode_control(Control.WORKER_DIED, worker.spec.worker_id))
            now = time.monotonic()
            restarts = worker.restarts
            while restarts and restarts[0] < now - CRASH_LOOP_WINDOW_S:
                restarts.popleft()
            if len(restarts) >= CRASH_LOOP_RESTARTS:
                log.error("worker %d died %d times in %.0f s: not restarting it", index,
                          len(restarts) + 1, CRASH_LOOP_WINDOW_S)
                worker.given_up = True
                continue
            restarts.append(now)
            self._start_worker(index, worker.generation + 1)
            self.workers[index].restarts = restarts

    def _tell(self, control_address: str, frames: list[bytes]) -> None:
        """One message to a loop's control socket (the loops own their sockets; we don't)."""
        socket = self.context.socket(zmq.PUSH)
        socket.connect(control_address)
        try:
            socket.send_multipart(frames, flags=zmq.NOBLOCK)  # a dead loop reads nothing
        except zmq.Again:
            log.warning("a loop is not reading its control socket: %s not sent", frames[0])
        socket.close(linger=0 if self.dead_parts() else 1000)

    def _tell_ventilator(self, frames: list[bytes]) -> None:
        self._tell(self.ventilator.control_address, frames)

    def request_shutdown(self) -> None:
        self.shutdown_event.set()

    def stop(self) -> None:
        """Stop intake, finish what is in flight (bounded), stop workers and threads.

        All within STOP_BUDGET_S of the call. With a part dead, or a start stopped before
        any worker was up (while they loaded, or one died loading), nothing in flight can
        finish: no drain, no waiting for the HTTP requests in flight, and workers that
        never got STOP are terminated at once.
        """
        now = time.monotonic()
        drained_by, stopped_by = now + DRAIN_TIMEOUT_S, now + STOP_BUDGET_S
        started = hasattr(self, "ventilator_thread")
        broken = started and bool(self.dead_parts())
        # stopped mid-start with no worker up: what is queued cannot be computed
        unserved = started and not self.ready and not self.ventilator.workers
        hopeless = broken or unserved
        if self.gateway is not None:  # first: its requests in flight need the pipeline
            self.gateway.stop(force=hopeless, deadline=drained_by)
        if not started:  # start failed before the loops ran
            self._end_workers(stopped_by, wait_s=0)
            self._close()
            return
        if not hopeless:
            self._drain(drained_by)  # what HTTP left of the drain's time, not a new 30 s
        self._tell_ventilator(encode_control(Control.STOP))
        self.ventilator_thread.join(_left(stopped_by, cap=5))
        self._tell(self.sink.control_address, encode_control(Control.STOP))
        self.sink_thread.join(_left(stopped_by, cap=5))
        self._end_workers(stopped_by, wait_s=0 if hopeless else 5)
        self._close()
        stats = self.ventilator.stats
        # what this replica did, for whoever reads its log after it is gone
        log.info("bert-serving stopped: %d encode requests of %d texts received, %d texts computed",
                 stats.num_data_requests, stats.num_sequences, stats.num_batched_seq)

    def _drain(self, deadline: float) -> None:
        self._tell_ventilator(encode_control(Control.STOP_ACCEPTING))
        while (self.ventilator.busy or self.sink.busy) and time.monotonic() < deadline:
            self._restart_dead_workers()
            if self.dead_parts():
                return
            time.sleep(0.05)
        if self.ventilator.busy or self.sink.busy:
            log.warning("requests still in flight after %.0f s of draining: not answered",
                        DRAIN_TIMEOUT_S)

    def _end_workers(self, deadline: float, *, wait_s: float) -> None:
        """Join workers (they got STOP) for up to `wait_s` in all, then terminate the rest;
        kill those still there when only KILL_RESERVE_S is left before `deadline` (hung)."""
        joined_by = min(time.monotonic() + wait_s, deadline - 2 * KILL_RESERVE_S)
        for worker in self.workers:
            worker.process.join(_left(joined_by))
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in self.workers:
            worker.process.join(_left(deadline - KILL_RESERVE_S))
            if worker.process.is_alive():
                log.warning("%s ignored SIGTERM: killed", worker.spec.worker_id.decode())
                worker.process.kill()
                worker.process.join(_left(deadline))

    def _close(self) -> None:
        if self.authenticator is not None:
            self.authenticator.stop()
        self.context.destroy(linger=0)
        if self.endpoints is not None:
            self.endpoints.remove()
