// A riskd consumer in Node.js, written from docs/redis.md alone, with no npm dependencies (Node >= 18):
// a small RESP client over `net`, and a small JSON Schema validator for the keywords the shipped schemas
// use (it throws on any other keyword, so a schema change it cannot check fails loudly, never silently).
//
//   node consumer.mjs <redis-url> <prefix> <schema-dir> <hours-expected> [timeout-ms]
//
// Subscribes to <prefix>:events, prints {"ready": true}, then reads the key, follows the stream with
// XREAD BLOCK until <hours-expected> distinct hours arrived and as many events, validates every payload,
// and prints one JSON summary line. Exit 0 when everything was valid, 1 otherwise.
import net from "node:net";
import fs from "node:fs";
import path from "node:path";

const [url, prefix, schemaDir, expectedArg, timeoutArg] = process.argv.slice(2);
const expected = Number(expectedArg);
const timeoutMs = Number(timeoutArg ?? 30000);

// ---- RESP ------------------------------------------------------------------------------------------
function parse(buf, i) { // -> [value, next index] or null when incomplete
  if (i >= buf.length) return null;
  const eol = buf.indexOf("\r\n", i);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[i]), line = buf.toString("utf8", i + 1, eol);
  if (type === "+") return [line, eol + 2];
  if (type === "-") return [new Error(line), eol + 2];
  if (type === ":") return [Number(line), eol + 2];
  if (type === "$") {
    const n = Number(line);
    if (n < 0) return [null, eol + 2];
    if (buf.length < eol + 2 + n + 2) return null;
    return [buf.toString("utf8", eol + 2, eol + 2 + n), eol + 2 + n + 2];
  }
  if (type === "*") {
    const n = Number(line);
    if (n < 0) return [null, eol + 2];
    const out = [];
    let j = eol + 2;
    for (let k = 0; k < n; k++) {
      const r = parse(buf, j);
      if (r === null) return null;
      out.push(r[0]); j = r[1];
    }
    return [out, j];
  }
  throw new Error(`unexpected RESP type ${type}`);
}

function connect(redisUrl, onPush) {
  const u = new URL(redisUrl);
  const sock = net.connect(Number(u.port || 6379), u.hostname);
  let buf = Buffer.alloc(0);
  const waiting = [];
  sock.on("data", (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const r = parse(buf, 0);
      if (r === null) break;
      buf = buf.subarray(r[1]);
      const v = r[0];
      if (onPush && Array.isArray(v) && v[0] === "message") onPush(v[1], v[2]);
      else if (waiting.length) waiting.shift()(v);
    }
  });
  const call = (...args) => new Promise((resolve, reject) => {
    waiting.push((v) => (v instanceof Error ? reject(v) : resolve(v)));
    sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join(""));
  });
  const ready = new Promise((resolve, reject) => { sock.once("connect", resolve); sock.once("error", reject); });
  return { call, ready, close: () => sock.destroy() };
}

// ---- JSON Schema (the subset the shipped schemas use) ------------------------------------------------
const IGNORED = new Set(["$schema", "$id", "title", "description", "default", "contentMediaType", "contentSchema", "$defs", "discriminator"]);
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;
const typeOf = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v);
function validate(schema, value, root = schema, where = "$") {
  const errors = [];
  if (schema.$ref) {
    const target = schema.$ref.replace(/^#\//, "").split("/").reduce((o, k) => o[k], root);
    return validate(target, value, root, where);
  }
  for (const [key, rule] of Object.entries(schema)) {
    const t = typeOf(value);
    switch (key) {
      case "type": {
        const ok = [].concat(rule).some((r) => r === t || (r === "number" && t === "integer"));
        if (!ok) errors.push(`${where}: ${t} is not ${rule}`);
        break;
      }
      case "enum": if (!rule.includes(value)) errors.push(`${where}: ${JSON.stringify(value)} not in enum`); break;
      case "const": if (value !== rule) errors.push(`${where}: not ${JSON.stringify(rule)}`); break;
      case "minimum": if (typeof value === "number" && value < rule) errors.push(`${where}: < ${rule}`); break;
      case "maximum": if (typeof value === "number" && value > rule) errors.push(`${where}: > ${rule}`); break;
      case "format":
        if (rule === "date-time" && typeof value === "string" && !RFC3339.test(value)) errors.push(`${where}: not a date-time`);
        break;
      case "required": if (t === "object") for (const k of rule) if (!(k in value)) errors.push(`${where}: ${k} missing`); break;
      case "properties":
        if (t === "object") for (const [k, s] of Object.entries(rule)) if (k in value) errors.push(...validate(s, value[k], root, `${where}.${k}`));
        break;
      case "additionalProperties": // a schema for the values of keys not in `properties` (never `false`: readers are tolerant)
        if (t === "object") for (const [k, v] of Object.entries(value)) if (!(schema.properties ?? {})[k]) errors.push(...validate(rule, v, root, `${where}.${k}`));
        break;
      case "items": if (t === "array") value.forEach((v, i) => errors.push(...validate(rule, v, root, `${where}[${i}]`))); break;
      case "anyOf": if (!rule.some((s) => validate(s, value, root, where).length === 0)) errors.push(`${where}: matches no anyOf branch`); break;
      case "oneOf": {
        const n = rule.filter((s) => validate(s, value, root, where).length === 0).length;
        if (n !== 1) errors.push(`${where}: matches ${n} oneOf branches, not exactly 1`);
        break;
      }
      default: if (!IGNORED.has(key)) throw new Error(`schema keyword ${key} is not supported by this consumer`);
    }
  }
  return errors;
}

// ---- the consumer --------------------------------------------------------------------------------------
const schema = (name) => JSON.parse(fs.readFileSync(path.join(schemaDir, name), "utf8"));
const regime = schema("regime.v1.schema.json"), entry = schema("history-entry.v1.schema.json"), event = schema("event.v1.schema.json");
const invalid = [];
const check = (what, s, v) => { const e = validate(s, v); if (e.length) invalid.push({ what, errors: e }); return e.length === 0; };

const events = [];
const sub = connect(url, (_channel, payload) => { const e = JSON.parse(payload); check("event", event, e); events.push(e); });
const cmd = connect(url);
await Promise.all([sub.ready, cmd.ready]);
await sub.call("SUBSCRIBE", `${prefix}:events`);
console.log(JSON.stringify({ ready: true }));

const deadline = Date.now() + timeoutMs;
const hours = new Map(); // as_of -> highest revision's snapshot
let lastId = "0-0", entries = 0;
while ((hours.size < expected || events.length < expected) && Date.now() < deadline) {
  const reply = await cmd.call("XREAD", "COUNT", "100", "BLOCK", "500", "STREAMS", `${prefix}:regime:history`, lastId);
  for (const [, rows] of reply ?? []) {
    for (const [id, flat] of rows) {
      lastId = id; entries += 1;
      const fields = Object.fromEntries(flat.flatMap((v, i) => (i % 2 ? [] : [[v, flat[i + 1]]])));
      if (!check(`entry ${id}`, entry, fields)) continue;
      const snap = JSON.parse(fields.json);
      if (!check(`entry ${id} json`, regime, snap)) continue;
      const kept = hours.get(snap.as_of);
      if (!kept || snap.revision >= kept.revision) hours.set(snap.as_of, snap);
    }
  }
}
const key = JSON.parse(await cmd.call("GET", `${prefix}:regime`));
check("key", regime, key);
const broken = { ...key }; delete broken.state; broken.state_code = "3";
const withAddedField = { ...key, field_from_the_future: { any: "thing" } };
const newest = [...hours.keys()].sort().at(-1);
console.log(JSON.stringify({
  key: { as_of: key.as_of, state: key.state, schema_version: key.schema_version },
  stream_entries: entries, hours: hours.size, newest_hour: newest, newest_state: hours.get(newest)?.state,
  events: events.length, event_types: [...new Set(events.map((e) => e.type))],
  rejects_broken: validate(regime, broken).length === 2, accepts_added_field: validate(regime, withAddedField).length === 0,
  invalid,
}));
sub.close(); cmd.close();
process.exit(invalid.length ? 1 : 0);
