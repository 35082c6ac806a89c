/**
 * Model-based test of pipelines against the real server. fast-check generates sequences of
 * pipeline operations: statements from a few texts (a statement cache of 1 to 3 keeps evicting),
 * jsonb values whose type JavaScript cannot tell (a statement's first run holds its Bind for the
 * description), failures at Parse and at execution, values the client refuses, named statements
 * prepared, bound by name or by value, described and closed, sendSync, sync, waiting for a
 * sendSync's answer, flush, and reading an earlier handle mid-segment. Each sequence runs on one
 * reserved connection; every outcome is compared with what a model of PostgreSQL's pipeline
 * semantics and the README predicts. At the end: a sync, every sendSync's answer and every handle,
 * then the server's pg_prepared_statements (the names the model says, and no more of the driver's
 * own than its cache holds) and `select 1`. No step may end with ConnectionLost, ProtocolFailure,
 * a defect or a timeout (a hang).
 *
 * The model. Per segment, the first statement the server refuses fails with its SQLSTATE class and
 * every later one of the segment with PipelineAborted naming it (its index and tag); a value the
 * driver refuses after queueing it (a held Bind) fails the same way; values refused at queue time
 * (ParameterError, StatementRejected) fail alone and leave the segment as it was. A sync fails with
 * its segment's first failure unless that handle was read. The server has a name once a Parse of
 * it ran; a Parse of a taken name fails with DuplicatePreparedStatement and the name keeps its
 * statement; a Close that runs frees the name, one the server skips leaves it as it was. The
 * driver binds a name to the statement last prepared under it; once it knows that Parse failed,
 * to the statement the server has under the name; a Close makes it unbindable until answered.
 *
 * What the driver knows depends on which answers have arrived, which the test does not control:
 * answers arrive in order, so the driver knows the answers of some prefix of the queued steps, at
 * least up to the last handle read or sync awaited. The model keeps every knowledge state still
 * possible (a "world"); each observation (a refusal at queue time, a handle's outcome, a sync's
 * answer) keeps the worlds that predict it, and a run fails when none is left. So a name bound in
 * a later segment than its unanswered Parse may be refused at queue time (StatementRejected
 * "Closed", the driver knows the Parse failed and the server has nothing under the name), run the
 * earlier statement (it knows, and the server has one), or be held and refused with
 * StatementRejected "PrepareFailed" (it does not know yet): each is right, in its own world, and
 * fixes what the rest of the segment does.
 *
 * Not modelled: explicit transactions, SQL-level PREPARE/EXECUTE/DEALLOCATE, executeMany, streams
 * and COPY, interruption, other fibers on the connection, errors at the implicit COMMIT.
 *
 * The seed is fixed; a failure prints the shrunk case (the cache's size and the commands) and what
 * happened step by step. PGLINE_FC_RUNS runs a longer search, PGLINE_FC_SEED another seed,
 * PGLINE_MODEL_STATS=1 prints how often each outcome was seen, and PGLINE_MODEL_REPLAY='<the
 * counterexample's JSON>' runs that one case alone.
 */
import { isDeepStrictEqual } from "node:util"
import { expect, layer } from "@effect/vitest"
import type { Pipeline, PreparedStatement } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Cause, type Context, Effect, Exit } from "effect"
import fc from "fast-check"
import { within } from "./support/pipeline.ts"
import { poolClient } from "./support/pool.ts"

const SEED = Number(process.env.PGLINE_FC_SEED ?? 20_260_517)
const RUNS = Number(process.env.PGLINE_FC_RUNS ?? 100)
/** A liveness bound for the whole search (shrinking included), longer for a longer search. */
const TIMEOUT = Math.max(120_000, RUNS * 1_000)
const BIG = 2 ** 33 // an int8: out of range for the texts' ::int casts
const UNENCODABLE = 2 ** 40 // refused by an int4 parameter's codec once the type is known

const INT4 = 23

const NAMES = ["m0", "m1"] as const
type Name = (typeof NAMES)[number]

type Json = ReadonlyArray<string | null>

// --- what the server does with each text ---------------------------------------------------------

type Expected =
  | { readonly rows: ReadonlyArray<unknown> }
  | { readonly prepared: ReadonlyArray<number> }
  | { readonly done: true }
  | { readonly fails: string; readonly reason?: string }
  | { readonly aborted: string; readonly index: number }

/** An int4 result as decoded (never -0). */
const int = (n: number) => n + 0

const outOfRange = (v: number) => v > 2147483647 || v < -2147483648

/** Texts run by `p.execute`, with int parameters. */
const EXEC = [
  {
    text: "select $1::int + $2::int as v",
    run: (a: number, b: number): Expected =>
      outOfRange(a) ? { fails: "NumericValueOutOfRange" } : { rows: [{ v: a + b }] }
  },
  {
    text: "select $1::int * $2::int as v",
    run: (a: number, b: number): Expected =>
      outOfRange(a) ? { fails: "NumericValueOutOfRange" } : { rows: [{ v: int(a * b) }] }
  },
  {
    text: "select g as v from generate_series($1::int, $1::int + $2::int) as g",
    run: (a: number, b: number): Expected =>
      outOfRange(a)
        ? { fails: "NumericValueOutOfRange" }
        : { rows: Array.from({ length: Math.max(0, b + 1) }, (_, i) => ({ v: a + i })) }
  },
  {
    text: "select $1::int - $2::int as v, 'four' as tag",
    run: (a: number, b: number): Expected =>
      outOfRange(a) ? { fails: "NumericValueOutOfRange" } : { rows: [{ v: a - b, tag: "four" }] }
  }
] as const

/** jsonb texts: an array of strings or nulls, or an empty one, cannot be typed from JS (held Bind). */
const JSON_TEXTS = [
  {
    text: "select $1::jsonb as v",
    params: (v: Json, _a: number) => [v],
    rows: (v: Json, _a: number) => [{ v }]
  },
  {
    text: "select $1::jsonb as v, $2::int as n",
    params: (v: Json, a: number) => [v, a],
    rows: (v: Json, a: number) => [{ v, n: a }]
  }
] as const

const FAIL = {
  divisionByZero: { text: "select 1 / $1::int as q", params: [0], tag: "DivisionByZero" },
  syntax: { text: "selec 1 as broken", params: [], tag: "SyntaxError" },
  undefinedTable: { text: "select * from no_such_table_model", params: [], tag: "UndefinedTable" }
} as const

/**
 * Texts prepared by name. All take ($1 int, $2 int), so the values bound by name fit whichever
 * statement the name has; their results differ (a wrong description shows). The last fails at Parse.
 */
const NAMED = [
  {
    text: "select $1::int * 10 + $2::int as v",
    types: [INT4, INT4],
    run: (a: number, b: number): Expected => ({ rows: [{ v: int(a * 10 + b) }] })
  },
  {
    text: "select $1::int as a, jsonb_build_array($2::int, 'x') as j",
    types: [INT4, INT4],
    run: (a: number, b: number): Expected => ({ rows: [{ a, j: [b, "x"] }] })
  },
  {
    text: "select $1::int / $2::int as q",
    types: [INT4, INT4],
    run: (a: number, b: number): Expected =>
      b === 0 ? { fails: "DivisionByZero" } : { rows: [{ q: int(Math.trunc(a / b)) }] }
  },
  {
    text: "select $1::int + $2::int as v from no_such_table_model_named",
    types: undefined,
    run: (_a: number, _b: number): Expected => ({ fails: "UndefinedTable" })
  }
] as const

// --- commands ----------------------------------------------------------------------------------

type Command =
  | { readonly op: "exec"; readonly k: number; readonly a: number; readonly b: number }
  | { readonly op: "json"; readonly k: number; readonly value: Json; readonly a: number }
  | { readonly op: "execText"; readonly t: number; readonly a: number; readonly b: number }
  | { readonly op: "fail"; readonly kind: keyof typeof FAIL }
  | { readonly op: "refuse"; readonly kind: "undefined" | "extra" | "surrogate" | "multiple" }
  | { readonly op: "prepare"; readonly name: Name; readonly t: number }
  | {
      readonly op: "execPrepared"
      readonly name: Name
      /** p.execute(the PreparedStatement last read for the name) instead of p.executePrepared(name) */
      readonly byValue: boolean
      readonly a: number
      readonly b: number
      /** good values; 2^40 for $1 (an int4); or undefined (refused before anything is sent) */
      readonly variant: "good" | "unencodable" | "undefined"
    }
  | { readonly op: "describe"; readonly name: Name }
  | { readonly op: "close"; readonly name: Name }
  | { readonly op: "sendSync" }
  | { readonly op: "awaitSendSync" }
  | { readonly op: "sync" }
  | { readonly op: "flush" }
  | { readonly op: "read"; readonly i: number }

const small = fc.integer({ min: -20, max: 20 })
const jsonValue: fc.Arbitrary<Json> = fc.array(
  fc.oneof(fc.constantFrom("a", "b", "", "é", '"q"', "{x,y}", "null"), fc.constant(null)),
  { maxLength: 3 }
)
const name = fc.constantFrom(...NAMES)
const op = <const T extends string>(tag: T) => fc.constant(tag)

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: op("exec"),
      k: fc.integer({ min: 0, max: EXEC.length - 1 }),
      a: fc.oneof({ weight: 9, arbitrary: small }, { weight: 1, arbitrary: fc.constant(BIG) }),
      b: fc.integer({ min: -1, max: 3 })
    })
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: op("json"),
      k: fc.integer({ min: 0, max: JSON_TEXTS.length - 1 }),
      value: jsonValue,
      a: small
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: op("execText"),
      t: fc.integer({ min: 0, max: 2 }),
      a: small,
      b: fc.integer({ min: 0, max: 3 })
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: op("fail"),
      kind: fc.constantFrom("divisionByZero", "syntax", "undefinedTable")
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: op("refuse"),
      kind: fc.constantFrom("undefined", "extra", "surrogate", "multiple")
    })
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: op("prepare"),
      name,
      t: fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min: 0, max: 2 }) },
        { weight: 1, arbitrary: fc.constant(3) }
      )
    })
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: op("execPrepared"),
      name,
      byValue: fc.boolean(),
      a: small,
      b: fc.integer({ min: 0, max: 3 }),
      variant: fc.oneof(
        { weight: 6, arbitrary: op("good") },
        { weight: 2, arbitrary: op("unencodable") },
        { weight: 1, arbitrary: op("undefined") }
      )
    })
  },
  { weight: 1, arbitrary: fc.record({ op: op("describe"), name }) },
  { weight: 2, arbitrary: fc.record({ op: op("close"), name }) },
  { weight: 3, arbitrary: fc.record({ op: op("sendSync") }) },
  { weight: 1, arbitrary: fc.record({ op: op("awaitSendSync") }) },
  { weight: 2, arbitrary: fc.record({ op: op("sync") }) },
  { weight: 1, arbitrary: fc.record({ op: op("flush") }) },
  { weight: 2, arbitrary: fc.record({ op: op("read"), i: fc.nat({ max: 40 }) }) }
)

// --- observing the driver ------------------------------------------------------------------------

type Observed =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly tag: string; readonly error: unknown; readonly text: string }

const observe = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<Observed> =>
  Effect.map(Effect.exit(effect), (exit): Observed => {
    if (Exit.isSuccess(exit)) return { ok: true, value: exit.value }
    const cause = exit.cause
    if (Cause.hasDies(cause))
      return { ok: false, tag: "Defect", error: Cause.squash(cause), text: Cause.pretty(cause) }
    const error = Cause.findErrorOption(cause)
    if (error._tag === "None")
      return { ok: false, tag: "Interrupted", error: undefined, text: Cause.pretty(cause) }
    const e = error.value as { _tag?: string; message?: string; reason?: string }
    return {
      ok: false,
      tag: e._tag ?? "Unknown",
      error: e,
      text: `${e._tag}${e.reason ? `(${e.reason})` : ""}: ${e.message}`
    }
  })

const reasonOf = (o: Observed): string | undefined =>
  o.ok ? undefined : ((o.error as { reason?: string } | undefined)?.reason ?? undefined)

const show = (o: Observed): string =>
  o.ok
    ? `ok ${JSON.stringify((o.value as { rows?: unknown })?.rows ?? (o.value as { parameterTypes?: unknown })?.parameterTypes ?? o.value ?? null)}`
    : o.text

/** Why an observed handle outcome is not `expected` (undefined: it is). */
const mismatch = (expected: Expected, o: Observed): string | undefined => {
  const bad = `expected ${JSON.stringify(expected)}, got ${show(o)}`
  if ("rows" in expected)
    return o.ok && isDeepStrictEqual((o.value as { rows?: unknown }).rows, expected.rows) ? undefined : bad
  if ("prepared" in expected)
    return o.ok &&
      isDeepStrictEqual([...(o.value as PreparedStatement).parameterTypes], [...expected.prepared])
      ? undefined
      : bad
  if ("done" in expected) return o.ok && o.value === undefined ? undefined : bad
  if ("fails" in expected)
    return !o.ok &&
      o.tag === expected.fails &&
      (expected.reason === undefined || reasonOf(o) === expected.reason)
      ? undefined
      : bad
  if (o.ok || o.tag !== "PipelineAborted") return bad
  const e = o.error as { failedTag: string; index: number }
  return e.failedTag === expected.aborted && e.index === expected.index ? undefined : bad
}

/** Outcomes that are never right, whatever the sequence. */
const BROKEN = new Set(["ConnectionLost", "ProtocolFailure", "Defect", "Interrupted", "TimeoutError"])

/** How often each outcome was seen over all runs (PGLINE_MODEL_STATS=1 prints them). */
const seen = new Map<string, number>()
const count = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1)

// --- the model ---------------------------------------------------------------------------------

/** Something prepared under or closed for a name, in the order queued (seq: the step's number). */
type NameEvent =
  | {
      readonly kind: "prepare"
      readonly seq: number
      readonly seg: number
      /** Its Parse ran and succeeded. */
      readonly created: boolean
      /** The statement (its prepare's seq) the server had under the name when this Parse ran. */
      readonly before: number | undefined
    }
  | { readonly kind: "close"; readonly seq: number; readonly runs: boolean }

interface Culprit {
  readonly tag: string
  readonly index: number
  readonly seq: number
}

/** One possible state of the server and of what the driver knows. Plain data (cloned with structuredClone). */
interface World {
  /** The driver knows the answers of the steps up to this seq, at least. */
  kmin: number
  /** The current segment's first failure. */
  culprit: Culprit | null
  /** Each ended segment's first failure. */
  ended: Record<number, Culprit | null>
  /** What the server has under each name: the seq of the prepare that created it. */
  server: Partial<Record<Name, number>>
  events: Record<Name, Array<NameEvent>>
  /** What each queued step's handle gives, by seq. */
  expected: Record<number, Expected>
}

/** The statement a name is bound to for a driver that knows the answers up to `k`. */
const viewAt = (
  w: World,
  n: Name,
  k: number
): { readonly rec: number; readonly closing: boolean } | undefined => {
  let view: { rec: number; closing: boolean } | undefined
  for (const e of w.events[n]) {
    if (e.kind === "prepare") {
      view = { rec: e.seq, closing: false }
      if (e.seq <= k && !e.created)
        view = e.before === undefined ? undefined : { rec: e.before, closing: false }
    } else if (view !== undefined) {
      if (e.seq > k) view = { rec: view.rec, closing: true }
      else view = e.runs ? undefined : { rec: view.rec, closing: false }
    }
  }
  return view
}

const createdAt = (w: World, n: Name, rec: number) =>
  w.events[n].some((e) => e.kind === "prepare" && e.seq === rec && e.created)

/** What a queued step does in a world: its handle's outcome when its segment has not failed (null: it did). */
type Effect_ = (w: World, runs: boolean) => Expected | null

/** An outcome a step may have in a world, for a driver knowing answers up to `k`. */
type Candidate =
  | { readonly k: number; readonly refused: string }
  | { readonly k: number; readonly queued: Effect_ }

class Mismatch {
  readonly _tag = "Mismatch"
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
}

const canonical = (w: World) => JSON.stringify({ ...w, kmin: 0 })

/** A sequence and the statement cache's size (1 to 3, for 4 + 2 + 4 texts: it keeps evicting). */
interface Case {
  readonly cacheSize: number
  readonly commands: ReadonlyArray<Command>
}

const runSequence = ({ cacheSize, commands }: Case) =>
  Effect.gen(function* () {
    const { pg } = yield* poolClient({ max: 1, statementCacheSize: cacheSize })
    const conn = yield* pg.reserve
    const p: Pipeline = yield* conn.pipeline

    const trace: Array<string> = []
    const fail = (message: string) =>
      Effect.fail(new Mismatch(`${message}\n--- trace ---\n${trace.join("\n")}`))

    // What happened (the same in every world).
    let seq = 0
    let segN = 0
    /** Steps queued in the current segment (the engine's index of the next one). */
    let segCount = 0
    let segLast = 0
    const segEnds: Array<number> = [] // the last seq of each ended segment, by segment number
    const handles: Array<{
      readonly seq: number
      readonly step: number
      readonly what: string
      readonly handle: Effect.Effect<unknown, unknown>
    }> = []
    const read = new Set<number>()
    const pendingSyncs: Array<{ readonly answer: Effect.Effect<unknown, unknown>; readonly seg: number }> = []
    const objects = new Map<Name, { readonly statement: PreparedStatement; readonly rec: number }>()
    /** Prepares whose handle gives a PreparedStatement, and describes: the name and statement it is of. */
    const statementOf = new Map<number, { readonly name: Name; readonly rec: number }>()

    let worlds: Array<World> = [
      { kmin: 0, culprit: null, ended: {}, server: {}, events: { m0: [], m1: [] }, expected: {} }
    ]

    const dedupe = (list: Array<World>) => {
      const byState = new Map<string, World>()
      for (const w of list) {
        const key = canonical(w)
        const other = byState.get(key)
        if (other === undefined || w.kmin < other.kmin) byState.set(key, w)
      }
      return [...byState.values()]
    }

    /** The driver knows every answer up to `k` (a handle was read, a sync answered). */
    const known = (k: number) => {
      for (const w of worlds) if (w.kmin < k) w.kmin = k
      worlds = dedupe(worlds)
    }

    /**
     * Queues one step: `queue` is what the driver does, `candidates` what each world allows (by
     * default, queued with `effect`). Keeps the worlds that allow what happened.
     */
    const step = (
      stepNo: number,
      what: string,
      queue: Effect.Effect<Effect.Effect<unknown, unknown>, unknown>,
      candidates: (w: World, first: number) => ReadonlyArray<Candidate>
    ) =>
      Effect.gen(function* () {
        const o = yield* observe(queue)
        count(o.ok ? "queued" : `refused ${o.tag} ${reasonOf(o) ?? ""}`.trim())
        const s = seq + 1
        const next: Array<World> = []
        const allowed = new Set<string>()
        for (const w of worlds) {
          for (const c of candidates(w, w.kmin)) {
            if ("refused" in c) {
              allowed.add(`refused ${c.refused}`)
              if (o.ok || `${o.tag}${reasonOf(o) ? ` ${reasonOf(o)}` : ""}` !== c.refused) continue
              next.push({ ...structuredClone(w), kmin: Math.max(w.kmin, c.k) })
              continue
            }
            allowed.add("queued")
            if (!o.ok) continue
            const v: World = { ...structuredClone(w), kmin: Math.max(w.kmin, c.k) }
            const culprit = v.culprit
            const outcome = c.queued(v, culprit === null)
            const expected: Expected =
              culprit !== null ? { aborted: culprit.tag, index: culprit.index } : outcome!
            v.expected[s] = expected
            if (culprit === null && "fails" in expected)
              v.culprit = { tag: expected.fails, index: segCount, seq: s }
            next.push(v)
          }
        }
        if (o.ok) {
          seq = s
          handles.push({ seq: s, step: stepNo, what, handle: o.value as Effect.Effect<unknown, unknown> })
          segLast = s
        }
        const expectations = o.ok
          ? [...new Set(next.map((w) => JSON.stringify(w.expected[s])))].join(" or ")
          : ""
        trace.push(
          `#${stepNo} ${what}: ${o.ok ? `queued as step ${segCount} of segment ${segN}, expecting ${expectations}` : `refused at queue time: ${o.text}`}`
        )
        if (o.ok) segCount++
        if (!o.ok && BROKEN.has(o.tag)) return yield* fail(`#${stepNo} ${what}: ${o.text}`)
        if (next.length === 0)
          return yield* fail(
            `#${stepNo} ${what}: ${o.ok ? "queued" : `refused (${o.text})`}, the model allows only ${[...allowed].join(", ")}`
          )
        worlds = dedupe(next)
        return o.ok ? s : undefined
      })

    /** Queued (in a world), with this outcome: not dependent on what the driver knows. */
    const queued =
      (effect: Effect_) =>
      (_w: World, first: number): ReadonlyArray<Candidate> => [{ k: first, queued: effect }]
    const refusedOnly =
      (refusal: string) =>
      (_w: World, first: number): ReadonlyArray<Candidate> => [{ k: first, refused: refusal }]

    /** Each `k` the driver may know up to now, at least `first`. */
    const ks = (first: number) => Array.from({ length: seq - first + 1 }, (_, i) => first + i)

    const readHandle = (h: (typeof handles)[number], label: string) =>
      Effect.gen(function* () {
        const early = worlds.some((w) => w.kmin < h.seq) && label !== "final"
        read.add(h.seq)
        const o = yield* observe(within(10_000)(h.handle))
        if (early) count("read before its answer was known")
        if (label === "final")
          count(
            o.ok
              ? "handle ok"
              : `handle ${o.tag} ${(o.error as { failedTag?: string; reason?: string }).failedTag ?? reasonOf(o) ?? ""}`.trim()
          )
        trace.push(`${label} read #${h.step} ${h.what}: ${show(o)}`)
        if (!o.ok && BROKEN.has(o.tag)) return yield* fail(`${label} read #${h.step} ${h.what}: ${o.text}`)
        const kept = worlds.filter((w) => mismatch(w.expected[h.seq]!, o) === undefined)
        if (kept.length === 0)
          return yield* fail(
            `${label} read #${h.step} ${h.what}: ${worlds.map((w) => mismatch(w.expected[h.seq]!, o)).join(" / ")}`
          )
        worlds = kept
        known(h.seq)
        const of = statementOf.get(h.seq)
        if (o.ok && of !== undefined)
          objects.set(of.name, { statement: o.value as PreparedStatement, rec: of.rec })
      })

    /** A sync's answer: its segment's first failure unless that handle was read, else the status. */
    const syncAnswer = (label: string, seg: number, o: Observed) =>
      Effect.gen(function* () {
        trace.push(`${label} (segment ${seg}): ${show(o)}`)
        if (!o.ok && BROKEN.has(o.tag)) return yield* fail(`${label}: ${o.text}`)
        const got = o.ok ? o.value : o.tag
        const expectedOf = (w: World) => {
          const culprit = seg === segN ? w.culprit : (w.ended[seg] ?? null)
          return culprit !== null && !read.has(culprit.seq) ? culprit.tag : "I"
        }
        const kept = worlds.filter((w) => expectedOf(w) === got)
        if (kept.length === 0)
          return yield* fail(
            `${label} (segment ${seg}): expected ${[...new Set(worlds.map(expectedOf))].join(" or ")}, got ${show(o)}`
          )
        worlds = kept
        known(segEnds[seg] ?? segLast)
      })

    const endSegment = () => {
      for (const w of worlds) w.ended[segN] = w.culprit
      for (const w of worlds) w.culprit = null
      segEnds[segN] = segLast
      segN++
      segCount = 0
    }

    /** The outcomes of binding name `n` (by name, or the statement `byValue` of it) with a..b, per world. */
    const bindCandidates =
      (
        n: Name,
        byValue: number | undefined,
        c: { readonly a: number; readonly b: number; readonly variant: string }
      ) =>
      (w: World, first: number): ReadonlyArray<Candidate> =>
        ks(first).map((k): Candidate => {
          const view = viewAt(w, n, k)
          if (view === undefined || view.closing || (byValue !== undefined && view.rec !== byValue))
            return { k, refused: "StatementRejected Closed" }
          if (c.variant === "undefined") return { k, refused: "ParameterError" }
          const created = createdAt(w, n, view.rec)
          const answered = view.rec <= k
          // Once described, a value its type refuses is refused at queue time; before, it is held.
          if (c.variant === "unencodable" && answered && created) return { k, refused: "ParameterError" }
          const rec = view.rec
          const parseSeg = w.events[n].find((e) => e.kind === "prepare" && e.seq === rec)
          return {
            k,
            queued: (v) => {
              if (!created) {
                // Its Parse failed: in its own segment the server skipped this too (not reached here).
                return parseSeg !== undefined && parseSeg.kind === "prepare" && parseSeg.seg !== segN
                  ? { fails: "StatementRejected", reason: "PrepareFailed" }
                  : { fails: "InvalidSqlStatementName" }
              }
              if (c.variant === "unencodable") return { fails: "ParameterError" }
              const on = v.server[n]
              if (on === undefined) return { fails: "InvalidSqlStatementName" }
              return NAMED[textOf.get(on)!]!.run(c.a, c.b)
            }
          }
        })

    /** Each prepare's text, by its seq. */
    const textOf = new Map<number, number>()

    const run = (c: Command, stepNo: number): Effect.Effect<void, Mismatch> =>
      Effect.gen(function* () {
        switch (c.op) {
          case "exec": {
            const e = EXEC[c.k]!
            yield* step(
              stepNo,
              `execute ${JSON.stringify(e.text)} [${c.a}, ${c.b}]`,
              p.execute(e.text, [c.a, c.b]),
              queued(() => e.run(c.a, c.b))
            )
            return
          }
          case "json": {
            const j = JSON_TEXTS[c.k]!
            const params = j.params(c.value, c.a)
            yield* step(
              stepNo,
              `execute ${JSON.stringify(j.text)} ${JSON.stringify(params)}`,
              p.execute(j.text, params),
              queued(() => ({ rows: j.rows(c.value, c.a) }))
            )
            return
          }
          case "execText": {
            // A named statement's text run by p.execute: the driver's own cached statement, not a name.
            const t = NAMED[c.t]!
            yield* step(
              stepNo,
              `execute ${JSON.stringify(t.text)} [${c.a}, ${c.b}]`,
              p.execute(t.text, [c.a, c.b]),
              queued(() => t.run(c.a, c.b))
            )
            return
          }
          case "fail": {
            const f = FAIL[c.kind]
            yield* step(
              stepNo,
              `execute ${JSON.stringify(f.text)} ${JSON.stringify(f.params)}`,
              p.execute(f.text, f.params),
              queued(() => ({ fails: f.tag }))
            )
            return
          }
          case "refuse": {
            const [text, params, refusal] =
              c.kind === "undefined"
                ? [EXEC[0].text, [undefined, 1], "ParameterError"]
                : c.kind === "extra"
                  ? [EXEC[0].text, [1, 2, 3], "ParameterError"]
                  : c.kind === "surrogate"
                    ? [JSON_TEXTS[0].text, [["a\ud800"]], "ParameterError"]
                    : ["select 1; select 2", [], "StatementRejected MultipleStatements"]
            yield* step(
              stepNo,
              `execute ${JSON.stringify(text)} (${c.kind})`,
              p.execute(text, params),
              refusedOnly(refusal)
            )
            return
          }
          case "prepare": {
            const t = NAMED[c.t]!
            const s = seq + 1
            const queuedAs = yield* step(
              stepNo,
              `prepare ${c.name} ${JSON.stringify(t.text)}`,
              p.prepare(t.text, { name: c.name }),
              queued((w, runs) => {
                const before = w.server[c.name]
                // The server analyses the text before it looks at the name.
                const outcome: Expected | null = !runs
                  ? null
                  : t.types === undefined
                    ? { fails: "UndefinedTable" }
                    : before !== undefined
                      ? { fails: "DuplicatePreparedStatement" }
                      : { prepared: t.types }
                const created = outcome !== null && "prepared" in outcome
                if (created) w.server[c.name] = s
                w.events[c.name].push({ kind: "prepare", seq: s, seg: segN, created, before })
                return outcome
              })
            )
            if (queuedAs !== undefined) {
              textOf.set(queuedAs, c.t)
              statementOf.set(queuedAs, { name: c.name, rec: queuedAs })
            }
            return
          }
          case "execPrepared": {
            const object = objects.get(c.name)
            if (c.byValue && object === undefined) {
              trace.push(
                `#${stepNo} execute(prepared ${c.name}): no PreparedStatement read for it yet (nothing done)`
              )
              return
            }
            const params = [
              c.variant === "unencodable" ? UNENCODABLE : c.variant === "undefined" ? undefined : c.a,
              c.b
            ]
            const queue = c.byValue ? p.execute(object!.statement, params) : p.executePrepared(c.name, params)
            yield* step(
              stepNo,
              `${c.byValue ? "execute(prepared " : "executePrepared("}${c.name}) ${JSON.stringify(params)}`,
              queue,
              bindCandidates(c.name, c.byValue ? object!.rec : undefined, c)
            )
            return
          }
          case "describe": {
            const object = objects.get(c.name)
            if (object === undefined) {
              trace.push(
                `#${stepNo} describe(${c.name}): no PreparedStatement read for it yet (nothing done)`
              )
              return
            }
            const queuedAs = yield* step(
              stepNo,
              `describe(${c.name})`,
              p.describe(object.statement),
              (w, first) =>
                ks(first).map((k): Candidate => {
                  const view = viewAt(w, c.name, k)
                  if (view === undefined || view.closing || view.rec !== object.rec)
                    return { k, refused: "StatementRejected Closed" }
                  return {
                    k,
                    queued: (v) => {
                      const on = v.server[c.name]
                      return on === undefined
                        ? { fails: "InvalidSqlStatementName" }
                        : { prepared: NAMED[textOf.get(on)!]!.types! }
                    }
                  }
                })
            )
            if (queuedAs !== undefined) statementOf.set(queuedAs, { name: c.name, rec: object.rec })
            return
          }
          case "close": {
            const s = seq + 1
            yield* step(
              stepNo,
              `close(${c.name})`,
              p.close(c.name),
              queued((w, runs) => {
                if (runs) delete w.server[c.name]
                w.events[c.name].push({ kind: "close", seq: s, runs })
                return runs ? { done: true } : null
              })
            )
            return
          }
          case "sendSync": {
            const o = yield* observe(p.sendSync)
            trace.push(`#${stepNo} sendSync (ends segment ${segN}): ${o.ok ? "queued" : o.text}`)
            if (!o.ok) return yield* fail(`#${stepNo} sendSync: ${o.text}`)
            pendingSyncs.push({ answer: o.value as Effect.Effect<unknown, unknown>, seg: segN })
            endSegment()
            return
          }
          case "awaitSendSync": {
            const pending = pendingSyncs.shift()
            if (pending === undefined) return
            const o = yield* observe(within(10_000)(pending.answer))
            yield* syncAnswer(`#${stepNo} sendSync's answer`, pending.seg, o)
            return
          }
          case "sync": {
            const ended = segN
            const o = yield* observe(within(10_000)(p.sync))
            yield* syncAnswer(`#${stepNo} sync`, ended, o)
            endSegment()
            // Every earlier segment is answered too.
            known(segLast)
            return
          }
          case "flush": {
            yield* p.flush
            trace.push(`#${stepNo} flush`)
            return
          }
          case "read": {
            if (handles.length === 0) return
            yield* readHandle(handles[c.i % handles.length]!, `#${stepNo}`)
            return
          }
        }
      })

    for (let i = 0; i < commands.length; i++) yield* run(commands[i]!, i)

    // The end: a sync, every sendSync's answer, every handle, then the server's view of the names.
    yield* run({ op: "sync" }, commands.length)
    while (pendingSyncs.length > 0) yield* run({ op: "awaitSendSync" }, commands.length)
    for (const h of handles) yield* readHandle(h, "final")
    const listed = yield* observe(
      within(10_000)(
        Effect.gen(function* () {
          const names = yield* p.execute<{ name: string; statement: string }>(
            "select name, statement from pg_prepared_statements order by name"
          )
          const one = yield* p.execute<{ one: number }>("select 1 as one")
          yield* p.sync
          return { names: (yield* names).rows, one: (yield* one).rows }
        })
      )
    )
    if (!listed.ok) return yield* fail(`the final check failed: ${listed.text}`)
    const { names, one } = listed.value as {
      names: ReadonlyArray<{ name: string; statement: string }>
      one: ReadonlyArray<unknown>
    }
    if (!isDeepStrictEqual(one, [{ one: 1 }])) return yield* fail(`select 1 gave ${JSON.stringify(one)}`)
    const userNames = names.filter((r) => !r.name.startsWith("pgline_"))
    const expectedNames = (w: World) =>
      NAMES.filter((n) => w.server[n] !== undefined).map((n) => ({
        name: n,
        statement: NAMED[textOf.get(w.server[n]!)!]!.text
      }))
    if (!worlds.some((w) => isDeepStrictEqual(userNames, expectedNames(w))))
      return yield* fail(
        `pg_prepared_statements: expected ${worlds.map((w) => JSON.stringify(expectedNames(w))).join(" or ")}, got ${JSON.stringify(userNames)}`
      )
    const cached = names.length - userNames.length
    if (cached > cacheSize)
      return yield* fail(
        `${cached} statements of the driver's cache on the server, more than its size ${cacheSize}: ${JSON.stringify(names)}`
      )
    count(`worlds at the end: ${worlds.length > 1 ? "several" : "one"}`)
  })

/** Runs one sequence on a fresh client: undefined, or why it does not match the model. */
const check = (context: Context.Context<PgServer>) => async (c: Case) => {
  const exit = await Effect.runPromiseExit(Effect.provide(Effect.scoped(runSequence(c)), context))
  if (Exit.isSuccess(exit)) return undefined
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" && error.value instanceof Mismatch
    ? error.value.message
    : Cause.pretty(exit.cause)
}

/** A sequence to run alone (the JSON of a counterexample fast-check printed), instead of a search. */
const REPLAY = process.env.PGLINE_MODEL_REPLAY

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("pipeline model", (it) => {
  if (REPLAY !== undefined) {
    it.effect("a replayed sequence matches the model", () =>
      Effect.gen(function* () {
        const parsed = JSON.parse(REPLAY) as Case | [Case]
        const run = check(yield* Effect.context<PgServer>())
        const why = yield* Effect.promise(() => run(Array.isArray(parsed) ? parsed[0] : parsed))
        expect(why, why).toBeUndefined()
      })
    )
    return
  }
  it.effect(
    "random pipeline sequences on one connection match the model",
    () =>
      Effect.gen(function* () {
        const run = check(yield* Effect.context<PgServer>())
        let runs = 0
        const property = fc.asyncProperty(
          fc.record({
            cacheSize: fc.integer({ min: 1, max: 3 }),
            commands: fc.array(command, { minLength: 1, maxLength: 40, size: "max" })
          }),
          async (c) => {
            runs++
            const why = await run(c)
            if (why !== undefined) throw new Error(why)
          }
        )
        const details = yield* Effect.promise(() => fc.check(property, { seed: SEED, numRuns: RUNS }))
        if (process.env.PGLINE_MODEL_STATS === "1")
          console.log(
            [...seen]
              .sort()
              .map(([k, n]) => `${k}: ${n}`)
              .join("\n")
          )
        const why = details.errorInstance instanceof Error ? `\n${details.errorInstance.message}` : ""
        expect(details.failed, `${fc.defaultReportMessage(details)}${why}`).toBe(false)
        expect(details.numRuns).toBe(RUNS)
        expect(runs).toBe(RUNS)
        // The generator reaches what the model is about (with this seed): failures and what they
        // abort, held Binds refused, names bound before their Parse's answer, refusals at queue time.
        for (const outcome of [
          "handle PipelineAborted DivisionByZero",
          "handle DuplicatePreparedStatement",
          "handle ParameterError",
          "refused StatementRejected Closed",
          "refused ParameterError",
          "read before its answer was known"
        ])
          expect(seen.get(outcome) ?? 0, outcome).toBeGreaterThan(0)
      }),
    TIMEOUT
  )
})
