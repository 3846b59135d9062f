"""What every ``ipldwrite`` command promises (README "Look inside from the shell").

The commands are enumerated from the group, so commands added later are held to the same
table: exit codes 0 fine, 1 damaged or missing data, 2 bad input, 130 interrupted; ``--json``
everywhere, and errors under ``--json`` as ``{"error": {"type", "message", "cid"}}`` on
stderr; ``-v`` turns on the library's loggers; reading commands create nothing.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from datasets import climate_cube
from ipldwrite import errors
from ipldwrite.blockstore import DirectoryBlockstore, MemoryBlockstore
from ipldwrite.cli import main
from ipldwrite.cli._errors import EXIT_CODES, exit_code
from ipldwrite.ipld import compute_link, link_str
from ipldwrite.xarray import to_ipld_zarr

COMMANDS = sorted(main.commands)
#: Commands that bring new data and so may make a new blockstore.
CREATES = {"demo", "ingest", "import-car", "pack"}
EMPTY = link_str(compute_link(b""))

DAMAGED = {
    errors.BlockError,
    errors.BlockNotFoundError,
    errors.CorruptBlockError,
    errors.BlockTooLargeError,
    errors.CarError,
    errors.TruncatedCarError,
    errors.CodecError,
    errors.FormatError,
    errors.UnsafeEntryNameError,
}
ERROR_CLASSES = sorted(
    (
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, errors.IpldWriteError)
        and cls is not errors.IpldWriteError
    ),
    key=lambda cls: cls.__name__,
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def make_error(cls: type[BaseException]) -> BaseException:
    """An instance of ``cls`` with a CID where it takes one and dummies for other fields."""
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {
        name: "x" for name, p in params.items() if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    }
    if "cid" in params:
        kwargs["cid"] = compute_link(b"")
    return cls(f"{cls.__name__} happened", **kwargs)


def dummy_args(cmd: click.Command, tmp_path: Path) -> list[str]:
    """Arguments that parse for ``cmd``: CIDs for arguments, something valid for options."""
    some_file = tmp_path / "some.car"
    some_file.write_bytes(b"")
    args: list[str] = []
    for param in cmd.params:
        if not param.required:
            continue
        if isinstance(param.type, click.Path) and param.type.exists:
            value = str(some_file)
        elif isinstance(param.type, click.Choice):
            value = str(param.type.choices[0])
        elif isinstance(param.type, click.types.IntParamType | click.types.FloatParamType):
            value = "1"
        elif "START:STOP" in (param.metavar or ""):
            value = "time=0:1"
        elif "=" in (param.metavar or ""):
            value = "a=b"
        elif param.name == "target":
            value = f"{EMPTY}/zarr.json"
        else:
            value = EMPTY
        if isinstance(param, click.Option):
            args.append(param.opts[0])
        args.append(value)
    return args


def test_the_table_covers_every_error_class() -> None:
    for cls in ERROR_CLASSES:
        listed = next(c for c in cls.__mro__ if c in EXIT_CODES)
        assert listed is not errors.IpldWriteError, (
            f"{cls.__name__}: add it (or its parent) to EXIT_CODES in cli/_errors.py"
        )
        assert exit_code(make_error(cls)) == (1 if cls in DAMAGED else 2), cls.__name__


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_takes_json_and_verbose(name: str) -> None:
    opts = {opt for param in main.commands[name].params for opt in param.opts}
    assert {"--json", "-v", "--help"} <= opts | {"--help"}
    assert "--json" in invoke(name, "--help").output


@pytest.mark.parametrize(
    "error",
    [*ERROR_CLASSES, KeyboardInterrupt, FileNotFoundError, ValueError],
    ids=lambda cls: cls.__name__,
)
@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_maps_every_error(
    name: str, error: type[BaseException], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmd = main.commands[name]

    def fails(**_: Any) -> None:
        raise make_error(error) if error not in (FileNotFoundError, ValueError) else error("bad")

    monkeypatch.setattr(cmd, "callback", fails)
    args = dummy_args(cmd, tmp_path)
    expected = 130 if error is KeyboardInterrupt else 1 if error in DAMAGED else 2

    result = invoke(name, *args, "--json")
    assert result.exit_code == expected, result.output
    assert result.stdout == ""
    report = json.loads(result.stderr)["error"]
    assert report["type"] == error.__name__
    assert report["cid"] == (EMPTY if issubclass(error, errors.BlockError) else None)

    result = invoke(name, *args)
    assert result.exit_code == expected
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("name", COMMANDS)
def test_usage_errors_are_json_too(name: str) -> None:
    result = invoke(name, "--no-such-option", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stderr)["error"]["type"] == "NoSuchOption"


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - CREATES))
def test_commands_that_read_create_nothing(name: str, tmp_path: Path) -> None:
    cmd = main.commands[name]
    if "--blockstore" not in {opt for p in cmd.params for opt in p.opts}:
        pytest.skip(f"{name} takes no blockstore")
    missing = tmp_path / "no-such-blockstore"
    result = invoke(name, *dummy_args(cmd, tmp_path), "-b", str(missing), "--json")
    assert result.exit_code == 2, result.output
    assert "no blockstore at" in json.loads(result.stderr)["error"]["message"]
    assert not missing.exists()


# -- the cases of issue 15, end to end ---------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    blocks = str(tmp_path_factory.mktemp("contract") / "blocks")
    cube = climate_cube(8, 4, 5)
    root = to_ipld_zarr(cube, blocks, encoding={"t2m": {"chunks": (4, 4, 5)}})
    return str(root), blocks


def damage(blocks: str, tmp_path: Path) -> str:
    """A copy of the blockstore without its chunk blocks (raw codec: ``bafk…`` files)."""
    import shutil

    copy = tmp_path / "damaged"
    shutil.copytree(blocks, copy)
    for block in (copy / "blocks").rglob("bafk*"):
        block.unlink()
    return str(copy)


@pytest.mark.parametrize(
    "args",
    [
        ["stat", "{root}"],
        ["export-car", "{root}", "{tmp}/out.car"],
        ["to-unixfs", "{root}"],
        ["concat", "{root}", "{root}", "--dim", "time"],
        ["verify", "{root}"],
    ],
    ids=lambda args: args[0],
)
def test_missing_chunks_exit_1(args: list[str], dataset: tuple[str, str], tmp_path: Path) -> None:
    root, blocks = dataset
    damaged = damage(blocks, tmp_path)
    result = invoke(*(a.format(root=root, tmp=tmp_path) for a in args), "-b", damaged, "--json")
    assert result.exit_code == 1, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["ls", "{root}"],
        ["info", "{root}"],
        ["cat", "{root}/zarr.json"],
        ["rename", "{root}", "a=b"],
        ["subset", "{root}", "--isel", "time=0:4"],
    ],
    ids=lambda args: args[0],
)
def test_missing_nodes_exit_1(args: list[str], dataset: tuple[str, str], tmp_path: Path) -> None:
    root, _ = dataset
    damaged = tmp_path / "damaged"
    DirectoryBlockstore(damaged).put(b"not this dataset")  # a blockstore, without the dataset
    result = invoke(*(a.format(root=root) for a in args), "-b", str(damaged), "--json")
    assert result.exit_code == 1, result.output
    error = json.loads(result.stderr)["error"]
    assert error["type"] == "BlockNotFoundError"
    assert error["cid"] == root


def test_a_truncated_car_exits_1_everywhere(dataset: tuple[str, str], tmp_path: Path) -> None:
    root, blocks = dataset
    car = tmp_path / "full.car"
    assert invoke("export-car", root, str(car), "-b", blocks).exit_code == 0
    cut = tmp_path / "cut.car"
    cut.write_bytes(car.read_bytes()[: car.stat().st_size // 2])
    imported = invoke("import-car", str(cut), "-b", str(tmp_path / "new"), "--json")
    assert imported.exit_code == 1
    assert json.loads(imported.stderr)["error"]["type"] == "TruncatedCarError"
    assert invoke("ls", root, "-b", str(cut)).exit_code == 1


def test_info_and_cat_speak_json(dataset: tuple[str, str]) -> None:
    root, blocks = dataset
    info = json.loads(invoke("info", root, "-b", blocks, "--json").stdout)
    assert info["root"] == root
    assert info["data_vars"]["t2m"]["dims"] == ["time", "lat", "lon"]
    cat = json.loads(invoke("cat", f"{root}/t2m/zarr.json", "-b", blocks, "--json").stdout)
    assert cat["json"]["dimension_names"] == ["time", "lat", "lon"]
    chunk = json.loads(invoke("cat", f"{root}/t2m/c/0/0/0", "-b", blocks, "--json").stdout)
    assert chunk["size"] > 0
    assert "base64" in chunk


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--days", "-5"], "--days"),
        (["demo", "--days", "0"], "--days"),
        (["ingest", "x.nc", "--concat-dim", "time", "--workers", "0"], "--workers"),
        (["rename", "{root}", "t2m=a/b"], "no '/'"),
        (["ls", "bafynotacid"], "is not a CID"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str], message: str, dataset: tuple[str, str]
) -> None:
    root, blocks = dataset
    result = invoke(*(a.format(root=root) for a in args), "-b", blocks)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_an_unreachable_scheduler_fails_fast(tmp_path: Path) -> None:
    (tmp_path / "a.nc").write_bytes(b"")
    result = invoke(
        "ingest", str(tmp_path / "a.nc"), "--concat-dim", "time", "--scheduler", "tcp://127.0.0.1:1"
    )
    assert result.exit_code == 2
    assert "no Dask scheduler answers at tcp://127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.output


def test_verbose_turns_on_the_library_loggers(dataset: tuple[str, str], tmp_path: Path) -> None:
    root, blocks = dataset
    result = invoke("-v", "rename", root, "t2m=temperature", "-b", blocks)
    assert result.exit_code == 0
    assert "ipldwrite.ops: wrote" in result.stderr
    result = invoke("export-car", root, str(tmp_path / "out.car"), "-b", blocks, "-vv")
    assert result.exit_code == 0
    assert "ipldwrite.car: exported" in result.stderr
    quiet = invoke("rename", root, "t2m=temperature", "-b", blocks)
    assert quiet.stderr == ""


def test_the_library_logs_through_named_loggers(caplog: pytest.LogCaptureFixture) -> None:
    cube = climate_cube(8, 4, 5)
    with caplog.at_level(logging.DEBUG, logger="ipldwrite"):
        root = to_ipld_zarr(cube.chunk(time=4), MemoryBlockstore(), progress=False)
    messages = {(r.name, r.getMessage()) for r in caplog.records}
    assert any(name == "ipldwrite.merge" and "fan-in 32" in text for name, text in messages)
    assert any(name == "ipldwrite.merge" and text.startswith("merged ") for name, text in messages)
    assert any(name == "ipldwrite.write" and str(root) in text for name, text in messages)
    assert not logging.getLogger("ipldwrite").handlers  # a library adds no handler


@pytest.mark.slow
def test_json_output_has_no_progress_bar_even_from_a_terminal(tmp_path: Path) -> None:
    """`demo --json > f` from a terminal: stderr is a TTY, stdout a file; f is pure JSON."""
    out = tmp_path / "out.json"
    controller, terminal = pty.openpty()
    with out.open("wb") as f:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from ipldwrite.cli import main; main()",
                "demo",
                "--days",
                "31",
                "--json",
            ],
            stdout=f,
            stderr=terminal,
            env={**os.environ, "IPLDWRITE_BLOCKSTORE": str(tmp_path / "blocks")},
            timeout=240,
            check=False,
        )
    os.close(terminal)
    os.close(controller)
    assert done.returncode == 0
    assert json.loads(out.read_text())["root"].startswith("bafyrei")
