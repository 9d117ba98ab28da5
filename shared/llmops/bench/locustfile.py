"""Locust users for the sustained-load benchmark (run by `llmops bench`, headless, on loopback).

Configured through the environment by the benchmark:
- LLMOPS_BENCH_KEY: a key with generous limits; its users must only ever get 200.
- LLMOPS_BENCH_LIMITED_KEY: a key with a low requests-per-minute limit; its one user is expected to
  get 429s with Retry-After, which are recorded as the failure "intended 429" so they can be told
  apart from real errors in the failures CSV.
- LLMOPS_BENCH_RPS_PER_USER: the pace of each chat user.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant_throughput, task

from llmops.bench.workload import INTENDED_429_FAILURE, chat_request_body

__all__ = ["ChatUser", "RateLimitedUser"]

_BODY = chat_request_body().decode()
_RPS = float(os.environ.get("LLMOPS_BENCH_RPS_PER_USER", "4"))


def _headers(key_variable: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {os.environ.get(key_variable, '')}"}


class ChatUser(FastHttpUser):
    weight = 10
    wait_time = constant_throughput(_RPS)

    @task
    def chat(self) -> None:
        with self.client.post(
            "/v1/chat/completions", data=_BODY, headers=_headers("LLMOPS_BENCH_KEY"), name="chat", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")


class RateLimitedUser(FastHttpUser):
    fixed_count = 1
    wait_time = constant_throughput(2)

    @task
    def chat(self) -> None:
        with self.client.post(
            "/v1/chat/completions",
            data=_BODY,
            headers=_headers("LLMOPS_BENCH_LIMITED_KEY"),
            name="chat (rate-limited key)",
            catch_response=True,
        ) as response:
            if response.status_code == 429 and response.headers.get("Retry-After"):
                response.failure(INTENDED_429_FAILURE)
            elif response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
