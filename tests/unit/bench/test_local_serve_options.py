from pathlib import Path

from llmops.bench.local_serve import stack_options


def test_takes_the_serve_options_the_benchmarks_pass() -> None:
    options = stack_options(["--port", "0", "--state-dir", "/tmp/x", "--forward-url", "http://127.0.0.1:9/v1"])

    assert options.port == 0
    assert options.state_dir == Path("/tmp/x")
    assert options.forward_url == "http://127.0.0.1:9/v1"
    assert options.workers == 1  # the in-memory fakes live in one process


def test_defaults_are_the_local_stack_defaults() -> None:
    options = stack_options([])

    assert (options.host, options.port, options.forward_url) == ("127.0.0.1", 8080, None)
