"""The components an ensemble has, as the seeds' ensemble API manages them."""
from __future__ import annotations

from typing import Any, Iterator, List, Optional

from appliance.components.model import Component
from appliance.components.query import matches, normalize


class Inventory:
    """An ensemble's components, in the order they were added, one per name."""

    def __init__(self, components: Any = ()) -> None:
        self._components: List[Component] = []
        self.add(*components)

    def add(self, *components: Component) -> None:
        """Add components. One equal to a present component is ignored; a different
        one with a present component's name takes its place."""
        for component in components:
            if not isinstance(component, Component):
                raise TypeError("add_components takes Component objects, got %r" % (component,))
            for index, present in enumerate(self._components):
                if present.name == component.name:
                    self._components[index] = component
                    break
            else:
                self._components.append(component)

    def remove(self, component: Any) -> None:
        """Remove the component of this name (a Component or its name); absent is fine."""
        name = component.name if isinstance(component, Component) else component
        self._components = [c for c in self._components if c.name != name]

    def find(self, query: Any) -> Optional[Component]:
        """The first component the query (a name, or a query object) matches, or None."""
        query = normalize(query, "find_component")
        return next((c for c in self._components if matches(query, c)), None)

    def __iter__(self) -> Iterator[Component]:
        return iter(list(self._components))

    def __len__(self) -> int:
        return len(self._components)
