/*
 * The draw receipt verifier in the browser (R11.1, DRAW.md "Receipt and verifiers"): plain JavaScript and
 * WebCrypto, nothing else. It is a line-by-line port of services/selection/draw/algorithm.py
 * `verify_receipt`, jcs.py (RFC 8785) and contacts.py `verify_contacts`, and must give the same verdict as
 * `python -S -m services.selection.draw.verify receipt.json [previous.json]`: the same checks by name, each
 * passing or failing alike (tests/browser/test_verify_page.py holds the two equal on real and tampered
 * receipts).
 *
 * Python semantics that matter and are kept here:
 * - the receipt is parsed by our own JSON reader, so that a float (1.0, 1e3, NaN) stays a float (the
 *   canonical JSON refuses it, as jcs.py does) and an integer beyond 2**53 - 1 stays an integer that JCS
 *   refuses (ValueError), instead of silently becoming another number;
 * - a KeyError / TypeError / ValueError / AttributeError while checking ends the checks with a failed
 *   `well_formed` (PyError below), the checks made so far kept;
 * - SHA-256 is crypto.subtle.digest; AES-256 of one block is AES-CBC with a zero IV over that block, the
 *   first 16 bytes of the output (the rest is the padding block).
 */
"use strict";

const ReceiptVerifier = (() => {
  const ALG = "people-supervisor-draw/4";
  const ALGORITHMS = [ALG];
  const GROUPS = ["local", "cross"];
  const STRICT = "strict";
  const WEIGHTED = "weighted";
  const RECEIPT_HASH_EXCLUDES = ["receipt_hash", "contact_log", "buckets"];
  const PREFIX_RE = /^[0-9a-f]{2}$/;
  const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const NONCE_RE = /^[0-9a-f]{64}$/;
  const MAX_SAFE = Number.MAX_SAFE_INTEGER;

  // ---- values as Python's json.load gives them --------------------------------------------------------
  class PyFloat { constructor(value) { this.value = value; } }
  class PyBigInt { constructor(text) { this.text = text; this.value = BigInt(text); } }
  class PyError extends Error {
    constructor(kind, message) { super(message); this.kind = kind; }
  }
  const keyError = (k) => new PyError("KeyError", JSON.stringify(k));
  const typeError = (m) => new PyError("TypeError", m);
  const valueError = (m) => new PyError("ValueError", m);
  const attrError = (m) => new PyError("AttributeError", m);

  function isDict(x) {
    return x !== null && typeof x === "object" && !Array.isArray(x) && !(x instanceof PyFloat)
      && !(x instanceof PyBigInt);
  }
  const isList = Array.isArray;
  const isStr = (x) => typeof x === "string";
  /** Python int, bool excluded (contacts._is_int). */
  const isInt = (x) => (typeof x === "number" && Number.isInteger(x)) || x instanceof PyBigInt;
  const isNumberLike = (x) => isInt(x) || typeof x === "boolean" || x instanceof PyFloat;
  const num = (x) => (typeof x === "boolean" ? (x ? 1 : 0) : x instanceof PyFloat ? x.value
    : x instanceof PyBigInt ? Number(x.value) : x);
  const has = (d, k) => Object.prototype.hasOwnProperty.call(d, k);

  function typeName(x) {
    if (x === null) return "NoneType";
    if (typeof x === "boolean") return "bool";
    if (isInt(x)) return "int";
    if (x instanceof PyFloat) return "float";
    if (isStr(x)) return "str";
    if (isList(x)) return "list";
    return "dict";
  }
  function truthy(x) {
    if (x === null || x === false || x === "" ) return false;
    if (typeof x === "number") return x !== 0;
    if (x instanceof PyFloat) return x.value !== 0;
    if (x instanceof PyBigInt) return x.value !== 0n;
    if (isList(x)) return x.length > 0;
    if (isDict(x)) return Object.keys(x).length > 0;
    return true;
  }
  /** d[k] with Python's errors. */
  function item(d, k) {
    if (isDict(d)) {
      if (!isStr(k)) throw keyError(k);
      if (!has(d, k)) throw keyError(k);
      return d[k];
    }
    if (isList(d) || isStr(d)) {
      if (!isInt(k)) throw typeError(`${typeName(d)} indices must be integers or slices, not ${typeName(k)}`);
      const i = num(k) < 0 ? d.length + num(k) : num(k);
      if (i < 0 || i >= d.length) throw new PyError("IndexError", "index out of range");
      return d[i];
    }
    throw typeError(`'${typeName(d)}' object is not subscriptable`);
  }
  /** d.get(k, fallback): AttributeError on a non-dict. */
  function get(d, k, fallback = null) {
    if (!isDict(d)) throw attrError(`'${typeName(d)}' object has no attribute 'get'`);
    return isStr(k) && has(d, k) ? d[k] : fallback;
  }
  /** Python `x in container` for JSON values. */
  function contains(container, x) {
    if (isDict(container)) return isStr(x) && has(container, x);
    if (isList(container)) return container.some((y) => pyEq(x, y));
    if (isStr(container)) {
      if (!isStr(x)) throw typeError("'in <string>' requires string as left operand");
      return container.includes(x);
    }
    throw typeError(`argument of type '${typeName(container)}' is not iterable`);
  }
  /** Python == on JSON values (1 == 1.0 == True). */
  function pyEq(a, b) {
    if (isNumberLike(a) && isNumberLike(b)) {
      if (a instanceof PyBigInt || b instanceof PyBigInt) {
        const ab = a instanceof PyBigInt ? a.value : null;
        const bb = b instanceof PyBigInt ? b.value : null;
        if (ab !== null && bb !== null) return ab === bb;
        return false;  // a safe integer or float never equals an integer beyond 2**53 - 1 exactly enough
      }
      return num(a) === num(b);
    }
    if (a === null || b === null) return a === b;
    if (isStr(a) || isStr(b)) return a === b;
    if (isList(a) && isList(b)) return a.length === b.length && a.every((v, i) => pyEq(v, b[i]));
    if (isDict(a) && isDict(b)) {
      const ka = Object.keys(a);
      return ka.length === Object.keys(b).length && ka.every((k) => has(b, k) && pyEq(a[k], b[k]));
    }
    return false;
  }
  /** Python str ordering: by code point. */
  function cmpStr(a, b) {
    const x = Array.from(a), y = Array.from(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const d = x[i].codePointAt(0) - y[i].codePointAt(0);
      if (d) return d;
    }
    return x.length - y.length;
  }
  function cmpBytes(a, b) {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
    return 0;
  }

  // ---- JSON reader: Python's json.loads, floats and big integers kept apart -----------------------------
  function parseJSON(text) {
    let i = 0;
    const fail = (msg) => { throw new SyntaxError(`${msg}（第 ${i + 1} 个字符）`); };
    const ws = () => { while (i < text.length && " \t\n\r".includes(text[i])) i++; };
    function value() {
      ws();
      const c = text[i];
      if (c === "{") return object();
      if (c === "[") return array();
      if (c === '"') return string();
      if (text.startsWith("true", i)) { i += 4; return true; }
      if (text.startsWith("false", i)) { i += 5; return false; }
      if (text.startsWith("null", i)) { i += 4; return null; }
      if (text.startsWith("NaN", i)) { i += 3; return new PyFloat(NaN); }
      if (text.startsWith("Infinity", i)) { i += 8; return new PyFloat(Infinity); }
      if (text.startsWith("-Infinity", i)) { i += 9; return new PyFloat(-Infinity); }
      return number();
    }
    function number() {
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/.exec(text.slice(i, i + 400));
      if (!m) fail("不是合法的 JSON");
      i += m[0].length;
      if (m[2] !== undefined || m[3] !== undefined) return new PyFloat(Number(m[0]));
      const n = Number(m[0]);
      return Number.isSafeInteger(n) ? n : new PyBigInt(m[0]);
    }
    function string() {
      i++;
      let out = "";
      for (;;) {
        if (i >= text.length) fail("字符串没有结束");
        const c = text[i];
        if (c === '"') { i++; return out; }
        if (c === "\\") {
          const e = text[i + 1];
          const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
          if (e in simple) { out += simple[e]; i += 2; continue; }
          if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
            i += 6;
            continue;
          }
          fail("无效的转义");
        }
        if (c.charCodeAt(0) < 0x20) fail("字符串中有控制字符");
        out += c;
        i++;
      }
    }
    function array() {
      i++;
      const out = [];
      ws();
      if (text[i] === "]") { i++; return out; }
      for (;;) {
        out.push(value());
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") { i++; return out; }
        fail("数组中缺少逗号或右方括号");
      }
    }
    function object() {
      i++;
      const out = Object.create(null);
      ws();
      if (text[i] === "}") { i++; return out; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("对象的键应为字符串");
        const k = string();
        ws();
        if (text[i] !== ":") fail("缺少冒号");
        i++;
        out[k] = value();  // a repeated key: the last value wins, as in Python
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") { i++; return out; }
        fail("对象中缺少逗号或右花括号");
      }
    }
    if (text.charCodeAt(0) === 0xfeff) fail("文件以 BOM 开头");
    const result = value();
    ws();
    if (i !== text.length) fail("JSON 之后还有多余内容");
    return result;
  }

  // ---- RFC 8785 canonical JSON (jcs.py) ------------------------------------------------------------------
  function jcsString(s) {
    let out = '"';
    for (let k = 0; k < s.length; k++) {
      const c = s.charCodeAt(k);
      if (c >= 0xd800 && c <= 0xdbff) {
        const d = s.charCodeAt(k + 1);
        if (!(d >= 0xdc00 && d <= 0xdfff)) throw valueError("string holds a lone surrogate");
        out += s[k] + s[k + 1];
        k++;
        continue;
      }
      if (c >= 0xdc00 && c <= 0xdfff) throw valueError("string holds a lone surrogate");
      if (c === 0x22) out += '\\"';
      else if (c === 0x5c) out += "\\\\";
      else if (c === 0x08) out += "\\b";
      else if (c === 0x0c) out += "\\f";
      else if (c === 0x0a) out += "\\n";
      else if (c === 0x0d) out += "\\r";
      else if (c === 0x09) out += "\\t";
      else if (c < 0x20) out += "\\u" + c.toString(16).padStart(4, "0");
      else out += s[k];
    }
    return out + '"';
  }
  function jcsWrite(x, out) {
    if (x === null) out.push("null");
    else if (x === true || x === false) out.push(x ? "true" : "false");
    else if (isStr(x)) out.push(jcsString(x));
    else if (x instanceof PyBigInt) throw valueError(`integer ${x.text} is outside the I-JSON safe range`);
    else if (typeof x === "number") {
      if (Math.abs(x) > MAX_SAFE) throw valueError(`integer ${x} is outside the I-JSON safe range`);
      out.push(String(x));
    } else if (x instanceof PyFloat) throw typeError("float refused: canonical receipts hold no floats");
    else if (isList(x)) {
      out.push("[");
      x.forEach((v, k) => { if (k) out.push(","); jcsWrite(v, out); });
      out.push("]");
    } else {
      const keys = Object.keys(x);
      for (const key of keys) {  // sorting by UTF-16 code units first needs every key valid Unicode
        jcsString(key);
      }
      keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));  // JS compares strings by UTF-16 code units
      out.push("{");
      keys.forEach((key, k) => {
        if (k) out.push(",");
        out.push(jcsString(key), ":");
        jcsWrite(x[key], out);
      });
      out.push("}");
    }
  }
  const encoder = new TextEncoder();
  function canonical(x) {
    const out = [];
    jcsWrite(x, out);
    return encoder.encode(out.join(""));
  }

  // ---- SHA-256 and AES-256 (WebCrypto) -----------------------------------------------------------------
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const fromHex = (h) => Uint8Array.from(h.match(/../g) || [], (p) => parseInt(p, 16));
  async function sha256Hex(bytes) {
    return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  }
  /** H(x) = SHA-256 hex of canonical(x). */
  const H = (x) => sha256Hex(canonical(x));

  async function commitment(nonce) {
    if (!isStr(nonce) || !NONCE_RE.test(nonce)) throw valueError("a nonce is 64 lowercase hex digits (32 bytes)");
    return sha256Hex(fromHex(nonce));
  }
  function uuidBlock(id) {
    if (!isStr(id) || !UUID_RE.test(id)) throw valueError(`id ${JSON.stringify(id)} is not a lowercase hyphenated UUID`);
    return fromHex(id.replaceAll("-", ""));
  }
  /** AES-256(seed, block) of every id: AES-CBC with a zero IV over one block = the block cipher itself. */
  async function aesKeys(rows, seedHex) {
    const blocks = rows.map((r) => uuidBlock(item(r, "id")));
    const key = await crypto.subtle.importKey("raw", fromHex(seedHex), { name: "AES-CBC" }, false, ["encrypt"]);
    const iv = new Uint8Array(16);
    return Promise.all(blocks.map(async (block) =>
      new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv }, key, block)).slice(0, 16)));
  }

  // ---- the draw (algorithm.py) ---------------------------------------------------------------------------
  function computeSeed(snapshotHash, paramsHash, bureauNonce, procNonce, beaconValue, roundNo) {
    return H([ALG, snapshotHash, paramsHash, bureauNonce, procNonce, beaconValue, roundNo]);
  }
  function sortedKeys(d) {
    if (!isDict(d)) throw typeError(`'${typeName(d)}' object is not iterable as a mapping`);
    return Object.keys(d).sort(cmpStr);
  }
  function ge(a, b) {  // Python a >= b for numbers; TypeError otherwise
    if (!isNumberLike(a) || !isNumberLike(b)) throw typeError("'>=' not supported between these types");
    return num(a) >= num(b);
  }
  function membersByGroup(snapshot, buckets, params) {
    const excludedRaw = get(params, "excluded");
    const excluded = truthy(excludedRaw) ? excludedRaw : Object.create(null);
    const cap = get(params, "yearly_cap");
    const specialty = get(params, "specialty");
    const district = item(params, "district");
    const members = { local: [], cross: [] };
    const manifest = item(snapshot, "buckets");
    for (const prefix of sortedKeys(manifest)) {
      const rows = item(buckets, manifest[prefix]);
      for (const row of iterate(rows)) {
        if (contains(excluded, item(row, "id")) || (cap !== null && ge(item(row, "served"), cap))) continue;
        if (truthy(specialty) && !contains(item(row, "specialties"), specialty)) continue;
        (pyEq(item(row, "district"), district) ? members.local : members.cross).push(row);
      }
    }
    return members;
  }
  function iterate(x) {
    if (isList(x)) return x;
    if (isStr(x)) return Array.from(x);
    if (isDict(x)) return Object.keys(x);
    throw typeError(`'${typeName(x)}' object is not iterable`);
  }
  function served(row) {
    const s = item(row, "served");
    if (!isInt(s) && typeof s !== "boolean" && !(s instanceof PyFloat)) throw typeError("served is not a number");
    return num(s);
  }
  /** (n + 1) / (2**128 + 1) as Python's int / int: the double nearest the exact quotient (ties to even). */
  function ratioToDouble(n, d) {
    // 0 < n <= d: scale so that the integer quotient has 64+ significant bits, then round to 53 bits
    let shift = 0n;
    while ((n << shift) < (d << 64n)) shift += 1n;
    const scaled = n << shift;
    let q = scaled / d;
    const sticky = scaled % d !== 0n;
    const bits = q.toString(2).length;
    const drop = BigInt(bits - 53);
    let mant = q >> drop;
    const rest = q & ((1n << drop) - 1n);
    const half = 1n << (drop - 1n);
    if (rest > half || (rest === half && (sticky || (mant & 1n))) ) mant += 1n;
    // value = mant * 2**(drop - shift); both parts exact in doubles (mant <= 2**53)
    return Number(mant) * Math.pow(2, Number(drop - shift));
  }
  async function orderGroup(rows, seedHex, mode, weightBase, limit) {
    if (!rows.length || limit === 0) return [];
    const servedList = rows.map(served);
    const cmin = Math.min(...servedList);
    if (mode === STRICT) {
      const keys = await aesKeys(rows, seedHex);
      const positions = rows.map((_, k) => k);
      positions.sort((a, b) => (servedList[a] - cmin) - (servedList[b] - cmin) || cmpBytes(keys[a], keys[b]));
      const chosen = limit === null ? positions : positions.slice(0, limit);
      return chosen.map((k) => item(rows[k], "id"));
    }
    if (mode === WEIGHTED) {
      if (!isInt(weightBase) || num(weightBase) < 2) throw valueError("weight_base must be an integer >= 2");
      const keys = await aesKeys(rows, seedHex);
      const big = (1n << 128n) + 1n;
      const keyed = rows.map((r, k) => {
        const u = ratioToDouble(BigInt("0x" + hex(keys[k])) + 1n, big);
        return [-Math.log(u) * Math.pow(num(weightBase), servedList[k] - cmin), item(r, "id")];
      });
      keyed.sort((a, b) => a[0] - b[0] || cmpStr(a[1], b[1]));
      return (limit === null ? keyed : keyed.slice(0, limit)).map((k) => k[1]);
    }
    throw valueError(`unknown balance mode ${JSON.stringify(mode)}`);
  }
  function pyInt(x) {  // Python int(x) for what a receipt may hold
    if (isInt(x)) return num(x);
    if (typeof x === "boolean") return x ? 1 : 0;
    if (x instanceof PyFloat) {
      if (!Number.isFinite(x.value)) throw valueError("cannot convert float to integer");
      return Math.trunc(x.value);
    }
    if (isStr(x) && /^\s*[-+]?\d+(_\d+)*\s*$/.test(x)) return parseInt(x.replaceAll("_", ""), 10);
    if (isStr(x)) throw valueError(`invalid literal for int(): ${JSON.stringify(x)}`);
    throw typeError(`int() argument must be a string or a number, not '${typeName(x)}'`);
  }
  function groupLimit(params, group) {
    if (!has(params, "alternates")) return null;
    const need = truthy(get(params, "need")) ? get(params, "need")
      : truthy(get(params, "seats")) ? get(params, "seats") : Object.create(null);
    const n = pyInt(get(need, group, 0));
    return n <= 0 ? 0 : n + pyInt(item(params, "alternates"));
  }
  async function computeOrder(snapshot, buckets, params, seedHex) {
    const mode = get(params, "balance_mode", STRICT);
    const members = membersByGroup(snapshot, buckets, params);
    const base = get(params, "weight_base", 4);
    const out = Object.create(null);
    for (const g of GROUPS) out[g] = await orderGroup(members[g], seedHex, mode, base, groupLimit(params, g));
    return out;
  }
  async function receiptHash(receipt) {
    const rest = Object.create(null);
    for (const k of Object.keys(receipt)) if (!RECEIPT_HASH_EXCLUDES.includes(k)) rest[k] = receipt[k];
    return H(rest);
  }
  async function contactEntryHash(entry) {
    if (!isDict(entry)) throw attrError(`'${typeName(entry)}' object has no attribute 'items'`);
    const rest = Object.create(null);
    for (const k of Object.keys(entry)) if (k !== "hash") rest[k] = entry[k];
    return H(rest);
  }
  async function verifyContactLog(log, startHash) {
    let prev = startHash;
    const entries = iterate(log);
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k];
      if (!pyEq(get(entry, "prev_hash"), prev)) return [false, `第 ${k + 1} 条：prev_hash 与上一条不相连`];
      if (!pyEq(await contactEntryHash(entry), get(entry, "hash"))) {
        return [false, `第 ${k + 1} 条：哈希与内容不符`];
      }
      prev = item(entry, "hash");
    }
    return [true, `共 ${entries.length} 条`];
  }
  async function checkBuckets(snapshot, buckets) {
    const manifest = item(snapshot, "buckets");
    if (!isDict(manifest)) throw attrError(`'${typeName(manifest)}' object has no attribute 'items'`);
    for (const prefix of sortedKeys(manifest)) {
      const digest = manifest[prefix];
      const rows = get(buckets, digest);
      if (rows === null) return [false, `分桶 ${prefix}：缺失`];
      if (!PREFIX_RE.test(prefix)) return [false, `分桶 ${prefix}：不是两位十六进制前缀`];
      if (!pyEq(await H(rows), digest)) return [false, `分桶 ${prefix}：内容与哈希不符`];
      const ids = iterate(rows).map((r) => item(r, "id"));
      if (!ids.every(isStr)) throw typeError("an id is not a str");
      const unique = Array.from(new Set(ids)).sort(cmpStr);
      const sortedOk = ids.length === unique.length && ids.every((v, k) => v === unique[k]);
      if (!truthy(rows) || !sortedOk || ids.some((v) => v.slice(0, 2) !== prefix)) {
        return [false, `分桶 ${prefix}：人员编号为空、未排序、重复或属于其他前缀`];
      }
      if (!ids.every((v) => UUID_RE.test(v))) return [false, `分桶 ${prefix}：有人员编号不是小写带连字符的 UUID`];
    }
    return [true, `共 ${Object.keys(manifest).length} 个分桶`];
  }

  // ---- the contact log against the order (contacts.py) ---------------------------------------------------
  const CHANNELS = ["phone", "sms", "in_person", "email"];
  const CHANNEL_LABELS = { phone: "电话", sms: "短信", in_person: "当面", email: "电子邮件" };
  const OUTCOMES = ["confirmed", "declined", "unreachable", "recused", "dismissed", "ineligible", "cancelled"];
  const FREEING = ["declined", "unreachable", "recused", "dismissed", "ineligible"];
  const RECORDERS = ["supervisor", "bureau", "system"];
  const DEFAULT_RULES = { channels: CHANNELS.slice(), unreachable_min_attempts: 2, unreachable_min_gap_seconds: 600 };
  const RECORDED_BY = {
    confirmed: ["supervisor", "bureau"], declined: ["supervisor", "bureau"], unreachable: ["bureau"],
    recused: ["supervisor", "bureau", "system"], dismissed: ["system"], ineligible: ["system"], cancelled: ["system"],
  };
  const NEEDS_ATTEMPTS = ["confirmed", "declined", "unreachable"];
  const AFTER_CONFIRMED = ["declined", "recused", "dismissed", "cancelled"];
  const OUTCOME_LABELS = { confirmed: "确认参加", declined: "不能参加", unreachable: "无法联系", recused: "回避",
    dismissed: "已被免除资格", ineligible: "不再符合抽选条件", cancelled: "申请已撤回" };
  const RECORDER_LABELS = { supervisor: "人民监督员本人", bureau: "工作人员", system: "系统" };
  const strIn = (x, list) => isStr(x) && list.includes(x);

  function allowedAfter(previous) {
    if (previous === undefined) return OUTCOMES;
    if (previous === "confirmed") return AFTER_CONFIRMED;
    return [];
  }
  function daysFromCivil(y, m, d) {  // days since 1970-01-01 of a proleptic Gregorian date
    y -= m <= 2 ? 1 : 0;
    const era = Math.floor(y / 400);
    const yoe = y - era * 400;
    const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
    const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
    return era * 146097 + doe - 719468;
  }
  /**
   * contacts.parse_time: an aware ISO-8601 time as microseconds since the epoch, or null. The forms
   * Python 3.11's datetime.fromisoformat reads: YYYY-MM-DD, any one separator, HH[:MM[:SS[.f…]]], an offset
   * Z or ±HH[:MM[:SS[.ffffff]]] (a time without an offset is naive: null).
   */
  function parseTime(value) {
    if (!isStr(value)) return null;
    const m = /^(\d{4})-(\d{2})-(\d{2})[\s\S](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d{1,6})?)?)?)$/u
      .exec(value);
    if (!m) return null;
    const [y, mo, d, hh] = [m[1], m[2], m[3], m[4]].map(Number);
    const mi = Number(m[5] || 0), ss = Number(m[6] || 0);
    const micro = Number(((m[7] || "") + "000000").slice(0, 6));
    const mdays = [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || hh > 23 || mi > 59 || ss > 59) return null;
    let offset = 0;
    if (m[8] !== "Z") {
      const o = /^([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2})(?:\.(\d{1,6}))?)?$/.exec(m[8]);
      const oh = Number(o[2]), om = Number(o[3] || 0), os = Number(o[4] || 0);
      const ou = Number(((o[5] || "") + "000000").slice(0, 6));
      if (om > 59 || os > 59) return null;
      offset = (((oh * 60 + om) * 60 + os) * 1e6 + ou) * (o[1] === "-" ? -1 : 1);
      if (Math.abs(offset) >= 86400e6) return null;
    }
    const local = ((daysFromCivil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss) * 1e6) + micro;
    return local - offset;
  }
  function rulesProblem(rules) {
    if (!isDict(rules)) return "联络规则不是对象";
    const channels = get(rules, "channels");
    if (!isList(channels) || !channels.length || !channels.every((c) => isStr(c) && c)) return "联络规则没有列出联系方式";
    const attempts = get(rules, "unreachable_min_attempts"), gap = get(rules, "unreachable_min_gap_seconds");
    if (!isInt(attempts) || num(attempts) < 2) return "unreachable_min_attempts 应为不小于 2 的整数";
    if (!isInt(gap) || num(gap) < 1) return "unreachable_min_gap_seconds 应为不小于 1 的整数";
    return null;
  }
  const CN_DIGITS = { 1: "一", 2: "两", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八", 9: "九", 10: "十" };
  const duration = (s) => (s % 3600 === 0 ? `${s / 3600}小时` : s % 60 === 0 ? `${s / 60}分钟` : `${s}秒`);
  /** contacts.evidence_problem as the verifier calls it (recorded_at = the entry's `at`). */
  function evidenceProblem(outcome, recordedBy, attempts, rules, recordedAt) {
    const label = OUTCOME_LABELS[outcome], who = RECORDER_LABELS[recordedBy];
    if (!RECORDED_BY[outcome].includes(recordedBy)) {
      const allowed = RECORDERS.filter((r) => RECORDED_BY[outcome].includes(r)).map((r) => RECORDER_LABELS[r]);
      return `“${label}”只能由${allowed.join("、")}记录，不能由${who}记录。`;
    }
    const problem = rulesProblem(rules);
    if (problem !== null) return `联络规则无效（${problem}），无法核对联系记录。`;
    if (attempts === null) attempts = [];
    if (!isList(attempts)) return "联系尝试应为列表，每项包含时间（at）和方式（channel）。";
    if (recordedBy !== "bureau") {
      return attempts.length ? `由${who}记录的结果不附联系尝试；联系尝试只由工作人员代为记录时填写。` : null;
    }
    if (NEEDS_ATTEMPTS.includes(outcome) && !attempts.length) {
      return `工作人员代为记录“${label}”，须附至少一次联系尝试（联系时间和方式）。`;
    }
    const channels = rules.channels;
    const seen = new Set();
    const times = [];
    for (let k = 0; k < attempts.length; k++) {
      const attempt = attempts[k], n = k + 1;
      const keys = isDict(attempt) ? Object.keys(attempt).sort() : null;
      if (!keys || keys.length !== 2 || keys[0] !== "at" || keys[1] !== "channel") {
        return `第${n}次联系尝试应恰好包含联系时间（at）和方式（channel）。`;
      }
      const at = parseTime(attempt.at);
      if (at === null) return `第${n}次联系尝试的时间应为带时区的ISO 8601时间。`;
      const channel = attempt.channel;
      if (!strIn(channel, channels)) {
        return `第${n}次联系尝试的方式${JSON.stringify(channel)}不在允许的方式之内（${channels.map((c) => CHANNEL_LABELS[c] || c).join("、")}）。`;
      }
      if (at > recordedAt) return `第${n}次联系尝试的时间晚于记录时间，不能记录尚未发生的联系。`;
      const key = `${at}|${channel}`;
      if (seen.has(key)) return `第${n}次联系尝试与之前的一次重复（同一时间、同一方式）。`;
      seen.add(key);
      times.push(at);
    }
    if (outcome === "unreachable") {
      const need = num(rules.unreachable_min_attempts), gap = num(rules.unreachable_min_gap_seconds);
      if (times.length < need || (Math.max(...times) - Math.min(...times)) / 1e6 < gap) {
        return `记录为无法联系须至少${CN_DIGITS[need] || need}次联系尝试，且相隔不少于${duration(gap)}。`;
      }
    }
    return null;
  }
  function perGroup(params, key, fallback) {
    let value = get(params, key);
    if (value === null && fallback) value = get(params, fallback);
    if (value === null) value = Object.create(null);
    if (!isDict(value)) return `params[${key}] 不是 {组: 整数} 对象`;
    const out = {};
    for (const g of GROUPS) {
      const n = get(value, g, 0);
      if (!isInt(n) || num(n) < 0) return `params[${key}][${g}] 不是非负整数`;
      out[g] = num(n);
    }
    return out;
  }
  function orderProblem(order) {
    if (!isDict(order)) return "抽选顺序不是 {组: [编号]} 对象";
    const unknown = Object.keys(order).filter((g) => !GROUPS.includes(g));
    if (unknown.length) return `抽选顺序含有未知的组 ${unknown.join("、")}`;
    const seen = new Set();
    for (const g of GROUPS) {
      const ids = get(order, g, []);
      if (!isList(ids) || !ids.every(isStr)) return `order[${g}] 不是编号列表`;
      if (ids.some((v) => seen.has(v)) || new Set(ids).size !== ids.length) return "抽选顺序中有人出现两次";
      ids.forEach((v) => seen.add(v));
    }
    return null;
  }
  function entryName(k, entry) {
    const seq = isDict(entry) ? get(entry, "seq") : null;
    return isInt(seq) ? `序号 ${num(seq)} 的记录` : `第 ${k + 1} 条记录（序号 ${JSON.stringify(seq)}）`;
  }
  function verifyContactsInner(log, order, params) {
    if (!isDict(params)) return [false, "抽选参数不是对象"];
    if (!has(params, "need") && !has(params, "seats")) return [false, "抽选参数没有各组应抽人数（need）"];
    const need = perGroup(params, "need", "seats");
    if (isStr(need)) return [false, need];
    const base = perGroup(params, "position_base");
    if (isStr(base)) return [false, base];
    let rules = get(params, "contact_rules");
    if (rules === null) rules = DEFAULT_RULES;
    const problem = rulesProblem(rules);
    if (problem !== null) return [false, `抽选参数：${problem}`];
    const op = orderProblem(order);
    if (op !== null) return [false, op];
    if (!isList(log)) return [false, "联络记录不是列表"];
    const freed = { local: 0, cross: 0 };
    const last = new Map();
    for (let k = 0; k < log.length; k++) {
      const entry = log[k], name = entryName(k, entry);
      if (!isDict(entry)) return [false, `${name}：不是对象`];
      if (!pyEq(get(entry, "seq"), k + 1) || !isInt(get(entry, "seq"))) {
        return [false, `${name}：序号应为 ${k + 1}（按记录顺序从 1 编号）`];
      }
      const group = get(entry, "group"), position = get(entry, "position"), sid = get(entry, "supervisor_id");
      if (!strIn(group, GROUPS)) return [false, `${name}：组 ${JSON.stringify(group)} 既不是 local 也不是 cross`];
      if (!isInt(position)) return [false, `${name}：位次 ${JSON.stringify(position)} 不是整数`];
      const ids = get(order, group, []);
      const p = num(position), kk = p - base[group];
      if (!(kk >= 1 && kk <= ids.length)) {
        return [false, `${name}：位次 ${p} 不在本轮 ${group} 组的抽选顺序之内（${base[group] + 1}..${base[group] + ids.length}）`];
      }
      if (!pyEq(ids[kk - 1], sid)) return [false, `${name}：未按顺序联系（${group} 组第 ${p} 位不是 ${JSON.stringify(sid)}）`];
      const outcome = get(entry, "outcome"), recordedBy = get(entry, "recorded_by");
      if (!strIn(outcome, OUTCOMES)) return [false, `${name}：未知的联络结果 ${JSON.stringify(outcome)}`];
      if (!strIn(recordedBy, RECORDERS)) return [false, `${name}：未知的记录人类型 ${JSON.stringify(recordedBy)}`];
      const window = need[group] + freed[group];
      if (kk > window) {
        return [false, `${name}：${group} 组第 ${p} 位在轮到之前就被联系（应抽 ${need[group]} + 已空出 ${freed[group]} = ${window}）`];
      }
      const previous = isStr(sid) ? last.get(sid) : last.get(JSON.stringify(sid));
      if (!allowedAfter(previous).includes(outcome)) {
        return [false, `${name}：同一人在“${previous}”之后不能再记录“${outcome}”`];
      }
      const at = parseTime(get(entry, "at"));
      if (at === null) return [false, `${name}：时间 ${JSON.stringify(get(entry, "at"))} 不是带时区的 ISO 8601 时间`];
      const reason = get(entry, "reason_sha256");
      if (reason !== null && !(isStr(reason) && /^[0-9a-f]{64}$/.test(reason))) {
        return [false, `${name}：reason_sha256 既不是 null 也不是 SHA-256 十六进制摘要`];
      }
      const evidence = evidenceProblem(outcome, recordedBy, get(entry, "attempts"), rules, at);
      if (evidence !== null) return [false, `${name}：R12.1 ${evidence}`];
      last.set(isStr(sid) ? sid : JSON.stringify(sid), outcome);
      if (FREEING.includes(outcome)) freed[group] += 1;
    }
    return [true, `${log.length} 条记录均遵循抽选顺序`];
  }
  function verifyContacts(log, order, params) {
    try {
      return verifyContactsInner(log, order, params);
    } catch (exc) {  // malformed beyond what the checks foresee: a failed check, never a crash
      return [false, `联络记录格式错误：${exc.kind || exc.name}: ${exc.message}`];
    }
  }

  // ---- verify_receipt ----------------------------------------------------------------------------------
  /** Recompute everything a receipt alone can prove: {ok, checks: {name: {ok, detail}}} (algorithm.py). */
  async function verifyReceipt(receipt) {
    const checks = {};
    const check = (name, ok, detail = "") => { checks[name] = { ok: Boolean(ok), detail }; };
    try {
      const alg = get(receipt, "alg");
      check("alg", strIn(alg, ALGORITHMS), `${alg}（本核验程序支持 ${ALGORITHMS.join("、")}）`);
      const snapshot = item(receipt, "snapshot"), params = item(receipt, "params"), buckets = item(receipt, "buckets");
      check("snapshot_hash", pyEq(await H(snapshot), item(receipt, "snapshot_hash")));
      check("buckets", ...(await checkBuckets(snapshot, buckets)));
      check("params_hash", pyEq(await H(params), item(receipt, "params_hash")));
      const nonces = item(receipt, "nonces"), commitments = item(receipt, "commitments");
      check("bureau_commitment", pyEq(await commitment(item(nonces, "bureau")), item(commitments, "bureau")));
      const mine = get(nonces, "procuratorate");
      if (mine === null) {
        const reason = get(receipt, "procuratorate_nonce_reason");
        check("procuratorate_commitment", truthy(reason), `抽选时没有检察院随机数：${reason}`);
      } else {
        check("procuratorate_commitment", pyEq(await commitment(mine), get(commitments, "procuratorate")));
      }
      const beacon = get(receipt, "beacon");
      const beaconValue = beacon === null ? null : item(beacon, "value");
      check("beacon", beacon === null || isStr(beaconValue),
        beacon === null ? "未指定" : `${get(beacon, "source")} ${get(beacon, "round")}`);
      const seed = await computeSeed(await H(snapshot), await H(params), item(nonces, "bureau"), mine, beaconValue,
        item(receipt, "round"));
      check("seed", pyEq(seed, item(receipt, "seed")));
      if (checks.buckets.ok) {
        check("order", pyEq(await computeOrder(snapshot, buckets, params, seed), item(receipt, "order")));
      } else {
        check("order", false, "未重新计算：分桶内容与快照不符");
      }
      check("receipt_hash", pyEq(await receiptHash(receipt), item(receipt, "receipt_hash")));
      const log = get(receipt, "contact_log", []);
      check("contact_log_chain", ...(await verifyContactLog(log, item(receipt, "receipt_hash"))));
      check("contacts_follow_order", ...verifyContacts(log, item(receipt, "order"), params));
    } catch (exc) {
      if (!(exc instanceof PyError)) {
        if (exc instanceof RangeError || exc instanceof TypeError) {
          // a JavaScript error where Python raises one of the caught kinds (e.g. an odd value in a key)
          check("well_formed", false, `${exc.name}: ${exc.message}`);
          return { ok: false, checks };
        }
        throw exc;
      }
      check("well_formed", false, `${exc.kind}: ${exc.message}`);
    }
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  }
  /** The verifier's second file: the previous receipt's hash is this receipt's prev_receipt_hash. */
  function chainLink(receipt, previous) {
    const linked = pyEq(get(previous, "receipt_hash"), get(receipt, "prev_receipt_hash"));
    return { ok: linked, detail: "上一份凭证文件" };
  }

  return { parseJSON, canonical, verifyReceipt, chainLink, PyError, ratioToDouble, ALG };
})();

if (typeof window !== "undefined") window.ReceiptVerifier = ReceiptVerifier;
