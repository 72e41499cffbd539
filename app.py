"""SI64 billing backend: routes and event handlers, registered from blueprints. No logic here."""

import logging

from chalice import Chalice

from chalicelib import observability
from chalicelib.api import devices, operators, public, rentals

observability.install_json_logging()  # every log line one JSON format, stdlib's included
app = Chalice(app_name="si64-billing", configure_logs=False)  # its log propagates to the JSON handler
app.log.setLevel(logging.INFO)

app.register_blueprint(public.bp)
app.register_blueprint(rentals.bp)
app.register_blueprint(devices.bp)
app.register_blueprint(operators.bp)

# --- refunds paid on chain, the billing sweep ---
from chalicelib.api import payments  # noqa: E402
from chalicelib.jobs import refunds as refund_jobs  # noqa: E402
from chalicelib.jobs import sweep as sweep_jobs  # noqa: E402

app.register_blueprint(payments.bp)
app.register_blueprint(refund_jobs.bp)  # refund_worker: SQS si64-{stage}-refunds
app.register_blueprint(sweep_jobs.bp)  # billing_sweep: every minute

# --- webhooks ---
from chalicelib.api import webhooks  # noqa: E402
from chalicelib.jobs import webhooks as webhook_jobs  # noqa: E402

app.register_blueprint(webhooks.bp)
app.register_blueprint(webhook_jobs.bp)  # webhook_dispatcher (every minute), webhook_delivery (SQS)
from chalicelib.api import quotes  # noqa: E402
from chalicelib.jobs import quotes as quote_jobs  # noqa: E402

app.register_blueprint(quotes.bp)
app.register_blueprint(quote_jobs.bp)  # quote_watcher: every minute, ticks every 2 s
