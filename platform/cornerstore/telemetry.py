"""OpenTelemetry: spans for requests, the gate's steps and the database.

The exporter is chosen by ``CORNERSTORE_TRACE_EXPORTER`` (none, console,
otlp). Spans carry ids, decisions and counts, never shop-data values, keys or
tokens: the request instrumentation records no headers, the database
instrumentation records statements with placeholders, not parameters.
"""

from __future__ import annotations

import threading
import weakref

from fastapi import FastAPI
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from sqlalchemy import Engine

from cornerstore.settings import Settings, TraceExporter

_lock = threading.Lock()
_provider: TracerProvider | None = None
_traced_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def provider() -> TracerProvider:
    """The process's tracer provider, installed as the global one on first use."""
    global _provider
    with _lock:
        if _provider is None:
            _provider = TracerProvider(resource=Resource.create({"service.name": "cornerstore"}))
            trace.set_tracer_provider(_provider)
        return _provider


def _exporter(settings: Settings) -> SpanExporter | None:
    if settings.trace_exporter is TraceExporter.console:
        return ConsoleSpanExporter()
    if settings.trace_exporter is TraceExporter.otlp:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return (
            OTLPSpanExporter(endpoint=settings.otlp_endpoint)
            if settings.otlp_endpoint
            else OTLPSpanExporter()
        )
    return None


def instrument(app: FastAPI, engine: Engine, settings: Settings, *, force: bool = False) -> None:
    """Instrument the app and engine when an exporter is set (or ``force``, for tests)."""
    exporter = _exporter(settings)
    if exporter is None and not force:
        return
    tracer_provider = provider()
    if exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tracer_provider, exclude_spans=["receive", "send"]
    )
    _trace_engine(engine, tracer_provider)


def _trace_engine(engine: Engine, tracer_provider: TracerProvider) -> None:
    """Trace this engine's statements, once however often it is asked.

    ``SQLAlchemyInstrumentor().instrument()`` is not used: it declares support
    for SQLAlchemy < 2.1 only and on 2.1 logs an error and instruments nothing,
    and forcing it patches ``create_engine`` process-wide and imports
    ``sqlalchemy.ext.asyncio``, which fails without greenlet. Its per-engine
    tracer does the same work for the one engine the hub uses.
    """
    with _lock:
        if engine in _traced_engines:
            return
        _traced_engines.add(engine)
    name = "opentelemetry.instrumentation.sqlalchemy"
    connections = metrics.get_meter(name).create_up_down_counter(
        "db.client.connections.usage",
        unit="connections",
        description="The number of connections in each state (idle, used).",
    )
    tracer = trace.get_tracer(name, tracer_provider=tracer_provider)
    EngineTracer(tracer, engine, connections)  # type: ignore[no-untyped-call]
