"""Run a daskgmm pipeline from Prefect (optional: ``pip install 'daskgmm[prefect]'``).

The flow calls the same runner as ``daskgmm pipeline run``, so the lock, the
atomic publish and the run records are the same whichever scheduler starts it::

    python pipelines/prefect_flow.py pipelines/example.toml      # one run, here
    # or deploy it: build_flow().serve(name="sensors", cron="30 2 * * *",
    #                                   parameters={"spec": "pipelines/example.toml"})

A run that finds another run of the spec holding the lock finishes without
doing anything (its record says ``busy``); a failed run fails the flow run.
Prefect is imported only by :func:`build_flow`.
"""

from __future__ import annotations

import sys


def build_flow():
    """The Prefect flow ``daskgmm-pipeline(spec, wait=None, full=False)``.

    Raises
    ------
    ImportError
        If Prefect is not installed.
    """
    try:
        from prefect import flow, get_run_logger
    except ImportError as exc:
        raise ImportError(
            "The Prefect flow needs Prefect: pip install 'daskgmm[prefect]'."
        ) from exc

    from daskgmm.pipeline import PipelineBusy, run_pipeline

    @flow(name="daskgmm-pipeline")
    def daskgmm_pipeline(spec: str, wait: float | None = None, full: bool = False) -> dict:
        logger = get_run_logger()
        try:
            record = run_pipeline(spec, wait=wait, full=full, notify=logger.info)
        except PipelineBusy as busy:
            logger.warning(str(busy))
            return busy.record.to_dict()
        return record.to_dict()

    return daskgmm_pipeline


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python pipelines/prefect_flow.py SPEC.toml")
    print(build_flow()(sys.argv[1]))
