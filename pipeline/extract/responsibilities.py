"""Placeholder: being written (sections_to_responsibilities)."""
from typing import ClassVar

from pipeline.rules import RuleFile


class ResponsibilityRules(RuleFile):
    filename: ClassVar[str] = "responsibilities.yaml"
