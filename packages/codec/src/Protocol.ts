/**
 * Protocol: the shapes of every PostgreSQL wire-protocol message (protocol 3.0 and 3.2, as spoken by
 * PostgreSQL 18), both directions, as plain discriminated unions keyed by `type`.
 *
 * Only types and a few protocol constants live here; encoding is in `Frontend.ts` / `Backend.ts`,
 * decoding in `Parser.ts`. Nothing here interprets values (no OID -> type mapping, no SQLSTATE
 * classes): that belongs to the type codecs and the SQLSTATE table.
 */

// --- constants -------------------------------------------------------------------------------------

/** Protocol version 3.0 as sent in StartupMessage: major << 16 | minor. */
export const PROTOCOL_3_0 = 196608
/** Protocol version 3.2 (PostgreSQL 18): variable-length cancel keys. 3.1 was never used. */
export const PROTOCOL_3_2 = 196610
/** Magic "version" codes of the untyped startup packets. */
export const SSL_REQUEST_CODE = 80877103
/** The code of a GSSENCRequest (asks for GSSAPI encryption before start-up). */
export const GSSENC_REQUEST_CODE = 80877104
/** The code of a CancelRequest (sent on a new connection to cancel a running statement). */
export const CANCEL_REQUEST_CODE = 80877102
/** The protocol caps a cancel key at 256 bytes (the server sends 32 in 3.2, 4 in 3.0). */
export const MAX_CANCEL_KEY_LENGTH = 256

/** Format codes used by Bind, RowDescription, Copy*Response, FunctionCall. */
export type FormatCode = 0 | 1
/** Format code 0: a value in the type's text representation. */
export const TEXT_FORMAT = 0
/** Format code 1: a value in the type's binary representation. */
export const BINARY_FORMAT = 1

/** Transaction status carried by ReadyForQuery: idle, in a transaction block, in a failed block. */
export type TransactionStatus = "I" | "T" | "E"

/** Describe / Close target: a prepared statement or a portal. */
export type Target = "S" | "P"

// --- error and notice fields -----------------------------------------------------------------------

/**
 * ErrorResponse / NoticeResponse fields under readable names. Values stay strings exactly as sent
 * (position and line are decimal text on the wire; converting them is the caller's choice).
 *
 * `severity` is the non-localized `V` field (present since 9.6), falling back to the localized `S`
 * when `V` is absent; `severityLocalized` is `S` verbatim. `severity`, `code` and `message` are
 * always present in what a real server sends; a malformed message missing them decodes with "".
 * Field codes this version does not know are kept in `unknown`, keyed by their one-letter code.
 */
export interface ErrorFields {
  readonly severity: string
  readonly code: string
  readonly message: string
  readonly severityLocalized?: string
  readonly detail?: string
  readonly hint?: string
  readonly position?: string
  readonly internalPosition?: string
  readonly internalQuery?: string
  readonly where?: string
  readonly schema?: string
  readonly table?: string
  readonly column?: string
  readonly dataType?: string
  readonly constraint?: string
  readonly file?: string
  readonly line?: string
  readonly routine?: string
  readonly unknown?: Readonly<Record<string, string>>
}

/** Field code byte (as a one-character string) -> ErrorFields key, for the known codes. */
export const ERROR_FIELD_CODES = {
  S: "severityLocalized",
  V: "severity",
  C: "code",
  M: "message",
  D: "detail",
  H: "hint",
  P: "position",
  p: "internalPosition",
  q: "internalQuery",
  W: "where",
  s: "schema",
  t: "table",
  c: "column",
  d: "dataType",
  n: "constraint",
  F: "file",
  L: "line",
  R: "routine"
} as const

// --- backend messages ------------------------------------------------------------------------------

/** Backend `R` (0): authentication succeeded. */
export interface AuthenticationOk {
  readonly type: "AuthenticationOk"
}
/** Backend `R` (2): Kerberos V5 requested (not supported by servers since 9.4). */
export interface AuthenticationKerberosV5 {
  readonly type: "AuthenticationKerberosV5"
}
/** Backend `R` (3): the server asks for the password in clear text. */
export interface AuthenticationCleartextPassword {
  readonly type: "AuthenticationCleartextPassword"
}
/** Backend `R` (5): the server asks for an MD5-hashed password with this 4-byte salt. */
export interface AuthenticationMD5Password {
  readonly type: "AuthenticationMD5Password"
  /** Exactly 4 bytes. */
  readonly salt: Uint8Array
}
/** Backend `R` (7): GSSAPI authentication requested. */
export interface AuthenticationGSS {
  readonly type: "AuthenticationGSS"
}
/** Backend `R` (8): GSSAPI or SSPI data to continue the exchange. */
export interface AuthenticationGSSContinue {
  readonly type: "AuthenticationGSSContinue"
  readonly data: Uint8Array
}
/** Backend `R` (9): SSPI authentication requested. */
export interface AuthenticationSSPI {
  readonly type: "AuthenticationSSPI"
}
/** Backend `R` (10): SASL authentication, with the mechanisms the server offers (e.g. SCRAM-SHA-256). */
export interface AuthenticationSASL {
  readonly type: "AuthenticationSASL"
  /** Mechanisms in the server's order of preference, e.g. ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]. */
  readonly mechanisms: ReadonlyArray<string>
}
/** Backend `R` (11): a SASL challenge (SCRAM's server-first-message). */
export interface AuthenticationSASLContinue {
  readonly type: "AuthenticationSASLContinue"
  readonly data: Uint8Array
}
/** Backend `R` (12): the SASL outcome data (SCRAM's server-final-message, with its signature). */
export interface AuthenticationSASLFinal {
  readonly type: "AuthenticationSASLFinal"
  readonly data: Uint8Array
}
/** Backend `K`: the process id and secret key that a CancelRequest for this session must carry. */
export interface BackendKeyData {
  readonly type: "BackendKeyData"
  readonly processId: number
  /** 4 bytes in protocol 3.0; 4..256 bytes in 3.2 (PostgreSQL 18 sends 32). */
  readonly secretKey: Uint8Array
}
/** Backend `2`: a Bind succeeded. */
export interface BindComplete {
  readonly type: "BindComplete"
}
/** Backend `3`: a Close succeeded. */
export interface CloseComplete {
  readonly type: "CloseComplete"
}
/** Backend `C`: a statement finished; `tag` is the command tag (`INSERT 0 1`, `SELECT 3`, …). */
export interface CommandComplete {
  readonly type: "CommandComplete"
  /** e.g. "SELECT 3", "INSERT 0 1", "ROLLBACK". */
  readonly tag: string
}
/** CopyData and CopyDone have the same layout in both directions; both unions use these. */
export interface CopyData {
  readonly type: "CopyData"
  readonly data: Uint8Array
}
/** Backend `c` (also frontend): the end of COPY data. */
export interface CopyDone {
  readonly type: "CopyDone"
}
/** Backend `G`: the server is ready to receive COPY FROM STDIN data. */
export interface CopyInResponse {
  readonly type: "CopyInResponse"
  /** Overall format: 0 text, 1 binary. */
  readonly format: FormatCode
  readonly columnFormats: ReadonlyArray<FormatCode>
}
/** Backend `H`: COPY TO STDOUT data follows. */
export interface CopyOutResponse {
  readonly type: "CopyOutResponse"
  readonly format: FormatCode
  readonly columnFormats: ReadonlyArray<FormatCode>
}
/** Backend `W`: COPY data flows both ways (streaming replication). */
export interface CopyBothResponse {
  readonly type: "CopyBothResponse"
  readonly format: FormatCode
  readonly columnFormats: ReadonlyArray<FormatCode>
}

/**
 * One result row, decoded lazily: values are NOT copied or converted.
 *
 * - `bytes` is the buffer holding the message. Column i's value is
 *   `bytes.subarray(offsets[i], offsets[i] + lengths[i])`; `lengths[i] === -1` means SQL NULL
 *   (its offset is then the position right after its length word, and meaningless).
 * - Offsets are absolute indexes into `bytes`, so decoders read in place with no subarray per
 *   column. `bytes` may be a chunk the caller pushed into the parser or a buffer the parser
 *   assembled for a message that straddled chunks; the parser never writes into it afterwards, so a
 *   DataRow stays valid for as long as it is referenced (and keeps that buffer alive: copy the
 *   values you keep if memory matters).
 * - `columnCount === offsets.length === lengths.length`.
 */
export interface DataRow {
  readonly type: "DataRow"
  readonly bytes: Uint8Array
  readonly columnCount: number
  readonly offsets: ReadonlyArray<number>
  readonly lengths: ReadonlyArray<number>
}
/** Backend `I`: the statement text was empty. */
export interface EmptyQueryResponse {
  readonly type: "EmptyQueryResponse"
}
/** Backend `E`: an error, with its fields; the server skips to the next Sync. */
export interface ErrorResponse {
  readonly type: "ErrorResponse"
  readonly fields: ErrorFields
}
/** Backend `V`: the result of a FunctionCall. */
export interface FunctionCallResponse {
  readonly type: "FunctionCallResponse"
  /** null when the function returned NULL. */
  readonly result: Uint8Array | null
}
/** Backend `v`: the server supports an older minor protocol version, or not some `_pq_.` options. */
export interface NegotiateProtocolVersion {
  readonly type: "NegotiateProtocolVersion"
  /**
   * Newest protocol version the server supports for the requested major version. The protocol
   * documentation calls it the "newest minor version", but servers send the full major<<16|minor
   * value (PostgreSQL 18 sends 196610 = 3.2), so that is what this holds.
   */
  readonly newestProtocolVersion: number
  /** `_pq_.` options the server did not recognise. */
  readonly unrecognizedOptions: ReadonlyArray<string>
}
/** Backend `n`: the described statement or portal returns no rows. */
export interface NoData {
  readonly type: "NoData"
}
/** Backend `N`: a notice or warning, with the same fields as an error. */
export interface NoticeResponse {
  readonly type: "NoticeResponse"
  readonly fields: ErrorFields
}
/** Backend `A`: a NOTIFY on a channel this session LISTENs to. */
export interface NotificationResponse {
  readonly type: "NotificationResponse"
  readonly processId: number
  readonly channel: string
  readonly payload: string
}
/** Backend `t`: the parameter type OIDs of a described statement. */
export interface ParameterDescription {
  readonly type: "ParameterDescription"
  readonly parameterTypes: ReadonlyArray<number>
}
/** Backend `S`: the current value of a reported server setting (server_version, TimeZone, …). */
export interface ParameterStatus {
  readonly type: "ParameterStatus"
  readonly name: string
  readonly value: string
}
/** Backend `1`: a Parse succeeded. */
export interface ParseComplete {
  readonly type: "ParseComplete"
}
/** Backend `s`: an Execute reached its row limit before the portal was done. */
export interface PortalSuspended {
  readonly type: "PortalSuspended"
}
/** Backend `Z`: the server is ready for the next command; carries the transaction status. */
export interface ReadyForQuery {
  readonly type: "ReadyForQuery"
  readonly status: TransactionStatus
}
/** One column of a RowDescription. */
export interface FieldDescription {
  readonly name: string
  /** OID of the source table, 0 when the column is not a plain table column. */
  readonly tableOid: number
  /** Attribute number in that table, 0 otherwise. */
  readonly columnAttribute: number
  readonly typeOid: number
  /** pg_type.typlen: negative for variable width (-1 varlena, -2 cstring). */
  readonly typeSize: number
  readonly typeModifier: number
  readonly format: FormatCode
}
/** Backend `T`: the columns of the rows that follow (or of a described statement). */
export interface RowDescription {
  readonly type: "RowDescription"
  readonly fields: ReadonlyArray<FieldDescription>
}

/** Every backend authentication request (`R`), by its `type`. */
export type AuthenticationMessage =
  | AuthenticationOk
  | AuthenticationKerberosV5
  | AuthenticationCleartextPassword
  | AuthenticationMD5Password
  | AuthenticationGSS
  | AuthenticationGSSContinue
  | AuthenticationSSPI
  | AuthenticationSASL
  | AuthenticationSASLContinue
  | AuthenticationSASLFinal

/** Every message the server sends, discriminated by `type`. */
export type BackendMessage =
  | AuthenticationMessage
  | BackendKeyData
  | BindComplete
  | CloseComplete
  | CommandComplete
  | CopyData
  | CopyDone
  | CopyInResponse
  | CopyOutResponse
  | CopyBothResponse
  | DataRow
  | EmptyQueryResponse
  | ErrorResponse
  | FunctionCallResponse
  | NegotiateProtocolVersion
  | NoData
  | NoticeResponse
  | NotificationResponse
  | ParameterDescription
  | ParameterStatus
  | ParseComplete
  | PortalSuspended
  | ReadyForQuery
  | RowDescription

/** The `type` names of backend messages. */
export type BackendMessageType = BackendMessage["type"]

// --- frontend messages -----------------------------------------------------------------------------

/** Untyped startup packet. `parameters` in insertion order: user (required), database, options… */
export interface StartupMessage {
  readonly type: "StartupMessage"
  /** PROTOCOL_3_0 or PROTOCOL_3_2 (any major<<16|minor is representable). */
  readonly protocolVersion: number
  readonly parameters: Readonly<Record<string, string>>
}
/** The untyped packet asking the server for TLS before start-up. */
export interface SSLRequest {
  readonly type: "SSLRequest"
}
/** The untyped packet asking the server for GSSAPI encryption before start-up. */
export interface GSSENCRequest {
  readonly type: "GSSENCRequest"
}
/** The untyped packet, on a new connection, cancelling the statement running in the session with this key. */
export interface CancelRequest {
  readonly type: "CancelRequest"
  readonly processId: number
  /** The key from BackendKeyData: 4 bytes (3.0) or up to 256 (3.2). */
  readonly secretKey: Uint8Array
}
/** Frontend `p`: a password (clear text or MD5-hashed). */
export interface PasswordMessage {
  readonly type: "PasswordMessage"
  readonly password: string
}
/** Frontend `p`: the chosen SASL mechanism and its first message (SCRAM's client-first-message). */
export interface SASLInitialResponse {
  readonly type: "SASLInitialResponse"
  readonly mechanism: string
  /** null sends length -1 ("no initial response"). */
  readonly data: Uint8Array | null
}
/** Frontend `p`: a further SASL message (SCRAM's client-final-message). */
export interface SASLResponse {
  readonly type: "SASLResponse"
  readonly data: Uint8Array
}
/** Frontend `p`: GSSAPI or SSPI data. */
export interface GSSResponse {
  readonly type: "GSSResponse"
  readonly data: Uint8Array
}
/** Frontend `P`: prepare a statement text under a name ("" is the unnamed statement). */
export interface Parse {
  readonly type: "Parse"
  /** "" is the unnamed statement. */
  readonly name: string
  readonly query: string
  /** Parameter type OIDs; 0 (or omitted trailing entries) lets the server infer. */
  readonly parameterTypes: ReadonlyArray<number>
}
/** Frontend `B`: bind parameter values to a prepared statement, making a portal. */
export interface Bind {
  readonly type: "Bind"
  readonly portal: string
  readonly statement: string
  /** [] = all text, [f] = all f, else one per parameter. */
  readonly parameterFormats: ReadonlyArray<FormatCode>
  /** Already-encoded values; null is SQL NULL. */
  readonly parameters: ReadonlyArray<Uint8Array | null>
  /** [] = all text, [f] = all f, else one per result column. */
  readonly resultFormats: ReadonlyArray<FormatCode>
}
/** Frontend `D`: ask for the parameter and row description of a statement or portal. */
export interface Describe {
  readonly type: "Describe"
  readonly target: Target
  readonly name: string
}
/** Frontend `E`: run a portal (0 rows: no limit). */
export interface Execute {
  readonly type: "Execute"
  readonly portal: string
  /** 0 = no limit; otherwise the portal suspends after this many rows. */
  readonly maxRows: number
}
/** Frontend `C`: close a prepared statement or portal. */
export interface Close {
  readonly type: "Close"
  readonly target: Target
  readonly name: string
}
/** Frontend `S`: end of an extended-protocol sequence; the server answers ReadyForQuery. */
export interface Sync {
  readonly type: "Sync"
}
/** Frontend `H`: ask the server to send what it has produced so far. */
export interface Flush {
  readonly type: "Flush"
}
/** Frontend `Q`: a simple-protocol query (one or more statements, text results). */
export interface Query {
  readonly type: "Query"
  readonly query: string
}
/** Frontend `X`: close the session. */
export interface Terminate {
  readonly type: "Terminate"
}
/** Frontend `f`: abort a COPY FROM STDIN with this message. */
export interface CopyFail {
  readonly type: "CopyFail"
  readonly message: string
}
/** Frontend `F`: call a function by OID (the legacy fast-path interface). */
export interface FunctionCall {
  readonly type: "FunctionCall"
  readonly functionOid: number
  readonly argumentFormats: ReadonlyArray<FormatCode>
  readonly arguments: ReadonlyArray<Uint8Array | null>
  readonly resultFormat: FormatCode
}

/** Packets sent before the first typed message; they carry no type byte. */
export type StartupPacket = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest

/** The 'p' messages: the type byte is shared, the meaning depends on the authentication exchange. */
export type AuthenticationResponse = PasswordMessage | SASLInitialResponse | SASLResponse | GSSResponse

/** Every message the client sends, discriminated by `type`. */
export type FrontendMessage =
  | StartupPacket
  | AuthenticationResponse
  | Parse
  | Bind
  | Describe
  | Execute
  | Close
  | Sync
  | Flush
  | Query
  | Terminate
  | CopyData
  | CopyDone
  | CopyFail
  | FunctionCall

/** The `type` names of frontend messages. */
export type FrontendMessageType = FrontendMessage["type"]
