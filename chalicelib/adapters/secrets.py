"""The operator key (ports.Secrets): a file locally, an SSM parameter when deployed."""

from __future__ import annotations

import hmac
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only
    from ..config import Settings


class Secrets:
    def __init__(self, settings: Settings) -> None:
        self._s = settings
        self._admin_key: str | None = None

    def admin_key(self) -> str | None:
        if self._admin_key is None:
            s = self._s
            if s.admin_key:
                self._admin_key = s.admin_key
            elif s.admin_key_file and os.path.exists(s.admin_key_file):
                with open(s.admin_key_file) as f:
                    self._admin_key = f.read().strip() or None
            elif s.admin_key_parameter:
                import botocore.session

                ssm: Any = botocore.session.get_session().create_client(
                    "ssm", region_name=s.region, endpoint_url=s.aws_endpoint_url
                )
                self._admin_key = ssm.get_parameter(Name=s.admin_key_parameter, WithDecryption=True)["Parameter"][
                    "Value"
                ]
        return self._admin_key

    def is_admin(self, presented: str | None) -> bool:
        expected = self.admin_key()
        if not expected or not presented:
            return False
        return hmac.compare_digest(presented.encode(), expected.encode())
