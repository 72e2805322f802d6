"""``cscprog synthesize`` and ``cscprog judge``: RoleCS role-play synthesis and its quality filter.

Example:
    ```
    cscprog synthesize -n 200 --profiles profiles.jsonl --filter -o rolecs.jsonl --concurrency 16
    cscprog synthesize -n 200 --profiles profiles.jsonl --filter -o rolecs.jsonl --resume   # after a stop
    cscprog judge rolecs.jsonl -o judged.jsonl --keep-only-passing
    ```
"""

from __future__ import annotations

from pathlib import Path

import typer

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, TaxonomyOption, config_and_taxonomy
from cscprog.cli.data import SkipOption, load_for_cli, resolve_data_path
from cscprog.cli.runs import (
    FORMATS,
    ConcurrencyOption,
    DataArgument,
    EngineOption,
    FormatOption,
    JsonSummaryOption,
    OutputOption,
    ProgressOption,
    ResumeOption,
    RunOptionError,
    RunSpec,
    check_choice,
    dialogue_record,
    execute,
    sibling_path,
)
from cscprog.data import LANGUAGES, Dialogue, Profile, read_profiles
from cscprog.errors import DataError
from cscprog.roles import Role
from cscprog.runs import Routed

SYNTHESIS_ROLES = (Role.PLANNER, Role.SUPPORTER_ASSISTANT, Role.SUPPORTER, Role.CUSTOMER_ASSISTANT, Role.CUSTOMER)
"""The roles one role-play dialogue calls (the judge too with --filter)."""


def read_topics(path: Path) -> list[str]:
    """Topics from a text file, one a line (blank lines and ``#`` comments ignored).

    Raises:
        DataError: the file is missing, not UTF-8, or lists no topic.
    """
    if not path.is_file():
        raise DataError(str(path), "no such file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(str(path), f"not UTF-8 text (byte {error.start})") from None
    topics = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not topics:
        raise DataError(str(path), "no topic in the file (one topic a line)")
    return topics


def _profiles(path: Path | None) -> list[Profile]:
    if path is None:
        from cscprog.samples import load_profiles

        return load_profiles()
    profiles = read_profiles(resolve_data_path(path))
    if not profiles:
        raise DataError(str(path), "no profile in the file")
    return profiles


def plan_for_cli(
    profiles_path: Path | None, topics: list[str] | None, topics_file: Path | None, n: int | None, seed: int
) -> tuple[list[tuple[str, Profile, str]], list[str], int]:
    """Who calls about what, from the ``--profiles``, ``--topics``/``--topics-file``, ``-n`` and seed options.

    Returns:
        ``(plan, topics, profile count)``: :func:`cscprog.rolecs.plan.synthesis_plan` triples, the topics used
        (the method's seven by default) and how many profiles were read (the packaged samples by default).

    Raises:
        RunOptionError: both topic options, or a plan that cannot be made (duplicate profile ids or topics).
        DataError: an unreadable profiles or topics file.

    Example:
        ```python
        plan, topics, profile_count = plan_for_cli(None, ["complaints and disputes"], None, 10, 1234)
        ```
    """
    from cscprog.rolecs.plan import TOPICS, synthesis_plan

    if topics and topics_file is not None:
        raise RunOptionError("give --topics or --topics-file, not both")
    chosen_topics = read_topics(topics_file) if topics_file is not None else list(topics or TOPICS)
    profiles = _profiles(profiles_path)
    try:
        return synthesis_plan(profiles, chosen_topics, n=n, seed=seed), chosen_topics, len(profiles)
    except ValueError as error:
        raise RunOptionError(str(error)) from None


@app.command("synthesize")
def synthesize_command(
    ctx: typer.Context,
    output: Path = OutputOption,
    n: int | None = typer.Option(None, "--count", "-n", min=0,
                                 help="Dialogues to synthesize (default: every profile x topic)."),
    profiles_path: Path | None = typer.Option(None, "--profiles",
                                              help="Profiles JSONL/JSON (structured or descriptions); default: "
                                                   "the packaged samples."),
    topics: list[str] | None = typer.Option(None, "--topics", help="A topic (repeat the option for more); "
                                                                   "default: the method's seven."),
    topics_file: Path | None = typer.Option(None, "--topics-file", help="Topics, one a line."),
    filter_: bool = typer.Option(False, "--filter", help="Judge every dialogue; failing ones go to "
                                                         "<OUTPUT stem>.rejected.jsonl."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the profile x topic plan (default: [run] seed)."),
    max_utterances: int | None = typer.Option(None, "--max-utterances", min=2,
                                              help="Utterance cap (default: [run] max_utterances)."),
    hard_flow_guard: bool = typer.Option(False, "--hard-flow-guard",
                                         help="Also enforce the opening and no-third-repeat flow rules in code."),
    language: str | None = typer.Option(None, "--language", help="en or zh (default: profile, then [run] language)."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    concurrency: int | None = ConcurrencyOption,
    resume: bool = ResumeOption,
    engine: str | None = EngineOption,
    output_format: str = FormatOption,
    progress: str = ProgressOption,
    as_json: bool = JsonSummaryOption,
) -> None:
    """Synthesize role-play dialogues (RoleCS) from customer profiles x topics, optionally judge-filtered.

    Every dialogue has a stable id derived from its profile and topic, and the plan depends only on the
    profiles, topics, -n and the seed, so --resume continues exactly the same run.
    """
    from cscprog.rolecs.judge import QualityJudge
    from cscprog.rolecs.roleplay import RolePlaySimulator

    check_choice(output_format, FORMATS, "--format")
    if language is not None:
        check_choice(language, LANGUAGES, "--language")
    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    plan_seed = seed if seed is not None else loaded_config.run.seed
    plan, chosen_topics, profile_count = plan_for_cli(profiles_path, topics, topics_file, n, plan_seed)
    simulator = RolePlaySimulator(tax, max_utterances=max_utterances, hard_flow_guard=hard_flow_guard)
    judge = QualityJudge(tax, concurrency=1) if filter_ else None

    def work(payload: tuple[str, Profile, str]) -> object:
        dialogue_id, profile, topic = payload
        dialogue = simulator(profile=profile, topic=topic, dialogue_id=dialogue_id, language=language).dialogue
        if judge is None:
            return dialogue_record(dialogue, output_format, tax)
        verdict = judge(dialogue)
        record = dialogue_record(verdict.dialogue, output_format, tax)
        return record if verdict.passed else Routed("rejected", record)

    side = {"rejected": sibling_path(output, "rejected")} if filter_ else {}
    spec = RunSpec(name="synthesize", output=output, config=loaded_config, concurrency=concurrency, resume=resume,
                   inputs={"profiles": str(profiles_path) if profiles_path else "sample:profiles",
                           "profile_count": profile_count, "topics": chosen_topics, "n": n, "planned": len(plan),
                           "seed": plan_seed, "filter": filter_, "max_utterances": max_utterances,
                           "hard_flow_guard": hard_flow_guard, "language": language, "format": output_format,
                           "taxonomy": tax.name},
                   side_outputs=side, progress=progress, json_summary=as_json, context=ctx,
                   engine=engine, roles=SYNTHESIS_ROLES + ((Role.JUDGE,) if filter_ else ()))
    execute(spec, items=[(dialogue_id, (dialogue_id, profile, topic)) for dialogue_id, profile, topic in plan],
            work=work)


@app.command("judge")
def judge_command(
    ctx: typer.Context,
    data: Path = DataArgument,
    output: Path = OutputOption,
    keep_only_passing: bool = typer.Option(False, "--keep-only-passing",
                                           help="Write only dialogues meeting all five criteria to OUTPUT; the "
                                                "others go to <OUTPUT stem>.rejected.jsonl."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    concurrency: int | None = ConcurrencyOption,
    resume: bool = ResumeOption,
    engine: str | None = EngineOption,
    output_format: str = FormatOption,
    skip_invalid: bool = SkipOption,
    progress: str = ProgressOption,
    as_json: bool = JsonSummaryOption,
) -> None:
    """Judge dialogues on the five quality criteria; the verdict is stored in ``metadata.judge``.

    A dialogue the judge could not assess after the retries is a failure (retried by --resume), never a pass.
    With --format released the verdict is not representable and only the dialogues are written.
    """
    from cscprog.rolecs.judge import QualityJudge

    check_choice(output_format, FORMATS, "--format")
    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    dialogues = load_for_cli(data, tax, skip_invalid, unknown_as_others=False).dialogues
    judge = QualityJudge(tax, concurrency=1)

    def work(dialogue: Dialogue) -> object:
        verdict = judge(dialogue)
        record = dialogue_record(verdict.dialogue, output_format, tax)
        return Routed("rejected", record) if keep_only_passing and not verdict.passed else record

    side = {"rejected": sibling_path(output, "rejected")} if keep_only_passing else {}
    spec = RunSpec(name="judge", output=output, config=loaded_config, concurrency=concurrency, resume=resume,
                   inputs={"data": str(data), "dialogues": len(dialogues), "keep_only_passing": keep_only_passing,
                           "format": output_format, "taxonomy": tax.name},
                   side_outputs=side, progress=progress, json_summary=as_json, context=ctx,
                   engine=engine, roles=(Role.JUDGE,))
    execute(spec, items=[(d.id, d) for d in dialogues], work=work)
