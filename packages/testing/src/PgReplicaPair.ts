/**
 * PgReplicaPair: an embedded primary and a hot standby streaming from it, for tests of
 * target_session_attrs, load_balance_hosts and anything else that needs a real standby. Always
 * the embedded binaries (a standby is made from the primary's data directory, which neither
 * `PGLINE_TEST_URL` nor a container gives us); `PGLINE_PG_VERSION=14…18` picks the version, as
 * for `PgServer`. Both servers have the usual roles, passwords and TLS certificates (the standby's
 * are copies of the primary's). Closing the scope stops the standby, then the primary, and
 * removes their files.
 */
import { Context, Effect, Layer } from "effect"
import {
  type EmbeddedHandle,
  type EmbeddedOptions,
  type ServerInfo,
  startEmbedded,
  versionFromEnv
} from "./internal/embedded.ts"
import { type StandbyOptions, startStandby as startStandbyOf } from "./internal/standby.ts"
import { PgServerError } from "./PgServer.ts"

export type { StandbyOptions } from "./internal/standby.ts"

/** A primary and its standby. */
export interface ReplicaPair {
  /** Read-write, not in recovery. */
  readonly primary: ServerInfo
  /** In recovery (hot standby: read-only sessions, `in_hot_standby` on), streaming from `primary`. */
  readonly standby: ServerInfo
}

/**
 * Plain-async: starts a hot standby of `primary`, an embedded server handle from `startServer` or
 * `startReplicaPair`'s primary. It makes a physical replication slot on the primary, takes a base
 * backup with the low-level backup API (`pg_backup_start`/`pg_backup_stop`, `pg_start_backup`/
 * `pg_stop_backup` on 14) around a file copy of the data directory, and starts the copy as a
 * standby on its own port; it returns once the standby is in recovery and shows a row written on
 * the primary after it started. `stop` shuts the standby down, removes its files and drops its slot
 * (stop it before the primary).
 *
 * Rejects with an `EmbeddedStartError` when the primary is not an embedded server of this package
 * (a URL or container server has no data directory here), or when the backup, the copy or the
 * standby's start-up fails or it does not catch up within `startTimeout` (30 s); the error carries
 * the standby's log, and nothing is left behind.
 */
export const startStandby = (primary: EmbeddedHandle, options?: StandbyOptions): Promise<EmbeddedHandle> =>
  startStandbyOf(primary, options)

/**
 * Plain-async: an embedded primary (`options` as for `PgServer.layerWith`; the version from
 * `PGLINE_PG_VERSION` unless given) and a standby of it. `stop` stops both. Rejects like
 * `startStandby`, or with the primary's start-up error; nothing is left running then.
 */
export const startReplicaPair = async (
  options: EmbeddedOptions & StandbyOptions = {}
): Promise<{
  readonly primary: EmbeddedHandle
  readonly standby: EmbeddedHandle
  readonly stop: () => Promise<void>
}> => {
  const primary = await startEmbedded({ ...options, version: options.version ?? versionFromEnv() })
  try {
    const standby = await startStandbyOf(primary, options)
    return {
      primary,
      standby,
      stop: async () => {
        await standby.stop()
        await primary.stop()
      }
    }
  } catch (error) {
    await primary.stop()
    throw error
  }
}

const toServerError = (cause: unknown) =>
  new PgServerError({ message: cause instanceof Error ? cause.message : String(cause) })

const acquire = (options: EmbeddedOptions & StandbyOptions) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.tryPromise({ try: () => startReplicaPair(options), catch: toServerError }),
      (pair) => Effect.promise(() => pair.stop())
    ),
    (pair): ReplicaPair => ({ primary: pair.primary.info, standby: pair.standby.info })
  )

export class PgReplicaPair extends Context.Service<PgReplicaPair, ReplicaPair>()(
  "@pgline/testing/PgReplicaPair"
) {
  /**
   * An embedded primary and a streaming hot standby of it (version from `PGLINE_PG_VERSION`),
   * stopped when the scope closes. Fails with `PgServerError` when either does not start (the
   * message includes the server's log).
   */
  static readonly layer: Layer.Layer<PgReplicaPair, PgServerError> = Layer.effect(PgReplicaPair, acquire({}))

  /** The same with explicit options (version, TLS off, extra settings for both, start timeout). */
  static readonly layerWith = (
    options: EmbeddedOptions & StandbyOptions
  ): Layer.Layer<PgReplicaPair, PgServerError> => Layer.effect(PgReplicaPair, acquire(options))
}
