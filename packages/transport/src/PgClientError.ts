/**
 * Client-side failures as tagged Effect errors: a session that could not be opened
 * (`PgConnectError`, with the reason), a session that broke under a statement (`ConnectionLost`,
 * saying whether that statement may have run), a server that broke the protocol
 * (`ProtocolFailure`). Server-sent errors are the SQLSTATE classes of `PgServerError`; this
 * module has none of them.
 */
import { Schema } from "effect"

/** Why a connection could not be opened: the `reason` of `PgConnectError`. */
export const ConnectFailureReason = Schema.Literals([
  /** Nothing listens there (ECONNREFUSED, a missing Unix socket). */
  "Refused",
  /** connect_timeout elapsed. */
  "Timeout",
  /** The host name did not resolve. */
  "Dns",
  /** TLS could not be negotiated or the certificate did not verify, or sslmode demanded TLS the server refused. */
  "Tls",
  /** The server asked for an authentication method this client was told not to use, or cannot do. */
  "Authentication",
  /** No host matched target_session_attrs. */
  "TargetSessionAttrs",
  /** The server's protocol version or options are outside min/max_protocol_version. */
  "ProtocolVersion",
  /** The socket failed or closed during start-up. */
  "Network",
  /** The server sent something start-up does not allow. */
  "Protocol"
])
export type ConnectFailureReason = typeof ConnectFailureReason.Type

/** The session could not be opened. `attempts` lists every host tried, in order, with why it failed. */
export class PgConnectError extends Schema.TaggedError<PgConnectError>()("PgConnectError", {
  reason: ConnectFailureReason,
  message: Schema.String,
  host: Schema.optional(Schema.String),
  port: Schema.optional(Schema.Number),
  attempts: Schema.optional(Schema.Array(Schema.String))
}) {}

/**
 * The connection broke while a statement was outstanding. `mayHaveRun` is true when the statement
 * had been (at least partly) sent and its outcome was not received: it may have committed. It is
 * false when it had not left the client, so it is safe to retry.
 */
export class ConnectionLost extends Schema.TaggedError<ConnectionLost>()("ConnectionLost", {
  message: Schema.String,
  mayHaveRun: Schema.Boolean
}) {}

/**
 * The server sent bytes or messages that break the protocol (malformed, unexpected, oversized);
 * the connection is closed and every statement outstanding on it fails with this. Not to be confused with the SQLSTATE class `ProtocolViolation` (08P01),
 * which is the server saying the client broke it.
 */
export class ProtocolFailure extends Schema.TaggedError<ProtocolFailure>()("ProtocolFailure", {
  message: Schema.String,
  /** What broke: the parser's reason (MessageTooLarge, InvalidLength, …) or "Grammar" (messages out of order). */
  reason: Schema.String,
  /** As for ConnectionLost: whether the statement had been sent, so it may have run. */
  mayHaveRun: Schema.Boolean
}) {}
