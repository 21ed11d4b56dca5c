"""The command line's shape: every subcommand's --help lists its options; bad command lines exit 2."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pcavs.cli import COMMANDS, build_parser, main

NAMES = [c[0] for c in COMMANDS]


def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def test_every_command_is_registered() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(sub.choices) == sorted(NAMES)
    assert len(NAMES) >= 14


@pytest.mark.parametrize("name", NAMES)
def test_help_lists_every_option(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    actions = [a for a in _subparser(name)._actions if not isinstance(a, argparse._HelpAction)]
    assert actions, f"pcavs {name} registers no options"
    for a in actions:
        # no pass-through of raw arguments to another parser (that hid synth's options)
        assert a.nargs != argparse.REMAINDER, f"pcavs {name}: {a.dest} swallows the rest of the line"
        if a.help == argparse.SUPPRESS:
            continue
        shown = a.option_strings[0] if a.option_strings else (a.metavar or a.dest)
        if isinstance(a, argparse._SubParsersAction):
            shown = next(iter(a.choices))
        assert str(shown) in text, f"pcavs {name} --help does not show {shown}"


def test_synth_help_shows_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    text = capsys.readouterr().out
    for option in ("out_dir", "--identities", "--clips", "--seconds", "--size", "--seed", "--workers"):
        assert option in text


# ------------------------------------------------------------------------------------ bad inputs
# (argv, message regex): each must exit 2 with one line on stderr and write nothing.
BAD_COMMAND_LINES = {
    "synth_dashdash_help": (["synth", "--", "--help"], r"output folder '--help' starts with '-'"),
    "synth_dash_folder": (["synth", "--", "-o"], r"output folder '-o' starts with '-'"),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMAND_LINES))
def test_bad_command_line(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    argv, message = BAD_COMMAND_LINES[case]
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []  # no folder named --help, no clips


def test_generate_has_evaluate_tracking_options() -> None:
    from pcavs.infer.pipeline import GenerationOptions, InputError

    args = build_parser().parse_args(["generate", "--identity", "a.png", "--audio", "a.wav", "-o", "o.mp4",
                                      "--detector", "hog", "--max-gap", "3", "--max-size", "0"])
    assert (args.detector, args.max_gap, args.max_size) == ("hog", 3, 0)
    evaluate = build_parser().parse_args(["evaluate", "x.mp4", "--detector", "hog"])
    assert evaluate.detector == "hog"
    with pytest.raises(InputError, match="unknown detector 'cnn'"):
        GenerationOptions(detector="cnn")
    with pytest.raises(InputError, match="max size must be 0"):
        GenerationOptions(max_size=-1)


def test_every_user_error_has_one_base_and_keeps_its_builtin_one():
    """One base caught once by cli.main (exit 2); ``except ValueError`` callers keep working."""
    import importlib
    import pkgutil

    import pcavs
    from pcavs.errors import UserError

    found = {}
    for mod in pkgutil.walk_packages(pcavs.__path__, "pcavs."):
        if mod.name.startswith(("pcavs.ui", "pcavs.infer.live")) or mod.name.endswith("__main__"):  # extras; scripts
            continue
        m = importlib.import_module(mod.name)
        for name, obj in vars(m).items():
            if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning) \
                    and obj.__module__ == mod.name:
                found[name] = obj
    expected = {"FaceNotFoundError", "FaceLostError", "ConfigError", "EngineError", "CheckpointError",
                "PreprocessError", "ShardError", "ManifestError", "InputError", "MediaError", "SyncNetError",
                "EvaluationError", "TrackFileError", "SpeechEngineMissing", "DeviceError"}  # fmt: skip
    assert expected <= set(found)
    for name in expected:
        assert issubclass(found[name], UserError) and issubclass(found[name], ValueError | RuntimeError), name
    # anything else raising from pcavs is a bug (keeps its traceback), so no other error class may exist
    # without a decision: list new ones above or name them here
    assert set(found) - expected - {"UserError"} == {"SkipClip"}  # preprocess's internal "leave this clip out"


def test_generate_flags_default_to_the_library_options():
    """`pcavs generate`'s flags are derived from GenerationOptions: parsed with no options given, they
    build exactly the library's defaults (but the progress bar, which the CLI shows)."""
    import argparse

    from pcavs.infer.cli import _options, add_arguments
    from pcavs.infer.pipeline import GenerationOptions

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--identity", "a.png", "--audio", "a.wav", "-o", "out.mp4"])
    assert GenerationOptions(**_options(args)) == GenerationOptions(progress=True)
    args = p.parse_args(["--identity", "a.png", "--audio", "a.wav", "-o", "o.mp4", "--batch-size", "3", "--quiet",
                         "--pose-speed", "2"])  # fmt: skip
    opts = GenerationOptions(**_options(args))
    assert opts.batch_size == 3 and not opts.progress and opts.pose_edit.speed == 2
