"""Model registry and factory (timm style: ``timm/models/_registry.py`` + ``_factory.py``, docs/style.md).

Every architecture variant is a thin entry point registered with its default config::

    @register_model(LANetConfig(encoder_width=16, ...))
    def lanet_small(cfg: LANetConfig) -> LANet:
        return LANet(cfg)

:func:`create_model` is the single public constructor: ``create_model("lanet_small", bottleneck_ch=64)`` patches
config fields. A checkpoint stores ``name`` and ``model.config.to_dict()``; ``create_model(name, config=config_dict)``
(or ``**config_dict``) rebuilds the network without any training code.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

__all__ = ["ModelConfig", "register_model", "list_models", "is_model", "model_entrypoint", "model_config",
           "create_model"]

C = TypeVar("C", bound="ModelConfig")


@dataclasses.dataclass
class ModelConfig:
    """Base of the model config dataclasses: JSON-friendly ``to_dict``/``from_dict``; lists become tuples."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                setattr(self, f.name, tuple(value))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (tuples as lists), fit for ``json.dumps``."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Inverse of :meth:`to_dict`. Unknown keys raise ``ValueError`` (a config from another model)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown config field(s) {unknown}; known: {sorted(names)}")
        return cls(**data)

    def replace(self: C, **overrides: Any) -> C:
        """A copy with ``overrides`` applied (validated like :meth:`from_dict`)."""
        return type(self).from_dict({**self.to_dict(), **overrides})


_entrypoints: dict[str, Callable[[Any], nn.Module]] = {}
_default_cfgs: dict[str, ModelConfig] = {}
_module_to_models: dict[str, list[str]] = {}


def register_model(default_cfg: ModelConfig) -> Callable[[Callable[[Any], nn.Module]], Callable[[Any], nn.Module]]:
    """Decorator: register ``fn(cfg) -> nn.Module`` under ``fn.__name__`` with its default config.

    The name is also appended to the defining module's ``__all__`` (as timm does).
    """

    def wrap(fn: Callable[[Any], nn.Module]) -> Callable[[Any], nn.Module]:
        name = fn.__name__
        if name in _entrypoints:
            raise ValueError(f"model {name!r} is registered twice")
        _entrypoints[name] = fn
        _default_cfgs[name] = default_cfg
        _module_to_models.setdefault(fn.__module__, []).append(name)
        mod = __import__(fn.__module__, fromlist=["__all__"])
        if hasattr(mod, "__all__") and name not in mod.__all__:
            mod.__all__.append(name)
        return fn

    return wrap


def list_models(filter: str = "", module: str | None = None) -> list[str]:
    """Sorted registered names, optionally matching a wildcard ``filter`` (e.g. ``"*small"``) or a module."""
    names = _module_to_models.get(module, []) if module else list(_entrypoints)
    if filter:
        names = fnmatch.filter(names, filter)
    return sorted(names)


def is_model(name: str) -> bool:
    """True if ``name`` is registered."""
    return name in _entrypoints


def model_entrypoint(name: str) -> Callable[[Any], nn.Module]:
    """The registered ``fn(cfg)`` for ``name``."""
    if name not in _entrypoints:
        raise ValueError(f"unknown model {name!r}; registered: {list_models()}")
    return _entrypoints[name]


def model_config(name: str, config: ModelConfig | dict[str, Any] | None = None, **overrides: Any) -> ModelConfig:
    """The config of ``name``: its default (or ``config`` patched over it), then ``overrides``; always a fresh copy."""
    model_entrypoint(name)
    base = _default_cfgs[name]
    if isinstance(config, ModelConfig):
        config = config.to_dict()
    return base.replace(**{**(config or {}), **overrides})


def create_model(name: str, config: ModelConfig | dict[str, Any] | None = None, **overrides: Any) -> nn.Module:
    """Build registered model ``name``; ``config`` (a checkpoint's config dict) and ``overrides`` patch its config.

    Args:
        name: a name from :func:`list_models`.
        config: config fields over the registered default, e.g. ``model.config.to_dict()`` from a checkpoint.
        **overrides: config fields to change last, e.g. ``pano_branch="unet"``.

    Returns:
        The model (in train mode, on the CPU); ``model.config`` holds the resolved config and
        ``model.model_name`` the registered name.
    """
    model = model_entrypoint(name)(model_config(name, config, **overrides))
    model.model_name = name
    return model
