"""NUMERAI_EXECUTOR=k8s: dagster-k8s' executor, a GPU pod per fold step, CPU pods for the rest.

No cluster here. The code location is built from the environment deploy/helm/values.yaml gives the
user deployment; the step pods are then built with dagster-k8s' own functions, the way its
K8sStepHandler does (`_get_container_context` + `launch_step`): the run launcher's runK8sConfig
from the same values, merged with the executor's config and the step's `dagster-k8s/config` tag
read from the real job's execution plan, then `construct_dagster_k8s_job`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
import kubernetes
import pytest
import yaml
from dagster._core.execution.api import create_execution_plan
from dagster_k8s import k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_k8s_job_name,
    get_user_defined_k8s_config,
)

from numerai_assets.shared.executor import GPU_TAG, build_executor, fold_step_k8s_tags
from numerai_assets.shared.settings import SettingsError, load_settings
from numerai_assets.training.jobs import TRAINING_JOB

ROOT = Path(__file__).resolve().parents[2]
VALUES = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
[DEPLOYMENT] = VALUES["dagster-user-deployments"]["deployments"]
HELM_ENV = {item["name"]: item["value"] for item in DEPLOYMENT["env"]}
# The chart's runK8sConfig keys in camelCase -> dagster-k8s' UserDefinedDagsterK8sConfig fields.
RUN_K8S_CONFIG_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}


@pytest.fixture
def numerai_env(monkeypatch, tmp_path):
    """A clean NUMERAI_* environment (no stray .env); tests add what they need."""
    for name in list(os.environ):
        if name.startswith("NUMERAI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture
def build_definitions() -> Iterator:
    """numerai_assets.definitions.build_definitions, the module unloaded again afterwards.

    The module builds its `defs` from the environment at import; a copy imported here must not
    stand in for the one a later test's run imports under its own environment.
    """
    import numerai_assets

    name = "numerai_assets.definitions"
    loaded_before = name in sys.modules
    yield importlib.import_module(name).build_definitions
    if not loaded_before:
        sys.modules.pop(name, None)
        vars(numerai_assets).pop("definitions", None)


def _job(build_definitions, settings) -> dg.JobDefinition:
    return build_definitions(settings).resolve_job_def(TRAINING_JOB)


def _run_k8s_config() -> dict:
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    return {RUN_K8S_CONFIG_KEYS[key]: value for key, value in (launcher.get("runK8sConfig") or {}).items()}


def _step_pod(job: dg.JobDefinition, step_key: str) -> kubernetes.client.V1PodSpec:
    """The pod spec of the Job dagster-k8s' step handler would submit for `step_key`."""
    plan = create_execution_plan(job)
    step_tags = {step.key: step.tags for step in plan.steps}
    executor_config = job.executor_def.config_schema.resolve_config({}).value["config"]
    # K8sStepHandler._get_container_context: run launcher config, executor config, step tags.
    context = (
        K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(_run_k8s_config()))
        .merge(
            K8sContainerContext(
                run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
                    executor_config.get("step_k8s_config", {})
                )
            )
        )
        .merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(step_tags[step_key])))
    )
    image = f"{DEPLOYMENT['image']['repository']}:{DEPLOYMENT['image']['tag']}"
    k8s_job = construct_dagster_k8s_job(
        job_config=DagsterK8sJobConfig(job_image=image, dagster_home="/opt/dagster/dagster_home"),
        args=["dagster", "api", "execute_step"],
        job_name=f"dagster-step-{get_k8s_job_name('0123abcd', step_key)}",
        user_defined_k8s_config=context.run_k8s_config,
        component="step_worker",
        labels={"dagster/op": step_key},
    )
    return k8s_job.spec.template.spec


def _limits(pod: kubernetes.client.V1PodSpec) -> Mapping[str, str]:
    resources = pod.containers[0].resources
    return (resources.limits if resources else None) or {}


def test_helm_values_select_the_k8s_executor(numerai_env, build_definitions):
    for name, value in HELM_ENV.items():
        numerai_env.setenv(name, value)
    job = _job(build_definitions, load_settings())
    assert job.executor_def.executor_creation_fn is k8s_job_executor.executor_creation_fn
    config = job.executor_def.config_schema.resolve_config({}).value["config"]
    assert config["tag_concurrency_limits"] == [
        {"key": GPU_TAG, "value": "1", "limit": int(HELM_ENV["NUMERAI_FOLD_CONCURRENCY"])}
    ]


def test_fold_steps_get_a_gpu_toleration_and_node_selector_other_steps_stay_on_cpu(
    numerai_env, build_definitions
):
    for name, value in HELM_ENV.items():
        numerai_env.setenv(name, value)
    numerai_env.setenv("NUMERAI_N_FOLDS", "3")
    numerai_env.setenv("NUMERAI_K8S_GPU_TOLERATION", "gpu-only")
    numerai_env.setenv("NUMERAI_K8S_GPU_NODE_SELECTOR", '{"cloud.google.com/gke-accelerator": "nvidia-l4"}')
    job = _job(build_definitions, load_settings())
    run_requests = _run_k8s_config()["container_config"]["resources"]["requests"]

    for fold in range(3):
        pod = _step_pod(job, f"fold_model_{fold}")
        assert _limits(pod)["nvidia.com/gpu"] == "1"
        assert pod.containers[0].resources.requests == run_requests  # merged with the run launcher's
        [toleration] = pod.tolerations
        assert (toleration.key, toleration.operator, toleration.effect) == (
            "gpu-only",
            "Exists",
            "NoSchedule",
        )
        assert pod.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-l4"}

    cpu_steps = ["raw_dataset", "clean_eras", "feature_returns", "cv_folds", "ensemble_weights"]
    for step_key in cpu_steps:
        pod = _step_pod(job, step_key)
        assert "nvidia.com/gpu" not in _limits(pod), step_key
        assert pod.containers[0].resources.requests == run_requests, step_key
        assert not pod.tolerations and not pod.node_selector, step_key


def test_values_yaml_node_selector_reaches_the_fold_pod(numerai_env, build_definitions):
    for name, value in HELM_ENV.items():
        numerai_env.setenv(name, value)
    pod = _step_pod(_job(build_definitions, load_settings()), "fold_model_0")
    assert pod.node_selector == yaml.safe_load(HELM_ENV["NUMERAI_K8S_GPU_NODE_SELECTOR"])
    assert [t.key for t in pod.tolerations] == [HELM_ENV["NUMERAI_K8S_GPU_TOLERATION"]]


@pytest.mark.parametrize("executor", ["multiprocess", "in_process"])
def test_without_k8s_no_step_carries_pod_config(numerai_env, build_definitions, executor):
    numerai_env.setenv("NUMERAI_EXECUTOR", executor)
    numerai_env.setenv("NUMERAI_K8S_GPU_NODE_SELECTOR", '{"gpu": "yes"}')
    job = _job(build_definitions, load_settings())
    assert job.executor_def.name == executor
    for step in create_execution_plan(job).steps:
        assert "dagster-k8s/config" not in step.tags, step.key
        assert (GPU_TAG in step.tags) == step.key.startswith(("fold_model_", "refit_model_")), step.key


def test_empty_toleration_and_selector_leave_only_the_gpu_limit():
    assert fold_step_k8s_tags("", {}) == {
        "dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}
    }


def test_bad_node_selector_names_the_variable(numerai_env):
    numerai_env.setenv("NUMERAI_K8S_GPU_NODE_SELECTOR", "gpu=yes")
    with pytest.raises(SettingsError, match="NUMERAI_K8S_GPU_NODE_SELECTOR"):
        load_settings()


def test_unknown_executor_is_refused():
    with pytest.raises(ValueError, match="NUMERAI_EXECUTOR"):
        build_executor("ray", 1)


def test_node_selector_setting_is_parsed_and_settings_stay_hashable(numerai_env):
    numerai_env.setenv("NUMERAI_K8S_GPU_NODE_SELECTOR", '{"b": "2", "a": "1"}')
    settings = load_settings()
    assert dict(settings.k8s_gpu_node_selector) == {"a": "1", "b": "2"}
    assert hash(settings) == hash(load_settings())
    numerai_env.setenv("NUMERAI_K8S_GPU_NODE_SELECTOR", '{"gpu": true}')
    with pytest.raises(SettingsError, match="NUMERAI_K8S_GPU_NODE_SELECTOR"):
        load_settings()
