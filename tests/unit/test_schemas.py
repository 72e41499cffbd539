"""Request schemas: parsing and validation at the edge (chalicelib/api/schemas.py).

Every refusal is an InvalidRequest (400) whose `reason` names the offending field
(docs/api.md "Errors"); nothing else may escape, whatever the client sends.
Pure logic: no sockets, no AWS.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.api import schemas as v
from chalicelib.api.errors import status_of
from chalicelib.domain import keys as base58
from chalicelib.domain.errors import InvalidRequest, NotFound

MIN_S, MAX_H = 60, 720
NOW = 1_764_070_000_000

WALLET = base58.encode(bytes(range(1, 33)))
SIG = base58.encode(bytes(range(100, 164)))
CID = "CTR-abcdefghijklmnopqrstuv"

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**40), 10**40),
    st.text(max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=8), kids, max_size=3)),
    max_leaves=8,
)


def rent(**changes) -> dict:
    body = {"wallet": WALLET, "tier": "M2", "duration_hours": 1, "tx_signature": SIG}
    body.update(changes)
    return {k: val for k, val in body.items() if val is not ...}


def reason_of(fn, *args, **kw) -> str:
    with pytest.raises(InvalidRequest) as exc:
        fn(*args, **kw)
    assert status_of(exc.value) == (400, "invalid_request")
    assert exc.value.detail and exc.value.reason
    return exc.value.reason


def rent_reason(body) -> str:
    return reason_of(v.rent_request, body, min_seconds=MIN_S, max_hours=MAX_H)


# --- parse_json ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        "",
        b" ",
        b"\n",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"[]",
        b"[1]",
        b"1",
        b"1.5",
        b'"x"',
        b"null",
        b"true",
        b"false",
        b"{",
        b'{"a": 1',
        b'{"a": 1}}',
        b"{'a': 1}",
        b'{"a": 1,}',
        b"{a: 1}",
        b'{"a": "\xff"}',
        b"\xff\xfe",
        b"\x80{}",
        b'{"a": "\xed\xa0\x80"}',
        b"\xc3\x28",
        '{"a":1}'.encode("utf-16"),
        '{"a":1}'.encode("utf-32"),
        b"[" * 65_000,
        b'{"a":' * 20_000,
        b"1" * 5_000,
    ],
)
def test_parse_json_refuses(raw):
    assert reason_of(v.parse_json, raw) == "body"


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b'{"a": NaN}', "a"),
        (b'{"a": Infinity}', "a"),
        (b'{"a": -Infinity}', "a"),
        (b'{"duration_hours": [1, NaN]}', "duration_hours[1]"),
        (b'{"wallet": "x", "duration_hours": Infinity}', "duration_hours"),
        (
            b'{"samples": [{"cpu_percent": 1}, {"cpu_percent": 1, "disk_io_mbps": -Infinity}]}',
            "samples[1].disk_io_mbps",
        ),
        (b'{"a": {"b": {"c": NaN}}}', "a.b.c"),
        (b'{"a": NaN, "a": 1}', "body"),  # a duplicate key replaced it: still refused
        (b"[NaN]", "[0]"),
    ],
)
def test_parse_json_names_the_field_of_nan_and_infinity(raw, reason):
    """NaN / Infinity are not JSON: 400 naming where they are, not "not valid JSON"."""
    with pytest.raises(InvalidRequest) as exc:
        v.parse_json(raw)
    assert exc.value.reason == reason
    assert "finite" in exc.value.detail and "not valid JSON" not in exc.value.detail


@given(
    st.sampled_from(["NaN", "Infinity", "-Infinity"]),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4),
)
def test_parse_json_non_finite_at_any_depth_names_its_path(constant, path):
    raw = "".join(f'{{"{k}": ' for k in path) + constant + "}" * len(path)
    with pytest.raises(InvalidRequest) as exc:
        v.parse_json(raw.encode())
    assert exc.value.reason == ".".join(path)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"{}", {}),
        (
            b'{"a": 1, "b": 1.5, "c": -0.0, "d": 1e400, "e": "\xc3\xa9"}',
            {"a": 1, "b": Decimal("1.5"), "c": Decimal("-0.0"), "d": Decimal("1E+400"), "e": "é"},
        ),
        ('{"x": [1, {"y": null}]}', {"x": [1, {"y": None}]}),
        (b'  {"a": true}\n', {"a": True}),
    ],
)
def test_parse_json_accepts(raw, expected):
    got = v.parse_json(raw)
    assert got == expected
    assert all(not isinstance(x, float) for x in got.values())


@given(st.binary(max_size=200))
def test_parse_json_any_bytes_is_an_object_or_a_400(raw):
    try:
        out = v.parse_json(raw)
    except InvalidRequest as exc:
        assert exc.reason == "body"
    else:
        assert isinstance(out, dict)
        raw.decode("utf-8")  # only UTF-8 is JSON on the wire (RFC 8259 §8.1)


def _ints(x):
    if isinstance(x, bool):
        return
    if isinstance(x, int):
        yield x
    elif isinstance(x, dict):
        for y in x.values():
            yield from _ints(y)
    elif isinstance(x, list):
        for y in x:
            yield from _ints(y)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_parse_json_round_trip_never_yields_floats(obj):
    raw = json.dumps(obj, default=str).encode()
    try:
        out = v.parse_json(raw)
    except InvalidRequest as exc:  # a number longer than the bound (json_scalars reach 41 digits)
        assert f"at most {v.MAX_NUMBER_CHARS} characters" in exc.detail
        assert any(len(str(abs(n))) > v.MAX_NUMBER_CHARS - 1 for n in _ints(obj))
        return

    def walk(x):
        assert not isinstance(x, float)
        if isinstance(x, dict):
            for y in x.values():
                walk(y)
        elif isinstance(x, list):
            for y in x:
                walk(y)

    walk(out)


# --- rent_request -------------------------------------------------------------------------


def test_rent_request_valid():
    r = v.rent_request(rent(), min_seconds=MIN_S, max_hours=MAX_H)
    assert (r.wallet, r.tier, r.seconds, r.tx_signature) == (WALLET, "M2", 3600, SIG)
    assert r.fingerprint() == f"rent|{WALLET}|M2|3600"


@pytest.mark.parametrize(
    "hours, seconds",
    [
        (Decimal("0.1"), 360),
        (Decimal("0.10"), 360),
        (Decimal("1E-1"), 360),
        (1, 3600),
        (720, 2_592_000),
        (Decimal("720"), 2_592_000),
        (Decimal("720.000"), 2_592_000),
        (Decimal("0.0166667"), 60),
        (Decimal("0.01666666"), 60),  # 59.999976 s rounds half-up to 60
        (Decimal("0.01680556"), 61),  # 60.500016 s
        (Decimal("0.016805555"), 60),  # 60.499998 s
        (Decimal("1.5"), 5400),
        # the limits apply to the rounded seconds
        (Decimal("720.0000000001"), 2_592_000),
        (Decimal("720.000000000000000000000001"), 2_592_000),  # MAX_PLACES (24) places
        (Decimal("720.0001"), 2_592_000),  # 2,592,000.36 s
        (Decimal("720.000138"), 2_592_000),  # 2,592,000.4968 s
        (Decimal("0.01666653"), 60),  # 59.999508 s
        (Decimal("0.016527778"), 60),  # 59.5000008 s
    ],
)
def test_rent_request_duration_to_seconds(hours, seconds):
    assert v.rent_request(rent(duration_hours=hours), min_seconds=MIN_S, max_hours=MAX_H).seconds == seconds


@pytest.mark.parametrize("tier", ["M2", "ORIN", "M3_ULTRA", "THOR"])
def test_rent_request_every_tier(tier):
    assert v.rent_request(rent(tier=tier), min_seconds=MIN_S, max_hours=MAX_H).tier == tier


def test_rent_request_ignores_unknown_fields_and_accepts_amount():
    body = rent(amount=Decimal("0.001"), extra="x", nested={"a": [1]}, duration_seconds=5)
    assert v.rent_request(body, min_seconds=MIN_S, max_hours=MAX_H).seconds == 3600
    for amount in (None, 0, Decimal("0"), Decimal("-0"), 5, Decimal("12.5")):
        v.rent_request(rent(amount=amount), min_seconds=MIN_S, max_hours=MAX_H)


BAD_PUBKEYS = [
    # missing / wrong type / non-alphabet
    ...,
    None,
    123,
    True,
    [],
    {},
    "",
    " ",
    "0" * 32,
    "O" * 32,
    "I" * 32,
    "l" * 32,
    WALLET + " ",
    " " + WALLET,
    WALLET[:-1] + "0",
    base58.encode(bytes(range(1, 32))),  # 31 bytes
    base58.encode(bytes(range(1, 34))),  # 33 bytes
    base58.encode(b"\xff" * 33),  # 45 chars
    "1" * 31,
    "1" * 33,
    "1" * 1000,
    SIG,
]
BAD_SIGNATURES = [
    ...,
    None,
    1,
    False,
    [SIG],
    "",
    SIG[:-2],
    SIG + "1",
    SIG + "x",
    "0" + SIG[1:],
    SIG.lower() + "!",
    base58.encode(bytes(range(100, 163))),  # 63 bytes
    base58.encode(bytes(range(100, 165))),  # 65 bytes
    base58.encode(b"\xff" * 65),  # 89 chars
    "1" * 63,
    "1" * 65,
    "z" * 10_000,
    WALLET,
]
BAD_HOURS = [
    ...,
    None,
    "1",
    "0.1",
    "",
    True,
    False,
    [],
    {},
    [1],
    {"h": 1},
    0,
    -1,
    Decimal("0"),
    Decimal("-0"),
    Decimal("0E-10"),
    Decimal("-0.5"),
    Decimal("-1E+400"),
    Decimal("1E+400"),
    Decimal("1E+999999999"),
    10**30,
    10**300,
    721,
    Decimal("720.000139"),  # 2,592,000.5004 s rounds to 2,592,001 s: over 720 h
    Decimal("720.0003"),
    Decimal("0.01"),  # 36 s, below the 60 s minimum
    Decimal("0.016"),  # 57.6 s → 58 s
    Decimal("0.0163"),  # 58.68 s → 59 s
    Decimal("0.016527"),  # 59.4972 s → 59 s
    Decimal("1E-400"),
    Decimal("1E-999999999"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    1.0,
    float("nan"),  # floats never come out of parse_json; refused if they ever do
]


@pytest.mark.parametrize("value", BAD_PUBKEYS)
def test_rent_request_bad_wallet(value):
    assert rent_reason(rent(wallet=value)) == "wallet"


@pytest.mark.parametrize("value", [..., None, "m2", "GPU", "", " M2", "M2 ", 1, True, ["M2"], {"M2": 1}, "M2\x00"])
def test_rent_request_bad_tier(value):
    assert rent_reason(rent(tier=value)) == "tier"


@pytest.mark.parametrize("value", BAD_HOURS)
def test_rent_request_bad_duration(value):
    assert rent_reason(rent(duration_hours=value)) == "duration_hours"


@pytest.mark.parametrize("value", BAD_SIGNATURES)
def test_rent_request_bad_signature(value):
    assert rent_reason(rent(tx_signature=value)) == "tx_signature"


@pytest.mark.parametrize("value", ["1", "", True, False, -1, Decimal("-0.000000001"), [], {"sol": 1}])
def test_rent_request_bad_amount(value):
    assert rent_reason(rent(amount=value)) == "amount"


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b'{"wallet": "%s", "tier": "M2", "duration_hours": 1e400, "tx_signature": "%s"}', "duration_hours"),
        (b'{"wallet": "%s", "tier": "M2", "duration_hours": 1E-400, "tx_signature": "%s"}', "duration_hours"),
        (
            b'{"wallet": "%s", "tier": "M2", "duration_hours": 1000000000000000000000000000000, "tx_signature": "%s"}',
            "duration_hours",
        ),
        (b'{"wallet": "%s", "tier": "M2", "duration_hours": "1", "tx_signature": "%s"}', "duration_hours"),
        (b'{"wallet": "%s", "tier": "M2", "duration_hours": true, "tx_signature": "%s"}', "duration_hours"),
        (b'{"wallet": "%s", "tier": "M2", "duration_hours": 0.0, "tx_signature": "%s"}', "duration_hours"),
        (b'{"wallet": "%s", "tier": "m2", "duration_hours": 1, "tx_signature": "%s"}', "tier"),
    ],
)
def test_rent_request_from_the_wire(raw, reason):
    body = v.parse_json(raw % (WALLET.encode(), SIG.encode()))
    assert rent_reason(body) == reason


def test_rent_request_from_the_wire_tenth_of_an_hour():
    body = v.parse_json(
        (
            f'{{"wallet": "{WALLET}", "tier": "ORIN", "duration_hours": 0.1, "tx_signature": "{SIG}", '
            '"amount": 0.0004, "referrer": "x"}'
        ).encode()
    )
    assert v.rent_request(body, min_seconds=MIN_S, max_hours=MAX_H).seconds == 360


@given(
    st.dictionaries(st.sampled_from(["wallet", "tier", "duration_hours", "tx_signature", "amount", "x"]), json_values)
)
def test_rent_request_any_body_is_a_request_or_a_400_naming_a_field(body):
    try:
        r = v.rent_request(body, min_seconds=MIN_S, max_hours=MAX_H)
    except InvalidRequest as exc:
        assert exc.reason in ("wallet", "tier", "duration_hours", "tx_signature", "amount")
    else:
        assert MIN_S <= r.seconds <= MAX_H * 3600


@given(st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), allow_nan=False, places=8))
def test_rent_request_hours_range(hours):
    try:
        seconds = v.rent_request(rent(duration_hours=hours), min_seconds=MIN_S, max_hours=MAX_H).seconds
    except InvalidRequest as exc:
        assert exc.reason == "duration_hours"
        x = hours * 3600  # the limits are on the rounded seconds
        assert hours <= 0 or x >= MAX_H * 3600 + Decimal("0.5") or x < MIN_S - Decimal("0.5")
    else:
        assert hours > 0 and MIN_S <= seconds <= MAX_H * 3600
        assert abs(Decimal(seconds) - hours * 3600) <= Decimal("0.5")


@given(st.integers(MAX_H * 3600 * 10**6 - 10**6, MAX_H * 3600 * 10**6 + 10**6))
def test_duration_limit_is_on_the_rounded_seconds_near_the_maximum(micro_seconds):
    hours = (Decimal(micro_seconds) / Decimal(3600 * 10**6)).quantize(Decimal(10) ** -v.MAX_PLACES)
    exact = hours * 3600
    try:
        seconds = v.rent_request(rent(duration_hours=hours), min_seconds=MIN_S, max_hours=MAX_H).seconds
    except InvalidRequest:
        assert exact >= MAX_H * 3600 + Decimal("0.5") - Decimal("1E-20")
    else:
        assert seconds <= MAX_H * 3600 and exact < MAX_H * 3600 + Decimal("0.5") + Decimal("1E-20")


# --- extend_request -----------------------------------------------------------------------


def test_extend_request_valid():
    r = v.extend_request(
        CID, {"additional_hours": Decimal("0.1"), "tx_signature": SIG, "x": 1}, min_seconds=MIN_S, max_hours=MAX_H
    )
    assert (r.contract_id, r.seconds, r.tx_signature) == (CID, 360, SIG)
    assert r.fingerprint() == f"extend|{CID}|360"


@pytest.mark.parametrize("value", BAD_HOURS)
def test_extend_request_bad_hours(value):
    body = {"additional_hours": value, "tx_signature": SIG}
    if value is ...:
        del body["additional_hours"]
    assert reason_of(v.extend_request, CID, body, min_seconds=MIN_S, max_hours=MAX_H) == "additional_hours"


@pytest.mark.parametrize("value", BAD_SIGNATURES)
def test_extend_request_bad_signature(value):
    body = {"additional_hours": 1, "tx_signature": value}
    if value is ...:
        del body["tx_signature"]
    assert reason_of(v.extend_request, CID, body, min_seconds=MIN_S, max_hours=MAX_H) == "tx_signature"


# --- metrics_samples ----------------------------------------------------------------------


def sample(**changes) -> dict:
    s = {"cpu_percent": Decimal("12.5"), "memory_mb": 2048, "disk_io_mbps": 0, "network_io_mbps": Decimal("0.25")}
    s.update(changes)
    return {k: val for k, val in s.items() if val is not ...}


# a contract created an hour before NOW, seen at NOW, with the 30 s clock-skew allowance
CREATED = NOW - 3_600_000
LO, HI = CREATED - 30_000, NOW + 30_000
WINDOW = (NOW, LO, HI)
YEAR_2000_MS = 946_684_800_000


def metrics_reason(body) -> str:
    return reason_of(v.metrics_samples, body, *WINDOW)


def test_metrics_single_sample_defaults_to_now():
    assert v.metrics_samples(sample(), *WINDOW) == [[NOW, Decimal("12.5"), 2048, 0, Decimal("0.25")]]
    assert v.metrics_samples(sample(timestamp_ms=NOW - 5, extra=1), *WINDOW)[0][0] == NOW - 5


def test_metrics_batch_is_sorted_oldest_first():
    rows = v.metrics_samples({"samples": [sample(timestamp_ms=NOW - i) for i in range(120)]}, *WINDOW)
    assert len(rows) == 120 and [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert rows[0][0] == NOW - 119


def test_metrics_limits_are_inclusive():
    v.metrics_samples(sample(cpu_percent=25_600, timestamp_ms=HI), *WINDOW)
    v.metrics_samples(sample(memory_mb=10**12, disk_io_mbps=0, network_io_mbps=Decimal("0")), *WINDOW)
    v.metrics_samples(sample(timestamp_ms=LO), *WINDOW)


@pytest.mark.parametrize("ts", [LO - 1, HI + 1, YEAR_2000_MS, 1, NOW + 300_000, CREATED - 3_600_000])
def test_metrics_timestamps_outside_the_contracts_lifetime_are_refused(ts):
    assert metrics_reason(sample(timestamp_ms=ts)) == "timestamp_ms"
    batch = {"samples": [sample(timestamp_ms=NOW - 1), sample(timestamp_ms=ts)]}
    assert metrics_reason(batch) == "samples[1].timestamp_ms"


@given(st.integers(1, 2 * NOW))
def test_metrics_timestamp_accepted_exactly_within_the_window(ts):
    try:
        rows = v.metrics_samples(sample(timestamp_ms=ts), *WINDOW)
    except InvalidRequest as exc:
        assert exc.reason == "timestamp_ms" and not LO <= ts <= HI
    else:
        assert LO <= ts <= HI and rows[0][0] == ts


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"samples": [sample()] * 121}, "samples"),
        ({"samples": []}, "samples"),
        ({"samples": None}, "samples"),
        ({"samples": {}}, "samples"),
        ({"samples": sample()}, "samples"),
        ({"samples": "x"}, "samples"),
        ({"samples": [1]}, "samples[0]"),
        ({"samples": [sample(), None]}, "samples[1]"),
        ({"samples": [sample(), [sample()]]}, "samples[1]"),
        ({"samples": [sample(), sample(cpu_percent=25_601)]}, "samples[1].cpu_percent"),
        ({"samples": [sample(memory_mb=-1)]}, "samples[0].memory_mb"),
        ({"samples": [sample(timestamp_ms=NOW + 300_001)]}, "samples[0].timestamp_ms"),
        ({"samples": [sample(network_io_mbps=...)]}, "samples[0].network_io_mbps"),
        ({}, "cpu_percent"),
        (sample(cpu_percent=Decimal("25600.0001")), "cpu_percent"),
        (sample(cpu_percent=10**30), "cpu_percent"),
        (sample(cpu_percent=Decimal("1E+400")), "cpu_percent"),
        (sample(cpu_percent=-1), "cpu_percent"),
        (sample(cpu_percent=Decimal("-0.001")), "cpu_percent"),
        (sample(cpu_percent=True), "cpu_percent"),
        (sample(cpu_percent="50"), "cpu_percent"),
        (sample(cpu_percent=None), "cpu_percent"),
        (sample(cpu_percent=...), "cpu_percent"),
        (sample(cpu_percent=[50]), "cpu_percent"),
        (sample(cpu_percent=Decimal("NaN")), "cpu_percent"),
        (sample(cpu_percent=Decimal("Infinity")), "cpu_percent"),
        (sample(cpu_percent=50.0), "cpu_percent"),
        (sample(memory_mb=False), "memory_mb"),
        (sample(memory_mb=10**12 + 1), "memory_mb"),
        (sample(disk_io_mbps=Decimal("-1E-30")), "disk_io_mbps"),
        (sample(disk_io_mbps="1"), "disk_io_mbps"),
        (sample(network_io_mbps=Decimal("-Infinity")), "network_io_mbps"),
        (sample(timestamp_ms=NOW + 300_001), "timestamp_ms"),
        (sample(timestamp_ms=NOW * 1000), "timestamp_ms"),
        (sample(timestamp_ms=0), "timestamp_ms"),
        (sample(timestamp_ms=-1), "timestamp_ms"),
        (sample(timestamp_ms=True), "timestamp_ms"),
        (sample(timestamp_ms=Decimal(NOW)), "timestamp_ms"),
        (sample(timestamp_ms=Decimal("1764070000000.5")), "timestamp_ms"),
        (sample(timestamp_ms=str(NOW)), "timestamp_ms"),
        (sample(timestamp_ms=None), "timestamp_ms"),
    ],
)
def test_metrics_refused(body, reason):
    assert metrics_reason(body) == reason


@given(
    st.one_of(
        st.dictionaries(
            st.sampled_from(["cpu_percent", "memory_mb", "disk_io_mbps", "network_io_mbps", "timestamp_ms", "x"]),
            json_values,
        ),
        st.fixed_dictionaries({"samples": st.lists(json_values, max_size=4)}),
    )
)
def test_metrics_any_body_is_rows_or_a_400(body):
    try:
        rows = v.metrics_samples(body, *WINDOW)
    except InvalidRequest as exc:
        assert exc.reason
    else:
        for ts, *values in rows:
            assert type(ts) is int and LO <= ts <= HI
            assert all(isinstance(x, (int, Decimal)) and not isinstance(x, bool) and x >= 0 for x in values)
            assert values[0] <= 25_600


# --- limit, contract_id -------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [(None, 100), ("", 100), ("1", 1), ("1000", 1000), ("0100", 100), ("42", 42)])
def test_limit_accepts(raw, expected):
    assert v.limit(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "0",
        "1001",
        "-1",
        "+5",
        "1.5",
        "1e2",
        " 5",
        "5 ",
        "abc",
        "0x10",
        "10_0",
        "²",
        "٣",
        "１０",
        "9" * 5_000,
        "0" * 5_000 + "1",
    ],
)
def test_limit_refuses(raw):
    assert reason_of(v.limit, raw) == "limit"


def test_limit_custom_bounds():
    assert v.limit(None, default=7, maximum=10) == 7
    assert v.limit("10", default=7, maximum=10) == 10
    assert reason_of(v.limit, "11", default=7, maximum=10) == "limit"


@given(st.text(max_size=12))
def test_limit_any_text_is_a_number_in_range_or_a_400(raw):
    try:
        n = v.limit(raw)
    except InvalidRequest as exc:
        assert exc.reason == "limit"
    else:
        assert type(n) is int and 1 <= n <= 1000
        assert raw == "" or (raw.isascii() and raw.isdigit() and int(raw) == n)


def test_contract_id_accepts_generated_ids():
    from chalicelib.domain.contracts import new_contract_id

    for _ in range(200):
        cid = new_contract_id()
        assert v.contract_id(cid) == cid
    assert v.contract_id(CID) == CID
    assert v.contract_id("CTR-" + "a" * 16) == "CTR-" + "a" * 16
    assert v.contract_id("CTR-" + "a" * 60) == "CTR-" + "a" * 60


@pytest.mark.parametrize(
    "junk",
    [
        None,
        123,
        b"CTR-abcdefghijklmnopqrstuv",
        ["CTR-abcdefghijklmnopqrstuv"],
        "",
        "CTR-",
        "CTR-abc",
        "CTR-" + "a" * 15,
        "CTR-" + "a" * 61,
        "ctr-abcdefghijklmnopqrstuv",
        "XTR-abcdefghijklmnopqrstuv",
        " CTR-abcdefghijklmnopqrstuv",
        "CTR-abcdefghijklmnopqrstuv ",
        "CTR-abcdefghijklmnopqrstuv\n",
        "CTR-abcdefgh/jklmnopqrstuv",
        "CTR-abcdefgh.jklmnopqrstuv",
        "CTR-abcdefgh%2Fklmnopqrstu",
        "CTR-abcdefgh#0001#rent#0",
        "CTR-abcdefghijklmnopqrstu\x00",
        "../../etc/passwd",
        "CTR-ééééééééééééééééé",
        "CTR-" + "٣" * 20,
        "CTR-" + "ａ" * 20,
    ],
)
def test_contract_id_junk_is_not_found(junk):
    with pytest.raises(NotFound) as exc:
        v.contract_id(junk)
    assert status_of(exc.value) == (404, "not_found") and exc.value.reason == "contract_id"


@given(st.text(max_size=70))
def test_contract_id_any_text(raw):
    for candidate in (raw, "CTR-" + raw):
        try:
            out = v.contract_id(candidate)
        except NotFound:
            continue
        assert out == candidate and out.startswith("CTR-") and 16 <= len(out) - 4 <= 60
        assert all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in out[4:])


# --- number: the one bound of every number from outside -----------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "-0", "-1", "+1", "1e3", "1.0", " 1", "1 ", "1_0", "0x1", "\u0661", "\uff11", "\u00b2", "9" * 33, "NaN"],
)
def test_number_text_integers_are_ascii_digits_only(text):
    assert reason_of(v.number, text, "orphan_age", minimum=0, maximum=10, integer=True, text=True) == "orphan_age"


@given(st.integers(0, 10**40))
def test_number_text_integer_in_range_or_400(n):
    raw = str(n)
    if len(raw) <= v.MAX_NUMBER_CHARS and n <= 10**30:
        assert v.number(raw, "n", minimum=0, maximum=10**30, integer=True, text=True) == n
    else:
        assert reason_of(v.number, raw, "n", minimum=0, maximum=10**30, integer=True, text=True) == "n"


@pytest.mark.parametrize(
    "value", [Decimal("1E-25"), Decimal("1.0000000000000000000000001"), Decimal("1E+32"), 10**32, Decimal("NaN")]
)
def test_number_body_values_beyond_places_or_magnitude_are_400(value):
    assert reason_of(v.number, value, "memory_mb") == "memory_mb"


@pytest.mark.parametrize("value", [Decimal("1E-24"), Decimal("0.30000000000000004"), 10**31, Decimal("-0")])
def test_number_body_values_within_the_bounds_pass(value):
    assert v.number(value, "x") == value


def test_parse_json_refuses_a_long_number_before_reading_it_naming_its_field():
    for raw in ('{"a": {"b": [1, %s]}}' % ("9" * 5000), '{"a": {"b": [1, %s]}}' % ("1." + "0" * 5000)):
        assert reason_of(v.parse_json, raw) == "a.b[1]"
    assert v.parse_json('{"a": %s}' % ("9" * 32)) == {"a": int("9" * 32)}


# --- the request fields are the OpenAPI document's ----------------------------------------


def _document_schema(name: str) -> dict:
    from tests.support.hostile_numbers import load_spec

    return load_spec()["components"]["schemas"][name]


@pytest.mark.parametrize(
    "schema_name, body, parse",
    [
        ("RentRequest", rent(), lambda b: v.rent_request(b, min_seconds=MIN_S, max_hours=MAX_H)),
        (
            "ExtendRequest",
            {"additional_hours": 1, "tx_signature": SIG},
            lambda b: v.extend_request(CID, b, min_seconds=MIN_S, max_hours=MAX_H),
        ),
        ("Sample", sample(), lambda b: v.metrics_samples(b, *WINDOW)),
    ],
)
def test_a_body_of_the_documents_required_fields_parses_and_each_one_is_required(schema_name, body, parse):
    """What the parser requires is what the document requires: a body of exactly the document's
    required fields parses, and without any one of them it is a 400 naming that field."""
    required = _document_schema(schema_name)["required"]
    assert set(body) == set(required), f"the document's {schema_name} requires {required}"
    parse(body)
    for name in required:
        assert reason_of(parse, {k: val for k, val in body.items() if k != name}) == name
