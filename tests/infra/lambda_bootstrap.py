"""A stand-in for the Lambda Python runtime's bootstrap, run by tests/infra/test_lambda_artifact.py
with the Python of a venv that holds only the runtime's SDK (boto3/botocore), from a directory
outside the unzipped artifact, with the artifact's directory as the working directory.

Like the runtime it puts ``$LAMBDA_TASK_ROOT`` first on ``sys.path``, imports the module named by
``$_HANDLER`` once (the cold start, timed), then calls the handler with each event and a context
object. Reads ``{"events": [event, ...]}`` on stdin (the first invocation is the cold one, the
others warm); writes one JSON object to the file named by ``argv[1]`` (stdout and stderr are
the function's log, as in Lambda). Only the standard library here.
"""

import importlib
import importlib.util
import json
import os
import sys
import time
import uuid

DEV_ONLY = ("moto", "pytest", "hypothesis", "solana", "boto3_stubs", "cfn_lint", "samtranslator", "werkzeug", "rich")


class Context:
    """The attributes of the Lambda context object that handlers read."""

    def __init__(self, timeout_s: float):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "fn")
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "2026/01/01/[$LATEST]0"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    spec = json.loads(sys.stdin.read())
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    sys.path.insert(0, task_root)
    module_name, _, attr = os.environ["_HANDLER"].rpartition(".")
    t0 = time.perf_counter()
    handler = getattr(importlib.import_module(module_name), attr)
    cold_import_s = time.perf_counter() - t0
    invocations = []
    for event in spec["events"]:
        t1 = time.perf_counter()
        result = handler(event, Context(float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "30"))))
        invocations.append({"result": result, "seconds": time.perf_counter() - t1})
    import botocore

    boto3_spec = importlib.util.find_spec("boto3")
    out = {
        "cold_import_s": cold_import_s,
        "invocations": invocations,
        "botocore": {"version": botocore.__version__, "file": botocore.__file__},
        "boto3_file": boto3_spec.origin if boto3_spec else None,
        "dev_only_importable": [m for m in DEV_ONLY if importlib.util.find_spec(m) is not None],
        "sys_path": sys.path,
        "executable": sys.executable,
    }
    with open(sys.argv[1], "w") as fh:
        fh.write(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
