import dagster as dg

# Added by the round sensor (and by `numerai-pipeline ingest` for the current round).
round_partitions = dg.DynamicPartitionsDefinition(name="numerai_round")

# Registered by clean_eras for every era it stores; backfills select ranges of them.
era_partitions = dg.DynamicPartitionsDefinition(name="numerai_era")


def add_missing_partitions(instance: dg.DagsterInstance, name: str, keys: list[str]) -> list[str]:
    """Register the keys not yet known to the instance; returns the ones added."""
    known = set(instance.get_dynamic_partitions(name))
    new = [k for k in keys if k not in known]
    if new:
        instance.add_dynamic_partitions(name, new)
    return new
