"""The declared table against the live one: describe, diff, plan and apply the safe changes.

```python
live = describe(table)                 # DescribeTable + TTL + PITR, normalised
changes = compare(declared_shape(table), live.shape)
result = apply(table)                  # safe changes only; destructive=True for the rest
```

Shapes, comparisons and plans are pure data (`TableShape`, `Change`, `PlanStep` with the exact
request parameters), so a dry run prints exactly what `apply` would send. The flows run under
the sync or the async executor. The declaration also exports as an entity chart
(`entity_chart`), a CloudFormation template (`cloudformation`) and a NoSQL Workbench data model
(`workbench_model`); `tenant_policy` derives a least-privilege IAM policy (``dynamodb:LeadingKeys``
tied to the caller's identity) from the models' key templates.

Modules: `shapes` (declared and live shapes), `changes` (changes and ordered steps), `live`
(describe, diff, apply; sync and async), `export` (chart, CloudFormation, Workbench) and `policy`
(tenant IAM policies; pure).
"""

from __future__ import annotations

from dynamodel.schema.changes import Change, PlanStep, compare, plan
from dynamodel.schema.export import ChartRow, cloudformation, entity_chart, workbench_model
from dynamodel.schema.live import (
    ApplyResult,
    LiveTable,
    aapply,
    adescribe,
    adiff,
    apply,
    describe,
    diff,
)
from dynamodel.schema.policy import (
    TenantPolicy,
    build_tenant_policy,
    tenant_policy,
    tenant_policy_cloudformation,
)
from dynamodel.schema.rotation import arotate, rotate
from dynamodel.schema.shapes import (
    IndexShape,
    ReplicaShape,
    TableShape,
    declared_shape,
    live_shape,
)

__all__ = [
    "ApplyResult",
    "Change",
    "ChartRow",
    "IndexShape",
    "LiveTable",
    "PlanStep",
    "ReplicaShape",
    "TableShape",
    "TenantPolicy",
    "aapply",
    "adescribe",
    "adiff",
    "apply",
    "arotate",
    "build_tenant_policy",
    "cloudformation",
    "compare",
    "declared_shape",
    "describe",
    "diff",
    "entity_chart",
    "live_shape",
    "plan",
    "rotate",
    "tenant_policy",
    "tenant_policy_cloudformation",
    "workbench_model",
]
