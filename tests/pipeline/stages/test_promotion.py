"""The promotion gate before ``build``: a deliberately weakened model (one stump, trained for real) against
the champion the deploy target runs (a model trained with the project's parameters)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_training import params, run_training
from pipeline import config as config_mod
from pipeline.errors import GateFailed, StageFailed
from pipeline.stages import _promotion
from pipeline.state import RunState
from tests.conftest import ROOT, record_passes, run_cli

IDENTITY = "local:iris-classifier"


@pytest.fixture(scope="module")
def champion_dir(model_dir: Path) -> Path:
    """A model trained with the project's parameters: the session's."""
    return model_dir


@pytest.fixture(scope="module")
def champion(champion_dir: Path) -> dict[str, Any]:
    """What the release of that model records."""
    return _promotion.model_summary(json.loads((champion_dir / "metadata.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def weak_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real model that is worse: one tree of depth 1 tells only one class from the other two."""
    directory = tmp_path_factory.mktemp("weak") / "model"
    saved = dict(params.HYPERPARAMETERS)
    params.HYPERPARAMETERS.update(n_estimators=1, max_depth=1)
    try:
        run_training(directory, min_cv_accuracy=0.5)
    finally:
        params.HYPERPARAMETERS.clear()
        params.HYPERPARAMETERS.update(saved)
    yield directory


def repo_with(
    tmp_path: Path, model: Path, champion: dict[str, Any] | None, *sets: str
) -> tuple[Any, RunState]:
    (tmp_path / "pipeline.toml").write_text((ROOT / "pipeline.toml").read_text(encoding="utf-8"), "utf-8")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "metadata.json").write_bytes((model / "metadata.json").read_bytes())
    cfg = config_mod.load(tmp_path, profile="local", overrides=list(sets), environ={})
    state = RunState(cfg.state_file)
    if champion is not None:
        release = {"image": "r/iris@sha256:" + "a" * 64, "ref": "iris-classifier", "model": champion}
        state.set_releases(IDENTITY, [release])
    return cfg, state


def test_a_weakened_model_fails_the_gate_with_a_table_of_both(
    tmp_path: Path, weak_model: Path, champion: dict[str, Any]
) -> None:
    cfg, state = repo_with(tmp_path, weak_model, champion)
    lines: list[str] = []

    with pytest.raises(GateFailed) as caught:
        _promotion.gate(cfg, state, lines.append)

    message = caught.value.message
    assert f"is worse than the champion {champion['model_version']} deployed on {IDENTITY}" in message
    assert "hold-out accuracy" in message and "CV accuracy (mean)" in message
    assert "--set promotion.gate=false" in (caught.value.hint or "")
    table = "\n".join(lines)
    assert "WORSE" in table and f"{champion['holdout_accuracy']:>10.4f}" in table
    assert "answers changed on the fixed evaluation set: " in table  # the stump answers differently


def test_the_gate_can_be_waived_for_one_run_and_says_so(
    tmp_path: Path, weak_model: Path, champion: dict[str, Any]
) -> None:
    cfg, state = repo_with(tmp_path, weak_model, champion, "promotion.gate=false")

    verdict = _promotion.gate(cfg, state, lambda _line: None)

    assert verdict.verdict == "waived"
    assert verdict.line.startswith("promotion gate waived (promotion.gate=false): model ")
    assert ": worse" in verdict.line


def test_the_same_model_passes_with_no_answer_changed(tmp_path: Path, champion: dict[str, Any]) -> None:
    model = tmp_path / "same"
    model.mkdir()
    (model / "metadata.json").write_text(json.dumps(champion), encoding="utf-8")
    (tmp_path / "repo").mkdir()
    cfg, state = repo_with(tmp_path / "repo", model, champion)

    verdict = _promotion.gate(cfg, state, lambda _line: None)

    line = verdict.line
    assert line.startswith(f"promotion: model {champion['model_version']} vs champion")
    assert "not worse" in line and f"0/{len(champion['evaluation_predictions'])} answers changed" in line
    assert (verdict.verdict, verdict.changed, verdict.compared) == ("passed", 0, 150)
    assert verdict.champion == verdict.candidate == champion["model_version"]


def test_without_a_champion_the_gate_passes_and_says_why(tmp_path: Path, weak_model: Path) -> None:
    cfg, state = repo_with(tmp_path, weak_model, None, "deploy.local.port=9")  # no live service either

    verdict = _promotion.gate(cfg, state, lambda _line: None)
    assert "no champion on local:iris-classifier yet" in verdict.line
    assert (verdict.verdict, verdict.champion, verdict.identity) == ("first", None, "local:iris-classifier")


def test_too_many_changed_answers_fail_when_gated(champion: dict[str, Any]) -> None:
    answers = list(champion["evaluation_predictions"])
    answers[:3] = [(label + 1) % 3 for label in answers[:3]]
    candidate = {**champion, "model_version": "other", "evaluation_predictions": answers}
    settings = config_mod.PromotionSection(max_changed_fraction=0.01)

    verdict = _promotion.compare(candidate, champion, settings)

    assert verdict.failures == [f"3 of {len(answers)} answers changed (2.0%)"]
    assert not _promotion.compare(candidate, champion, config_mod.PromotionSection()).failures


@pytest.mark.parametrize(("drop", "fails"), [(0.005, False), (0.02, True)])
def test_the_tolerance_is_how_much_lower_a_metric_may_be(
    champion: dict[str, Any], drop: float, fails: bool
) -> None:
    candidate = {**champion, "holdout_macro_f1": champion["holdout_macro_f1"] - drop}

    verdict = _promotion.compare(candidate, champion, config_mod.PromotionSection(tolerance=0.01))

    assert bool(verdict.failures) is fails


@pytest.mark.integration
def test_without_a_recorded_release_the_champion_is_what_the_live_service_serves(
    tmp_path: Path, weak_model: Path, champion_dir: Path, champion: dict[str, Any]
) -> None:
    """A fresh agent has no run state; the local target's service answers on deploy.local.port."""
    from tests.app.conftest import start_server, wait_ready

    server = start_server(champion_dir, tmp_path / "server.log")
    try:
        wait_ready(server)
        port = server.url.rsplit(":", 1)[1]
        (tmp_path / "repo").mkdir()
        cfg, state = repo_with(tmp_path / "repo", weak_model, None, f"deploy.local.port={port}")
        lines: list[str] = []

        with pytest.raises(GateFailed) as caught:
            _promotion.gate(cfg, state, lines.append)
    finally:
        server.stop()

    assert f"the champion is what {server.url} serves now" in "\n".join(lines)
    assert f"worse than the champion {champion['model_version']}" in caught.value.message


def test_without_a_release_or_a_live_service_there_is_no_champion(tmp_path: Path, weak_model: Path) -> None:
    cfg, state = repo_with(tmp_path, weak_model, None, "deploy.local.port=9")  # nothing listens on port 9
    lines: list[str] = []

    assert "no champion on" in _promotion.gate(cfg, state, lines.append).line
    assert "GET http://127.0.0.1:9/api/v1/model got no answer (ConnectionError)" in "\n".join(lines)


def test_a_candidate_without_metrics_cannot_pass_a_champion(tmp_path: Path, champion: dict[str, Any]) -> None:
    model = tmp_path / "broken"
    model.mkdir()
    (model / "metadata.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "repo").mkdir()
    cfg, state = repo_with(tmp_path / "repo", model, champion)

    with pytest.raises(StageFailed) as caught:
        _promotion.gate(cfg, state, lambda _line: None)

    assert "the promotion gate cannot compare: model/metadata.json is missing or unreadable" in str(
        caught.value
    )
    assert not isinstance(caught.value, GateFailed)


def with_metadata(tmp_path: Path, model: Path, **changes: Any) -> Path:
    """A copy of ``model``'s metadata.json with ``changes`` (None removes the key), as a model directory."""
    meta = json.loads((model / "metadata.json").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    target = tmp_path / "edited-model"
    target.mkdir()
    # json.dumps writes NaN as the bare token NaN, which json.loads reads back: what a tampered file holds.
    (target / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    return target


@pytest.mark.parametrize(
    "changes",
    [
        {
            "holdout_accuracy": float("nan"),
            "holdout_macro_f1": float("nan"),
            "cv_accuracy_mean": float("nan"),
        },
        {"holdout_accuracy": None, "holdout_macro_f1": None, "cv_accuracy_mean": None},
        {"holdout_accuracy": 1.7},
        {"evaluation_predictions": None},
    ],
    ids=["nan-metrics", "missing-metrics", "out-of-range", "no-answers"],
)
def test_the_gate_fails_closed_on_a_candidate_it_cannot_trust(
    tmp_path: Path, weak_model: Path, champion: dict[str, Any], changes: dict[str, Any]
) -> None:
    """The one-stump model, whose real metrics the gate refuses, with its metadata made unusable: it must
    still fail, with a champion and without one (it would become the champion)."""
    model = with_metadata(tmp_path, weak_model, **changes)
    for who, champ in (("with", champion), ("without", None)):
        (tmp_path / who).mkdir()
        cfg, state = repo_with(tmp_path / who, model, champ, "deploy.local.port=9")
        with pytest.raises(GateFailed) as caught:
            _promotion.gate(cfg, state, lambda _line: None)
        assert "cannot be trusted" in caught.value.message, (who, caught.value.message)


def test_a_champion_with_unusable_metrics_is_judged_by_its_answers(
    tmp_path: Path, weak_model: Path, champion: dict[str, Any]
) -> None:
    """NaN metrics recorded for the champion (a release made before this check) never mean "anything goes":
    the weak candidate is compared by its answers on the fixed evaluation set, and fails there."""
    nan_champion = {**champion, **{key: float("nan") for key, _ in _promotion.METRICS}}
    cfg, state = repo_with(tmp_path, weak_model, nan_champion)
    lines: list[str] = []
    with pytest.raises(GateFailed) as caught:
        _promotion.gate(cfg, state, lines.append)
    assert "answers changed" in caught.value.message
    assert "champion's value unusable: nan" in "\n".join(lines)

    bare = {"model_version": champion["model_version"]}
    good = tmp_path / "good"
    good.mkdir()
    cfg, state = repo_with(good, weak_model, bare)
    with pytest.raises(GateFailed) as caught:
        _promotion.gate(cfg, state, lambda _line: None)
    assert "has no usable metric and no comparable answers" in caught.value.message


def test_promotion_refuses_a_model_whose_metadata_does_not_describe_its_onnx_file(
    make_repo: Any, weak_model: Path, champion_dir: Path
) -> None:
    """A one-stump ONNX file under the good model's metadata (renamed to the file's hash): the metrics say
    "not worse", the file's answers do not. The stage checks the file before the gate, and fails closed."""
    repo = make_repo({"pipeline.toml": "", "Dockerfile": "FROM scratch\n"})
    model = Path(shutil.copytree(champion_dir, repo / "model"))
    shutil.copyfile(weak_model / "iris_model.onnx", model / "iris_model.onnx")
    metadata = json.loads((model / "metadata.json").read_text(encoding="utf-8"))
    metadata["model_version"] = json.loads((weak_model / "metadata.json").read_text("utf-8"))["model_version"]
    (model / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    record_passes(repo, train={"model_version": "m", "model_dir": "model", "cv_accuracy_mean": 0.9})

    proc = run_cli(["run", "--stage", "promotion"], repo)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    stage = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]
    assert stage["status"] == "failed", stage
    assert "the model in model/ cannot be trusted" in stage["summary"], stage
    assert "answers differently from the recorded evaluation_predictions" in stage["summary"], stage


def test_the_fingerprint_reads_the_model_and_the_state_once_until_they_change(
    tmp_path: Path, weak_model: Path, champion: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.stages import promotion

    cfg, _ = repo_with(tmp_path, weak_model, champion)
    (tmp_path / "model" / "iris_model.onnx").write_bytes(b"onnx")
    reads: list[str] = []
    read_bytes, load = Path.read_bytes, RunState.load
    monkeypatch.setattr(Path, "read_bytes", lambda path: reads.append(path.name) or read_bytes(path))
    monkeypatch.setattr(RunState, "load", lambda path: reads.append(path.name) or load(path))
    stage = promotion.PromotionStage()

    first = stage.inputs(cfg).extra
    assert sorted(reads) == ["iris_model.onnx", "metadata.json", "state.json"]
    assert [stage.inputs(cfg).extra for _ in range(3)] == [first] * 3 and len(reads) == 3

    (tmp_path / "model" / "iris_model.onnx").write_bytes(b"another onnx")  # train ran
    assert stage.inputs(cfg).extra["candidate"] != first["candidate"]
    state = RunState.load(cfg.state_file)
    state.set_releases(IDENTITY, [])  # a release recorded (or undone) while the run went on
    reads.clear()
    assert stage.inputs(cfg).extra["champion"] != first["champion"] and reads == ["state.json"]
