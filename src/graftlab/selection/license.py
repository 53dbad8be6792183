"""The license gate: refuse backbones whose license the study's ``require:`` section rules out.

It reads only cards (no weights are loaded, nothing is trained), so it runs before any compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..backbones import Backbone, get_backbone
from ..backbones.catalog import license_info
from ..core.config import RequireConfig, StudyConfig
from ..core.errors import ConfigError

__all__ = ["LicenseVerdict", "check_license", "license_verdict", "license_verdicts"]


@dataclass(frozen=True)
class LicenseVerdict:
    backbone: str
    license: str
    commercial_use: bool | None
    allowed: bool
    reason: str  # why it is refused ("" when allowed)
    source: str = ""  # where the license was read


def _resolve(item: Any) -> Backbone:
    return item if isinstance(item, Backbone) else get_backbone(str(item))


def license_verdict(backbone: Backbone | str, require: RequireConfig) -> LicenseVerdict:
    """Whether one backbone meets ``require``, and if not, why."""
    bb = _resolve(backbone)
    info = license_info(bb)
    spdx, commercial = info["license"], info["commercial_use"]
    reasons = []
    if require.licenses is not None:
        allowed = {x.lower() for x in require.licenses}
        if spdx.lower() not in allowed:
            reasons.append(f"its license {spdx!r} is not in require.licenses [{', '.join(require.licenses)}]")
    if require.commercial_use and commercial is not True:
        why = "forbids commercial use" if commercial is False else "does not say whether commercial use is allowed"
        reasons.append(f"its license {spdx!r} {why} and require.commercial_use is true")
    return LicenseVerdict(bb.card.name, spdx, commercial, not reasons, "; ".join(reasons), info["license_source"])


def license_verdicts(config: StudyConfig, backbones: Sequence[Backbone | str]) -> list[LicenseVerdict]:
    return [license_verdict(b, config.require) for b in backbones]


def check_license(config: StudyConfig, backbones: Sequence[Backbone | str], *, require_all: bool = True) -> None:
    """Raise :class:`ConfigError` naming each refused backbone, its license and the requirement.

    Args:
        config: the study config; its ``require`` section is the rule.
        backbones: names, folders or :class:`Backbone` objects.
        require_all: every backbone must comply (the backbone a study trains); ``False`` for bake-off
            candidates, where refused ones are only excluded and the error comes when none complies.
    """
    verdicts = license_verdicts(config, backbones)
    refused = [v for v in verdicts if not v.allowed]
    if not refused or (not require_all and len(refused) < len(verdicts)):
        return
    lines = "; ".join(f"backbone {v.backbone!r} is refused: {v.reason} (license read from {v.source})" for v in refused)
    ok = sorted({v.backbone for v in verdicts if v.allowed})
    hint = (f" Use one of the compliant backbones ({', '.join(ok)})," if ok
            else " Pick a backbone whose license complies (see `graft models list`),")
    raise ConfigError(
        f"License gate: {lines}.{hint} or change the 'require' section of the config "
        "(require.commercial_use, require.licenses) if your use allows it. A local model folder takes the "
        "license its README.md front matter declares ('license: apache-2.0'); add it there when you know it."
    )
