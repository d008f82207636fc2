"""The promotion gate: a new model ships only if it is not worse than the one the deploy target runs now.

The **champion** is the model of the last release ``deploy`` recorded for the configured deploy target (its
identity: ``local:CONTAINER``, ``ecs:REGION/CLUSTER/SERVICE``), whose metrics the release carries. The
**candidate** is ``model/metadata.json``. Each of the hold-out accuracy, the hold-out macro-F1 and the mean
CV accuracy may be at most ``promotion.tolerance`` below the champion's; on the fixed evaluation set (every
row of the dataset) the gate also counts how many answers change, and fails when more than
``promotion.max_changed_fraction`` of them do. No champion yet (a first deploy, or a release deployed by
``deploy.image`` whose model is not known) passes and says so; ``promotion.gate = false`` waives the gate and
the stage's summary says it was waived. The ``promotion`` stage (:mod:`pipeline.stages.promotion`) runs it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Config, PromotionSection
from pipeline.errors import GateFailed, ServiceBusy, StageFailed
from pipeline.outputs import PromotionOutputs
from pipeline.state import RunState

METRICS = (
    ("holdout_accuracy", "hold-out accuracy"),
    ("holdout_macro_f1", "hold-out macro-F1"),
    ("cv_accuracy_mean", "CV accuracy (mean)"),
)
PREDICTIONS = "evaluation_predictions"
# When a champion metric is unusable, its answers are the evidence left: at most this share of them may change
# (or promotion.max_changed_fraction, if that is stricter), however permissive the setting is otherwise.
UNTRUSTED_CHAMPION_MAX_CHANGED = 0.05


def model_summary(metadata: dict[str, Any]) -> dict[str, Any]:
    """What a release keeps of a model's ``metadata.json``: its version, metrics and evaluation answers."""
    keys = ("model_version", *(key for key, _ in METRICS), PREDICTIONS)
    return {key: metadata[key] for key in keys if key in metadata}


def read_candidate(config: Config) -> dict[str, Any] | None:
    """The candidate model's summary from ``model/metadata.json``; None when there is none to read."""
    path = config.path(config.train.output_dir) / "metadata.json"
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return model_summary(found) if isinstance(found, dict) else None


@dataclass(frozen=True)
class Verdict:
    """The comparison: a table for the log, one line for the summary, and whether it fails the gate."""

    table: list[str]
    line: str
    failures: list[str]
    changed: int | None = None  # answers changed on the fixed evaluation set, of
    compared: int | None = None  # this many, when both models recorded them


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _metric(value: Any) -> float | None:
    """A usable metric: a finite number in [0, 1] (NaN compares as "not worse" with anything: refused)."""
    number = _number(value)
    return number if number is not None and math.isfinite(number) and 0.0 <= number <= 1.0 else None


def candidate_problems(candidate: dict[str, Any]) -> list[str]:
    """Why a candidate's metadata cannot be trusted (the gate fails closed on each); [] when it can."""
    problems = [
        f"its {label} is {candidate.get(key)!r} (missing, not finite or outside [0, 1])"
        for key, label in METRICS
        if _metric(candidate.get(key)) is None
    ]
    answers = candidate.get(PREDICTIONS)
    if not isinstance(answers, list) or not answers:
        problems.append("it records no answers on the fixed evaluation set")
    return problems


def compare(candidate: dict[str, Any], champion: dict[str, Any], settings: PromotionSection) -> Verdict:
    """The candidate's metrics against the champion's, within ``settings.tolerance``.

    Fails closed: a candidate metric that is missing, not finite or outside [0, 1] fails the gate. A
    champion metric like that is shown as unusable and not compared; the champion is then judged by its
    recorded answers (at most :data:`UNTRUSTED_CHAMPION_MAX_CHANGED` of them may change), and a champion
    with neither usable metrics nor answers cannot be compared at all (a failure too: "anything goes" is
    never the verdict)."""
    table = [f"{'metric':<22}{'champion':>10}{'candidate':>11}  verdict"]
    failures: list[str] = [f"the candidate cannot be trusted: {p}" for p in candidate_problems(candidate)]
    compared = 0
    limit = settings.max_changed_fraction
    for key, label in METRICS:
        old, new = _metric(champion.get(key)), _metric(candidate.get(key))
        if new is None:
            table.append(f"{label:<22}{'-':>10}{'-':>11}  candidate's value unusable: {candidate.get(key)!r}")
            continue
        if old is None:
            limit = min(limit, UNTRUSTED_CHAMPION_MAX_CHANGED)
            table.append(
                f"{label:<22}{'-':>10}{new:>11.4f}  champion's value unusable: {champion.get(key)!r}"
            )
            continue
        compared += 1
        worse = new < old - settings.tolerance
        table.append(f"{label:<22}{old:>10.4f}{new:>11.4f}  {'WORSE' if worse else 'ok'}")
        if worse:
            failures.append(f"{label} {new:.4f} < {old:.4f} - {settings.tolerance:g}")
    changed: int | None = None
    changed_text = "answers changed: not compared (not recorded)"
    changed_summary = "changed answers not compared"
    old_answers, new_answers = champion.get(PREDICTIONS), candidate.get(PREDICTIONS)
    if (
        isinstance(old_answers, list)
        and isinstance(new_answers, list)
        and len(old_answers) == len(new_answers)
    ):
        compared += 1
        changed = sum(a != b for a, b in zip(old_answers, new_answers, strict=True))
        fraction = changed / len(new_answers) if new_answers else 0.0
        changed_text = f"answers changed on the fixed evaluation set: {changed}/{len(new_answers)}"
        changed_summary = f"{changed}/{len(new_answers)} answers changed"
        too_many = fraction > limit
        table.append(f"{changed_text} ({fraction:.1%}; allowed {limit:.1%})")
        if too_many:
            failures.append(f"{changed} of {len(new_answers)} answers changed ({fraction:.1%})")
    else:
        table.append(changed_text)
    if not compared:
        failures.append(
            f"the champion {champion.get('model_version')} has no usable metric and no comparable answers"
        )
    accuracy = _metric(candidate.get("holdout_accuracy"))
    line = (
        f"model {candidate.get('model_version')} vs champion {champion.get('model_version')}: "
        + ("worse" if failures else "not worse")
        + (f" (hold-out accuracy {accuracy:.3f})" if accuracy is not None else "")
        + f"; {changed_summary}"
    )
    compared_answers = len(new_answers) if changed is not None and isinstance(new_answers, list) else None
    return Verdict(table, line, failures, changed, compared_answers)


def champion_of(config: Config, state: RunState, log: Any) -> tuple[str, dict[str, Any] | None]:
    """(the deploy target's identity, the champion's model or None).

    The model of the last release recorded (here, or in the shared store when there is one); without one (a
    fresh agent, a release of ``deploy.image``), what the live service reports at ``/api/v1/model`` when it
    answers (``DeployTarget.live_url``).
    """
    from pipeline.releases import Releases
    from pipeline.stages.targets import Release, target_class

    kind = target_class(config)
    identity = kind.identity(config)
    releases = Releases.of(config, state).read(identity)
    if releases:
        model = Release.from_state(releases[-1], identity).model
        if model is not None:
            return identity, model
    url = kind.live_url(config)
    return identity, _ask_live(url, log) if url else None


def _ask_live(url: str, log: Any) -> dict[str, Any] | None:
    """The live service's model, from ``/api/v1/model``; None when it does not answer with one."""
    from pipeline.adapters.service import ServiceClient

    try:
        answer = ServiceClient(url, timeout_s=3.0, trust_env=not url.startswith("http://127.")).get(
            "/api/v1/model"
        )
    except ServiceBusy as exc:
        log(f"promotion: no release recorded here, and {exc.message}")
        return None
    if answer.status != 200 or not isinstance(answer.body, dict) or "model_version" not in answer.body:
        log(f"promotion: no release recorded here, and {url}/api/v1/model gave no model ({answer.status})")
        return None
    log(f"promotion: no release recorded here; the champion is what {url} serves now")
    return model_summary(answer.body)


def gate(config: Config, state: RunState, log: Any) -> PromotionOutputs:
    """Run the gate; its verdict (``line``: the stage's summary). :class:`GateFailed` when the candidate is
    worse, or cannot be trusted."""
    identity, champion = champion_of(config, state, log)
    candidate = read_candidate(config)
    if champion is not None and candidate is None:
        raise StageFailed(
            f"the promotion gate cannot compare: {config.train.output_dir}/metadata.json is missing or "
            f"unreadable, and {identity} runs model {champion.get('model_version')}",
            hint="run 'python -m pipeline run --stage train'",
        )
    if champion is None or candidate is None:
        problems = candidate_problems(candidate) if candidate is not None else []
        if candidate is not None and problems and config.promotion.gate:
            raise GateFailed(
                f"promotion gate: model {candidate.get('model_version')} cannot be trusted: "
                + "; ".join(problems),
                hint="train again (python -m pipeline run --stage train); "
                "to ship it anyway for one run: --set promotion.gate=false",
            )
        line = f"promotion: no champion on {identity} yet (first deploy, or its model is not known): passes"
        log(line)
        version = candidate.get("model_version") if candidate else None
        return PromotionOutputs("first", _text(version), None, identity, None, None, line)
    verdict = compare(candidate, champion, config.promotion)
    log(
        f"promotion gate: candidate {candidate.get('model_version')} against champion "
        f"{champion.get('model_version')}, deployed on {identity}"
    )
    for row in verdict.table:
        log(f"  {row}")
    facts = (_text(candidate.get("model_version")), _text(champion.get("model_version")), identity)
    if not config.promotion.gate:
        line = f"promotion gate waived (promotion.gate=false): {verdict.line}"
        log(line)
        return PromotionOutputs("waived", *facts, verdict.changed, verdict.compared, line)
    if verdict.failures:
        raise GateFailed(
            f"promotion gate: model {candidate.get('model_version')} is worse than the champion "
            f"{champion.get('model_version')} deployed on {identity}: " + "; ".join(verdict.failures),
            hint="see the table in the build log; to ship it anyway for one run: --set promotion.gate=false",
        )
    return PromotionOutputs("passed", *facts, verdict.changed, verdict.compared, f"promotion: {verdict.line}")


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None
