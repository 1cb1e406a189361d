"""(j) Cold start to the first item: whole processes, as an AWS Lambda cold start pays it.

Each run is one fresh interpreter (``sys.executable -c``) that imports its library, declares
the benchmark's 10-attribute user model (the raw boto3 client declares nothing), reads one
item with GetItem from the local server, checks it and exits. The wall time runs from just
before the process is spawned to when it has been reaped (``os.wait4``), which also gives its
peak RSS. Peers run interleaved (a different order each round); each figure is the median of
the rounds, and each target reads the median of the per-round (paired) ratios.

Every child gets the same environment, as on Lambda: credentials and region in the
environment variables, an empty ``HOME`` (no ``~/.aws``), no proxy variables. The endpoint is
``AWS_ENDPOINT_URL_DYNAMODB`` for the peers that read it (boto3, dynamodel); PynamoDB and
pydynox are given it in their own settings. dynamodel's modules are byte-compiled first, as
installing a wheel does (the peers come from site-packages, compiled at install).

Each child also reports where its time went (``perf_counter`` from its first line: imports,
model declaration, first call), shown in the rows' notes.
"""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from . import peers
from .harness import Row, Settings, Target, median, rotate
from .server import ROOT

TITLE = "(j) Cold start to the first item: a whole process (Lambda's cold start)"
RATIO_MEANING = "ratio = peer / raw boto3 client (wall time; lower is better)"
ABOUT = (
    "Wall time and peak RSS of a whole process that starts the interpreter, imports the "
    "library, declares the 10-attribute model, reads one item with GetItem from the local "
    "server and exits (what every AWS Lambda cold start pays before its first item). "
    "Credentials and region come from the environment, `HOME` is empty (no `~/.aws`), as on "
    "Lambda. Peers are interleaved; figures are medians over the runs, targets read the "
    "median of the per-run paired ratios. The notes split each child's own time into import, "
    "model declaration and first call."
)
OP = "process: start, import, declare, first GetItem, exit"
RSS_OP = "peak RSS of that process"

BOTO3 = "raw boto3 client"
DEFAULT = "dynamodel (default transport)"
LEAN = "dynamodel lean transport"
BOTO3_TRANSPORT = "dynamodel boto3 transport"
PYNAMODB = "PynamoDB"
PYDYNOX = "pydynox"

USER_ID = "cold0000000"
KEY_PK = f"USER#{USER_ID}"
#: PynamoDB reads datetimes only in its own format: its copy of the item has that one
PYNAMODB_PK = "USER#cold-pynamodb"
PYNAMODB_CREATED = "2024-05-01T09:30:00.000000+0000"
KEY_SK = "PROFILE"

_CLOCK = "import time\n_t0 = time.perf_counter()\n"
_LAP = "_t{n} = time.perf_counter()\n"
# the peak RSS is the child's own VmHWM: the rusage of a child (``ru_maxrss``) keeps the
# high-water mark of the process it was forked from across ``exec``, the benchmark's own
_REPORT = (
    "import json\n"
    "_hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
    "print(json.dumps({{'import': _t1 - _t0, 'model': _t2 - _t1, 'call': _t3 - _t2, "
    "'rss_kib': int(_hwm[0].split()[1]) if _hwm else None, 'check': {check}}}))\n"
)

_DYNAMODEL = (
    _CLOCK
    + """import datetime as dt
from decimal import Decimal
from pydantic import BaseModel
from dynamodel import Model, Table
"""
    + _LAP.format(n=1)
    + f"""
class Address(BaseModel):
    street: str
    city: str
    zip: str

class User(Model):
    class Meta:
        table = Table({peers.TABLE!r})
        entity = "User"
        pk = "USER#{{user_id}}"
        sk = "PROFILE"

    user_id: str
    name: str
    age: int
    balance: Decimal
    created: dt.datetime
    active: bool
    tags: set[str]
    scores: list[int]
    address: Address
    nickname: str | None = None
"""
    + _LAP.format(n=2)
    + f"user = User.get(user_id={USER_ID!r})\n"
    + _LAP.format(n=3)
    + _REPORT.format(check="user.address.city")
)

_BOTO3 = (
    _CLOCK
    + "import boto3\n"
    + _LAP.format(n=1)
    + _LAP.format(n=2)
    + f"""client = boto3.client("dynamodb")
item = client.get_item(
    TableName={peers.TABLE!r}, Key={{"pk": {{"S": {KEY_PK!r}}}, "sk": {{"S": {KEY_SK!r}}}}}
)["Item"]
"""
    + _LAP.format(n=3)
    + _REPORT.format(check="item['address']['M']['city']['S']")
)

_PYNAMODB = (
    _CLOCK
    + """import os
from pynamodb import attributes as pa
from pynamodb.models import Model
"""
    + _LAP.format(n=1)
    + f"""
class Address(pa.MapAttribute):
    street = pa.UnicodeAttribute()
    city = pa.UnicodeAttribute()
    zip = pa.UnicodeAttribute()

class User(Model):
    class Meta:
        table_name = {peers.TABLE!r}
        host = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
        region = os.environ["AWS_DEFAULT_REGION"]

    pk = pa.UnicodeAttribute(hash_key=True)
    sk = pa.UnicodeAttribute(range_key=True)
    type_ = pa.UnicodeAttribute(attr_name={peers.TYPE!r}, default="User")
    user_id = pa.UnicodeAttribute()
    name = pa.UnicodeAttribute()
    age = pa.NumberAttribute()
    balance = pa.NumberAttribute()
    created = pa.UTCDateTimeAttribute()
    active = pa.BooleanAttribute()
    tags = pa.UnicodeSetAttribute()
    scores = pa.ListAttribute(of=pa.NumberAttribute)
    address = Address()
    nickname = pa.UnicodeAttribute(null=True)
"""
    + _LAP.format(n=2)
    + f"user = User.get({PYNAMODB_PK!r}, {KEY_SK!r})\n"
    + _LAP.format(n=3)
    + _REPORT.format(check="user.address.city")
)

_PYDYNOX = (
    _CLOCK
    + """import os
from pydantic import BaseModel
from pydynox import DynamoDBClient, Model, ModelConfig, attributes as xa
"""
    + _LAP.format(n=1)
    + f"""
class Address(BaseModel):
    street: str
    city: str
    zip: str

client = DynamoDBClient(
    endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"],
    region=os.environ["AWS_DEFAULT_REGION"],
)

class User(Model):
    model_config = ModelConfig(table={peers.TABLE!r}, client=client)
    pk = xa.StringAttribute(partition_key=True)
    sk = xa.StringAttribute(sort_key=True)
    type_ = xa.StringAttribute(alias={peers.TYPE!r}, default="User")
    user_id = xa.StringAttribute()
    name = xa.StringAttribute()
    age = xa.NumberAttribute()
    balance = xa.DecimalAttribute()
    created = xa.DatetimeAttribute()
    active = xa.BooleanAttribute()
    tags = xa.StringSetAttribute()
    scores = xa.ListAttribute()
    address = xa.MapAttribute(Address)
    nickname = xa.StringAttribute()
"""
    + _LAP.format(n=2)
    + f"user = User.sync_get(pk={KEY_PK!r}, sk={KEY_SK!r})\n"
    + _LAP.format(n=3)
    + _REPORT.format(check="user.address.city")
)


#: peer -> (child script, extra environment variables)
def _peers() -> dict[str, tuple[str, dict[str, str]]]:
    chosen: dict[str, tuple[str, dict[str, str]]] = {
        BOTO3: (_BOTO3, {}),
        DEFAULT: (_DYNAMODEL, {}),
        PYNAMODB: (_PYNAMODB, {}),
        PYDYNOX: (_PYDYNOX, {}),
    }
    from dynamodel.io.lean import DEFAULT_TRANSPORT

    # the transport the default does not use, named explicitly (children get no
    # DYNAMODEL_TRANSPORT of their own: `child_env`)
    other = "boto3" if DEFAULT_TRANSPORT == "lean" else "lean"
    chosen[BOTO3_TRANSPORT if other == "boto3" else LEAN] = (
        _DYNAMODEL,
        {"DYNAMODEL_TRANSPORT": other},
    )
    return chosen


def child_env(endpoint: str, home: str) -> dict[str, str]:
    """What every child gets: Lambda-like credentials and region, an empty HOME, no proxies."""
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        HOME=home,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_DYNAMODB=endpoint,
    )
    return env


class ChildFailed(RuntimeError):
    """A child process exited with an error (its stderr is the message)."""


def run_child(script: str, env: dict[str, str]) -> tuple[float, float, dict[str, Any]]:
    """(wall seconds, peak RSS in MiB, the child's own report) of one process.

    The peak RSS is the child's VmHWM (Linux); elsewhere its ``ru_maxrss``, which may include
    this process's own when the child was forked from it.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=tempfile.gettempdir(),  # not the checkout: ``-c`` puts the cwd on sys.path
            env=env,
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(process.pid, 0)  # reaps it, with its resource usage
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise ChildFailed(stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {status}")
    report = json.loads(stdout.strip().splitlines()[-1])
    if report.get("check") != "Springfield":
        raise ChildFailed(f"read the wrong item: {report!r}")
    kib = report.get("rss_kib") or usage.ru_maxrss
    return wall, kib / 1024, report


def _seed(endpoint: str) -> None:
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint)
    user = peers.plain_make(0, "cold")
    assert user.user_id == USER_ID
    params = peers.floor_put_params(user)
    client.put_item(**params)
    item = dict(params["Item"], pk={"S": PYNAMODB_PK}, created={"S": PYNAMODB_CREATED})
    client.put_item(TableName=params["TableName"], Item=item)
    client.close()


def _paired(walls: dict[str, list[float | None]], peer: str, base: str, runs: int) -> float | None:
    ratios = []
    for i in range(runs):
        a, b = walls[peer][i], walls[base][i]
        if a is not None and b:
            ratios.append(a / b)
    return median(ratios) if ratios else None


def run(
    settings: Settings, endpoint: str, log: Callable[[str], None]
) -> tuple[list[Row], list[Target]]:
    compileall.compile_dir(ROOT / "dynamodel", quiet=1)  # as pip does for an installed wheel
    _seed(endpoint)
    chosen = _peers()
    names = list(chosen)
    walls: dict[str, list[float | None]] = {name: [] for name in names}
    rss: dict[str, list[float]] = {name: [] for name in names}
    phases: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="dynamodel-cold-home-") as home:
        base_env = child_env(endpoint, home)
        for name in names:  # one untimed run each: the OS page cache holds every library
            script, extra = chosen[name]
            try:
                run_child(script, {**base_env, **extra})
            except ChildFailed as error:
                failed[name] = str(error)
        for round_number in range(settings.cold_runs):
            for name in rotate(names, round_number):
                if name in failed:
                    walls[name].append(None)
                    continue
                script, extra = chosen[name]
                wall, peak, report = run_child(script, {**base_env, **extra})
                walls[name].append(wall)
                rss[name].append(peak)
                phases[name].append(report)
    log(f"  (j) {settings.cold_runs} processes per peer")

    rows: list[Row] = []
    for name in names:
        if name in failed:
            note = "not installed" if "ModuleNotFoundError" in failed[name] else failed[name]
            rows.append(Row("j", OP, name, None, "ms", note=note))
            rows.append(Row("j", RSS_OP, name, None, "MiB", note=note))
            continue
        wall_ms = median([w for w in walls[name] if w is not None]) * 1e3
        split = {k: median([p[k] for p in phases[name]]) * 1e3 for k in ("import", "model", "call")}
        note = (
            f"in the child: import {split['import']:.0f} ms, model {split['model']:.1f} ms, "
            f"first GetItem {split['call']:.0f} ms"
        )
        ratio = _paired(walls, name, BOTO3, settings.cold_runs) if name != BOTO3 else 1.0
        rows.append(Row("j", OP, name, wall_ms, "ms", ratio=ratio, note=note, extra=split))
        peak = median(rss[name])
        base_rss = median(rss[BOTO3]) if rss[BOTO3] else None
        rows.append(
            Row(
                "j",
                RSS_OP,
                name,
                peak,
                "MiB",
                ratio=peak / base_rss if base_rss else None,
            )
        )
    return rows, _targets(rows, walls, rss, settings.cold_runs)


def _targets(
    rows: list[Row],
    walls: dict[str, list[float | None]],
    rss: dict[str, list[float]],
    runs: int,
) -> list[Target]:
    lean = LEAN if LEAN in walls else DEFAULT
    boto3_transport = BOTO3_TRANSPORT if BOTO3_TRANSPORT in walls else DEFAULT
    suffix = f"paired ratio, median of {runs} runs"
    note_default = (
        f"the default transport is the lean one; with the boto3 transport: "
        f"{_fmt(_paired(walls, boto3_transport, BOTO3, runs))} (not a target)"
        if lean == DEFAULT
        else f"the default transport is boto3; {suffix}"
    )
    lean_rss = median(rss[lean]) if rss.get(lean) else None
    boto3_rss = median(rss[BOTO3]) if rss.get(BOTO3) else None
    return [
        Target(
            "j",
            "cold start: dynamodel lean / raw boto3 client",
            _paired(walls, lean, BOTO3, runs),
            0.8,
            "max",
            suffix,
        ),
        Target(
            "j",
            "cold start: dynamodel lean / pydynox",
            _paired(walls, lean, PYDYNOX, runs),
            1.5,
            "max",
            suffix,
        ),
        Target(
            "j",
            "cold start: dynamodel default / raw boto3 client",
            _paired(walls, DEFAULT, BOTO3, runs),
            1.2,
            "max",
            note_default,
        ),
        Target(
            "j",
            "peak RSS: dynamodel lean / raw boto3 client",
            lean_rss / boto3_rss if lean_rss and boto3_rss else None,
            1.0,
            "max",
            f"medians: {_fmt(lean_rss, ' MiB')} vs {_fmt(boto3_rss, ' MiB')}",
        ),
    ]


def _fmt(value: float | None, unit: str = "x") -> str:
    if value is None:
        return "-"
    return f"{value:.2f}{unit}" if unit == "x" else f"{value:.0f}{unit}"
