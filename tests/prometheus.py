"""Reading the Prometheus text format in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Scrape(dict[str, float]):
    """An exposition's samples, keyed ``name{label="value",...}`` (labels sorted), and the families
    it declares (a family with labels has no sample until something moves it)."""

    families: set[str]


def parse(text: str) -> Scrape:
    samples = Scrape()
    samples.families = set()
    for family in text_string_to_metric_families(text):
        samples.families.add(family.name)
        for sample in family.samples:
            labels = ",".join(f'{name}="{value}"' for name, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples
