"""Run settings: `config/pipeline.yaml`, validated, with paths resolved against the project folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigError(Exception):
    """A settings file or value is invalid; the message names the file and the key."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    raw_dir: Path = Path("raw")
    out_dir: Path = Path("processed")
    cache_dir: Path = Path(".cache")
    config_dir: Path = Path("config")
    pdf_backend: Literal["pdfplumber", "pypdfium2"] = "pdfplumber"
    workers: int = Field(0, ge=0, le=256)
    batch_size: int = Field(64, ge=1)
    timeout_seconds: float = Field(60, gt=0)
    memory_limit_mb: int = Field(1536, ge=64)
    max_file_mb: float = Field(100, gt=0)
    terms_per_section: int = Field(8, ge=0, le=100)
    on_busy: Literal["wait", "fail"] = "wait"

    @property
    def n_workers(self) -> int:
        return self.workers or max(1, len(os.sched_getaffinity(0)))


def project_dir() -> Path:
    """The folder holding `config/`: $POLICY_PIPELINE_HOME, else the current folder, else the package's."""
    env = os.environ.get("POLICY_PIPELINE_HOME")
    if env:
        return Path(env).resolve()
    cwd = Path.cwd()
    if (cwd / "config" / "pipeline.yaml").exists():
        return cwd
    return Path(__file__).resolve().parents[1]


def load_settings(config_dir: Optional[Path] = None, **overrides) -> Settings:
    """Settings from `<config_dir>/pipeline.yaml`, then `overrides` (None values are ignored)."""
    base = project_dir()
    config_dir = Path(config_dir) if config_dir else base / "config"
    path = config_dir / "pipeline.yaml"
    data: dict = {}
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
    data.update({k: v for k, v in overrides.items() if v is not None})
    data["config_dir"] = config_dir
    try:
        s = Settings.model_validate(data)
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{path}: {msgs}") from None
    root = config_dir.resolve().parent
    for key in ("raw_dir", "out_dir", "cache_dir"):
        p = getattr(s, key)
        if not p.is_absolute() and overrides.get(key) is None:
            setattr(s, key, root / p)
        elif not p.is_absolute():
            setattr(s, key, Path.cwd() / p)
    return s
