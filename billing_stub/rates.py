"""The per-tenant email send rate: a token bucket in Redis shared by every worker.

The bucket holds up to one second of the plan's rate and refills continuously; the time comes
from Redis (``TIME``), so workers on different machines agree. A turn takes tokens for its
batch before it claims any email, claims only as many as it got, and when it got none waits
the time the script says before asking for another turn. With Redis unreachable the rate is
not enforced (the sends themselves still need their quota).
"""

from __future__ import annotations

import contextlib
import logging

import redis

from herald.redisio import redis_key, shared_redis

logger = logging.getLogger(__name__)

_TAKE = """
local rate = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or rate
local at = tonumber(state[2]) or now
tokens = math.min(rate, tokens + math.max(0, now - at) * rate)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
local wait = 0
if granted == 0 then wait = (1 - tokens) / rate end
return {granted, tostring(wait)}
"""


def _bucket(tenant_id: int) -> str:
    return redis_key("email", "rate", tenant_id)


def email_tokens_take(*, tenant_id: int, rate: int, wanted: int) -> tuple[int, float]:
    """Take up to ``wanted`` sends from the tenant's bucket: (granted, seconds to wait when
    none was granted)."""
    if rate <= 0 or wanted <= 0:
        return wanted, 0.0
    try:
        granted, wait = shared_redis().eval(_TAKE, 1, _bucket(tenant_id), rate, wanted)
    except (redis.RedisError, OSError):
        logger.warning("Email rate bucket unreachable; sending without it")
        return wanted, 0.0
    return int(granted), float(wait)


def email_tokens_return(*, tenant_id: int, rate: int, unused: int) -> None:
    """Give back tokens taken for emails that were not there to send."""
    if rate <= 0 or unused <= 0:
        return
    with contextlib.suppress(redis.RedisError, OSError):
        shared_redis().hincrbyfloat(_bucket(tenant_id), "tokens", unused)
