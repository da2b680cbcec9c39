"""What a run has to do: compare the source now with what the published version saw.

The published version's manifest records the source as it was read: the extent
along the append dimension, the structure (sample dimensions and their sizes,
variables, dtypes, chunks, features), a digest of every data chunk file (name,
size, modification time) and a digest of the chunk files wholly before the
extent -- the ones an append never touches.  Then:

=====================================  ============================================
the source now                          decision
=====================================  ============================================
nothing published yet, or ``--full``    full fit on all rows, predict all rows
settings (mode, model, input, output)   full fit (warm_start: from the published
changed                                 model when it fits), predict all
same extent, same chunk files           nothing new (only metadata may have changed)
longer, structure and old chunks same   rows appended: online updates with the new
                                        rows and predicts them; refit/warm_start fit
                                        on all rows and predict all
anything else (rewritten chunks,        changed: refit/warm_start fit on all rows;
fewer rows, other dtype/shape/chunks)   online stops with :class:`SourceChangedError`
                                        unless ``on_change = 'refit'`` (or ``--full``)
=====================================  ============================================

Digests need a local store; for URLs only the extent and structure are compared
(appends are assumed to leave old rows as they were, and a rewrite without a
change of shape goes unnoticed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import SourceChangedError
from .source import Source
from .spec import PipelineSpec

ACTION_FULL = "full"
ACTION_APPEND = "append"
ACTION_NOTHING = "nothing"


@dataclass(frozen=True)
class Plan:
    """The decision of one run.

    Attributes
    ----------
    action : {'full', 'append', 'nothing'}
    reason : str
    start : int
        First index along the append dimension to predict (0 unless appending).
    base_version : int or None
        The published version the run starts from: updated (online append) or
        warm-started from (warm_start); None for a fit from scratch.
    source : dict
        What the manifest of the new version records about the source.
    """

    action: str
    reason: str
    start: int = 0
    base_version: int | None = None
    source: dict = field(default_factory=dict, repr=False)


def _jsonable(value):
    return json.loads(json.dumps(value, allow_nan=True))


def source_record(source: Source) -> dict:
    """What a manifest records about ``source``."""
    return _jsonable(
        {
            "store": source.store,
            "append_dim": source.append_dim,
            "extent": source.extent,
            "n_rows": source.n_rows,
            "structure": source.structure,
            "digest": source.digest(),
            "prefix_digest": source.digest(below=source.extent),
            "fingerprint": source.fingerprint(),
        }
    )


def _differences(old: dict, new: dict, limit: int = 4) -> str:
    keys = sorted(set(old) | set(new), key=str)
    changed = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    more = f" and {len(changed) - limit} more" if len(changed) > limit else ""
    return ", ".join(changed[:limit]) + more


def _compare(old: dict, now: dict, source: Source) -> tuple[str, str]:
    """('nothing' | 'append' | 'changed', reason) for the source against the manifest's."""
    dim = now["append_dim"]
    if old["store"] != now["store"]:
        return "changed", f"the input store changed ({old['store']} -> {now['store']})"
    if old["append_dim"] != dim:
        return "changed", f"the append dimension changed ({old['append_dim']!r} -> {dim!r})"
    if old["structure"] != now["structure"]:
        diff = _differences(_flatten(old["structure"]), _flatten(now["structure"]))
        return "changed", f"the source's structure changed: {diff}"
    before, extent = old["extent"], now["extent"]
    if extent < before:
        return "changed", f"rows were removed along {dim!r} ({before:,} -> {extent:,})"
    local = old.get("digest") is not None and now.get("digest") is not None
    if extent == before:
        if local and old["digest"] != now["digest"]:
            return "changed", f"chunk files were rewritten; {dim!r} still has {extent:,} entries"
        if not local and old["fingerprint"].get("arrays") != now["fingerprint"].get("arrays"):
            return "changed", "the store's arrays changed without growing"
        return "nothing", f"nothing new: {dim!r} still has {extent:,} entries, data unchanged"
    if local and source.digest(below=before) != old.get("prefix_digest"):
        return "changed", (
            f"{dim!r} grew ({before:,} -> {extent:,}) but chunks before entry {before} were "
            "rewritten too"
        )
    return "append", f"{extent - before:,} new entries along {dim!r} ({before:,} -> {extent:,})"


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def plan_run(
    spec: PipelineSpec, source: Source, published: dict | None, *, full: bool = False
) -> Plan:
    """Decide what this run does (see the module docstring).

    Parameters
    ----------
    spec : PipelineSpec
    source : Source
        The source as it is now.
    published : dict or None
        The published version's manifest.
    full : bool
        Fit from scratch on all rows whatever changed.

    Returns
    -------
    Plan

    Raises
    ------
    SourceChangedError
        Online mode with ``on_change = 'error'``, when the source changed other than
        by appending rows.
    """
    now = source_record(source)
    if published is None:
        return Plan(ACTION_FULL, "first run: nothing published yet", source=now)
    version = published["version"]
    if full:
        return Plan(ACTION_FULL, "--full: fit from scratch on all rows", source=now)
    base = version if spec.mode == "warm_start" else None
    settings = _jsonable(spec.settings())
    if published["settings"] != settings:
        diff = _differences(published["settings"], settings)
        return Plan(
            ACTION_FULL,
            f"settings changed since version {version}: {diff}",
            base_version=base,
            source=now,
        )
    kind, reason = _compare(published["source"], now, source)
    if kind == "nothing":
        return Plan(ACTION_NOTHING, reason, source=now)
    if kind == "append" and spec.mode == "online":
        return Plan(
            ACTION_APPEND,
            f"{reason}: update version {version} with them",
            start=published["source"]["extent"],
            base_version=version,
            source=now,
        )
    if kind == "changed" and spec.mode == "online" and spec.on_change == "error":
        raise SourceChangedError(
            f"{reason}. Online mode only learns from appended rows, so it will not guess: "
            "run 'daskgmm pipeline run SPEC --full' to fit from scratch on all rows, or set "
            'pipeline.on_change = "refit" in the spec to do so whenever this happens.'
        )
    how = f"warm start from version {version}" if base else "fit on all rows"
    return Plan(ACTION_FULL, f"{reason}: {how}", base_version=base, source=now)
