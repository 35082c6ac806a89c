/**
 * TypeRegistry: one connection's map from type OID to codec, prefilled with the built-ins, plus
 * the parameter-type inference the client needs to build a Bind. It is a class instantiated per
 * connection (or per Layer): enum and extension OIDs differ per database, so nothing here is
 * process-global. It does not query the server; the client looks OIDs up by name at connect time
 * and calls `registerEnum` / `register`.
 *
 * Failure contract: `decoderFor` never throws; the decoder it returns, and `decode`, throw only
 * DecodeError (any other exception escaping a codec, a user codec's included, is wrapped into
 * one), so a client wraps row decoding in one try/catch and converts. An OID with no codec never
 * fails: text decodes to the string, binary to a copy of the bytes. Encoding throws only
 * TypeEncodeError.
 *
 * Parameter inference (`inferOid`, used when the statement's parameter types are not known):
 *   null, undefined → NULL, OID 0 · string → OID 0 (unknown), sent as text verbatim: the server
 *   infers the type from context, like libpq · number → int4 when an integer in int4 range, int8
 *   when another integer in int8's range, else float8 · bigint → int8 · boolean → bool · Date, PgTimestamp →
 *   timestamptz · PgInterval → interval · Uint8Array → bytea · PgRange → int4range/int8range/
 *   numrange/tstzrange/daterange… from its bounds · arrays → the array type of their elements
 *   (string or all-null elements: OID 0 text literal; numbers widen int4 → int8 → float8 over all
 *   elements) · any other object → jsonb.
 * A string parameter is sent as text verbatim whatever the declared type (also json/jsonb: the
 * string is the JSON text), so users can always pass the server's literal syntax.
 */
import { ByteWriter } from "./types/ByteWriter.ts"
import {
  type Codec,
  type Decoder,
  describeValue,
  encodeFail,
  type Format,
  makeCodec,
  utf8
} from "./types/Codec.ts"
import { isContainer } from "./internal/containers.ts"
import { DateTimeCodecs } from "./types/DateTimeCodecs.ts"
import { DecodeError, TypeEncodeError } from "./types/DecodeError.ts"
import { InetCodecs } from "./types/InetCodecs.ts"
import { numeric } from "./types/Numeric.ts"
import { ArrayOid, Oid } from "./types/Oid.ts"
import { arrayCodec, PgArray } from "./types/PgArray.ts"
import { PgInterval } from "./types/PgInterval.ts"
import { multirangeCodec, PgRange, rangeCodec } from "./types/PgRange.ts"
import { PgTimestamp } from "./types/PgTimestamp.ts"
import { copyBytes, ScalarCodecs } from "./types/ScalarCodecs.ts"

/** How a `TypeRegistry` maps int8 and timestamps to JavaScript. */
export interface TypeRegistryOptions {
  /** int8 as bigint (default), as number (DecodeError beyond ±(2^53 - 1)), or as string. */
  readonly int8?: "bigint" | "number" | "string"
  /** timestamp/timestamptz as JS Date (default, milliseconds) or PgTimestamp (exact). */
  readonly timestamps?: "date" | "exact"
  /**
   * "text": every result value is the server's text output as a string (results are asked for in
   * text format and not converted), as psql prints them. Parameters are still encoded by type.
   * Default "decoded".
   */
  readonly results?: "decoded" | "text"
}

/** A parameter value ready for Bind: its declared type, format and bytes. */
export interface EncodedParameter {
  /** The parameter type to declare in Parse (0: let the server infer it). */
  readonly oid: number
  readonly format: Format
  /** The value's bytes in `format`, or null for SQL NULL. */
  readonly bytes: Uint8Array | null
}

/** An enum type to register: its OIDs (from pg_type) and labels. */
export interface EnumDefinition {
  readonly name: string
  readonly oid: number
  readonly arrayOid: number
  /** The labels in sort order; encoding another string is an TypeEncodeError. Decoding never checks. */
  readonly labels: ReadonlyArray<string>
}

const textEncoder = new TextEncoder()

/** Text passthrough for OIDs without a codec; binary keeps the raw bytes. */
const unknownCodec: Codec = makeCodec<unknown>({
  name: "unknown",
  oid: Oid.unknown,
  arrayOid: 0,
  parse: (t) => t,
  binaryDecode: copyBytes,
  textEncode: (v) => {
    if (typeof v === "string") return v
    if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v)
    return encodeFail(Oid.unknown, `cannot send ${describeValue(v)} as untyped text`)
  }
})
const unknownArray = arrayCodec(unknownCodec, { oid: Oid.unknown, name: "unknown[]" })
const unknownRange = rangeCodec(unknownCodec, { name: "unknown range", oid: Oid.unknown, arrayOid: 0 })

const safeDecoder =
  (oid: number, decode: Decoder): Decoder =>
  (b, s, e) => {
    try {
      return decode(b, s, e)
    } catch (err) {
      if (err instanceof DecodeError) throw err
      throw new DecodeError(oid, err instanceof Error ? err.message : String(err))
    }
  }

const isInt4 = (n: number) => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647
/** The built-in types' OIDs (a user's registered type has another). */
const BUILTIN_OIDS: ReadonlySet<number> = new Set(Object.values(Oid))

/** 2^63, exact as a double. */
const TWO_63 = 2 ** 63
/**
 * An integer int8 holds exactly: also those beyond 2^53 (every double in range is an integer
 * int8 can carry), which float8 would lose to the server's float8 → numeric cast (15 digits).
 */
const isInt8 = (n: number) => Number.isInteger(n) && n >= -TWO_63 && n < TWO_63

/**
 * One connection's (or layer's) map from type OID to codec, prefilled with the built-in types.
 * Decoding never fails for an unknown OID (text decodes to its string); a malformed value throws
 * `DecodeError`, a value a type cannot carry `TypeEncodeError` (the client turns both into typed
 * errors). Pass one as `PgClient.layer({ types })` to change int8 or timestamp decoding or to
 * add types.
 *
 * @example
 * ```ts
 * const types = new TypeRegistry({ int8: "number", timestamps: "exact" })
 * types.registerEnum({ name: "mood", oid: 16_500, arrayOid: 16_499, labels: ["sad", "ok", "happy"] })
 * PgClient.layer({ url, types })
 * ```
 */
export class TypeRegistry {
  readonly options: TypeRegistryOptions
  private readonly codecs = new Map<number, Codec>()
  private readonly textDecoders = new Map<number, Decoder>()
  private readonly binaryDecoders = new Map<number, Decoder>()
  private readonly writer = new ByteWriter()
  private readonly rawText: Decoder = utf8
  private readonly rawBinary: Decoder = copyBytes

  /** Results as the server's text (options.results === "text"). */
  private readonly textResults: boolean

  /** Whether results are kept as the server's text (`results: "text"`), whatever the session's styles. */
  get resultsAsText(): boolean {
    return this.textResults
  }

  constructor(options: TypeRegistryOptions = {}) {
    this.options = options
    this.textResults = options.results === "text"
    const s = ScalarCodecs
    const int8 =
      options.int8 === "number" ? s.int8AsNumber : options.int8 === "string" ? s.int8AsString : s.int8
    const exact = options.timestamps === "exact"
    const d = DateTimeCodecs
    const timestamp = exact ? d.timestampExact : d.timestamp
    const timestamptz = exact ? d.timestamptzExact : d.timestamptz
    for (const c of [
      s.bool,
      s.int2,
      s.int4,
      int8,
      s.oid,
      s.float4,
      s.float8,
      s.text,
      s.varchar,
      s.bpchar,
      s.name
    ])
      this.register(c)
    for (const c of [s.char, s.bytea, s.uuid, s.json, s.jsonb, numeric, InetCodecs.inet, InetCodecs.cidr])
      this.register(c)
    for (const c of [d.date, d.time, d.timetz, timestamp, timestamptz, d.interval]) this.register(c)
    // A literal of type unknown (705) is text.
    this.register({ ...s.text, name: "unknown", oid: Oid.unknownLiteral, arrayOid: 0 })
    const ranges: Array<[Codec, keyof typeof Oid, keyof typeof Oid]> = [
      [s.int4, "int4range", "int4multirange"],
      [int8, "int8range", "int8multirange"],
      [numeric, "numrange", "nummultirange"],
      [timestamp, "tsrange", "tsmultirange"],
      [timestamptz, "tstzrange", "tstzmultirange"],
      [d.date, "daterange", "datemultirange"]
    ]
    for (const [element, range, multi] of ranges) {
      const r = rangeCodec(element, {
        name: range,
        oid: Oid[range],
        arrayOid: ArrayOid[range as keyof typeof ArrayOid]
      })
      this.register(r)
      this.register(
        multirangeCodec(element, r, {
          name: multi,
          oid: Oid[multi],
          arrayOid: ArrayOid[multi as keyof typeof ArrayOid]
        })
      )
    }
  }

  /** Adds or replaces a codec, and the codec of its array type when `arrayOid` is not 0. */
  register(codec: Codec): void {
    this.codecs.set(codec.oid, codec)
    this.textDecoders.delete(codec.oid)
    this.binaryDecoders.delete(codec.oid)
    if (codec.arrayOid !== 0) this.register(arrayCodec(codec))
  }

  /** An enum: text passthrough in both formats (enum_send sends the label), labels checked on encode. */
  registerEnum(def: EnumDefinition): void {
    const labels = new Set(def.labels)
    const check = (v: unknown): string => {
      if (typeof v === "string" && labels.has(v)) return v
      return encodeFail(def.oid, `${describeValue(v)} is not a label of enum ${def.name}`)
    }
    this.register(
      makeCodec({
        name: def.name,
        oid: def.oid,
        arrayOid: def.arrayOid,
        parse: (t) => t,
        binaryDecode: utf8,
        textEncode: check,
        binaryEncode: (v, out) => {
          out.utf8(check(v))
        }
      })
    )
  }

  /**
   * An extension type whose text and binary forms are both its text (citext, ltree's text
   * input…), decoded to string. For anything else build a Codec and `register` it.
   */
  registerText(def: { readonly name: string; readonly oid: number; readonly arrayOid: number }): void {
    this.register({ ...ScalarCodecs.text, ...def })
  }

  get(oid: number): Codec | undefined {
    return this.codecs.get(oid)
  }

  has(oid: number): boolean {
    return this.codecs.has(oid)
  }

  /** Whether results of this type can be requested in binary (format 1). */
  supportsBinary(oid: number): boolean {
    return this.codecs.get(oid)?.binaryDecode !== undefined
  }

  /**
   * The result format to ask for: binary when the type has a binary decoder, unless its codec
   * prefers text results (see `Codec.textResults`).
   */
  resultFormat(oid: number): Format {
    if (this.textResults) return 0
    const codec = this.codecs.get(oid)
    return codec?.binaryDecode !== undefined && codec.textResults !== true ? 1 : 0
  }

  /** Whether a parameter of this type can be sent in binary. */
  supportsBinaryEncode(oid: number): boolean {
    return this.codecs.get(oid)?.binaryEncode !== undefined
  }

  /**
   * The decoder for a column of type `oid` in `format`. Never throws; the decoder throws only
   * DecodeError. An unknown OID (or a binary column of a type without a binary decoder) gets the
   * string (text) or a copy of the bytes (binary).
   */
  decoderFor(oid: number, format: Format): Decoder {
    if (this.textResults && format === 0) return this.rawText
    const cache = format === 1 ? this.binaryDecoders : this.textDecoders
    let d = cache.get(oid)
    if (d === undefined) {
      const codec = this.codecs.get(oid)
      if (codec === undefined) return format === 1 ? this.rawBinary : this.rawText
      const raw = format === 1 ? codec.binaryDecode : codec.textDecode
      d = raw === undefined ? this.rawBinary : safeDecoder(oid, raw)
      cache.set(oid, d)
    }
    return d
  }

  /**
   * The codec's own decoder, without the wrapper that turns stray exceptions into DecodeError:
   * for a caller that catches per row (a try/catch per value cost ~10% of decoding 100,000 rows).
   * It may throw anything; use `decoderFor` to learn which column and why.
   */
  rawDecoderFor(oid: number, format: Format): Decoder {
    if (this.textResults && format === 0) return this.rawText
    const codec = this.codecs.get(oid)
    if (codec === undefined) return format === 1 ? this.rawBinary : this.rawText
    const raw = format === 1 ? codec.binaryDecode : codec.textDecode
    return raw ?? this.rawBinary
  }

  /** Decodes one value; throws only DecodeError. */
  decode(oid: number, format: Format, bytes: Uint8Array, start: number, end: number): unknown {
    return this.decoderFor(oid, format)(bytes, start, end)
  }

  /** The type OID a JS value is sent as when the statement does not declare one (see header). */
  inferOid(value: unknown): number {
    switch (typeof value) {
      case "string":
      case "undefined":
        return Oid.unknown
      case "number":
        return isInt4(value) ? Oid.int4 : isInt8(value) ? Oid.int8 : Oid.float8
      case "bigint":
        return Oid.int8
      case "boolean":
        return Oid.bool
      case "object": {
        if (value === null) return Oid.unknown
        if (value instanceof Date || value instanceof PgTimestamp) return Oid.timestamptz
        if (value instanceof Uint8Array) return Oid.bytea
        if (value instanceof PgInterval) return Oid.interval
        if (value instanceof PgRange) return this.inferRange(value)
        if (Array.isArray(value) || value instanceof PgArray) return this.inferArray(value)
        return Oid.jsonb
      }
      default:
        return encodeFail(Oid.unknown, `cannot send ${describeValue(value)} as a parameter`)
    }
  }

  private inferRange(r: PgRange): number {
    const probe = r.lower ?? r.upper
    if (probe === null) return Oid.unknown
    const t = this.inferOid(probe)
    if (t === Oid.int4) {
      const other = r.lower !== null && r.upper !== null ? this.inferOid(r.upper) : t
      return other === Oid.int4 ? Oid.int4range : other === Oid.int8 ? Oid.int8range : Oid.numrange
    }
    if (t === Oid.int8) return typeof probe === "bigint" ? Oid.int8range : Oid.numrange
    if (t === Oid.float8) return Oid.numrange
    if (t === Oid.timestamptz) return Oid.tstzrange
    return Oid.unknown
  }

  private inferArray(value: ReadonlyArray<unknown> | PgArray): number {
    let numberOid = 0
    let other = 0
    const visit = (v: unknown): void => {
      if (v === null || v === undefined) return
      if (Array.isArray(v)) {
        for (const x of v) visit(x)
        return
      }
      if (typeof v === "number") {
        const t = this.inferOid(v)
        numberOid =
          t === Oid.float8 || numberOid === Oid.float8
            ? Oid.float8
            : t === Oid.int8 || numberOid === Oid.int8
              ? Oid.int8
              : Oid.int4
      } else if (other === 0) other = this.inferOid(v)
    }
    if (value instanceof PgArray) for (const x of value.elements) visit(x)
    else visit(value)
    const element = numberOid !== 0 && other === 0 ? numberOid : other
    if (element === Oid.unknown) return Oid.unknown
    return this.codecs.get(element)?.arrayOid ?? Oid.unknown
  }

  /**
   * Whether a value whose type JavaScript cannot tell (inferred OID 0: an array of strings, an
   * empty one, a range with string bounds) goes as text for the server to read when the parameter
   * is of type `oid`: for array, range and built-in scalar types, and types without a codec (the
   * server reads the array literal, or refuses it, on every run as on the first); json, jsonb and
   * codecs registered for other types encode it themselves.
   */
  sendsUntypedAsText(oid: number): boolean {
    const codec = this.codecs.get(oid)
    return (
      codec === undefined ||
      isContainer(codec) ||
      (oid !== Oid.json && oid !== Oid.jsonb && BUILTIN_OIDS.has(oid))
    )
  }

  /**
   * Encodes one Bind parameter: for `oid` when the statement's parameter type is known (from
   * ParameterDescription or the user), otherwise for `inferOid(value)`. Binary when the codec has
   * a binary encoder, text otherwise; strings always as text. Throws only TypeEncodeError.
   */
  encodeParameter(value: unknown, oid?: number): EncodedParameter {
    if (value === null || value === undefined) return { oid: oid ?? Oid.unknown, format: 0, bytes: null }
    if (typeof value === "string")
      return { oid: oid ?? Oid.unknown, format: 0, bytes: textEncoder.encode(value) }
    const target = oid ?? this.inferOid(value)
    // Bytes with no codec for their type go as they are, without a copy.
    if (value instanceof Uint8Array && !this.codecs.has(target))
      return { oid: target, format: 1, bytes: value }
    this.writer.reset()
    const format = this.encodeParameterInto(value, target, this.writer)
    const bytes = this.writer.toBytes()
    // Gives back the space a huge value made it grow to (reset shrinks above 1 MiB).
    this.writer.reset()
    return { oid: target, format, bytes }
  }

  /**
   * `encodeParameter` for a value that is not null, appending its bytes to `out` (after what it
   * already holds) instead of returning a copy, so encoding a statement's parameters allocates
   * nothing per value. Returns their format. Throws only TypeEncodeError, after which `out` may
   * hold part of the value (the caller discards it).
   */
  encodeParameterInto(value: unknown, oid: number | undefined, out: ByteWriter): Format {
    if (typeof value === "string") {
      out.utf8(value)
      return 0
    }
    const target = oid ?? this.inferOid(value)
    let codec = this.codecs.get(target)
    if (codec === undefined) {
      if (value instanceof Uint8Array) {
        out.raw(value)
        return 1
      }
      // No codec for the declared type: send the text of the value's natural type.
      const natural = this.inferOid(value)
      codec =
        natural !== Oid.unknown
          ? this.codecs.get(natural)
          : Array.isArray(value) || value instanceof PgArray
            ? unknownArray
            : value instanceof PgRange
              ? unknownRange
              : unknownCodec
    }
    try {
      if (codec?.binaryEncode !== undefined && codec.oid === target) {
        codec.binaryEncode(value, out)
        return 1
      }
      out.utf8((codec ?? unknownCodec).textEncode(value))
      return 0
    } catch (err) {
      if (err instanceof TypeEncodeError) throw err
      throw new TypeEncodeError(target, err instanceof Error ? err.message : String(err))
    }
  }
}
