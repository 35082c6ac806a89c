/**
 * JSON straight from the column's bytes. `JSON.parse` costs a UTF-8 decode into a temporary
 * string plus a fixed entry cost per call that dominates for the small documents typical of
 * json/jsonb columns (measured: a 45-byte object, 100,000 rows, 60–70 ms with utf8 + JSON.parse,
 * 40–49 ms here). Small documents in plain ASCII without escapes are therefore parsed here, with
 * object keys taken from a small cache so repeated keys cost no allocation; anything else (larger
 * documents, escapes, non-ASCII, unusual keys, deep nesting, invalid JSON) goes to `JSON.parse`,
 * which stays the reference: the fast path returns exactly what `JSON.parse` would or gives up.
 *
 * The values it builds are as compact as `JSON.parse`'s, since a result keeps every one of them
 * alive until the caller lets go: an array is copied out of a value stack at its exact length
 * (growing one by `push` left room for 17 elements), and an object whose keys were seen before in
 * that order is built by a literal compiled for that key sequence, with its properties in the
 * object itself (adding them one by one to `{}` spilled past four into a separate store).
 * Measured on `{"id": 1, "ok": true, "tags": ["a", "b"]}`: 240 bytes per document before, 112
 * after, as `JSON.parse`.
 */
import { utf8 } from "./Codec.ts"

/** Above this size `JSON.parse`'s per-call cost no longer dominates and it is the faster parser. */
const FAST_MAX_BYTES = 512
const MAX_DEPTH = 64
const KEY_CACHE_SIZE = 256
const MAX_CACHED_KEY = 32

/** Thrown (never escapes) when the fast path meets anything it leaves to JSON.parse. */
const GIVE_UP: unknown = Symbol("give up")

const keyCache: Array<string | undefined> = new Array(KEY_CACHE_SIZE).fill(undefined)

type Latin1 = { latin1Slice?: (start: number, end: number) => string }

/** One parse at a time (it is synchronous), so the cursor lives in module state. */
let b: Uint8Array = new Uint8Array(0)
let p = 0
let e = 0
let depth = 0

/**
 * Values of the arrays and objects being parsed, a nested one's above its parent's (an object's
 * as key, value pairs). Cleared as each is built, so it holds nothing between documents.
 */
const stack: Array<unknown> = []
let top = 0

/** Clears stack[base, top) and pops it. */
const popTo = (base: number): void => {
  for (let i = base; i < top; i++) stack[i] = undefined
  top = base
}

/** A sequence of object keys: the objects with exactly these keys in this order, and its longer ones. */
interface Shape {
  readonly keys: ReadonlyArray<string>
  readonly next: Map<string, Shape>
  /** The last key followed from here and where it led: documents of one column repeat their keys. */
  lastKey: string | undefined
  lastNext: Shape | undefined
  /** Compiled on the shape's second object (a key sequence seen once is not worth a compile). */
  build: ((values: Array<unknown>, base: number) => Record<string, unknown>) | undefined
  seen: number
}

const newShape = (keys: ReadonlyArray<string>): Shape => ({
  keys,
  next: new Map(),
  lastKey: undefined,
  lastNext: undefined,
  build: undefined,
  seen: 0
})
const rootShape = newShape([])
/** Bounds the shapes kept (one per distinct key prefix): past it objects are built key by key. */
const MAX_SHAPES = 2048
const MAX_SHAPE_KEYS = 64
let shapes = 0
/** False once code generation turned out to be disallowed. */
let compiling = true

const compileShape = (keys: ReadonlyArray<string>): Shape["build"] => {
  let body = "return function build(s, i) {\n  return {\n"
  // Keys are own data properties in first-seen order with the last value, as in JSON.parse
  // (a literal's duplicate keys behave alike). A literal "__proto__" key would set the prototype:
  // it is written as a computed key, which defines a property (parseKey gives "__proto__" up while
  // Object.prototype has its accessor, but a process may have deleted it).
  for (let k = 0; k < keys.length; k++) {
    const key = JSON.stringify(keys[k])
    body += `    ${keys[k] === "__proto__" ? `[${key}]` : key}: s[i + ${2 * k + 1}],\n`
  }
  body += "  };\n};"
  try {
    return new Function(body)() as Shape["build"]
  } catch (error) {
    // EvalError: code generation is disallowed for good; anything else (a stack limit) may pass.
    if (error instanceof EvalError) compiling = false
    return undefined
  }
}

/** The shape after `shape` for one more key, or undefined when it is not kept. */
const nextShape = (shape: Shape | undefined, key: string): Shape | undefined => {
  if (shape === undefined) return undefined
  if (shape.lastKey === key) return shape.lastNext
  let found = shape.next.get(key)
  if (found === undefined) {
    if (shapes >= MAX_SHAPES || shape.keys.length >= MAX_SHAPE_KEYS) return undefined
    found = newShape([...shape.keys, key])
    shape.next.set(key, found)
    shapes++
  }
  shape.lastKey = key
  shape.lastNext = found
  return found
}

/** The object whose key, value pairs are stack[base, top), then clears them. */
const buildObject = (shape: Shape | undefined, base: number): Record<string, unknown> => {
  let o: Record<string, unknown> | undefined
  if (shape !== undefined && compiling) {
    if (shape.build === undefined && ++shape.seen >= 2) shape.build = compileShape(shape.keys)
    if (shape.build !== undefined) o = shape.build(stack, base)
  }
  if (o === undefined) {
    o = {}
    for (let i = base; i < top; i += 2) o[stack[i] as string] = stack[i + 1]
  }
  popTo(base)
  return o
}

const skipSpace = (): void => {
  while (p < e) {
    const c = b[p]
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return
    p++
  }
}

/** ASCII bytes [s, end) as a string (the caller has checked they are ASCII). */
const ascii = (s: number, end: number): string => {
  if (end - s > 16) {
    const slice = (b as Latin1).latin1Slice
    if (slice !== undefined) return slice.call(b, s, end)
  }
  let r = ""
  for (let i = s; i < end; i++) r += String.fromCharCode(b[i])
  return r
}

/** Scans a string body after its opening quote; returns the index of the closing quote. */
const scanString = (): number => {
  for (;;) {
    if (p >= e) throw GIVE_UP
    const c = b[p]
    if (c === 0x22) return p
    // Escapes, control characters (invalid unescaped) and non-ASCII: JSON.parse's job.
    if (c === 0x5c || c < 0x20 || c >= 0x80) throw GIVE_UP
    p++
  }
}

const parseKey = (): string => {
  const s = ++p
  let h = 0
  for (;;) {
    if (p >= e) throw GIVE_UP
    const c = b[p]
    if (c === 0x22) break
    if (c === 0x5c || c < 0x20 || c >= 0x80) throw GIVE_UP
    h = (h * 31 + c) | 0
    p++
  }
  const end = p++
  const n = end - s
  const slot = (h ^ n) & (KEY_CACHE_SIZE - 1)
  const cached = keyCache[slot]
  let key: string | undefined
  if (cached !== undefined && cached.length === n) {
    let i = 0
    while (i < n && cached.charCodeAt(i) === b[s + i]) i++
    if (i === n) key = cached
  }
  if (key === undefined) {
    key = ascii(s, end)
    if (n <= MAX_CACHED_KEY) keyCache[slot] = key
  }
  // JSON.parse defines own properties; `o[k] = v` runs the prototype chain's setters (the
  // "__proto__" accessor, or one a library added): such keys are left to JSON.parse.
  if (key in Object.prototype) throw GIVE_UP
  return key
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39

const parseNumber = (): number => {
  const s = p
  let negative = false
  if (b[p] === 0x2d) {
    negative = true
    p++
  }
  if (p >= e || !isDigit(b[p])) throw GIVE_UP
  let value = 0
  let digits = 0
  if (b[p] === 0x30) {
    p++
    digits = 1
    if (p < e && isDigit(b[p])) throw GIVE_UP // leading zero: invalid JSON
  } else {
    while (p < e && isDigit(b[p])) {
      value = value * 10 + (b[p] - 0x30)
      digits++
      p++
    }
  }
  let plain = true
  if (p < e && b[p] === 0x2e) {
    plain = false
    p++
    if (p >= e || !isDigit(b[p])) throw GIVE_UP
    while (p < e && isDigit(b[p])) p++
  }
  if (p < e && (b[p] === 0x65 || b[p] === 0x45)) {
    plain = false
    p++
    if (p < e && (b[p] === 0x2b || b[p] === 0x2d)) p++
    if (p >= e || !isDigit(b[p])) throw GIVE_UP
    while (p < e && isDigit(b[p])) p++
  }
  // Up to 15 digits an integer is exact in a double; otherwise the engine's correctly rounded
  // conversion of the token, which is what JSON.parse uses.
  if (plain && digits <= 15) return negative ? -value : value
  return Number(ascii(s, p))
}

const literal = (word: string, value: unknown): unknown => {
  const n = word.length
  if (p + n > e) throw GIVE_UP
  for (let i = 1; i < n; i++) if (b[p + i] !== word.charCodeAt(i)) throw GIVE_UP
  p += n
  return value
}

const parseValue = (): unknown => {
  skipSpace()
  if (p >= e) throw GIVE_UP
  const c = b[p]
  switch (c) {
    case 0x7b: {
      if (++depth > MAX_DEPTH) throw GIVE_UP
      p++
      skipSpace()
      if (b[p] === 0x7d) {
        p++
        depth--
        return {}
      }
      const base = top
      let shape: Shape | undefined = rootShape
      for (;;) {
        skipSpace()
        if (b[p] !== 0x22) throw GIVE_UP
        const key = parseKey()
        shape = nextShape(shape, key)
        skipSpace()
        if (b[p] !== 0x3a) throw GIVE_UP
        p++
        stack[top++] = key
        const value = parseValue()
        stack[top++] = value
        skipSpace()
        const d = b[p++]
        if (d === 0x2c) continue
        if (d === 0x7d) break
        throw GIVE_UP
      }
      depth--
      return buildObject(shape, base)
    }
    case 0x5b: {
      if (++depth > MAX_DEPTH) throw GIVE_UP
      p++
      skipSpace()
      if (b[p] === 0x5d) {
        p++
        depth--
        return []
      }
      const base = top
      for (;;) {
        const value = parseValue()
        stack[top++] = value
        skipSpace()
        const d = b[p++]
        if (d === 0x2c) continue
        if (d === 0x5d) break
        throw GIVE_UP
      }
      depth--
      const a = stack.slice(base, top)
      popTo(base)
      return a
    }
    case 0x22: {
      const s = ++p
      const end = scanString()
      p++
      return end - s === 1 ? String.fromCharCode(b[s]) : ascii(s, end)
    }
    case 0x74:
      return literal("true", true)
    case 0x66:
      return literal("false", false)
    case 0x6e:
      return literal("null", null)
    default:
      if (c === 0x2d || isDigit(c)) return parseNumber()
      throw GIVE_UP
  }
}

const tryFast = (bytes: Uint8Array, start: number, end: number): unknown => {
  b = bytes
  p = start
  e = end
  depth = 0
  try {
    const value = parseValue()
    skipSpace()
    if (p !== e) throw GIVE_UP
    return value
  } finally {
    b = EMPTY
    // A document given up on leaves its partial values on the stack.
    if (top !== 0) popTo(0)
  }
}

const EMPTY = new Uint8Array(0)

/** What `parseJsonFast` returns when it leaves a document to JSON.parse. */
export const NOT_HANDLED: unique symbol = Symbol("NOT_HANDLED")

/** The fast path alone: the value, or NOT_HANDLED (exported for tests). */
export const parseJsonFast = (bytes: Uint8Array, start: number, end: number): unknown => {
  if (end - start > FAST_MAX_BYTES) return NOT_HANDLED
  try {
    return tryFast(bytes, start, end)
  } catch {
    // GIVE_UP, or a RangeError from an engine limit: JSON.parse decides.
    return NOT_HANDLED
  }
}

/**
 * Parses the JSON text in bytes [start, end). Returns what `JSON.parse` returns for the same
 * text, and throws what it throws (a SyntaxError) for invalid JSON.
 */
export const parseJsonBytes = (bytes: Uint8Array, start: number, end: number): unknown => {
  const value = parseJsonFast(bytes, start, end)
  return value !== NOT_HANDLED ? value : JSON.parse(utf8(bytes, start, end))
}
