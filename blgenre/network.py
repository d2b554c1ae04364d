"""Is the Hugging Face Hub reachable? One answer for every module that might go online.

The book runs offline in CI and in many libraries; training (the transformer's checkpoint) and
sharing (``publish``) both ask this before they try, so that nothing waits on network retries.
"""

from __future__ import annotations

import os
import sys
import threading

from blgenre.settings import truthy

HUB_HOST = "huggingface.co"


def hub_reachable(host: str = HUB_HOST, timeout: float = 1.5) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` seconds (DNS included)."""
    import socket

    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.3)  # a hanging DNS lookup cannot hold us longer than this
    return bool(result and result[0])


def offline_mode() -> bool:
    """``BLGENRE_OFFLINE`` (1/0) if set, else ``HF_HUB_OFFLINE``, else a fast connection test."""
    env = os.environ.get("BLGENRE_OFFLINE", "").strip().lower()
    if env:
        return truthy(env)
    if truthy(os.environ.get("HF_HUB_OFFLINE")):
        return True
    return not hub_reachable()


def use_offline_hub() -> None:
    """Switch the Hub clients to offline mode, also if they were imported already."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    ds_config = sys.modules.get("datasets.config")
    if ds_config is not None and hasattr(ds_config, "HF_HUB_OFFLINE"):
        ds_config.HF_HUB_OFFLINE = True
