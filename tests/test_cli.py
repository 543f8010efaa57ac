"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import fnet
from fnet.cli import app
from fnet.cli.allocator import find_allocator

runner = CliRunner()


def test_version_and_help():
    assert fnet.__version__ in runner.invoke(app, ["--version"]).output
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "models" in result.output and "demo" in result.output


def test_python_dash_m_works():
    result = subprocess.run([sys.executable, "-m", "fnet", "--version"], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and fnet.__version__ in result.stdout


def test_the_console_script_exits_with_its_code_its_output_whole_and_atexit_handlers_run(tmp_path):
    """run() leaves by os._exit (no interpreter teardown): the exit code, every byte of output and
    the atexit handlers must survive that."""
    script = "import atexit; atexit.register(lambda: print('atexit ran')); from fnet.cli import run; run()"
    listed = subprocess.run([sys.executable, "-c", script, "models", "--json"], check=False, capture_output=True, text=True,
                            timeout=120)
    models, tail, end = listed.stdout.rsplit("\n", 2)
    assert listed.returncode == 0 and json.loads(models)[0]["name"] and (tail, end) == ("atexit ran", "")
    missing = subprocess.run([sys.executable, "-c", script, "align", str(tmp_path / "nope"), "-o", str(tmp_path / "out")],
                             check=False, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "nope" in missing.stderr and missing.stdout == "atexit ran\n"


def test_models_lists_the_default_as_json():
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    default = next(r for r in rows if r["default"])
    assert default["name"] == "facenet-casia" and default["embedding_dim"] == 512


def test_models_shows_one_model():
    result = runner.invoke(app, ["models", "20180408-102900", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["normalization"] == "fixed"


def test_unknown_model_is_one_clear_error():
    result = runner.invoke(app, ["models", "no-such-model"])
    assert result.exit_code == 2 and "unknown model 'no-such-model'" in result.output


def test_demo_gets_every_verdict_right():
    result = runner.invoke(app, ["demo", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = report["comparisons"]
    assert len(rows) == 13 and all(r["same_person"] == r["predicted_same"] for r in rows)
    assert max(r["distance"] for r in rows if r["same_person"]) < min(r["distance"] for r in rows if not r["same_person"])


def test_bad_checkpoint_path_exits_2_naming_it(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not a checkpoint")
    result = runner.invoke(app, ["demo", "--model", str(bad)])
    assert result.exit_code == 2 and "model.safetensors" in result.output


def _model_must_not_load(monkeypatch):
    import fnet.core.loading

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(fnet.core.loading, "load_model", refuse)


def test_bad_inputs_are_refused_before_the_model_loads(monkeypatch, tmp_path):
    from conftest import DEEPFACE

    _model_must_not_load(monkeypatch)
    photo = str(DEEPFACE / "img1.jpg")
    (tmp_path / "notes.txt").write_text("not a photo")
    cases = [
        (["verify", str(tmp_path / "missing.jpg"), photo], "missing.jpg: no such file"),
        (["verify", photo, str(tmp_path / "notes.txt")], "notes.txt: not an image"),
        (["verify", photo, photo, "--threshold", "7"], "--threshold 7"),
        (["align", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")], "nowhere: not a folder"),
        (["embed", str(tmp_path), "-o", str(tmp_path / "f.h5"), "--shard", "5/2"], "--shard 5/2"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_json_errors_are_json_on_stdout_with_the_exit_code(tmp_path):
    from conftest import DEEPFACE

    missing = tmp_path / "missing.jpg"
    result = runner.invoke(app, ["verify", str(missing), str(DEEPFACE / "img1.jpg"), "--json"])
    assert result.exit_code == 2
    answer = json.loads(result.stdout)
    assert answer == {"error": f"{missing}: no such file", "path": str(missing), "reason": "no such file", "exit_code": 2}
    for args in (["index", str(tmp_path / "none.h5"), "-o", str(tmp_path / "x.faiss")], ["models", "no-such-model"]):
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == 2 and "error" in json.loads(result.stdout), args


def test_usage_errors_under_json_are_json_too(tmp_path):
    command = [sys.executable, "-m", "fnet", "align", str(tmp_path), "-o", str(tmp_path / "out"), "--batch-size", "many", "--json"]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--batch-size" in json.loads(result.stdout)["error"]


def test_json_never_holds_nan():
    import contextlib
    import io

    from fnet.cli.output import print_json

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_json({"distance": float("nan"), "rows": [float("inf"), 1.5]})
    assert json.loads(out.getvalue()) == {"distance": None, "rows": [None, 1.5]}


def test_an_output_of_the_wrong_kind_is_one_clear_error(monkeypatch, tmp_path):
    _model_must_not_load(monkeypatch)
    photos = tmp_path / "photos"
    photos.mkdir()
    a_file = tmp_path / "taken.txt"
    a_file.write_text("not a folder")
    cases = [
        (["align", str(photos), "-o", str(a_file)], "taken.txt: exists and is not a folder"),
        (["embed", str(photos), "-o", str(photos)], "photos: is a folder; -o names the file to write"),
        (["cluster", str(photos), "-o", str(a_file)], "taken.txt: exists and is not a folder"),
        (["index", str(tmp_path / "s.h5"), "-o", str(photos)], "photos: is a folder"),
        (["merge", str(tmp_path / "s.h5"), "-o", str(photos)], "photos: is a folder"),
        (["align", str(photos), "-o", str(tmp_path / "o"), "--min-face", "0"], "--min-face"),
        (["align", str(photos), "-o", str(tmp_path / "o"), "--batch-size", "0"], "--batch-size"),
        (["align", str(photos), "-o", str(tmp_path / "o"), "--margin", "-1000"], "--margin"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output


# Each check below runs `fnet ARGS` in a fresh interpreter (the settings act before torch loads),
# then Python that reports what the process was left with.
CLI_THEN = """
import os
from fnet.cli import main
try:
    main()
except SystemExit:
    pass
"""


def cli_then(report: str, *args: str, variable: str, given: str | None = None) -> str:
    """The last line `report` prints after `fnet ARGS`, run with $variable unset, or set to `given`."""
    env = {k: v for k, v in os.environ.items() if k != variable} | ({variable: given} if given else {})
    run = subprocess.run([sys.executable, "-c", CLI_THEN + report, *args], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    lines = run.stdout.strip().splitlines()
    assert lines, run.stderr[-500:]
    return lines[-1]


def test_the_command_line_lets_openmp_threads_spin_briefly_then_sleep_unless_told_otherwise():
    """PASSIVE with libgomp's spin count at 30,000 (docs/speed.md: fast idle and beside busy processes);
    a user's own OMP_WAIT_POLICY stays, and no spin count overrides it."""
    report = "print(os.environ['OMP_WAIT_POLICY'], os.environ.get('GOMP_SPINCOUNT'))"
    for given, expected in ((None, "PASSIVE 30000"), ("ACTIVE", "ACTIVE None"), ("PASSIVE", "PASSIVE None")):
        assert cli_then(report, "models", "--help", variable="OMP_WAIT_POLICY", given=given) == expected


ARENAS = """
import ctypes, tempfile, threading
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
together = threading.Barrier(6)
def allocate():  # six threads allocating at once: glibc gives each a heap of its own, up to the cap
    block = libc.malloc(4096)
    together.wait()
    libc.free(block)
threads = [threading.Thread(target=allocate) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
path = tempfile.mktemp()
report = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, report)
libc.fclose(report)
print(open(path).read().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap arenas")
def test_the_command_line_caps_glibc_heap_arenas_unless_told_otherwise():
    """One heap by default (less fragmentation under decoding threads: docs/speed.md); a user's MALLOC_ARENA_MAX stays."""
    counts = {given: int(cli_then(ARENAS, "models", "--help", variable="MALLOC_ARENA_MAX", given=given)) for given in (None, "8")}
    assert counts[None] == 1 < counts["8"], counts


def test_commands_that_stream_photos_keep_fewer_compiled_kernels_unless_told_otherwise():
    """A bounded oneDNN cache for align/embed/...: a library's many photo sizes would pin a thousand kernels
    across the heap (docs/speed.md). serve and train keep oneDNN's default; a user's setting stays."""

    def capacity(command: str, given: str | None = None) -> str:
        return cli_then("print(os.environ.get('ONEDNN_PRIMITIVE_CACHE_CAPACITY'))", command, "--help",
                        variable="ONEDNN_PRIMITIVE_CACHE_CAPACITY", given=given)

    assert capacity("align") == capacity("embed") == "64"
    assert capacity("serve") == capacity("train") == "None"
    assert capacity("align", given="512") == "512"


# Which allocator the process runs under (jemalloc, tcmalloc or neither), and what it hands on to children.
ALLOCATOR = """
maps = open('/proc/self/maps').read()
print(next((name for name in ('jemalloc', 'tcmalloc') if 'lib' + name in maps), 'system'), os.environ.get('LD_PRELOAD'))
"""
PREFERRED = find_allocator()


@pytest.mark.skipif(PREFERRED is None, reason="the system has neither jemalloc nor tcmalloc (apt: libjemalloc2)")
def test_long_commands_run_under_jemalloc_or_tcmalloc_where_the_system_has_it(tmp_path):
    """align, embed, ... re-run themselves with the allocator preloaded (flat memory over a library: docs/speed.md);
    the preload is not handed on to child processes; quick commands and FNET_MALLOC=system keep glibc's."""
    missing = ["align", str(tmp_path / "no-such-folder"), "-o", str(tmp_path / "out")]  # fails fast: no model loads
    preferred = PREFERRED[0].name
    assert cli_then(ALLOCATOR, *missing, variable="FNET_MALLOC") == f"{preferred} None"
    for name in ("jemalloc", "tcmalloc"):
        if find_allocator(name):
            assert cli_then(ALLOCATOR, *missing, variable="FNET_MALLOC", given=name) == f"{name} None"
    assert cli_then(ALLOCATOR, *missing, variable="FNET_MALLOC", given="system") == "system None"
    assert cli_then(ALLOCATOR, "verify", str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"), variable="FNET_MALLOC") == "system None"
    assert cli_then(ALLOCATOR, "align", "--help", variable="FNET_MALLOC") == "system None"
    # set-up run twice in one process (a script calling main() after prepare()) does not re-run it again
    again = "import sys; from fnet.cli.process import prepare; prepare(sys.argv[1:]); " + ALLOCATOR
    assert cli_then(again, *missing, variable="FNET_MALLOC") == f"{preferred} None"
    # a user's own preload stays as given (and is not re-run)
    library = str(PREFERRED[1])
    assert cli_then(ALLOCATOR, *missing, variable="LD_PRELOAD", given=library) == f"{preferred} {library}"


# jemalloc's options as it took them (mallctl), and the user's MALLOC_CONF.
JEMALLOC_OPTIONS = """
import ctypes
mallctl = ctypes.CDLL(None).mallctl
def option(name, kind):
    value, size = kind(), ctypes.c_size_t(ctypes.sizeof(kind))
    assert mallctl(name.encode(), ctypes.byref(value), ctypes.byref(size), None, ctypes.c_size_t(0)) == 0, name
    return value.value
print(option('opt.narenas', ctypes.c_uint), option('opt.oversize_threshold', ctypes.c_size_t),
      option('opt.dirty_decay_ms', ctypes.c_ssize_t), option('opt.muzzy_decay_ms', ctypes.c_ssize_t), os.environ.get('MALLOC_CONF'))
"""


@pytest.mark.skipif(find_allocator("jemalloc") is None, reason="the system has no jemalloc (apt: libjemalloc2)")
def test_jemalloc_runs_with_one_arena_and_keeps_its_pages_unless_the_user_says_otherwise(tmp_path):
    """One arena, large buffers in it, freed pages kept (docs/speed.md: 17.5 s instead of 12 without, and
    more memory); a user's MALLOC_CONF comes after fnet's, so its options win."""
    missing = ["align", str(tmp_path / "no-such-folder"), "-o", str(tmp_path / "out")]
    ours = "narenas:1,oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1"
    assert cli_then(JEMALLOC_OPTIONS, *missing, variable="MALLOC_CONF") == f"1 0 -1 -1 {ours}"
    taken = cli_then(JEMALLOC_OPTIONS, *missing, variable="MALLOC_CONF", given="narenas:2,dirty_decay_ms:5000")
    assert taken == f"2 0 5000 -1 {ours},narenas:2,dirty_decay_ms:5000"


def test_an_unknown_allocator_name_says_so_and_keeps_the_systems(tmp_path, capsys):
    missing = ["align", str(tmp_path / "none"), "-o", str(tmp_path / "out")]
    assert cli_then(ALLOCATOR, *missing, variable="FNET_MALLOC", given="hoard") == f"system {os.environ.get('LD_PRELOAD')}"
    assert find_allocator("hoard") is None
    assert "$FNET_MALLOC=hoard is none of jemalloc, tcmalloc, system" in capsys.readouterr().err
