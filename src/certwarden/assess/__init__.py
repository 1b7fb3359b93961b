"""Assessment: rules over certificates where they are seen, a policy, and the forecast."""

from certwarden.assess.engine import (
    Assessment,
    Assessor,
    assess,
    findings_by_location,
    load_trust,
)
from certwarden.assess.finding import Finding, Hit, Rule, Scope, Severity
from certwarden.assess.policy import (
    DEFAULT_POLICY_YAML,
    Owner,
    Policy,
    PolicyError,
    RevocationFetch,
    Thresholds,
    Waiver,
    default_policy,
    load_policy,
    parse_policy,
)
from certwarden.assess.rules import RULE_IDS, RULES, RULES_BY_ID
from certwarden.assess.target import Estate, Target

__all__ = [
    "DEFAULT_POLICY_YAML",
    "RULES",
    "RULES_BY_ID",
    "RULE_IDS",
    "Assessment",
    "Assessor",
    "Estate",
    "Finding",
    "Hit",
    "Owner",
    "Policy",
    "PolicyError",
    "RevocationFetch",
    "Rule",
    "Scope",
    "Severity",
    "Target",
    "Thresholds",
    "Waiver",
    "assess",
    "default_policy",
    "findings_by_location",
    "load_policy",
    "load_trust",
    "parse_policy",
]
