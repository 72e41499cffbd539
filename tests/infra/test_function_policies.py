"""Per-function least privilege in the packaged prod stage (.chalice/config.json
`lambda_functions` + .chalice/policy-prod-*.json): the internet-facing API
function can neither read the treasury key nor sign; only the refund worker can; no
function may rewrite the ledger; the refund queue reports partial batch failures."""

from __future__ import annotations

import fnmatch
import re

import pytest

ACCOUNT_ARN = "arn:aws:{service}:us-east-1:123456789012:{resource}"
LEDGER = ACCOUNT_ARN.format(service="dynamodb", resource="table/si64-prod-ledger")
TREASURY_PARAMETER = ACCOUNT_ARN.format(service="ssm", resource="parameter/si64/prod/treasury-key")
TREASURY_SECRET = ACCOUNT_ARN.format(service="secretsmanager", resource="secret:si64/prod/treasury-key-AbCdEf")
ADMIN_PARAMETER = ACCOUNT_ARN.format(service="ssm", resource="parameter/si64/prod/admin-key")
FUNCTIONS = {
    "APIHandler": "app.app",
    "RefundWorker": "chalicelib.jobs.refunds.refund_worker",
    "BillingSweep": "chalicelib.jobs.sweep.billing_sweep",
    "QuoteWatcher": "chalicelib.jobs.quotes.quote_watcher",
}


def _statements(resources, function: str) -> list[dict]:
    role = resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    out = []
    for policy in resources[role]["Properties"]["Policies"]:
        out += policy["PolicyDocument"]["Statement"]
    return out


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed(statements: list[dict], action: str, resource: str) -> bool:
    """IAM evaluation for one action on one resource: an explicit Deny wins, else an Allow."""

    def matches(st):
        return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _listed(st["Action"])) and any(
            fnmatch.fnmatchcase(resource, r) for r in _listed(st["Resource"])
        )

    if any(st["Effect"] == "Deny" and matches(st) for st in statements):
        return False
    return any(st["Effect"] == "Allow" and matches(st) for st in statements)


def test_each_function_has_its_own_role(resources):
    roles = set()
    for name, handler in FUNCTIONS.items():
        props = resources[name]["Properties"]
        assert props["Handler"] == handler
        roles.add(props["Role"]["Fn::GetAtt"][0])
    assert len(roles) == len(FUNCTIONS)


@pytest.mark.parametrize("action", ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"])
def test_the_api_function_cannot_read_the_treasury_parameter(resources, action):
    api = _statements(resources, "APIHandler")
    assert not allowed(api, action, TREASURY_PARAMETER)
    assert allowed(api, "ssm:GetParameter", ADMIN_PARAMETER)  # its own admin key, and only that
    assert not allowed(api, "ssm:GetParameter", ACCOUNT_ARN.format(service="ssm", resource="parameter/si64/prod/other"))


def test_the_api_function_cannot_read_secrets_or_sign(resources):
    api = _statements(resources, "APIHandler")
    assert not allowed(api, "secretsmanager:GetSecretValue", TREASURY_SECRET)
    for action in ("kms:Sign", "kms:GenerateDataKey", "secretsmanager:GetSecretValue"):
        assert not any(
            st["Effect"] == "Allow" and any(fnmatch.fnmatchcase(action, a) for a in _listed(st["Action"])) for st in api
        ), action
    env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert not any("TREASURY_KEY" in k or "TREASURY_SECRET" in k for k in env)


def test_only_the_refund_worker_reads_the_treasury_key(resources):
    worker = _statements(resources, "RefundWorker")
    assert allowed(worker, "ssm:GetParameter", TREASURY_PARAMETER)
    assert allowed(worker, "secretsmanager:GetSecretValue", TREASURY_SECRET)
    assert not allowed(worker, "ssm:GetParameter", ADMIN_PARAMETER)
    sweep = _statements(resources, "BillingSweep")
    assert not allowed(sweep, "ssm:GetParameter", TREASURY_PARAMETER)
    assert not allowed(sweep, "secretsmanager:GetSecretValue", TREASURY_SECRET)
    env = resources["RefundWorker"]["Properties"]["Environment"]["Variables"]
    assert env["SI64_TREASURY_KEY_PARAMETER"] == "/si64/prod/treasury-key"  # a name, never the key
    for value in env.values():
        assert not re.fullmatch(r"[1-9A-HJ-NP-Za-km-z]{80,}|\[[\d, ]+\]", str(value))


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_no_function_can_rewrite_the_ledger(resources, function):
    st = _statements(resources, function)
    for action in ("dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"):
        assert not allowed(st, action, LEDGER)
    assert allowed(st, "dynamodb:PutItem", LEDGER)
    assert any(s["Effect"] == "Deny" and "dynamodb:UpdateItem" in _listed(s["Action"]) for s in st)


def test_the_refund_worker_gets_what_its_event_source_needs(resources, template):
    worker = _statements(resources, "RefundWorker")
    queue = ACCOUNT_ARN.format(service="sqs", resource="si64-prod-refunds")
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        assert allowed(worker, action, queue)
    [event] = resources["RefundWorker"]["Properties"]["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["BatchSize"] == 10
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["RefundQueue", "Arn"]}
    [sched] = resources["BillingSweep"]["Properties"]["Events"].values()
    assert sched == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}


# ------------------------------------------------------------------ webhooks
WEBHOOK_FUNCTIONS = {
    "WebhookDispatcher": "chalicelib.jobs.webhooks.webhook_dispatcher",
    "WebhookDelivery": "chalicelib.jobs.webhooks.webhook_delivery",
}
CLAIMS = ACCOUNT_ARN.format(service="dynamodb", resource="table/si64-prod-claims")
WEBHOOK_QUEUE = ACCOUNT_ARN.format(service="sqs", resource="si64-prod-webhooks")


def test_the_webhook_functions_have_roles_of_their_own_and_no_money_rights(resources):
    roles = {resources[n]["Properties"]["Role"]["Fn::GetAtt"][0] for n in [*FUNCTIONS, *WEBHOOK_FUNCTIONS]}
    assert len(roles) == len(FUNCTIONS) + 2  # the others' and the two webhook functions'
    for name, handler in WEBHOOK_FUNCTIONS.items():
        assert resources[name]["Properties"]["Handler"] == handler
        st = _statements(resources, name)
        assert allowed(st, "sqs:SendMessage", WEBHOOK_QUEUE)
        for action, resource in [
            ("dynamodb:PutItem", LEDGER),
            ("dynamodb:PutItem", CLAIMS),
            ("dynamodb:TransactWriteItems", CLAIMS),
            ("ssm:GetParameter", TREASURY_PARAMETER),
            ("sqs:SendMessage", ACCOUNT_ARN.format(service="sqs", resource="si64-prod-refunds")),
        ]:
            assert not allowed(st, action, resource), (name, action, resource)
    assert allowed(_statements(resources, "WebhookDispatcher"), "dynamodb:Query", CLAIMS + "/index/outbox")
    assert allowed(_statements(resources, "WebhookDelivery"), "sqs:ReceiveMessage", WEBHOOK_QUEUE)
    for name in WEBHOOK_FUNCTIONS:  # the delivery log (dlv#{webhook_id} items only)
        st = _statements(resources, name)
        log_statements = [x for x in st if x.get("Sid") == "DeliveryLog"]
        assert [x["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] for x in log_statements] == [
            ["dlv#*"]
        ]
        assert allowed(st, "dynamodb:UpdateItem", CLAIMS) and allowed(st, "dynamodb:GetItem", CLAIMS)


def test_the_quote_watcher_runs_every_minute_reads_only_its_index_and_never_the_keys(resources):
    watcher = _statements(resources, "QuoteWatcher")
    claims = ACCOUNT_ARN.format(service="dynamodb", resource="table/si64-prod-claims")
    assert allowed(watcher, "dynamodb:Query", claims + "/index/open-quotes")
    assert not allowed(watcher, "dynamodb:Query", claims + "/index/refunds-by-status")
    assert allowed(watcher, "dynamodb:UpdateItem", claims)  # closes a quote
    for arn, action in ((TREASURY_PARAMETER, "ssm:GetParameter"), (ADMIN_PARAMETER, "ssm:GetParameter")):
        assert not allowed(watcher, action, arn)
    assert not allowed(watcher, "secretsmanager:GetSecretValue", TREASURY_SECRET)
    assert not allowed(watcher, "sqs:SendMessage", ACCOUNT_ARN.format(service="sqs", resource="si64-prod-refunds"))
    [sched] = resources["QuoteWatcher"]["Properties"]["Events"].values()
    assert sched == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}
    assert resources["QuoteWatcher"]["Properties"]["Timeout"] == 60


@pytest.mark.parametrize(
    ("function", "writes"),
    [("APIHandler", ("PutItem", "UpdateItem")), ("BillingSweep", ("UpdateItem",)), ("QuoteWatcher", ("PutItem",))],
)
def test_functions_that_read_rent_or_end_contracts_reach_their_coverage_item(resources, function, writes):
    """A contract is read with its coverage item (one BatchGetItem of the contracts and metrics
    tables); rent puts the item, a report and the end of a contract update it (ADR 0016)."""
    st = _statements(resources, function)
    for table in ("contracts", "metrics"):
        assert allowed(
            st, "dynamodb:BatchGetItem", ACCOUNT_ARN.format(service="dynamodb", resource=f"table/si64-prod-{table}")
        )
    metrics = ACCOUNT_ARN.format(service="dynamodb", resource="table/si64-prod-metrics")
    for action in writes:
        assert allowed(st, f"dynamodb:{action}", metrics), action
    assert not allowed(st, "dynamodb:DeleteItem", metrics)


def test_the_sweep_may_mark_a_contract_told_of_its_low_time_and_nothing_more(resources):
    sweep = _statements(resources, "BillingSweep")
    contracts = ACCOUNT_ARN.format(service="dynamodb", resource="table/si64-prod-contracts")
    assert allowed(sweep, "dynamodb:UpdateItem", contracts)  # the low-time marker (keeps the version)
    assert allowed(sweep, "dynamodb:PutItem", CLAIMS)  # its evt# item, only (LeadingKeys)
    for action in ("dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:Scan"):
        assert not allowed(sweep, action, contracts), action


def test_the_refusal_job_reads_what_the_reconciler_reads_and_writes_only_its_events(resources):
    assert resources["PaymentRefusals"]["Properties"]["Handler"] == "chalicelib.jobs.webhooks.payment_refusals"
    roles = {resources[n]["Properties"]["Role"]["Fn::GetAtt"][0] for n in [*FUNCTIONS, *WEBHOOK_FUNCTIONS]}
    assert resources["PaymentRefusals"]["Properties"]["Role"]["Fn::GetAtt"][0] not in roles
    st = _statements(resources, "PaymentRefusals")
    contracts = ACCOUNT_ARN.format(service="dynamodb", resource="table/si64-prod-contracts")
    assert allowed(st, "dynamodb:Query", LEDGER + "/index/by-account")
    assert allowed(st, "dynamodb:GetItem", CLAIMS) and allowed(st, "dynamodb:PutItem", CLAIMS)  # evt# only
    assert allowed(st, "dynamodb:Query", CLAIMS + "/index/refunds-by-status")
    for action, resource in [
        ("dynamodb:PutItem", LEDGER),
        ("dynamodb:TransactWriteItems", CLAIMS),
        ("dynamodb:UpdateItem", CLAIMS),
        ("dynamodb:PutItem", contracts),
        ("dynamodb:UpdateItem", contracts),
        ("ssm:GetParameter", TREASURY_PARAMETER),
        ("secretsmanager:GetSecretValue", TREASURY_SECRET),
        ("sqs:SendMessage", ACCOUNT_ARN.format(service="sqs", resource="si64-prod-refunds")),
        ("sqs:SendMessage", WEBHOOK_QUEUE),
    ]:
        assert not allowed(st, action, resource), (action, resource)
    [sched] = resources["PaymentRefusals"]["Properties"]["Events"].values()
    assert sched == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)"}}


def test_every_policy_file_the_stages_name_exists_and_devnet_mirrors_prod():
    import json
    from pathlib import Path

    chalice = Path(__file__).resolve().parents[2] / ".chalice"
    stages = json.loads((chalice / "config.json").read_text())["stages"]
    for stage in ("prod", "devnet"):
        named = {stages[stage]["iam_policy_file"]}
        named |= {f["iam_policy_file"] for f in stages[stage]["lambda_functions"].values()}
        for name in named:
            assert (chalice / name).is_file(), (stage, name)
    for prod in chalice.glob("policy-prod-*.json"):
        devnet = chalice / prod.name.replace("policy-prod-", "policy-devnet-")
        want = prod.read_text().replace("si64-prod-", "si64-devnet-").replace("si64/prod/", "si64/devnet/")
        assert devnet.read_text() == want, devnet.name
