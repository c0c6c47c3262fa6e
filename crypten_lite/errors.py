"""The one exception hierarchy of crypten_lite.

Every error the library raises on purpose derives from :class:`CryptenLiteError`. Errors about
bad arguments also derive from the matching built-in (``TypeError``/``ValueError``) so callers
that catch the built-ins keep working. Messages name the offending argument and never contain
secret values.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "CommunicationError",
    "ConfigError",
    "CryptenLiteError",
    "EncodingError",
    "EncodingRangeError",
    "LaunchError",
    "MessageRejectedError",
    "MessageTooLargeError",
    "PeerLostError",
    "PeerTimeoutError",
    "ProtocolError",
    "QuantizationError",
    "RingDTypeError",
    "RingShapeError",
    "SessionError",
    "ShareError",
    "StoreError",
    "TlsSetupError",
]


class CryptenLiteError(Exception):
    """Base class of every error raised by crypten_lite."""


class RingDTypeError(CryptenLiteError, TypeError):
    """An array given to a ring kernel has the wrong dtype."""


class RingShapeError(CryptenLiteError, ValueError):
    """Arrays given to a ring kernel have incompatible shapes or an argument is out of range."""


class EncodingError(CryptenLiteError, ValueError):
    """A value cannot be encoded (NaN, infinity, bad parameters)."""


class EncodingRangeError(EncodingError):
    """A value lies outside the range an encoder can represent."""


class BackendError(CryptenLiteError, RuntimeError):
    """A requested compute backend is not available."""


class CommunicationError(CryptenLiteError, RuntimeError):
    """A message could not be delivered or received."""


class PeerTimeoutError(CommunicationError, TimeoutError):
    """A peer did not send an expected message within the configured timeout."""


class PeerLostError(CommunicationError):
    """A peer failed or disconnected; the job cannot continue."""


class ProtocolError(CryptenLiteError, RuntimeError):
    """Parties disagree about the protocol state (out-of-order message, malformed request)."""


class SessionError(CryptenLiteError, ValueError):
    """A session is missing, or tensors from different sessions were mixed."""


class ShareError(CryptenLiteError, ValueError):
    """Invalid arguments for sharing or revealing (bad src/dst, shape mismatch, bad value)."""


class ConfigError(CryptenLiteError, ValueError):
    """A configuration file or option is invalid; the message names the key or option."""


class TlsSetupError(ConfigError):
    """Certificates or keys are missing, unreadable or do not fit together."""


class MessageRejectedError(CommunicationError):
    """A message was refused: malformed, oversized, from an unknown session or sender, or
    from a peer whose certificate does not match the rank it claims."""


class MessageTooLargeError(MessageRejectedError):
    """A message is larger than the receiver accepts."""


class StoreError(CryptenLiteError, ValueError):
    """An offline randomness store is missing, corrupted, of another job, rank or world
    size, used up, or asked for a request its plan does not hold. The message names it."""


class LaunchError(CryptenLiteError, RuntimeError):
    """Party processes could not be started or did not report in."""


class QuantizationError(CryptenLiteError, ValueError):
    """A quantization step is misused: an observer fed NaN/inf, a model converted before
    calibration, a per-channel axis out of range. The message names the module."""
