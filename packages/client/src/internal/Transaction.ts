/**
 * Transactions as a context: `withTransaction` provides a transaction level (CurrentTransaction)
 * on one connection to the effect, so every pgline statement of that effect, in its fiber and in
 * fibers it forks, goes to that connection. Statements issued concurrently there are pipelined
 * (each with its own Sync, all inside the block).
 *
 * BEGIN goes out with the block's first statement, in the same segment (one round trip less per
 * transaction; a block that runs no statement costs none). The server skips the rest of a segment
 * after an error, so a BEGIN that fails takes that statement with it; every other statement of the
 * block waits until the BEGIN is answered, so none can run outside the block, and fails with the
 * BEGIN's error when it failed.
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
import { Cause, Context, Effect, Exit, Scope } from "effect"
import { ParameterError, type PgClientError, StatementRejected } from "../PgClientError.ts"
import type { QueryResult } from "../QueryResult.ts"
import type { PipelineAborted } from "../PgClientError.ts"
import type { Connection } from "./Connection.ts"
import { blockOpen } from "./outcome.ts"
import { type Bound, runSegment, runStatement, runStatementOf } from "./run.ts"

/** Options of `withTransaction`: the BEGIN's isolation level and access mode (the server's defaults otherwise). */
export interface TransactionOptions {
  readonly isolation?: "serializable" | "repeatable read" | "read committed" | "read uncommitted"
  readonly readOnly?: boolean
  readonly deferrable?: boolean
  /**
   * Called once the transaction has committed (COMMIT answered COMMIT; inside another transaction,
   * its savepoint released), from the transaction's uninterruptible end: also when the fiber was
   * interrupted while COMMIT was in flight (the interruption then ends the effect). For work that
   * must follow exactly the commits, such as effect/sql's afterCommit.
   */
  readonly onCommit?: () => void
}

/**
 * Where the block's BEGIN is: not sent yet (its text), sent with a statement and not answered,
 * answered (the block is open), or failed (its error, which every later statement gets).
 */
type Begin =
  | { readonly kind: "pending"; readonly text: string }
  | { readonly kind: "sent" }
  | { readonly kind: "open" }
  | { readonly kind: "failed"; readonly error: TxError }

const OPEN: Begin = { kind: "open" }
const SENT: Begin = { kind: "sent" }

/** One transaction on one connection: its stack of open levels (the block, then savepoints). */
export class TxState {
  readonly conn: Connection
  /** Which clients' statements this transaction captures (one pool and its connections). */
  readonly key: object
  readonly stack: Array<TxLevel> = []
  private waiters: Array<() => void> = []
  begin: Begin
  /**
   * The block's effect has ended (COMMIT or ROLLBACK comes next): a statement of a fiber that
   * outlived it and gets here only now (it was waiting for BEGIN's answer) must not run.
   */
  bodyEnded = false
  private beginWaiters: Array<() => void> = []
  /**
   * The scopes of pipelines opened inside the transaction (pg.pipeline) that are still open. They
   * end with the transaction, before its COMMIT or ROLLBACK, even when the caller's Scope lives on:
   * a pipeline that outlived the block would hold a connection the pool hands to someone else.
   */
  readonly pipelines = new Set<Scope.Closeable>()
  /**
   * The transaction runs on a connection its own fiber's pipeline holds (withTransaction inside
   * withPipeline): its statements, also those of fibers it forks, run as the holder's. Else the
   * forked fibers' statements would wait for the pipeline, which waits for them.
   */
  forHolder = false
  /** `beginText`: the BEGIN to send with the first statement; undefined: the block is open already. */
  constructor(conn: Connection, key: object, beginText?: string) {
    this.conn = conn
    this.key = key
    this.begin = beginText === undefined ? OPEN : { kind: "pending", text: beginText }
  }
  settleBegin(begin: Begin): void {
    this.begin = begin
    const waiters = this.beginWaiters
    this.beginWaiters = []
    for (const w of waiters) w()
  }
  /** Waits while a BEGIN is on its way (sent, not answered). */
  readonly beginAnswered: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.begin.kind !== "sent") return resume(Effect.void)
    const waiter = () => resume(Effect.void)
    this.beginWaiters.push(waiter)
    return Effect.sync(() => {
      const i = this.beginWaiters.indexOf(waiter)
      if (i >= 0) this.beginWaiters.splice(i, 1)
    })
  })
  /** `effect`, a step of the transaction, run as the connection's holder when `forHolder`. */
  asHolder<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return this.forHolder ? this.conn.asDeputy(effect) : effect
  }
  /** Closes the pipelines still open (see `pipelines`). */
  closePipelines(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const scopes = [...this.pipelines]
    this.pipelines.clear()
    return Effect.forEach(scopes, (scope) => Scope.close(scope, exit), { discard: true })
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

/**
 * Runs `statements` in one segment on the transaction's connection, preceded by the block's BEGIN
 * when it has not been sent yet (`statements` may be empty: then the BEGIN alone). Waits while
 * another statement's BEGIN is unanswered; fails with the BEGIN's error when it failed.
 */
export const runBegun = (
  tx: TxState,
  statements: ReadonlyArray<Bound>
): Effect.Effect<Array<QueryResult<any>>, TxError | PipelineAborted> =>
  Effect.suspend(() => {
    if (tx.bodyEnded) return Effect.fail(ended())
    const begin = tx.begin
    switch (begin.kind) {
      case "open":
        return statements.length === 0 ? Effect.succeed([]) : tx.asHolder(runSegment(tx.conn, statements))
      case "failed":
        return Effect.fail(begin.error)
      case "sent":
        return Effect.andThen(tx.beginAnswered, runBegun(tx, statements))
      case "pending": {
        tx.begin = SENT
        const conn = tx.conn
        return Effect.onExit(
          Effect.map(tx.asHolder(runSegment(conn, [{ text: begin.text, values: [] }, ...statements])), (rs) =>
            rs.slice(1)
          ),
          (exit) =>
            Effect.sync(() => {
              // The block is open when the server says so after the segment (a statement after
              // the BEGIN may have failed it). Otherwise the BEGIN did not run: interrupted before
              // it ran, nothing happened and a later statement sends it; failed, the block never
              // opened and nothing may run as if it had. A statement the client refused before
              // sending (a value it cannot encode) took its BEGIN with it: nothing ran either.
              if (Exit.isSuccess(exit) || (!conn.isClosed && conn.transactionStatus !== "I"))
                tx.settleBegin(OPEN)
              else if (!conn.isClosed && (Cause.hasInterruptsOnly(exit.cause) || refusedUnsent(exit.cause)))
                tx.settleBegin({ kind: "pending", text: begin.text })
              else tx.settleBegin({ kind: "failed", error: beginFailure(exit.cause) })
            })
        )
      }
    }
  })

/** A segment the client refused before writing it: a value or a text it would not send. */
const refusedUnsent = (cause: Cause.Cause<unknown>): boolean => {
  const error = Cause.squash(cause)
  return error instanceof ParameterError || error instanceof StatementRejected
}

/** The error a BEGIN that failed leaves to the block's later statements (and to its COMMIT). */
const beginFailure = (cause: Cause.Cause<unknown>): TxError => {
  const error = Cause.squash(cause) as TxError | { _tag?: string }
  return (error as { _tag?: string })._tag === "PipelineAborted" || !(error instanceof Error)
    ? new StatementRejected({ reason: "TransactionEnded", message: "the transaction's BEGIN did not run" })
    : (error as TxError)
}

/** The BEGIN alone when it is still due (a lone statement is its whole segment: never aborted). */
const beginAlone = (tx: TxState): Effect.Effect<void, TxError> =>
  Effect.asVoid(runBegun(tx, [])) as Effect.Effect<void, TxError>

/**
 * Runs `effect` on the transaction's connection when `level` has its turn, once the block's BEGIN
 * has been answered (sent alone when nothing sent it yet).
 */
export const inTurn = <A, E, R>(
  level: TxLevel,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | TxError, R> =>
  withTurn(level, level.tx.begin.kind === "open" ? effect : Effect.andThen(beginAlone(level.tx), effect))

/** `statements` in one segment when `level` has its turn, with the block's BEGIN if it is still due. */
export const runInTurn = (
  level: TxLevel,
  statements: ReadonlyArray<Bound>
): Effect.Effect<Array<QueryResult<any>>, TxError | PipelineAborted> =>
  withTurn(level, runBegun(level.tx, statements))

/**
 * One statement of `level` (`runInTurn` of one): when it is the level's turn and the BEGIN has been
 * answered (the usual case), straight on the transaction's connection, with `fiber` (the caller's).
 */
export const statementInTurn = (
  fiber: object,
  level: TxLevel,
  text: string,
  values: ReadonlyArray<unknown>,
  arrays: boolean,
  prepare: boolean | undefined
): Effect.Effect<QueryResult<any>, TxError | PipelineAborted> => {
  const tx = level.tx
  if (level.active && !tx.bodyEnded && tx.begin.kind === "open" && tx.top() === level)
    return tx.forHolder
      ? tx.asHolder(runStatement(tx.conn, text, values, undefined, false, arrays, prepare))
      : runStatementOf(fiber, tx.conn, text, values, undefined, false, arrays, prepare, undefined)
  return Effect.map(runInTurn(level, [{ text, values, arrays, prepare }]), (rs) => rs[0]!)
}

/** `effect` once `level` is the innermost open level (at once when it is); fails once it has ended. */
const withTurn = <A, E, R>(
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
  options: TransactionOptions = {},
  forHolder = false
): Effect.Effect<A, E | TxError, R> =>
  Effect.uninterruptibleMask((restore) => topLevelWithin(conn, key, effect, options, restore, forHolder))

/** `topLevel` inside the caller's uninterruptible region (`restore` is its mask's). */
export const topLevelWithin = <A, E, R>(
  conn: Connection,
  key: object,
  effect: Effect.Effect<A, E, R>,
  options: TransactionOptions,
  restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>,
  forHolder = false
): Effect.Effect<A, E | TxError, R> => {
  let text: string
  try {
    text = beginText(options)
  } catch (error) {
    return Effect.fail(new StatementRejected({ reason: "InvalidText", message: String(error) }))
  }
  if (conn.blocks > 0) return Effect.fail(blockOpen())
  // The BEGIN goes out with the first statement (see runBegun).
  const tx = new TxState(conn, key, text)
  tx.forHolder = forHolder
  const level = new TxLevel(tx)
  tx.push(level)
  // While the body runs, nothing of it may end the block (see Connection.blocks).
  conn.blocks++
  return Effect.flatMap(
    Effect.exit(restore(Effect.provideService(effect, CurrentTransaction, level))),
    (exit): Effect.Effect<A, E | TxError> => {
      conn.blocks--
      tx.pop(level)
      tx.bodyEnded = true
      // A statement of a forked fiber may still carry the BEGIN: wait for its answer.
      const end =
        tx.begin.kind === "sent"
          ? Effect.flatMap(tx.beginAnswered, () => endTopLevel(conn, tx, exit, options.onCommit))
          : endTopLevel(conn, tx, exit, options.onCommit)
      return tx.pipelines.size === 0 ? end : Effect.andThen(tx.closePipelines(exit), end)
    }
  )
}

/** COMMIT (or ROLLBACK) at the end of a top-level block whose effect ended with `exit`. */
const endTopLevel = <A, E>(
  conn: Connection,
  tx: TxState,
  exit: Exit.Exit<A, E>,
  onCommit: (() => void) | undefined
): Effect.Effect<A, E | TxError> => {
  if (Exit.isFailure(exit)) {
    // Whatever the rollback says, the effect's own failure is what the caller sees; a rollback
    // that cannot run leaves the block to the lease's release (which closes the connection
    // when it cannot roll back either). No BEGIN ran: nothing to roll back.
    return tx.begin.kind === "open"
      ? Effect.andThen(Effect.ignore(conn.bounded(runStatement(conn, "rollback", []))), exit)
      : exit
  }
  switch (tx.begin.kind) {
    // The block ran no statement: no BEGIN went out, nothing to commit (a commit of nothing).
    case "pending":
      onCommit?.()
      return exit
    // The BEGIN failed and the effect caught its error: nothing of the block ran.
    case "failed":
      return Effect.fail(tx.begin.error)
    default:
      return Effect.flatMap(runStatement(conn, "commit", []), (commit): Effect.Effect<A, E | TxError> => {
        if (commit.command !== "COMMIT") return Effect.fail(rolledBack())
        onCommit?.()
        return exit
      })
  }
}

/**
 * A savepoint inside the transaction `parent` belongs to: waits for the parent's turn, then owns
 * the connection until it ends (statements of the parent's level wait meanwhile).
 */
export const nested = <A, E, R>(
  parent: TxLevel,
  effect: Effect.Effect<A, E, R>,
  onCommit?: () => void
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
      // With the block's BEGIN when nothing sent it yet; the first failure is the BEGIN's or the
      // SAVEPOINT's own, never an aborted one.
      const opened = yield* Effect.exit(
        restore(
          Effect.asVoid(runBegun(tx, [{ text: `savepoint ${name}`, values: [] }])) as Effect.Effect<
            void,
            TxError
          >
        )
      )
      if (Exit.isFailure(opened)) {
        tx.pop(level)
        return yield* Effect.failCause(opened.cause)
      }
      // While the body runs, nothing of it may end the block (see Connection.blocks).
      conn.blocks++
      const exit = yield* Effect.exit(restore(Effect.provideService(effect, CurrentTransaction, level)))
      conn.blocks--
      level.active = false
      if (Exit.isSuccess(exit)) {
        const released = yield* Effect.exit(tx.asHolder(runStatement(conn, `release savepoint ${name}`, [])))
        if (Exit.isSuccess(released)) {
          tx.pop(level)
          onCommit?.()
          return exit.value
        }
        // The block failed inside the savepoint (the effect caught the error): undo the savepoint's
        // work so the enclosing level can go on, and say that nothing of it stands.
        yield* Effect.ignore(
          conn.bounded(tx.asHolder(runStatement(conn, `rollback to savepoint ${name}`, [])))
        )
        yield* Effect.ignore(conn.bounded(tx.asHolder(runStatement(conn, `release savepoint ${name}`, []))))
        tx.pop(level)
        const error = Cause.squash(released.cause) as { _tag?: string }
        return yield* error._tag === "InFailedSqlTransaction"
          ? Effect.fail(rolledBack())
          : Effect.failCause(released.cause)
      }
      yield* Effect.ignore(conn.bounded(tx.asHolder(runStatement(conn, `rollback to savepoint ${name}`, []))))
      yield* Effect.ignore(conn.bounded(tx.asHolder(runStatement(conn, `release savepoint ${name}`, []))))
      tx.pop(level)
      return yield* Effect.failCause(exit.cause)
    })
  )
