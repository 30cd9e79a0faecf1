"""`eligibility explain` run as a subprocess on the README's examples, and on bad input."""

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.eligibility.cli import main

ROOT = Path(__file__).parents[3]
README = ROOT / "shared" / "eligibility" / "README.md"
EXAMPLES = ROOT / "shared" / "eligibility" / "examples"
CONSOLE_BLOCK = re.compile(r"```console\n\$ (?P<command>[^\n]+)\n(?P<output>.*?)```", re.DOTALL)


def documented_runs() -> list[tuple[str, str]]:
    return [(m["command"], m["output"]) for m in CONSOLE_BLOCK.finditer(README.read_text())]


def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENEWALS_POLICY_")}
    if argv[:2] == ["uv", "run"] and shutil.which("uv") is None:
        argv = [str(Path(sys.executable).parent / argv[2]), *argv[3:]]
    return subprocess.run(
        argv, cwd=ROOT, input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def readme_runs() -> dict[str, subprocess.CompletedProcess[str]]:
    """Every README command, run once, a few at a time (each start-up takes about a second)."""
    commands = [command for command, _ in documented_runs()]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda command: run(shlex.split(command)), commands)
        return dict(zip(commands, results, strict=True))


def test_every_example_file_is_documented_in_the_readme():
    documented = {Path(shlex.split(command)[4]).name for command, _ in documented_runs()}
    assert documented == {path.name for path in EXAMPLES.glob("*.json")}


@pytest.mark.parametrize(("command", "output"), documented_runs())
def test_the_readme_shows_what_the_command_prints(readme_runs, command, output):
    assert command.startswith("uv run eligibility explain shared/eligibility/examples/")
    result = readme_runs[command]
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == output


def test_bad_json_is_one_line_on_stderr_and_exit_status_2():
    result = run(["uv", "run", "eligibility", "explain"], stdin="{not json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "eligibility: not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)\n"
    )


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["explain", "no/such/file.json"], None, "eligibility: can't read no/such/file.json"),
        (["explain", "-"], "", "eligibility: not valid JSON"),
        (["explain"], "[]", "eligibility: invalid request: request: Input should be a valid dict"),
        (["explain"], '{"action": "manual_renewal"}', "eligibility: invalid request: today: Field"),
        (["explain"], '{"action": "quote", "today": "2026-03-02", "actor": {"user_id": "U",'
                      ' "csn": "C"}}', "eligibility: invalid request: quote: Field required"),
        (["explain"], json.dumps({"action": "manual_renewal", "today": "2026-03-02",
                                  "actor": {"user_id": "U", "csn": "C"},
                                  "prices": [{"product_code": "P", "term": "annual",
                                              "currency": "USD", "list_price": 1.5}]}),
         "eligibility: invalid request: prices[0].list_price: Value error, must be a decimal"),
    ],
)  # fmt: skip
def test_bad_input_in_process(monkeypatch, capsys, args, stdin, message):
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message)
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_stdin_gives_the_same_answer_as_the_file(monkeypatch, capsys):
    path = EXAMPLES / "auto_renew_off.json"
    assert main(["explain", str(path)]) == 0
    from_file = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(path.read_text()))
    assert main(["explain"]) == 0
    assert capsys.readouterr().out == from_file
    assert json.loads(from_file)["allowed"] is True


def test_every_example_in_both_formats_in_process(capsys):
    for path in sorted(EXAMPLES.glob("*.json")):
        for output_format in ("json", "table"):
            assert main(["explain", str(path), "--format", output_format]) == 0
        capsys.readouterr()


def _as_published(request: dict) -> dict:
    """The request with its subscription and price as their events carry them: the subscription
    system's `revision` and `timezone`, a field added upstream since, and the whole CloudEvent
    of the price."""
    subscription = {**request["subscriptions"][0], "revision": 7, "timezone": "Europe/Paris"}
    subscription["added_upstream_later"] = {"anything": True}
    price = {
        "specversion": "1.0",
        "id": "3f1c",
        "source": "/catalog",
        "type": "price.published",
        "time": "2026-03-01T09:00:00Z",
        "subject": "ACDLT",
        "data": {**request["prices"][0], "region": "NA"},
    }
    return {**request, "subscriptions": [subscription], "prices": [price]}


def test_issue_14_a_subscription_upserted_pasted_as_published_is_explained(capsys, tmp_path):
    """`eligibility explain` takes what the contract carries (issue 14 item 5): the payload of
    `subscription.upserted` with `revision` and any extra field, a whole CloudEvent; the answer
    is the one the bare fields get."""
    path = EXAMPLES / "manual_renewal_single.json"
    assert main(["explain", str(path)]) == 0
    bare = capsys.readouterr().out
    pasted = tmp_path / "pasted.json"
    pasted.write_text(json.dumps(_as_published(json.loads(path.read_text()))))

    assert main(["explain", str(pasted)]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (bare, "")
    assert json.loads(bare)["allowed"] is True


def test_a_misspelt_field_of_the_request_itself_is_still_refused(monkeypatch, capsys):
    request = json.loads((EXAMPLES / "manual_renewal_single.json").read_text())
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({**request, "subscripton_ids": []})))
    assert main(["explain"]) == 2
    assert "subscripton_ids: Extra inputs are not permitted" in capsys.readouterr().err


def test_issue_14_an_open_reservation_is_explained_as_renewal_in_progress(monkeypatch, capsys):
    """What renewal's database holds (`renewals explain` passes it on): an open order for the
    term refuses a second manual renewal."""
    request = json.loads((EXAMPLES / "manual_renewal_single.json").read_text())
    request["reservations"] = [
        {"subscription_id": "S-1", "order_id": "ORD-1", "term_start": "2026-04-15"}
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(request)))
    assert main(["explain"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["allowed"] is False
    assert decision["subscriptions"][0]["reasons"] == ["RENEWAL_IN_PROGRESS"]
