"""Issue 16's done-when, on a fresh `llmops serve`, with the CLI and HTTP only.

The stack runs with 1-second alarm periods (`--alarm-period-seconds 1`), so a gate's "3 of the last
5 one-minute periods" takes seconds instead of minutes, and context overrides as `cdk -c` would:
a 1 s p99 latency gate (the candidate answers in 2 s) and 3 ratings per period for the feedback
trigger. Canaries use the default gates: the candidate's own SLO alarms.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmops.cli import main
from tests.local_stack_process import start_llmops_serve, stop_llmops_serve

pytestmark = pytest.mark.slow
runner = CliRunner()

ALIAS, BASELINE, CANDIDATE = "llama3-8b", "sm-llama3-8b-primary", "sm-llama3-8b-candidate"
CANDIDATE_KEY = "llmops-llama3-8b/candidate"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    process, state = start_llmops_serve(
        tmp_path_factory.mktemp("closed-loop"),
        "--alarm-period-seconds", "1",
        "--workers", "3",
        "--provider-read-timeout-s", "10",
        "-c", "latencyP99Seconds=1",
        "-c", "retrainingMinHourlyRatings=3",
    )  # fmt: skip
    yield state
    assert stop_llmops_serve(process) == 0


def cli(stack: dict[str, Any], *args: str, check: bool = True) -> Any:
    """Runs an `llmops` command against the stack, in this process (a subprocess costs seconds of imports)."""
    result = runner.invoke(main.app, [*args, "--state-dir", stack["state_dir"]], catch_exceptions=False)
    if check and result.exit_code != 0:
        raise AssertionError(f"llmops {' '.join(args)} failed:\n{result.output}")
    return result


def post(stack: dict[str, Any], path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    request = urllib.request.Request(
        f"{stack['base_url']}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {stack['api_key']}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def chat(stack: dict[str, Any], alias: str = ALIAS) -> tuple[int, dict[str, str]]:
    status, headers, _ = post(
        stack, "/chat/completions", {"model": alias, "messages": [{"role": "user", "content": "hi"}]}
    )
    return status, headers


def target_after_rollback(stack: dict[str, Any], alias: str = ALIAS) -> str:
    """The target serving `alias` after a rollback, once the gateway's route cache (2 s locally,
    LLMOPS_CONFIG_TTL_S) has read the rolled-back weights: until then a request may still be routed
    by the old ones. Asks every half second until a primary serves, for at most 10 s."""
    deadline = time.monotonic() + 10
    while not (target := chat(stack, alias)[1]["x-llmops-target"]).endswith("/primary") and time.monotonic() < deadline:
        time.sleep(0.5)
    return target


class Traffic:
    """`threads` callers sending chat requests to `alias` until stopped; counts the serving targets."""

    def __init__(self, stack: dict[str, Any], alias: str, threads: int = 3) -> None:
        self.served: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(stack, alias), daemon=True) for _ in range(threads)]

    def _run(self, stack: dict[str, Any], alias: str) -> None:
        while not self._stop.is_set():
            status, headers = chat(stack, alias)
            with self._lock:
                key = headers.get("x-llmops-target", str(status))
                self.served[key] = self.served.get(key, 0) + 1

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def canary(stack: dict[str, Any], *args: str) -> str:
    out = json.loads(cli(stack, "canary", "start", "--json", *args).stdout)
    candidate = args[args.index("--candidate") + 1]
    assert out["input"]["gates"] == [
        f"llmops-local-{gate}-{candidate}"
        for gate in (
            "canary-error-rate",
            "canary-latency-p99",
            "canary-guard-block-rate",
            "canary-negative-feedback",
            "canary-ttft-p99",
        )
    ]  # the candidate's own SLO alarms, by default
    return str(out["execution_arn"])


def status(stack: dict[str, Any], arn: str) -> dict[str, Any]:
    return json.loads(cli(stack, "canary", "status", arn, "--json").stdout)  # type: ignore[no-any-return]


def wait_finished(stack: dict[str, Any], arn: str, timeout_s: float) -> dict[str, Any]:
    started = time.monotonic()
    while True:
        report = status(stack, arn)
        if report["status"] != "RUNNING" or time.monotonic() > started + timeout_s:
            # For the README's figures (pytest -s): the CLI polls, so this is an upper bound.
            print(f"{arn.rsplit(':', 1)[-1]}: {report['status']} within {time.monotonic() - started:.1f} s")
            return report
        time.sleep(0.5)


def gates_ok(stack: dict[str, Any], target: str, timeout_s: float = 30) -> None:
    """Waits until no alarm of `target` is in ALARM (an earlier test's breach has to clear first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = json.loads(cli(stack, "alarms", "--name", target, "--json").stdout)
        if rows and all(r["state"] != "ALARM" for r in rows):
            return
        time.sleep(0.5)
    raise AssertionError(f"the alarms of {target} did not clear")


def test_bad_canary_input_is_refused_before_anything_moves(stack: dict[str, Any]) -> None:
    common = ["canary", "start", "--alias", ALIAS, "--baseline", BASELINE]
    cases = {
        ("--candidate", "no-such-target"): "is not a target of alias",
        ("--candidate", CANDIDATE, "--steps", "25,50"): "the last step must be 100",
        (
            "--candidate",
            CANDIDATE,
            "--gate",
            "no-such-alarm",
        ): "not found in CloudWatch, nothing was moved: no-such-alarm",
    }
    for args, message in cases.items():
        result = cli(stack, *common, *args, check=False)
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split()), result.output
    assert json.loads(cli(stack, "canary", "status", "--json").stdout) == []


def test_a_candidate_failing_every_call_is_rolled_back_within_the_first_bake_step(stack: dict[str, Any]) -> None:
    cli(stack, "emulator", "faults", "--key", CANDIDATE_KEY, "--error-rate", "1.0")
    try:
        with Traffic(stack, ALIAS):
            arn = canary(
                stack, "--alias", ALIAS, "--baseline", BASELINE, "--candidate", CANDIDATE,
                "--steps", "50,100", "--bake-seconds", "20", "--gate-poll-seconds", "1",
            )  # fmt: skip
            report = wait_finished(stack, arn, timeout_s=40)
    finally:
        cli(stack, "emulator", "faults", "--key", CANDIDATE_KEY, "--clear")
    assert report["status"] == "FAILED", report
    assert report["error"] == "GateBreached"
    assert f"canary-error-rate-{CANDIDATE}" in report["cause"]
    assert "with 50% of alias" in report["cause"]  # during the first step's 20 s bake
    assert report["route_weights"] == {BASELINE: 100, CANDIDATE: 0}
    assert target_after_rollback(stack).endswith("/primary")


def test_a_candidate_answering_slowly_is_rolled_back_on_its_p99_latency_gate(stack: dict[str, Any]) -> None:
    gates_ok(stack, CANDIDATE)
    cli(stack, "emulator", "faults", "--key", CANDIDATE_KEY, "--latency-ms", "2000")
    try:
        with Traffic(stack, ALIAS, threads=3):
            arn = canary(
                stack, "--alias", ALIAS, "--baseline", BASELINE, "--candidate", CANDIDATE,
                "--steps", "50,100", "--bake-seconds", "30", "--gate-poll-seconds", "1",
            )  # fmt: skip
            report = wait_finished(stack, arn, timeout_s=50)
    finally:
        cli(stack, "emulator", "faults", "--key", CANDIDATE_KEY, "--clear")
    assert report["status"] == "FAILED", report
    assert f"canary-latency-p99-{CANDIDATE}" in report["cause"]
    assert "with 50% of alias" in report["cause"]
    assert report["route_weights"] == {BASELINE: 100, CANDIDATE: 0}


def test_a_healthy_candidate_is_promoted_to_all_traffic(stack: dict[str, Any]) -> None:
    alias, baseline, candidate = "mistral-7b", "sm-mistral-7b-tgi", "bedrock-nova-lite"
    with Traffic(stack, alias, threads=2):
        arn = canary(
            stack, "--alias", alias, "--baseline", baseline, "--candidate", candidate,
            "--steps", "50,100", "--bake-seconds", "4", "--gate-poll-seconds", "1",
        )  # fmt: skip
        report = wait_finished(stack, arn, timeout_s=40)
    assert report["status"] == "SUCCEEDED", report
    assert report["route_weights"] == {baseline: 0, candidate: 100}
    assert chat(stack, alias)[1]["x-llmops-target"].startswith("bedrock:")


def test_the_demo_breaks_a_candidate_prints_its_rollback_and_draws_it(stack: dict[str, Any], tmp_path: Path) -> None:
    gates_ok(stack, CANDIDATE)
    png = tmp_path / "canary-demo.png"
    out = cli(stack, "demo", "canary", "--steps", "50,100", "--bake-seconds", "15", "--png", str(png)).output
    assert "rolled back (GateBreached)" in out
    assert "ALARM: error-rate" in out  # the timeline names the gate as it fires
    assert png.read_bytes()[:4] == b"\x89PNG"
    target = target_after_rollback(stack)
    assert target.endswith("/primary"), target


def test_enough_negative_feedback_raises_the_feedback_alarm_and_starts_retraining(stack: dict[str, Any]) -> None:
    request_ids = [chat(stack)[1]["x-request-id"] for _ in range(40)]
    alarm = f"llmops-local-retraining-trigger-feedback-{ALIAS}"
    deadline = time.monotonic() + 30
    fired = False
    for request_id in request_ids:  # about 10 ratings a second, for 4 seconds
        code, _, body = post(stack, "/feedback", {"request_id": request_id, "score": "down"})
        assert code in (200, 201, 202), body
        time.sleep(0.08)
    while time.monotonic() < deadline:
        runs = json.loads(cli(stack, "retrain", "status", "--json").stdout)
        if runs:
            fired = True
            break
        time.sleep(0.5)
    assert fired, cli(stack, "alarms", "--name", "feedback").output
    # Started by the alarm's EventBridge rule (named after it), with the rule's input: a feedback run.
    assert any(run["name"].startswith(f"{alarm}-starts") for run in runs), runs
