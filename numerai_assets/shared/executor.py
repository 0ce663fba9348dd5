"""The executor (NUMERAI_EXECUTOR) and the per-step Kubernetes config of the GPU (fold) steps.

- `multiprocess` (default): one host, a process per step; at most `fold_concurrency` steps tagged
  GPU_TAG run at once within a run (the instance's `gpu` pool does the same across runs).
- `in_process`: every step in the run's own process (tests, debugging).
- `k8s`: dagster-k8s' `k8s_job_executor`, one Kubernetes Job per step. Fold steps carry the
  `dagster-k8s/config` op tag from `fold_step_k8s_tags` (one `nvidia.com/gpu`, a toleration, a node
  selector); every other step gets no such tag and stays on a CPU node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from numerai_assets.shared.settings import Settings

GPU_TAG = "numerai/gpu"  # the executor lets `fold_concurrency` steps with this tag run at once
GPU_POOL = "gpu"  # ...and the instance-wide pool does the same across runs

K8S_CONFIG_TAG = "dagster-k8s/config"  # the op tag dagster-k8s reads for a step's pod
K8S_GPU_RESOURCE = "nvidia.com/gpu"  # the NVIDIA device plugin's extended resource


def build_executor(kind: str, fold_concurrency: int) -> dg.ExecutorDefinition:
    """The executor for NUMERAI_EXECUTOR=`kind`; fold steps limited to `fold_concurrency` at once."""
    limits = {"tag_concurrency_limits": [{"key": GPU_TAG, "value": "1", "limit": fold_concurrency}]}
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        return dg.multiprocess_executor.configured(limits)
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor  # imports the kubernetes client: only when chosen

        return k8s_job_executor.configured(limits)
    raise ValueError(f"NUMERAI_EXECUTOR: unknown executor {kind!r} (multiprocess, in_process or k8s)")


def fold_step_k8s_tags(gpu_toleration_key: str, node_selector: Mapping[str, str]) -> dict[str, Any]:
    """The `dagster-k8s/config` op tag of a fold step: one GPU, tolerate the GPU taint, GPU nodes only.

    An empty toleration key or node selector leaves that part out (clusters without a GPU taint, or
    where the device plugin's resource alone places the pod).
    """
    pod_spec: dict[str, Any] = {}
    if gpu_toleration_key:
        pod_spec["tolerations"] = [{"key": gpu_toleration_key, "operator": "Exists", "effect": "NoSchedule"}]
    if node_selector:
        pod_spec["node_selector"] = dict(node_selector)
    config: dict[str, Any] = {"container_config": {"resources": {"limits": {K8S_GPU_RESOURCE: "1"}}}}
    if pod_spec:
        config["pod_spec_config"] = pod_spec
    return {K8S_CONFIG_TAG: config}


def fold_step_tags(settings: Settings) -> dict[str, Any]:
    """Extra op tags for the fold steps: the GPU pod config under `k8s`, nothing otherwise."""
    if settings.executor != "k8s":
        return {}
    return fold_step_k8s_tags(settings.k8s_gpu_toleration, dict(settings.k8s_gpu_node_selector))
