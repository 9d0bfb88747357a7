"""The region adapters shipped with Chuanyu Gateway: Tongliang (JSON) and Suining (XML).

Each is registered under the ``chuanyu_gateway.adapters`` entry-point group and
implements :class:`gateway.adapter.LocalAdapter`; load them by name with
:func:`gateway.adapter.load_adapter`.
"""

from __future__ import annotations

__all__: list[str] = []
