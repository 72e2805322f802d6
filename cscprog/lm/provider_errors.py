"""Provider errors in cscprog's terms: which are transient, and messages that name cscprog's own settings.

DSPy's messages speak of its own client: a rejected key says to set ``OPENAI_API_KEY`` (while the config may name
another variable), a read timeout says to raise ``Timeouts(read=...)``. :func:`explain` rewrites them to name
what a cscprog user changes (``[lm] api_key_env``, ``[lm] timeout``), keeping the error's type and status so
every caller handles it as before. :func:`is_transient` adds to DSPy's transient errors a reply that came back
with a success status but whose body is not JSON (a truncating proxy, an empty body): the request may or may not
have been served, exactly like a 5xx, and is retried like one.

Example:
    ```python
    try:
        predictor(**inputs)
    except Exception as error:
        if not is_transient(error):
            raise explain(error, role="judge", settings=runtime.settings("judge")) from error
    ```
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from dspy.utils.exceptions import LMAuthError, LMError, LMProviderError, LMTimeoutError, is_retryable_lm_error

from cscprog.redaction import redact_url

if TYPE_CHECKING:
    from cscprog.config import LMSettings

__all__ = ["explain", "is_timeout", "is_transient", "is_unusable_reply"]

_PROVIDER_LINES = 1  # lines of the provider's own message kept in a rewritten one


def is_unusable_reply(error: BaseException) -> bool:
    """True for a provider error raised on a success status (2xx) whose body could not be read as a reply.

    Example:
        ```python
        is_unusable_reply(LMProviderError("the reply (HTTP 200, ...) is not JSON", status=200))  # True
        ```
    """
    status = getattr(error, "status", None)
    return isinstance(error, LMProviderError) and isinstance(status, int) and 200 <= status < 300


def is_transient(error: BaseException) -> bool:
    """True when retrying the same request may succeed: DSPy's transient errors, plus unusable 2xx replies.

    Example:
        ```python
        is_transient(LMServerError("boom", status=500))  # True
        ```
    """
    return isinstance(error, Exception) and (is_retryable_lm_error(error) or is_unusable_reply(error))


def is_timeout(error: BaseException) -> bool:
    """True when ``error`` is the client giving up waiting for the provider."""
    if isinstance(error, LMTimeoutError):
        return True
    return isinstance(error, LMError) and "timed out" in str(error).lower()


def _first_lines(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return " ".join(lines[:_PROVIDER_LINES])


def _rewritten(error: LMError, message: str) -> LMError:
    """A copy of ``error`` (same type, status, metadata) with ``message``."""
    clone = copy.copy(error)
    clone.message = message
    model = getattr(error, "model", None)
    clone.args = (f"[{model}] {message}" if model else message,)
    return clone


def explain(error: BaseException, *, role: str, settings: LMSettings | None) -> BaseException:
    """``error`` with a message naming cscprog's settings (a 401 names ``api_key_env``, a timeout ``[lm] timeout``).

    Errors of other kinds, and every error when ``settings`` is None (no runtime), come back unchanged.

    Example:
        ```python
        raise explain(error, role="judge", settings=runtime.settings("judge")) from error
        ```
    """
    if settings is None or not isinstance(error, LMError):
        return error
    where = f"role {role}, model {settings.model}"
    if settings.api_base:
        where += f", endpoint {redact_url(settings.api_base)}"
    if isinstance(error, LMAuthError):
        status = getattr(error, "status", None)
        if settings.api_key_env:
            fix = (
                f"check the key in the environment variable {settings.api_key_env} (named by api_key_env in [lm] "
                f"or [roles.{role}])"
            )
        else:
            fix = (
                "no api_key_env is configured for this role: set api_key_env in [lm] or [roles."
                f"{role}] to the NAME of the environment variable holding the key"
            )
        shown = f"HTTP {status}" if status else "authentication error"
        return _rewritten(error, f"the provider rejected the API key ({shown}; {where}): {fix}. "
                                 f"Provider said: {_first_lines(error)}")
    if is_timeout(error):
        return _rewritten(
            error,
            f"no reply within {settings.timeout:g} s ({where}); raise timeout in [lm] (or [roles.{role}]) if the "
            "model needs longer",
        )
    return error
