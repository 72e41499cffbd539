"""SI64 billing backend: routes and event handlers, registered from blueprints. No logic here."""
import logging

from chalice import Chalice

from chalicelib.api import devices, operators, public, rentals

app = Chalice(app_name="si64-billing")
app.log.setLevel(logging.INFO)

app.register_blueprint(public.bp)
app.register_blueprint(rentals.bp)
app.register_blueprint(devices.bp)
app.register_blueprint(operators.bp)
