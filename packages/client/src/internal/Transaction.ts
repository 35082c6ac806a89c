/**
 * Transactions as a context: `withTransaction` runs BEGIN on one connection and provides a
 * transaction level (CurrentTransaction) to the effect, so every pgline statement of that
 * effect, in its fiber and in fibers it forks, goes to that connection. Statements issued
 * concurrently there are pipelined (each with its own Sync, all inside the block).
 *
 * Nesting is SAVEPOINT / RELEASE, or ROLLBACK TO on failure. A nested block owns the connection
 * while it is open: statements of enclosing levels issued meanwhile (by sibling fibers) wait
 * until it ends, so nothing of theirs is rolled back with it. The turn rule: a statement runs
 * when its level is the innermost open one.
 *
 * COMMIT that the server answers with ROLLBACK (the block had failed and the effect caught the
 * error) is a failure, never a success. Failure, defect, interruption or timeout of the effect
 * rolls back. It knows nothing of pools: the caller brings the connection and releases it.
 */
import type { PgServerError } from "@pgline/transport"
import { Cause, Context, Effect, Exit } from "effect"
import { type PgClientError, StatementRejected } from "../PgClientError.ts"
import type { Connection } from "./Connection.ts"
import { runStatement } from "./run.ts"

/** Options of `withTransaction`: the BEGIN's isolation level and access mode (the server's defaults otherwise). */
export interface TransactionOptions {
  readonly isolation?: "serializable" | "repeatable read" | "read committed" | "read uncommitted"
  readonly readOnly?: boolean
  readonly deferrable?: boolean
}

/** One transaction on one connection: its stack of open levels (the block, then savepoints). */
export class TxState {
  readonly conn: Connection
  /** Which clients' statements this transaction captures (one pool and its connections). */
  readonly key: object
  readonly stack: Array<TxLevel> = []
  private waiters: Array<() => void> = []
  constructor(conn: Connection, key: object) {
    this.conn = conn
    this.key = key
  }
  top(): TxLevel | undefined {
    return this.stack[this.stack.length - 1]
  }
  push(level: TxLevel): void {
    this.stack.push(level)
  }
  pop(level: TxLevel): void {
    level.active = false
    const i = this.stack.lastIndexOf(level)
    if (i >= 0) this.stack.splice(i, 1)
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }
  /**
   * Waits until `level` is the innermost open level; fails once it has ended. With `enter`, that
   * level is pushed in the same step the turn is granted, so two siblings opening savepoints at
   * once cannot both see the parent as innermost.
   */
  turn(level: TxLevel, enter?: TxLevel): Effect.Effect<void, StatementRejected> {
    return Effect.callback<void, StatementRejected>((resume) => {
      const check = (): boolean => {
        if (!level.active) {
          resume(Effect.fail(ended()))
          return true
        }
        if (this.top() === level) {
          if (enter !== undefined) this.push(enter)
          resume(Effect.void)
          return true
        }
        return false
      }
      if (check()) return
      const waiter = () => {
        if (!check()) this.waiters.push(waiter)
      }
      this.waiters.push(waiter)
      return Effect.sync(() => {
        const i = this.waiters.indexOf(waiter)
        if (i >= 0) this.waiters.splice(i, 1)
      })
    })
  }
}

/** An open level of a transaction: the block itself, or a savepoint inside it. */
export class TxLevel {
  readonly tx: TxState
  active = true
  constructor(tx: TxState) {
    this.tx = tx
  }
}

/** The transaction level the current fiber's statements belong to, if any. */
export const CurrentTransaction = Context.Reference<TxLevel | undefined>(
  "@pgline/client/CurrentTransaction",
  { defaultValue: () => undefined }
)

const ended = () =>
  new StatementRejected({
    reason: "TransactionEnded",
    message:
      "the transaction this statement belongs to has ended (a fiber forked inside withTransaction outlived it)"
  })

/** Runs `effect` on the transaction's connection when `level` has its turn. */
export const inTurn = <A, E, R>(
  level: TxLevel,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | StatementRejected, R> => {
  if (!level.active) return Effect.fail(ended())
  if (level.tx.top() === level) return effect
  return Effect.andThen(level.tx.turn(level), effect)
}

export const beginText = (options: TransactionOptions = {}): string => {
  const modes: Array<string> = []
  if (options.isolation !== undefined) {
    const isolation = options.isolation.toLowerCase()
    if (!["serializable", "repeatable read", "read committed", "read uncommitted"].includes(isolation))
      throw new TypeError(`unknown isolation level ${JSON.stringify(options.isolation)}`)
    modes.push(`isolation level ${isolation}`)
  }
  if (options.readOnly !== undefined) modes.push(options.readOnly ? "read only" : "read write")
  if (options.deferrable !== undefined) modes.push(options.deferrable ? "deferrable" : "not deferrable")
  return modes.length === 0 ? "begin" : `begin ${modes.join(", ")}`
}

let savepointCounter = 0
/** A savepoint name unique within the process (so within every connection). */
export const savepointName = (): string => `pgline_savepoint_${++savepointCounter}`

type TxError = PgServerError | PgClientError

const rolledBack = () =>
  new StatementRejected({
    reason: "TransactionRolledBack",
    message:
      "COMMIT was answered with ROLLBACK: a statement of the transaction failed (its error was caught), so nothing was committed"
  })

/**
 * BEGIN on `conn`, the effect with the new transaction as its context, then COMMIT, or ROLLBACK
 * when the effect fails, dies or is interrupted. The connection's lease is the caller's.
 */
export const topLevel = <A, E, R>(
  conn: Connection,
  key: object,
  effect: Effect.Effect<A, E, R>,
  options: TransactionOptions = {}
): Effect.Effect<A, E | TxError, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      const text = yield* Effect.try({
        try: () => beginText(options),
        catch: (error) => new StatementRejected({ reason: "InvalidText", message: String(error) })
      })
      // Interrupted during BEGIN: the lease's release rolls back whatever BEGIN left.
      yield* restore(runStatement(conn, text, []))
      const tx = new TxState(conn, key)
      const level = new TxLevel(tx)
      tx.push(level)
      const exit = yield* Effect.exit(restore(Effect.provideService(effect, CurrentTransaction, level)))
      tx.pop(level)
      if (Exit.isFailure(exit)) {
        // Whatever the rollback says, the effect's own failure is what the caller sees; a rollback
        // that cannot run leaves the block to the lease's release (which closes the connection
        // when it cannot roll back either).
        yield* Effect.ignore(conn.bounded(runStatement(conn, "rollback", [])))
        return yield* Effect.failCause(exit.cause)
      }
      const commit = yield* runStatement(conn, "commit", [])
      if (commit.command !== "COMMIT") return yield* rolledBack()
      return exit.value
    })
  )

/**
 * A savepoint inside the transaction `parent` belongs to: waits for the parent's turn, then owns
 * the connection until it ends (statements of the parent's level wait meanwhile).
 */
export const nested = <A, E, R>(
  parent: TxLevel,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | TxError, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      const tx = parent.tx
      const conn = tx.conn
      const level = new TxLevel(tx)
      const entered = yield* Effect.exit(restore(tx.turn(parent, level)))
      if (Exit.isFailure(entered)) {
        tx.pop(level)
        return yield* Effect.failCause(entered.cause)
      }
      const name = savepointName()
      const opened = yield* Effect.exit(restore(runStatement(conn, `savepoint ${name}`, [])))
      if (Exit.isFailure(opened)) {
        tx.pop(level)
        return yield* Effect.failCause(opened.cause)
      }
      const exit = yield* Effect.exit(restore(Effect.provideService(effect, CurrentTransaction, level)))
      level.active = false
      if (Exit.isSuccess(exit)) {
        const released = yield* Effect.exit(runStatement(conn, `release savepoint ${name}`, []))
        if (Exit.isSuccess(released)) {
          tx.pop(level)
          return exit.value
        }
        // The block failed inside the savepoint (the effect caught the error): undo the savepoint's
        // work so the enclosing level can go on, and say that nothing of it stands.
        yield* Effect.ignore(conn.bounded(runStatement(conn, `rollback to savepoint ${name}`, [])))
        yield* Effect.ignore(conn.bounded(runStatement(conn, `release savepoint ${name}`, [])))
        tx.pop(level)
        const error = Cause.squash(released.cause) as { _tag?: string }
        return yield* error._tag === "InFailedSqlTransaction"
          ? Effect.fail(rolledBack())
          : Effect.failCause(released.cause)
      }
      yield* Effect.ignore(conn.bounded(runStatement(conn, `rollback to savepoint ${name}`, [])))
      yield* Effect.ignore(conn.bounded(runStatement(conn, `release savepoint ${name}`, [])))
      tx.pop(level)
      return yield* Effect.failCause(exit.cause)
    })
  )
