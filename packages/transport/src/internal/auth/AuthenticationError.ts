/**
 * The one error type of the authentication exchange: why the client refused to go on (or the
 * server refused it), as a `reason` literal plus a human message. Every check that can fail before
 * a secret leaves the client fails with this error, so the transport never sends a password, hash
 * or proof it should not have.
 *
 * Not here: turning it into `PgConnectError` (the transport does that, reason "Authentication"),
 * and the server's own ErrorResponse (28P01 etc.), which arrives as a server error.
 */
import { Schema } from "effect"

export const AuthenticationFailureReason = Schema.Literals([
  /** channel_binding=require, but TLS is off, the server offers no -PLUS mechanism, the certificate
   * cannot be bound, the server asked for a method that cannot bind, or it let us in unbound. */
  "ChannelBindingRequired",
  /** The server offered SCRAM-SHA-256-PLUS over a connection without TLS (a stripped-TLS proxy?). */
  "UnexpectedChannelBinding",
  /** None of the server's SASL mechanisms is one this client speaks. */
  "UnsupportedMechanism",
  /** The server asked for a method this client does not implement (GSSAPI, SSPI, crypt, ...). */
  "UnsupportedMethod",
  /** require_auth does not allow the method the server asked for (or allowed none and got one). */
  "MethodNotAllowed",
  /** The server asked for a password and none (or an empty one) was configured. */
  "NoPassword",
  /** server-first-message's nonce does not extend the client's. */
  "ServerNonceMismatch",
  /** server-final-message's signature does not prove the server knows the password. */
  "InvalidServerSignature",
  /** A SCRAM message from the server does not parse, or carries an extension we must refuse. */
  "MalformedServerMessage",
  /** The iteration count is beyond the configured bound (a denial-of-service guard). */
  "UnsafeIterationCount",
  /** server-final-message carried `e=`: the server refused the proof. */
  "ServerError",
  /** An authentication message arrived out of order (SASLContinue before SASL, a second SASL, ...). */
  "UnexpectedMessage"
])
export type AuthenticationFailureReason = typeof AuthenticationFailureReason.Type

export class AuthenticationError extends Schema.TaggedError<AuthenticationError>()("AuthenticationError", {
  reason: AuthenticationFailureReason,
  message: Schema.String
}) {}

/** Shorthand used by the auth modules. */
export const authError = (reason: AuthenticationFailureReason, message: string): AuthenticationError =>
  new AuthenticationError({ reason, message })
