/**
 * @pgline/codec: PostgreSQL wire protocol 3.0/3.2 as bytes <-> messages, the type codecs and the
 * SQLSTATE table. Sans-I/O: no sockets, no Effect runtime, no Node APIs; everything is Uint8Array.
 */
// --- protocol (messages, encoders, parsers) ---
export * from "./Protocol.ts"
export * from "./Writer.ts"
export * from "./Frontend.ts"
export * from "./Backend.ts"
export * from "./Parser.ts"

// --- types (codecs, registry) and SQLSTATE ---
export * from "./types/ByteWriter.ts"
export * from "./types/Codec.ts"
export * from "./types/DecodeError.ts"
export * from "./types/Oid.ts"
export * from "./types/ScalarCodecs.ts"
export * from "./types/Numeric.ts"
export * from "./types/DateTimeCodecs.ts"
export * from "./types/InetCodecs.ts"
export * from "./types/PgTimestamp.ts"
export * from "./types/PgInterval.ts"
export * from "./types/PgArray.ts"
export * from "./types/PgRange.ts"
export * from "./TypeRegistry.ts"
export * from "./SqlState.ts"
