"""The outbox's Lua scripts: each state change of an alert is one atomic script, so no crash splits it.

The key layout they build from the prefix is documented in :mod:`riskd.alerting.outbox`.
"""

SUBMIT = """
local p, fp, kind, sev = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local seen_ttl, cooldown, now, as_of = ARGV[5], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local base, rank, episode, line = ARGV[12], tonumber(ARGV[13]), ARGV[14], ARGV[15]
local seen = p .. ':alerts:seen:' .. fp
if redis.call('EXISTS', seen) == 1 then return 'duplicate' end
redis.call('SET', seen, now, 'PX', seen_ttl)
local rankkey = p .. ':alerts:rank:' .. base
local prior = redis.call('GET', rankkey)
local upgrade_of, upgrade_from = '', ''
if prior then
  local prank, pfp, psev = string.match(prior, '^(%d+)|([^|]*)|(.*)$')
  if tonumber(prank) >= rank then return 'downgrade' end
  upgrade_of, upgrade_from = pfp, psev
end
redis.call('SET', rankkey, rank .. '|' .. fp .. '|' .. sev, 'PX', seen_ttl)
if redis.call('EXISTS', p .. ':alerts:mute:all', p .. ':alerts:mute:' .. kind) > 0 then return 'muted' end
local folded = p .. ':alerts:folded:' .. kind
if cooldown > 0 then
  local key = p .. ':alerts:last:' .. kind
  local last = redis.call('GET', key)
  local last_as_of, last_rank, last_episode = -1, -1, ''
  if last then
    local a, r, e = string.match(last, '^(-?%d+)|(-?%d+)|(.*)$')
    if a then last_as_of, last_rank, last_episode = tonumber(a), tonumber(r), e
    else last_as_of = tonumber(last) or -1 end
  end
  if sev ~= 'critical' and upgrade_of == '' and last_as_of >= 0 and as_of >= last_as_of
     and as_of - last_as_of < cooldown and episode == last_episode and rank <= last_rank then
    redis.call('RPUSH', folded, line)
    redis.call('PEXPIRE', folded, seen_ttl)
    return 'cooldown'
  end
  if as_of >= last_as_of then redis.call('SET', key, as_of .. '|' .. rank .. '|' .. episode, 'PX', seen_ttl) end
end
local held = table.concat(redis.call('LRANGE', folded, 0, -1), '\\n')
redis.call('DEL', folded)
for i = 16, #ARGV do
  local id = string.format('%012d', redis.call('INCR', p .. ':alerts:seq')) .. ':' .. fp .. ':' .. ARGV[i]
  redis.call('HSET', p .. ':alerts:item:' .. id, 'alert', ARGV[9], 'dest', ARGV[i], 'silent', ARGV[10],
    'chart', ARGV[11], 'attempts', 0, 'inflight', 0, 'maybe_sent', 0, 'enqueued_ms', now,
    'upgrade_of', upgrade_of, 'upgrade_from', upgrade_from, 'folded', held)
  redis.call('ZADD', p .. ':alerts:due', now, id)
end
if upgrade_of ~= '' then return 'upgrade' end
return 'queued'
"""
"""De-duplicates, applies the severity rule, mutes and the cooldown, and queues, in one step.

``seen:{fingerprint}`` drops the same alert at the same strength. ``rank:{identity}`` holds the strongest
rank (severity, then cascade level) queued for one event: a weaker correction is dropped (``downgrade``),
a stronger one is queued as an ``upgrade`` of the earlier one (it names its fingerprint and severity).
The cooldown (``last:{kind}``: as_of | rank | episode of the last one queued) holds only repeats of the
same episode at the same or a lower rank; a held alert's one-line summary waits in ``folded:{kind}`` and
is carried by the next message of that kind. Critical alerts and upgrades are never held."""

CLAIM = """
local p, now, lease, owner = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local due = p .. ':alerts:due'
for _ = 1, 50 do
  local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, 1)
  if #ids == 0 then return false end
  local id = ids[1]
  local item = p .. ':alerts:item:' .. id
  if redis.call('EXISTS', item) == 0 or redis.call('EXISTS', p .. ':alerts:sent:' .. id) == 1 then
    redis.call('ZREM', due, id)
    redis.call('DEL', item)
  else
    redis.call('ZADD', due, now + lease, id)
    if redis.call('HGET', item, 'inflight') == '1' then
      redis.call('HSET', item, 'maybe_sent', 1)
      redis.call('HINCRBY', item, 'copies', 1)
    end
    redis.call('HSET', item, 'owner', owner, 'inflight', 0)
    local out = redis.call('HGETALL', item)
    table.insert(out, 1, id)
    return out
  end
end
return false
"""

START = """
local item = ARGV[1] .. ':alerts:item:' .. ARGV[2]
if redis.call('HGET', item, 'owner') ~= ARGV[3] then return 0 end
redis.call('HSET', item, 'inflight', 1)
return 1
"""

MARK = """
local p, id = ARGV[1], ARGV[2]
local item = p .. ':alerts:item:' .. id
local mine = redis.call('HGET', item, 'owner') == ARGV[3]
local fp, alert = ARGV[6], ARGV[8]
if redis.call('EXISTS', item) == 1 then
  local dest = redis.call('HGET', item, 'dest')
  redis.call('SET', p .. ':alerts:alert:' .. fp, alert, 'PX', ARGV[5])
  redis.call('HSET', p .. ':alerts:msgs:' .. fp, dest, ARGV[4])
  redis.call('PEXPIRE', p .. ':alerts:msgs:' .. fp, ARGV[5])
  redis.call('HSET', p .. ':alerts:facts:' .. fp, dest, ARGV[9])
  redis.call('PEXPIRE', p .. ':alerts:facts:' .. fp, ARGV[5])
  local due = tonumber(ARGV[7])
  if due > 0 and redis.call('HGET', item, 'escalation') ~= '1'
     and redis.call('EXISTS', p .. ':alerts:ack:' .. fp, p .. ':alerts:escalated:' .. fp) == 0 then
    redis.call('ZADD', p .. ':alerts:pending', 'NX', due, fp)
  end
end
redis.call('SET', p .. ':alerts:sent:' .. id, ARGV[4], 'PX', ARGV[5])
redis.call('DEL', item)
redis.call('ZREM', p .. ':alerts:due', id)
if mine then return 1 end
return 0
"""

RELEASE = """
local p, id = ARGV[1], ARGV[2]
local item = p .. ':alerts:item:' .. id
if redis.call('HGET', item, 'owner') ~= ARGV[3] then return -1 end
local attempts = tonumber(redis.call('HGET', item, 'attempts'))
if ARGV[5] == '1' then attempts = redis.call('HINCRBY', item, 'attempts', 1) end
redis.call('HSET', item, 'inflight', 0, 'owner', '', 'last_error', ARGV[7])
local score = redis.call('HGET', item, 'enqueued_ms')
if ARGV[6] == '0' then
  redis.call('HSET', item, 'maybe_sent', 1)
  redis.call('HINCRBY', item, 'copies', 1)
  score = tonumber(ARGV[4]) + tonumber(ARGV[9])
end
if attempts >= tonumber(ARGV[8]) then score = tonumber(ARGV[4]) + tonumber(ARGV[9]) end
redis.call('ZADD', p .. ':alerts:due', score, id)
return attempts
"""

ABANDON = """
local p, id = ARGV[1], ARGV[2]
local item = p .. ':alerts:item:' .. id
if redis.call('HGET', item, 'owner') ~= ARGV[3] then return 0 end
redis.call('SET', p .. ':alerts:sent:' .. id, ARGV[4], 'PX', ARGV[5])
redis.call('DEL', item)
redis.call('ZREM', p .. ':alerts:due', id)
return 1
"""
"""Take an item out of the queue without a delivery: its destination is not served, or ``alerts.max_copies``
copies went out unconfirmed. ``sent:{id}`` records why, so a restored claim drops it; no message id is
recorded, so no thread replies to it."""

ESCALATE = """
local p, fp, now, ttl, minutes = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('ZREM', p .. ':alerts:pending', fp)
if redis.call('EXISTS', p .. ':alerts:ack:' .. fp) == 1 then return 'acknowledged' end
local alert = redis.call('GET', p .. ':alerts:alert:' .. fp)
if not alert then return 'expired' end
if not redis.call('SET', p .. ':alerts:escalated:' .. fp, now, 'NX', 'PX', ttl) then return 'already' end
for i = 6, #ARGV do
  local id = string.format('%012d', redis.call('INCR', p .. ':alerts:seq')) .. ':' .. fp .. ':esc-' .. ARGV[i]
  redis.call('HSET', p .. ':alerts:item:' .. id, 'alert', alert, 'dest', ARGV[i], 'silent', 0, 'chart', '',
    'attempts', 0, 'inflight', 0, 'maybe_sent', 0, 'enqueued_ms', now, 'escalation', minutes)
  redis.call('ZADD', p .. ':alerts:due', now, id)
end
return 'escalated'
"""

ACK = """
local p, fp = ARGV[1], ARGV[2]
redis.call('SET', p .. ':alerts:ack:' .. fp, ARGV[3], 'NX', 'PX', ARGV[4])
redis.call('ZREM', p .. ':alerts:pending', fp)
return redis.call('GET', p .. ':alerts:ack:' .. fp)
"""
