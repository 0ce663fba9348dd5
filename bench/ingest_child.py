"""Child side of the ingestion benchmark (bench/ingest.py): the three measurements (the service's
dagster path, the pandas way, our cleaning), each run in its own process as
`bench/ingest.py --child KIND PARAMS RESULT`, and the /proc/self/status sampler of their memory.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

MIB = 1024 * 1024
INGEST_ASSETS = ("raw_dataset", "clean_eras", "feature_returns")


# --------------------------------------------------------------------------------------------
# Child side: runs one measurement and writes a JSON result.
# --------------------------------------------------------------------------------------------


class RssSampler:
    """Samples /proc/self/status in a thread: peak RssAnon (memory that must fit) and VmRSS.

    Also logs a line every `log_every_s`, so a long run shows its memory next to dagster's
    progress lines.
    """

    def __init__(self, interval_s: float = 0.1, log_every_s: float = 30.0) -> None:
        self.interval_s, self.log_every_s = interval_s, log_every_s
        self.peak_anon_kib = 0
        self.peak_rss_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> dict[str, int]:
        status = read_proc_status()
        self.peak_anon_kib = max(self.peak_anon_kib, status.get("RssAnon", 0))
        self.peak_rss_kib = max(self.peak_rss_kib, status.get("VmRSS", 0))
        return status

    def _run(self) -> None:
        started = last_log = time.monotonic()
        while not self._stop.wait(self.interval_s):
            status = self._sample()
            if time.monotonic() - last_log >= self.log_every_s:
                last_log = time.monotonic()
                print(
                    f"[rss] t={last_log - started:.0f}s anon={status.get('RssAnon', 0) / 1024:.0f} MiB "
                    f"file={status.get('RssFile', 0) / 1024:.0f} MiB peak_anon={self.peak_anon_kib / 1024:.0f} MiB",
                    flush=True,
                )


def read_proc_status() -> dict[str, int]:
    """The kB fields of /proc/self/status (VmRSS, VmHWM, RssAnon, RssFile, ...)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            fields[key] = int(value.split()[0])
    return fields


def child_ingest(params: dict) -> dict:
    """raw_dataset -> clean_eras -> feature_returns through dagster, as the service runs them."""
    import dagster as dg

    from numerai_assets.ingest.assets import clean_eras, feature_returns, raw_dataset
    from numerai_assets.shared.numerai_api import NumeraiAPI
    from numerai_assets.shared.resources import NumeraiHome

    resources = {
        "numerai": NumeraiAPI(
            api_url=params["api_url"], public_id=params["public_id"], secret_key=params["secret_key"]
        ),
        "numerai_home": NumeraiHome(
            home=params["home"],
            feature_set=params["feature_set"],
            clean_eras_per_chunk=params["eras_per_chunk"],
        ),
    }
    baseline_kib = read_proc_status()["VmRSS"]  # python + dagster + polars imported, nothing done
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [raw_dataset, clean_eras, feature_returns],
            resources=resources,
            instance=instance,
            raise_on_error=True,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
        step_seconds = _step_seconds(instance, result.run_id)
    assets = {}
    for name in INGEST_ASSETS:
        [event] = result.asset_materializations_for_node(name)
        metadata = {key: getattr(value, "value", value) for key, value in event.metadata.items()}
        assets[name] = {
            "step_seconds": step_seconds.get(name),
            "own_seconds": metadata.get("seconds"),  # the asset's own timer, when it reports one
            **{k: metadata[k] for k in ("rows", "eras", "features", "bytes") if k in metadata},
        }
    return {"assets": assets, "baseline_rss_mib": baseline_kib / 1024}


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall time of each step, from the STEP_START / STEP_SUCCESS timestamps of the event log."""
    import dagster as dg

    starts, ends = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            ends[event.step_key] = entry.timestamp
    return {key: ends[key] - starts[key] for key in ends if key in starts}


def child_pandas(params: dict) -> dict:
    """The example notebooks' way: the whole file into pandas, then features as float32."""
    import numpy as np
    import pandas as pd

    features = params["features"]
    baseline_kib = read_proc_status()["VmRSS"]
    started = time.perf_counter()
    frame = pd.read_parquet(params["path"], columns=["era", "target", *features])
    read_s = time.perf_counter() - started
    frame[features] = frame[features].astype(np.float32)
    return {
        "rows": len(frame),
        "features": len(features),
        "read_seconds": read_s,
        "seconds": time.perf_counter() - started,
        "result_mib": frame.memory_usage(deep=False).sum() / MIB,
        "baseline_rss_mib": baseline_kib / 1024,
    }


def child_ours(params: dict) -> dict:
    """Our cleaning of the same file: streamed a chunk of eras at a time into an int8 era store."""
    from model_core.clean import CleanConfig, clean_files

    baseline_kib = read_proc_status()["VmRSS"]
    out_dir = Path(params["out_dir"])
    out_dir.mkdir(parents=True)
    config = CleanConfig(feature_set=params["feature_set"], eras_per_chunk=params["eras_per_chunk"])
    summary = clean_files(
        [Path(params["path"])], params["features"], params["targets"], out_dir, print, config
    )
    return {
        "rows": summary.rows,
        "features": summary.features,
        "seconds": summary.seconds,
        "store_mib": sum(p.stat().st_size for p in out_dir.iterdir()) / MIB,
        "baseline_rss_mib": baseline_kib / 1024,
    }


CHILDREN = {"ingest": child_ingest, "pandas": child_pandas, "ours": child_ours}


def child_main(kind: str, params_path: Path, result_path: Path) -> None:
    params = json.loads(params_path.read_text())
    started = time.perf_counter()
    with RssSampler() as sampler:
        result = CHILDREN[kind](params)
    result["wall_seconds"] = time.perf_counter() - started
    result["peak_anon_mib"] = sampler.peak_anon_kib / 1024
    result_path.write_text(json.dumps(result))
