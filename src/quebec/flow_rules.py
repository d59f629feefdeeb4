"""The store's view of this process's job classes (types.FlowRules), read from the registry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from quebec.flow_options import concurrency_rule, limited
from quebec.registry import Registry
from quebec.types import ConcurrencyRule


class RegistryFlowRules:
    """Concurrency rules of the registered classes; a class registered later is seen at once."""

    def __init__(
        self, registry: Registry, *, default_duration: float, queue_limits: Mapping[str, int] | None = None
    ) -> None:
        self._registry = registry
        # experimental_queue_concurrency: a `queue:<name>` semaphore each, taken at claim time.
        self.queue_rules = {
            q: ConcurrencyRule(n, timedelta(seconds=default_duration)) for q, n in (queue_limits or {}).items()
        }
        self._default = default_duration
        self._unknown = ConcurrencyRule(1, timedelta(seconds=default_duration))
        self._rules: dict[type, ConcurrencyRule] = {}

    @property
    def limited(self) -> bool:
        return bool(self.queue_rules) or any(limited(cls) for cls in self._registry.classes())

    def queue_rule(self, queue_name: str) -> ConcurrencyRule | None:
        return self.queue_rules.get(queue_name)

    def concurrency(self, class_name: str) -> ConcurrencyRule:
        cls = self._registry.get(class_name)
        if cls is None or not limited(cls):
            return self._unknown
        rule = self._rules.get(cls)
        if rule is None:
            rule = self._rules[cls] = concurrency_rule(cls, self._default)
        return rule
