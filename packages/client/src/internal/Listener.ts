/**
 * LISTEN on one dedicated connection per client, shared by every `listen` stream: a channel is
 * LISTENed when its first stream starts and UNLISTENed when its last one ends; the connection
 * closes when no channel is left. Notifications go to every stream of their channel, in the order
 * the server sent them.
 *
 * When the connection is lost, it is opened again (with back-off, until it works or the client
 * closes) and every channel is LISTENed again; a warning says that notifications sent meanwhile
 * were missed, since the server does not keep them for a session that is gone.
 *
 * Deliberately not here: the connection's set-up (the client passes `open`), NOTIFY (a plain
 * statement on any connection).
 */
import { ConnectionLost, type PgServerError } from "@pgline/transport"
import { Cause, type Context, Duration, Effect, Exit, Fiber, Queue, Schedule, Scope, Semaphore } from "effect"
import type { PgClientError } from "../PgClientError.ts"
import { quoteIdentifier } from "../Statement.ts"
import type { Connection } from "./Connection.ts"
import { runStatement } from "./run.ts"

/** One notification: the channel, its payload, and the server process that sent it. */
export interface Notification {
  readonly channel: string
  readonly payload: string
  readonly processId: number
}

/** A connection opened for listening, and the scope that closes it. */
export interface ListenerConnection {
  readonly conn: Connection
  readonly scope: Scope.Closeable
}

export interface ListenerHooks {
  readonly onNotification: (processId: number, channel: string, payload: string) => void
  readonly onClosed: () => void
}

type Subscriber = Queue.Queue<Notification, PgServerError | PgClientError | import("effect").Cause.Done>

export class Listener {
  private readonly channels = new Map<string, Set<Subscriber>>()
  private current: ListenerConnection | undefined
  private readonly lock = Semaphore.makeUnsafe(1)
  private closed = false
  private reconnecting: Fiber.Fiber<void> | undefined
  private readonly open: (
    hooks: ListenerHooks
  ) => Effect.Effect<ListenerConnection, PgClientError | PgServerError>
  private readonly context: Context.Context<never>

  constructor(
    open: (hooks: ListenerHooks) => Effect.Effect<ListenerConnection, PgClientError | PgServerError>,
    context: Context.Context<never>
  ) {
    this.open = open
    this.context = context
  }

  private readonly hooks: ListenerHooks = {
    onNotification: (processId, channel, payload) => {
      const subscribers = this.channels.get(channel)
      if (subscribers === undefined || subscribers.size === 0) {
        // UNLISTEN just sent, or a channel truncated by the server: say so rather than drop it silently.
        Effect.runForkWith(this.context)(
          Effect.logWarning(
            `pgline: a notification on channel "${channel}" arrived with no listen stream for it; it is dropped`
          )
        )
        return
      }
      const notification: Notification = { channel, payload, processId }
      for (const q of subscribers) Queue.offerUnsafe(q, notification)
    },
    onClosed: () => this.lost()
  }

  /** Whether the listening connection is there and open. */
  private get live(): boolean {
    return this.current !== undefined && !this.current.conn.isClosed
  }

  /** The open listening connection, opened now if there is none. */
  private connection(): Effect.Effect<Connection, PgClientError | PgServerError> {
    const current = this.current
    if (this.live) return Effect.succeed(current!.conn)
    // A lost connection's scope is closed before the next one opens (its finalizers, its socket).
    this.current = undefined
    const reopen = Effect.flatMap(this.open(this.hooks), (opened) => {
      // The client closed while this opened: nothing will close it but this.
      if (this.closed)
        return Effect.andThen(
          Scope.close(opened.scope, Exit.void),
          Effect.fail(
            new ConnectionLost({ message: "the client's layer has been closed", mayHaveRun: false })
          )
        )
      this.current = opened
      return Effect.succeed(opened.conn)
    })
    return current === undefined ? reopen : Effect.andThen(Scope.close(current.scope, Exit.void), reopen)
  }

  /** Adds a stream's queue to `channel`, LISTENing first when it is the channel's first. */
  subscribe(channel: string, queue: Subscriber): Effect.Effect<void, PgClientError | PgServerError> {
    return this.lock.withPermits(1)(
      Effect.gen({ self: this }, function* () {
        if (this.closed)
          return yield* new ConnectionLost({
            message: "the client's layer has been closed",
            mayHaveRun: false
          })
        const existing = this.channels.get(channel)
        if (existing !== undefined) {
          existing.add(queue)
          return
        }
        const conn = yield* this.connection()
        // Interrupted here, the LISTEN may have run with nobody to receive its notifications: with
        // no other channel the connection closes. Otherwise the LISTEN may stay on the server (no
        // wait for an UNLISTEN's round trip): its notifications are logged as having no stream, a
        // later listen on the channel LISTENs again, and the connection closes with its last channel.
        // The channel is recorded in the same uninterruptible step that sees the LISTEN succeed.
        yield* Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(
            Effect.exit(restore(runStatement(conn, `listen ${quoteIdentifier(channel)}`, []))),
            (exit) => {
              if (Exit.isSuccess(exit)) {
                this.channels.set(channel, new Set([queue]))
                return Effect.void
              }
              return Effect.andThen(
                Cause.hasInterrupts(exit.cause) ? this.closeIfUnused() : Effect.void,
                Effect.failCause(exit.cause)
              )
            }
          )
        )
      })
    )
  }

  /** Closes the listening connection when no channel is listened on any more (the lock held). */
  private closeIfUnused(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const current = this.current
      if (this.channels.size > 0 || current === undefined) return Effect.void
      this.current = undefined
      return Scope.close(current.scope, Exit.void)
    })
  }

  /** Removes a stream's queue; the channel's last one UNLISTENs, and no channel left closes the connection. */
  unsubscribe(channel: string, queue: Subscriber): Effect.Effect<void> {
    return this.lock.withPermits(1)(
      Effect.gen({ self: this }, function* () {
        const subscribers = this.channels.get(channel)
        if (subscribers === undefined || !subscribers.delete(queue) || subscribers.size > 0) return
        this.channels.delete(channel)
        // Lost: nothing to UNLISTEN; the reconnection LISTENs only the channels left.
        const current = this.current
        if (current === undefined || current.conn.isClosed) return
        if (this.channels.size === 0) return yield* this.closeIfUnused()
        yield* Effect.ignore(runStatement(current.conn, `unlisten ${quoteIdentifier(channel)}`, []))
      })
    )
  }

  /**
   * Under the lock: installs `opened` (the reconnection's new connection; closed instead if a
   * stream that started meanwhile opened one already, or no channel is left; `handled` is called
   * either way) and LISTENs every channel again on the listener's connection.
   */
  private relisten(
    opened: ListenerConnection | undefined,
    handled: () => void
  ): Effect.Effect<void, PgClientError | PgServerError> {
    return this.lock.withPermits(1)(
      Effect.gen({ self: this }, function* () {
        if (opened !== undefined) {
          const current = this.current
          handled()
          if (this.live || this.closed || this.channels.size === 0)
            yield* Scope.close(opened.scope, Exit.void)
          else {
            this.current = opened
            if (current !== undefined) yield* Scope.close(current.scope, Exit.void)
          }
        }
        if (this.closed) return
        if (this.channels.size === 0) return yield* this.closeIfUnused()
        const conn = yield* this.connection()
        for (const channel of this.channels.keys())
          yield* runStatement(conn, `listen ${quoteIdentifier(channel)}`, [])
        yield* Effect.logWarning(
          `pgline: the listening connection was lost and is open again, listening on ${this.channels.size} channel(s); notifications sent while it was down were missed`
        )
      })
    )
  }

  /**
   * The listening connection was lost: open another and LISTEN again, until it works or the client
   * closes. The connection is opened without the lock, so a stream that ends (its UNLISTEN is not
   * needed on a lost connection) or starts meanwhile does not wait for a slow or stalled attempt.
   */
  private lost(): void {
    if (this.closed || this.channels.size === 0 || this.reconnecting !== undefined) return
    const attempt = Effect.uninterruptibleMask((restore) =>
      Effect.gen({ self: this }, function* () {
        if (this.closed || this.channels.size === 0) return
        const opened = this.live ? undefined : yield* restore(this.open(this.hooks))
        let handled = false
        // From here the opened connection is this attempt's until relisten takes it: interrupted (the
        // client closing) or failed before that, it is closed, never left open with nobody to close it.
        yield* Effect.onExit(restore(this.relisten(opened, () => (handled = true))), () =>
          opened === undefined || handled ? Effect.void : Scope.close(opened.scope, Exit.void)
        )
      })
    )
    this.reconnecting = Effect.runForkWith(this.context)(
      attempt.pipe(
        Effect.tapError((e) =>
          Effect.logWarning(`pgline: reopening the listening connection failed (${e._tag}); trying again`)
        ),
        Effect.retry(
          Schedule.exponential("100 millis", 2).pipe(
            Schedule.modifyDelay((m) => Effect.succeed(Duration.min(m.duration, Duration.seconds(5))))
          )
        ),
        Effect.ignore,
        Effect.ensuring(
          Effect.sync(() => {
            this.reconnecting = undefined
            // Lost again after its LISTENs went through, while this attempt was ending (lost()
            // returned early then): reopen once more.
            const current = this.current
            if (current === undefined || current.conn.isClosed) this.lost()
          })
        )
      )
    )
  }

  /** The client closes: streams end, the connection closes, no reconnection. */
  shutdown(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      this.closed = true
      if (this.reconnecting !== undefined) yield* Fiber.interrupt(this.reconnecting)
      for (const subscribers of this.channels.values()) for (const q of subscribers) Queue.endUnsafe(q)
      this.channels.clear()
      const current = this.current
      this.current = undefined
      if (current !== undefined) yield* Scope.close(current.scope, Exit.void)
    })
  }
}
