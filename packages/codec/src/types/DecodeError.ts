/**
 * DecodeError and TypeEncodeError: the only exceptions that leave the type codecs. A decoder given
 * malformed bytes for a type it knows throws a DecodeError (never a RangeError or a TypeError from
 * deep inside); an encoder given a value it cannot represent throws a TypeEncodeError. Both are plain
 * classes with a `_tag`, so the Effect-based client can catch them with `instanceof` and turn them
 * into values of its error channel; this package does not depend on Effect and does not do that.
 */

export class DecodeError extends Error {
  readonly _tag = "DecodeError" as const
  readonly oid: number
  readonly reason: string

  constructor(oid: number, reason: string) {
    super(`cannot decode value of type oid ${oid}: ${reason}`)
    this.name = "DecodeError"
    this.oid = oid
    this.reason = reason
  }
}

/**
 * A value a type cannot carry (a string for int4, a number out of range, an unknown enum label);
 * thrown by encoders before anything is sent. The client reports it as `ParameterError`.
 */
export class TypeEncodeError extends Error {
  readonly _tag = "TypeEncodeError" as const
  readonly oid: number
  readonly reason: string

  constructor(oid: number, reason: string) {
    super(`cannot encode value as type oid ${oid}: ${reason}`)
    this.name = "TypeEncodeError"
    this.oid = oid
    this.reason = reason
  }
}
