"""Placeholder: being written (sections_to_quantities)."""
from typing import ClassVar

from pipeline.rules import RuleFile


class QuantityRules(RuleFile):
    filename: ClassVar[str] = "quantities.yaml"
