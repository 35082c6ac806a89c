/**
 * A codec that refuses one value, for tests of what a decode failure does mid-result.
 */
import type { PgClientApi } from "@pgline/client"
import { DecodeError, makeCodec } from "@pgline/codec"
import { Effect } from "effect"

/**
 * Creates the enum `name` ('calm', 'cross') and registers a codec for it on `pg` that fails to
 * decode 'cross': rows that hold it cannot be decoded. The type's oid.
 */
export const refusingEnum = (pg: PgClientApi, name: string) =>
  Effect.gen(function* () {
    yield* pg.query(`create type ${name} as enum ('calm', 'cross')`)
    const oid = (yield* pg.query<{ oid: number }>(`select '${name}'::regtype::oid::int as oid`)).rows[0]!.oid
    pg.types.register(
      makeCodec({
        name,
        oid,
        arrayOid: 0,
        parse: (text) => {
          if (text === "cross") throw new DecodeError(oid, "cross is not accepted here")
          return text
        },
        textEncode: String
      })
    )
    return oid
  })
