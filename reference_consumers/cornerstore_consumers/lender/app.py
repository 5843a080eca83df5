"""The lender as a process: ``cornerstore-consumers lender``."""

from __future__ import annotations

from fastapi import FastAPI

from cornerstore_consumers.lender.credit_lines import SCHEMA
from cornerstore_consumers.lender.service import TERMS, Lender
from cornerstore_consumers.runtime import ConsumerSettings, Runtime
from cornerstore_consumers.webapp import consumer_app


def create_app(settings: ConsumerSettings) -> FastAPI:
    runtime = Runtime(settings, TERMS, SCHEMA)
    return consumer_app("Lender", runtime, Lender(runtime))
